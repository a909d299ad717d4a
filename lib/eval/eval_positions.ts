// The held-out positions a next-token evaluation scores, fixed by a seed.
//
// The evaluation file is one token stream (doc0 EOT doc1 EOT … docN-1, lib/data/token_cache.ts).
// A position p of the stream means: context = the tokens of p's document before p, target =
// tokens[p]. Eligible positions:
//   - inside a document, at least `minContext` tokens after its start (so no document start,
//     and every prompt has some context);
//   - the target is a text token, not the EOT that separates documents (we score "the next
//     token of the text", not "where the document ends").
// `samples` of them are drawn without replacement by a partial Fisher–Yates shuffle driven by
// a seeded mulberry32 RNG, then sorted. The draw depends only on the token stream, the seed,
// `samples` and `minContext`: two checkpoints that share a tokenizer get the same positions,
// so their accuracies compare on identical problems. Nothing is persisted.
//
// The context of a prompt is the last `contextLimit` tokens of the document before p (the
// model's context must also hold the reasoning and the answer; see next_token_eval.ts).

import type { TokenStream } from "../data/token_cache.ts";
import { Rng } from "../ref/random.ts";

/** Default least context, in tokens (the same as rl.min_context_tokens' default). */
export const DEFAULT_MIN_CONTEXT = 8;

export interface EvalPosition {
  /** Index into the stream's tokens: the target is tokens[position]. */
  position: number;
  /** The document it lies in. */
  document: number;
  /** Tokens of the document before it (the full, untruncated context length). */
  offset: number;
}

export interface PositionOptions {
  /** How many positions to draw (fewer when the stream has fewer eligible ones). */
  samples: number;
  /** The RNG seed, an integer in [0, 2^32). */
  seed: number;
  /** Least context in tokens (≥ 1). Default DEFAULT_MIN_CONTEXT. */
  minContext?: number;
}

/** The eligible positions of a stream, ascending (see the top of this file). */
export function eligiblePositions(stream: TokenStream, minContext: number): EvalPosition[] {
  if (!Number.isInteger(minContext) || minContext < 1) {
    throw new Error(`evalPositions: minContext must be an integer ≥ 1, got ${minContext}`);
  }
  const out: EvalPosition[] = [];
  const documents = stream.docOffsets.length - 1;
  for (let d = 0; d < documents; d++) {
    const start = stream.docOffsets[d];
    const end = stream.docOffsets[d + 1] - 1; // exclusive: the EOT (or the virtual one)
    for (let p = start + minContext; p < end; p++) {
      out.push({ position: p, document: d, offset: p - start });
    }
  }
  return out;
}

/** `samples` eligible positions drawn with the seed, ascending (see the top of this file). */
export function evalPositions(stream: TokenStream, options: PositionOptions): EvalPosition[] {
  const { samples, seed, minContext = DEFAULT_MIN_CONTEXT } = options;
  if (!Number.isInteger(samples) || samples < 1) {
    throw new Error(`evalPositions: samples must be an integer ≥ 1, got ${samples}`);
  }
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) {
    throw new Error(`evalPositions: seed must be an integer in [0, 2^32), got ${seed}`);
  }
  const pool = eligiblePositions(stream, minContext);
  const count = Math.min(samples, pool.length);
  const rng = new Rng(seed);
  for (let i = 0; i < count; i++) {
    const j = i + rng.int(pool.length - i);
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, count).sort((a, b) => a.position - b.position);
}

/** The context ids of a position: its document's tokens before it, the last `limit` of them. */
export function positionContext(
  stream: TokenStream,
  at: EvalPosition,
  limit: number,
): number[] {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new Error(`positionContext: limit must be an integer ≥ 1, got ${limit}`);
  }
  const from = Math.max(at.position - at.offset, at.position - limit);
  return Array.from(stream.tokens.subarray(from, at.position));
}
