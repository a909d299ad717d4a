// Shared test helpers: the GPU context, closeness checks with stated tolerances, and
// central finite differences for checking backward passes on the reference.

import { gpu, type GpuContext } from "../lib/gpu/context.ts";
import { UserError } from "../lib/gpu/errors.ts";

export { Rng } from "../lib/ref/random.ts";

export class AssertionError extends Error {
  constructor({ message }: { message: string }) {
    super(message);
    this.name = "AssertionError";
  }
}

/** The shared GPU context (Mesa's software adapter on CI). */
export function testGpu(): Promise<GpuContext> {
  return gpu();
}

export interface Tolerance {
  /** Relative tolerance: |a - e| <= atol + rtol·|e|. */
  rtol?: number;
  atol?: number;
}

/** Asserts elementwise closeness; the message names the worst index. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { rtol = 1e-4, atol = 1e-5 }: Tolerance = {},
  what = "values",
): void {
  if (actual.length !== expected.length) {
    throw new AssertionError({
      message: `${what}: length ${actual.length}, expected ${expected.length}`,
    });
  }
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = Number.isNaN(excess) ? Infinity : excess;
    }
  }
  if (worst >= 0) {
    throw new AssertionError({
      message: `${what}: index ${worst}: got ${actual[worst]}, expected ${expected[worst]} ` +
        `(rtol ${rtol}, atol ${atol})`,
    });
  }
}

/** Asserts bit-identical arrays (determinism checks). */
export function assertBitEqual(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what = "values",
): void {
  if (actual.length !== expected.length) {
    throw new AssertionError({
      message: `${what}: lengths ${actual.length} and ${expected.length}`,
    });
  }
  for (let i = 0; i < actual.length; i++) {
    if (!Object.is(actual[i], expected[i])) {
      throw new AssertionError({
        message: `${what}: index ${i} differs: ${actual[i]} vs ${expected[i]}`,
      });
    }
  }
}

/**
 * Central finite differences of a scalar function f at x, for every element of x:
 * g[i] ≈ (f(x + h·e_i) − f(x − h·e_i)) / 2h. f must compute in f64 (the references do).
 */
export function finiteDifference(
  f: (x: Float64Array) => number,
  x: ArrayLike<number>,
  h = 1e-4,
): Float64Array {
  const point = Float64Array.from(x);
  const grad = new Float64Array(point.length);
  for (let i = 0; i < point.length; i++) {
    const saved = point[i];
    point[i] = saved + h;
    const up = f(point);
    point[i] = saved - h;
    const down = f(point);
    point[i] = saved;
    grad[i] = (up - down) / (2 * h);
  }
  return grad;
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError({ message });
}

/** Deep equality through JSON (plain data: numbers, strings, arrays, objects). */
export function assertEquals<T>(actual: T, expected: T, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new AssertionError({ message: `${what}: got ${a}, expected ${e}` });
}

/** Runs `fn` with a fresh temp folder, removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "rmt-test-" });
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
