// Helpers shared by the RMT method tests: plain assertions with messages that say what differs,
// and small fake tokenizers (byte-level) so that rewards and prompts can be tested without a
// tokenizer file.

import { assert, AssertionError } from "../helpers.ts";

export { assert, assertClose, assertEquals, finiteDifference, Rng } from "../helpers.ts";

/** Asserts |actual − expected| ≤ tol. */
export function assertNear(actual: number, expected: number, tol: number, what: string): void {
  if (!(Math.abs(actual - expected) <= tol)) {
    throw new AssertionError({ message: `${what}: got ${actual}, expected ${expected} ± ${tol}` });
  }
}

/** Asserts that fn throws an Error whose message contains every fragment; returns it. */
export function assertThrows(fn: () => unknown, fragments: readonly string[], what: string) {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  if (!(error instanceof Error)) throw new AssertionError({ message: `${what}: did not throw` });
  for (const f of fragments) {
    assert(error.message.includes(f), `${what}: ${JSON.stringify(error.message)} lacks ${f}`);
  }
  return error.message;
}

/**
 * A fake byte-level tokenizer: token id i is the byte sequence pieces[i] (a string is its UTF-8,
 * a number[] raw bytes, so that one character may span tokens).
 */
export class FakeTokenizer {
  readonly #bytes: Uint8Array[];

  constructor(readonly pieces: readonly (string | number[])[]) {
    const encoder = new TextEncoder();
    this.#bytes = pieces.map((
      p,
    ) => (typeof p === "string" ? encoder.encode(p) : Uint8Array.from(p)));
  }

  /** The id of a string piece. */
  id(piece: string): number {
    const id = this.pieces.indexOf(piece);
    if (id < 0) throw new Error(`FakeTokenizer: no piece ${JSON.stringify(piece)}`);
    return id;
  }

  ids(pieces: readonly string[]): number[] {
    return pieces.map((p) => this.id(p));
  }

  decodeBytes = (ids: readonly number[]): Uint8Array => {
    const parts = ids.map((id) => this.#bytes[id]);
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };

  decode = (ids: readonly number[]): string => new TextDecoder().decode(this.decodeBytes(ids));
}
