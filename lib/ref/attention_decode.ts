// Reference decode attention (f64 arithmetic): one query per sequence against a KV cache's
// first `length` rows. It is causal attention with Tq = 1 and Tk = length, so it takes the
// cache's prefix and calls the attention reference (lib/ref/attention.ts); the GPU kernel in
// kernels/attention_decode.wgsl must agree with it.
//
//   q: [B, 1, Hq, D]   kCache, vCache: [B, maxLen, Hkv, D]   keyMask: [B, maskLen] (≥ length)
//   → out: [B, 1, Hq, D]
// Query head h reads kv head floor(h / (Hq / Hkv)); the query sees every key j < length with
// keyMask[b, j] = 1, and outputs zeros when it sees none. Rows length..maxLen − 1 of the cache
// and columns length.. of the mask are never read.

import { attentionForwardF64, type AttentionOptions } from "./attention.ts";

/** Sizes of one decode call. */
export interface AttentionDecodeDims {
  batch: number;
  /** Rows of the cache (its dim 1). */
  maxLen: number;
  /** Columns of keyMask (at least length). */
  maskLen: number;
  /** Keys attended: cache rows 0..length − 1. */
  length: number;
  queryHeads: number;
  kvHeads: number;
  headDim: number;
}

/** Rows [0, length) of each sequence of a [B, rows, width] array: [B, length, width]. */
function prefix(
  x: ArrayLike<number>,
  batch: number,
  rows: number,
  width: number,
  length: number,
): Float64Array {
  const out = new Float64Array(batch * length * width);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < length * width; i++) out[b * length * width + i] = x[b * rows * width + i];
  }
  return out;
}

/** Forward in f64: out [B, 1, Hq, D]. */
export function attentionDecodeF64(
  q: ArrayLike<number>,
  kCache: ArrayLike<number>,
  vCache: ArrayLike<number>,
  keyMask: ArrayLike<number>,
  dims: AttentionDecodeDims,
  options: AttentionOptions = {},
): Float64Array {
  const { batch, maxLen, maskLen, length, queryHeads, kvHeads, headDim } = dims;
  if (length < 1 || length > maxLen || length > maskLen) {
    throw new Error(`attentionDecode: length ${length} outside 1..min(${maxLen}, ${maskLen})`);
  }
  const row = kvHeads * headDim;
  const keys = prefix(kCache, batch, maxLen, row, length);
  const values = prefix(vCache, batch, maxLen, row, length);
  const mask = prefix(keyMask, batch, maskLen, 1, length);
  const attention = { batch, queryLen: 1, keyLen: length, queryHeads, kvHeads, headDim };
  return attentionForwardF64(q, keys, values, mask, attention, options).out;
}

/** Forward: out [B, 1, Hq, D], rounded to f32. */
export function attentionDecode(
  q: ArrayLike<number>,
  kCache: ArrayLike<number>,
  vCache: ArrayLike<number>,
  keyMask: ArrayLike<number>,
  dims: AttentionDecodeDims,
  options: AttentionOptions = {},
): Float32Array {
  return Float32Array.from(attentionDecodeF64(q, kCache, vCache, keyMask, dims, options));
}
