// The KV cache for decoding: per layer, the keys (after the Qwen3 k-norm and RoPE) and values
// of every position seen so far, so that each new token attends to them without recomputing.
//
//   k, v of each layer: [B, maxLen, Hkv, D]; positions [0, length) are filled.
//
// A forward with a cache writes its T new rows at [length, length + T), then attends over
// [0, length + T). Queries are the last T of those positions. The caller keeps the [B, maxLen]
// key mask (1 = a real token at that slot): it must be 0 for left padding and covers every
// cached position. Two ways to attend:
// - One new token per sequence (T = 1, every decode step): attendLayerCache runs
//   attentionDecode (lib/ops/attention_decode.ts) on the cache buffers in place: the query sits
//   at position length, sees rows [0, length + 1), and nothing is copied.
// - Several (T > 1, the prefill): appendToLayerCache copies the filled prefix out as a
//   contiguous [B, length + T, Hkv, D] for attentionForward, whose offset rule (query i sits at
//   position length + i) gives causality.

import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { attentionDecode } from "../ops/attention_decode.ts";
import { readTimeSlice, writeTimeSlicePair } from "../ops/kv_cache.ts";
import type { ModelConfig } from "./config.ts";

export interface LayerKvCache {
  /** [B, maxLen, Hkv, D] keys after the k-norm (Qwen3) and RoPE */
  readonly k: Tensor<"f32">;
  /** [B, maxLen, Hkv, D] values */
  readonly v: Tensor<"f32">;
}

export interface KvCache {
  /** B: sequences. */
  readonly batch: number;
  /** Positions the cache can hold. */
  readonly maxLen: number;
  /** Positions filled so far; the next forward writes its rows here (then advances it). */
  length: number;
  readonly layers: readonly LayerKvCache[];
}

/** An empty cache (length 0) for `batch` sequences of up to `maxLen` positions. */
export function createKvCache(
  ctx: GpuContext,
  config: ModelConfig,
  batch: number,
  maxLen: number,
): KvCache {
  if (!Number.isInteger(batch) || batch < 1 || !Number.isInteger(maxLen) || maxLen < 1) {
    throw new Error(`createKvCache: batch ${batch} and maxLen ${maxLen} must be positive`);
  }
  const shape = [batch, maxLen, config.numKvHeads, config.headDim];
  const layers = Array.from({ length: config.numLayers }, () => ({
    k: ctx.zeros(shape, "f32"),
    v: ctx.zeros(shape, "f32"),
  }));
  return { batch, maxLen, length: 0, layers };
}

/** Forgets the cached positions (the buffers are kept for the next prompt). */
export function resetKvCache(cache: KvCache): void {
  cache.length = 0;
}

/** Gives the cache's buffers back to the pool. */
export function releaseKvCache(cache: KvCache): void {
  for (const layer of cache.layers) {
    layer.k.release();
    layer.v.release();
  }
}

/**
 * Writes one layer's new keys and values k, v: [B, T, Hkv, D] at [start, start + T), in one
 * dispatch; `vBias` [Hkv·D], when given, is added to the values on the way (Qwen2's v_proj
 * bias: the same bits as adding it before).
 */
export function writeToLayerCache(
  ctx: GpuContext,
  layer: LayerKvCache,
  start: number,
  k: Tensor<"f32">,
  v: Tensor<"f32">,
  vBias?: Tensor<"f32">,
): void {
  writeTimeSlicePair(ctx, k, layer.k, v, layer.v, start, vBias);
}

/**
 * Decode attention of one new token per sequence over a layer's cache, read in place.
 * q: [B, 1, Hq, D], keyMask: [B, L] u32 (L > start) → [B, 1, Hq, D] (a new tensor). `start` is
 * the cache's length before this forward: the token's key and value are already written at row
 * `start` (writeToLayerCache), and its query sees rows 0..start.
 */
export function attendLayerCache(
  ctx: GpuContext,
  layer: LayerKvCache,
  start: number,
  q: Tensor<"f32">,
  keyMask: Tensor<"u32">,
): Tensor<"f32"> {
  return attentionDecode(ctx, q, layer.k, layer.v, keyMask, { length: start + 1 });
}

/**
 * Writes one layer's new keys and values k, v: [B, T, Hkv, D] at [start, start + T) (+ vBias,
 * as writeToLayerCache) and returns the keys and values attention reads: [B, start + T, Hkv, D]
 * each, new tensors (the caller releases them). `start` is the cache's length before this
 * forward.
 */
export function appendToLayerCache(
  ctx: GpuContext,
  layer: LayerKvCache,
  start: number,
  k: Tensor<"f32">,
  v: Tensor<"f32">,
  vBias?: Tensor<"f32">,
): { keys: Tensor<"f32">; values: Tensor<"f32"> } {
  writeToLayerCache(ctx, layer, start, k, v, vBias);
  const length = start + k.shape[1];
  return {
    keys: readTimeSlice(ctx, layer.k, 0, length),
    values: readTimeSlice(ctx, layer.v, 0, length),
  };
}
