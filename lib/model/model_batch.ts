// The token batch a model forward reads, and helpers that build one from ragged sequences.
//
//   ids: [B, T] u32    positions: [B, T] i32    keyMask: [B, T] u32 (1 = real token)
//
// Sequences of different lengths are padded to T, on the right (training) or on the left
// (generation: every prompt then ends at the same column, so decoding appends one column).
// Positions are explicit: a token's position is its index in its own sequence, whatever the
// padding, so RoPE sees the same angles either way. Padding rows carry id 0 and position 0;
// they are masked out as keys, and their own outputs are meaningless (give them no loss).

import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";

/** Token ids on the host, [B, T] row-major. */
export interface HostIds {
  readonly data: Uint32Array<ArrayBuffer>;
  readonly shape: readonly [number, number];
}

/** What forward() reads. */
export interface ModelBatch {
  /**
   * [B, T] token ids: a GPU tensor, or host ids (uploaded by the forward). Every id must be
   * < vocab (host ids are checked; GPU ids cannot be).
   */
  readonly ids: Tensor<"u32"> | HostIds;
  /**
   * [B·T] the same ids on the host, when `ids` is a tensor. Training needs them: the embedding
   * backward groups the positions by id on the host (no float atomics on the GPU).
   */
  readonly hostIds?: Uint32Array;
  /** [B, T] i32: position of each token in its sequence (RoPE). */
  readonly positions: Tensor<"i32">;
  /** [B, T] u32: 1 = real token, 0 = padding. With a KV cache: [B, maxLen], every cached slot. */
  readonly keyMask: Tensor<"u32">;
}

export type Padding = "right" | "left";

/** Ragged sequences laid out as [B, T] rows on the host. */
export interface PaddedSequences {
  /** B */
  readonly batch: number;
  /** T: the longest sequence, or the `time` asked for. */
  readonly time: number;
  readonly lengths: readonly number[];
  /** The column where sequence b starts: 0 (right padding) or T − len_b (left padding). */
  readonly offsets: readonly number[];
  /** [B·T] ids, 0 on padding */
  readonly ids: Uint32Array<ArrayBuffer>;
  /** [B·T] index of the token in its sequence, 0 on padding */
  readonly positions: Int32Array<ArrayBuffer>;
  /** [B·T] 1 = real token, 0 = padding */
  readonly keyMask: Uint32Array<ArrayBuffer>;
}

/** Pads `sequences` (each non-empty) to T = max length (or `time`, at least that). */
export function padSequences(
  sequences: readonly (readonly number[])[],
  { padding = "right", time }: { padding?: Padding; time?: number } = {},
): PaddedSequences {
  if (sequences.length === 0) throw new Error("padSequences: no sequences");
  const lengths = sequences.map((s) => s.length);
  const longest = Math.max(...lengths);
  const t = time ?? longest;
  if (lengths.some((n) => n === 0) || t < longest) {
    throw new Error(`padSequences: lengths [${lengths}] must be ≥ 1 and fit T = ${t}`);
  }
  const batch = sequences.length;
  const ids = new Uint32Array(batch * t);
  const positions = new Int32Array(batch * t);
  const keyMask = new Uint32Array(batch * t);
  const offsets = lengths.map((n) => (padding === "left" ? t - n : 0));
  sequences.forEach((sequence, b) => {
    sequence.forEach((id, i) => {
      const row = b * t + offsets[b] + i;
      ids[row] = id;
      positions[row] = i;
      keyMask[row] = 1;
    });
  });
  return { batch, time: t, lengths, offsets, ids, positions, keyMask };
}

/** A ModelBatch on the GPU (ids uploaded, host ids kept for training); release() frees it. */
export interface UploadedBatch extends ModelBatch {
  readonly ids: Tensor<"u32">;
  release(): void;
}

export function uploadBatch(ctx: GpuContext, padded: PaddedSequences): UploadedBatch {
  const shape = [padded.batch, padded.time];
  const ids = ctx.upload(padded.ids, shape, "u32");
  const positions = ctx.upload(padded.positions, shape, "i32");
  const keyMask = ctx.upload(padded.keyMask, shape, "u32");
  return {
    ids,
    hostIds: padded.ids,
    positions,
    keyMask,
    release() {
      ids.release();
      positions.release();
      keyMask.release();
    },
  };
}

/** Per row of the padded batch: the next-token target and its loss weight. */
export interface NextTokenTargets {
  /** [B·T] the id of the token after each row (0 where there is none) */
  readonly targets: Uint32Array<ArrayBuffer>;
  /** [B·T] 1/count on every row that has a next token, 0 elsewhere (a mean over them) */
  readonly weights: Float32Array<ArrayBuffer>;
  /** How many rows have a next token. */
  readonly count: number;
}

/**
 * Next-token prediction over the real tokens: row (b, t) predicts the token at t + 1 of the
 * same sequence. Weights are normalised for the mean over those rows (what ntpLossAndGrad
 * expects: it sums w·(−log p)).
 */
export function nextTokenTargets(padded: PaddedSequences): NextTokenTargets {
  const { batch, time, lengths, offsets, ids } = padded;
  const targets = new Uint32Array(batch * time);
  const weights = new Float32Array(batch * time);
  let count = 0;
  for (let b = 0; b < batch; b++) count += lengths[b] - 1;
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i + 1 < lengths[b]; i++) {
      const row = b * time + offsets[b] + i;
      targets[row] = ids[row + 1];
      weights[row] = 1 / count;
    }
  }
  return { targets, weights, count };
}
