// Batches for next-token prediction (pre-training, and the NTP part of RMT): windows of
// seqLen + 1 consecutive tokens cut from the corpus's token stream; the first seqLen are the
// inputs, the last seqLen (shifted by one) the targets. Windows may cross document
// boundaries (the <|endoftext|> between documents is then an ordinary target).
//
// Where each window starts is drawn from an RNG seeded by (seed, step) alone, so a given step
// always gets the same batch, whatever ran before: a run resumed at step s continues exactly
// as the uninterrupted run would have.

import { UserError } from "../gpu/errors.ts";
import { Rng } from "../ref/random.ts";

export interface BatchOptions {
  /** B: sequences per batch. */
  batchSize: number;
  /** T: tokens per sequence. */
  seqLen: number;
  /** The run's data seed. */
  seed: number;
}

export interface Batch {
  /** [B·T] row-major: ids[b·T + t] = tokens[starts[b] + t]. */
  ids: Uint32Array<ArrayBuffer>;
  /** [B·T]: targets[b·T + t] = tokens[starts[b] + t + 1], the token after ids[b·T + t]. */
  targets: Uint32Array<ArrayBuffer>;
  /** [B]: where each window starts in the stream. */
  starts: number[];
}

/** A 32-bit seed from (seed, step), well mixed (MurmurHash3's finaliser on each input). */
export function stepSeed(seed: number, step: number): number {
  const mix = (h: number) => {
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  };
  return mix(mix(seed >>> 0) ^ Math.imul(step >>> 0, 0x9e3779b1) ^ 0x2545f491);
}

function checkPositiveInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new UserError(`batches: ${name} must be a positive integer, got ${value}`);
  }
}

/**
 * The NTP batch of `step`: B windows of T + 1 tokens at starts drawn uniformly from
 * [0, tokens.length − T − 1] by an RNG seeded with (seed, step).
 */
export function ntpBatch(tokens: Uint32Array, options: BatchOptions, step: number): Batch {
  const { batchSize, seqLen, seed } = options;
  checkPositiveInteger("batchSize", batchSize);
  checkPositiveInteger("seqLen", seqLen);
  if (!Number.isSafeInteger(step) || step < 0) {
    throw new Error(`ntpBatch: step must be a non-negative integer, got ${step}`);
  }
  if (tokens.length < seqLen + 1) {
    throw new UserError(
      `the token stream has ${tokens.length} tokens, fewer than seqLen + 1 = ${seqLen + 1} ` +
        "(model.max_context + 1): use a larger corpus (data.train) or a shorter model.max_context",
    );
  }
  const rng = new Rng(stepSeed(seed, step));
  const choices = tokens.length - seqLen; // starts 0 .. tokens.length - seqLen - 1
  const ids = new Uint32Array(batchSize * seqLen);
  const targets = new Uint32Array(batchSize * seqLen);
  const starts: number[] = [];
  for (let b = 0; b < batchSize; b++) {
    const start = rng.int(choices);
    starts.push(start);
    ids.set(tokens.subarray(start, start + seqLen), b * seqLen);
    targets.set(tokens.subarray(start + 1, start + seqLen + 1), b * seqLen);
  }
  return { ids, targets, starts };
}
