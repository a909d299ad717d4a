// Helpers shared by the model-file tests: temp folders, and checks that bad input gives a
// UserError whose message names what is wrong.

import { UserError } from "../../lib/model/errors.ts";
import { AssertionError } from "../helpers.ts";

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError({ message });
}

export function assertEquals<T>(actual: T, expected: T, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new AssertionError({ message: `${what}: got ${a}, expected ${e}` });
}

/** Runs `fn` with a fresh temp folder, removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "rmt-model-test-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Asserts that `fn` throws (or rejects with) a UserError with exit code 2, on one line, whose
 * message contains every fragment. Returns the message.
 */
export async function assertUserError(
  fn: () => unknown,
  fragments: readonly string[],
  what: string,
): Promise<string> {
  let error: unknown;
  try {
    await fn();
  } catch (e) {
    error = e;
  }
  if (!(error instanceof UserError)) {
    throw new AssertionError({
      message: `${what}: expected a UserError, got ${error === undefined ? "no error" : error}`,
    });
  }
  assert(error.exitCode === 2, `${what}: exit code ${error.exitCode}, expected 2`);
  assert(!error.message.includes("\n"), `${what}: message spans lines: ${error.message}`);
  for (const fragment of fragments) {
    assert(
      error.message.includes(fragment),
      `${what}: message ${JSON.stringify(error.message)} does not mention ${
        JSON.stringify(fragment)
      }`,
    );
  }
  return error.message;
}
