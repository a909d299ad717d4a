// The attention half of a decoder layer, forward and backward (llm.c style: every saved
// activation explicit, no autograd). Shapes: B sequences of T new tokens, N = B·T rows;
// d = hidden size; Hq query and Hkv key/value heads of width D; Tk = keys attended (T, or the
// cache length + T when decoding).
//
//   h   = RMSNorm(x; input_layernorm)                               [N, d]
//   q   = h·Wqᵀ (+ bq)                                               [N, Hq·D]
//   k   = h·Wkᵀ (+ bk),  v = h·Wvᵀ (+ bv)                              [N, Hkv·D] ×2
//   Qwen3: q, k ← RMSNorm over each head (q_norm, k_norm: [D])       (rows N·Hq, N·Hkv of D)
//   q, k ← RoPE(q, k; positions)                                      [B, T, Hq|Hkv, D]
//   with a cache: k, v written at the cache length; keys/values = the cache's rows so far
//   a   = causal GQA attention(q, keys, values; keyMask)             [B, T, Hq, D]
//   out = x + a·Woᵀ (+ bo)                                           [N, d]
//
// Attention itself, three ways (lib/model/kv_cache.ts):
//   no cache          attentionForward over the batch's own T keys (training, scoring)
//   cache, T = 1      a decode step: attentionDecode reads the cache's rows in place (no copy)
//   cache, T > 1      the prefill: the filled prefix copied out for attentionForward
// The decode path keeps no log-sum-exp, so it is taken only without `save` (forward with a
// cache is inference only; transformer.ts refuses train with a cache).
// Fused dispatches (the same bits as the steps above): RoPE of q and k is one dispatch, which
// also adds bq and bk when nothing sits between them (no qk-norm); the o_proj product adds
// itself into a copy of x (linearPlusResidual); k and v enter the cache in one dispatch, which
// also adds bv.

import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { attentionBackward, attentionForward } from "../ops/attention.ts";
import { add } from "../ops/elementwise.ts";
import { rmsNorm, rmsNormBackward } from "../ops/norm.ts";
import { ropeQueriesKeys, ropeQueriesKeysBackward } from "../ops/rope.ts";
import type { ModelConfig } from "./config.ts";
import type { ChunkedWeight } from "./gpu_weights.ts";
import {
  appendToLayerCache,
  attendLayerCache,
  type LayerKvCache,
  writeToLayerCache,
} from "./kv_cache.ts";
import {
  accumulateInto,
  linear,
  linearBackward,
  linearBackwardAdd,
  linearPlusResidual,
} from "./linear.ts";

/** What every layer of one forward shares. */
export interface LayerInputs {
  /** B */
  batch: number;
  /** T: the new tokens of this forward. */
  time: number;
  /** [B, T] i32: each new token's position in its sequence (RoPE). */
  positions: Tensor<"i32">;
  /** [B, Tk] u32: which keys are real tokens (Tk = T, or cache length + T). */
  keyMask: Tensor<"u32">;
}

/** Where a decoding forward keeps this layer's keys and values. */
export interface LayerCacheSlot {
  cache: LayerKvCache;
  /** The cache length before this forward: the new rows go to [start, start + T). */
  start: number;
}

/** A parameter (or its gradient) of one layer, by the suffix after "model.layers.ℓ.". */
export type LayerTensor = (suffix: string) => Tensor<"f32">;
/** The same for tensors only some architectures have (biases, q/k norms). */
export type OptionalLayerTensor = (suffix: string) => Tensor<"f32"> | undefined;

export interface LayerTensors {
  /** A tensor held whole (norm weights, biases). */
  get: LayerTensor;
  maybe: OptionalLayerTensor;
  /** A projection's weight matrix as its row chunks (one unless it is bigger than a binding). */
  weight: (suffix: string) => ChunkedWeight;
}

/** The forward activations the attention backward needs. */
export interface AttentionSaved {
  /** [N, d] the block's input (the residual stream) */
  x: Tensor<"f32">;
  /** [N] 1/rms of each row of x */
  rstd: Tensor<"f32">;
  /** [N, d] RMSNorm(x): what q, k, v read */
  h: Tensor<"f32">;
  /** Qwen3 only: [N, Hq·D], [N, Hkv·D] the projections before the per-head norm, its rstd */
  qProjected?: Tensor<"f32">;
  kProjected?: Tensor<"f32">;
  qRstd?: Tensor<"f32">; // [N·Hq]
  kRstd?: Tensor<"f32">; // [N·Hkv]
  /** [B, T, Hq, D], [B, T, Hkv, D], [B, T, Hkv, D]: what attention read */
  q: Tensor<"f32">;
  k: Tensor<"f32">;
  v: Tensor<"f32">;
  /** [B, T, Hq, D] attention output, [B, Hq, T] its log-sum-exp */
  attention: Tensor<"f32">;
  lse: Tensor<"f32">;
}

function releaseAll(tensors: readonly (Tensor | undefined)[]): void {
  for (const t of tensors) t?.release();
}

/** RMSNorm over each head: x [N, H·D] as N·H rows of D → y [N, H·D], rstd [N·H]. */
function headNorm(
  ctx: GpuContext,
  x: Tensor<"f32">,
  weight: Tensor<"f32">,
  headDim: number,
  eps: number,
): { y: Tensor<"f32">; rstd: Tensor<"f32"> } {
  const { y, rstd } = rmsNorm(ctx, x.reshape([x.size / headDim, headDim]), weight, eps);
  return { y: y.reshape(x.shape), rstd };
}

/**
 * Causal attention of q: [B, T, Hq, D] over k, v: [B, T, Hkv, D] (the new keys and values),
 * after those of the cache if there is one; keyMask: [B, Tk] → attention [B, T, Hq, D] and its
 * log-sum-exp [B, Hq, T]. With a cache, k and v are written into it first, and `vBias` (only
 * given with a cache) is added to v on the way. A decode step (T = 1) through the cache
 * returns lse null unless `needLse` (only the backward needs it).
 */
function attend(
  ctx: GpuContext,
  q: Tensor<"f32">,
  k: Tensor<"f32">,
  v: Tensor<"f32">,
  keyMask: Tensor<"u32">,
  cache: LayerCacheSlot | undefined,
  needLse: boolean,
  vBias?: Tensor<"f32">,
): { attention: Tensor<"f32">; lse: Tensor<"f32"> | null } {
  if (!cache) {
    const { out, lse } = attentionForward(ctx, q, k, v, keyMask);
    return { attention: out, lse };
  }
  if (q.shape[1] === 1 && !needLse) {
    // A decode step: read the cache in place.
    writeToLayerCache(ctx, cache.cache, cache.start, k, v, vBias);
    return { attention: attendLayerCache(ctx, cache.cache, cache.start, q, keyMask), lse: null };
  }
  // The prefill (or a step that keeps lse): the new keys and values join the cache; attention
  // reads the whole prefix.
  // [B, Tk, Hkv, D] each
  const { keys, values } = appendToLayerCache(ctx, cache.cache, cache.start, k, v, vBias);
  const { out, lse } = attentionForward(ctx, q, keys, values, keyMask);
  releaseAll([keys, values]);
  return { attention: out, lse };
}

/**
 * x: [N, d] → out = x + attention(x): [N, d]. With `save`, out is a new tensor and the
 * activations for attentionBlockBackward come along (which then owns x too); without, x is
 * consumed (out may be x itself, overwritten; else x is released) and every temporary is
 * released here.
 */
export function attentionBlockForward(
  ctx: GpuContext,
  config: ModelConfig,
  p: LayerTensors,
  x: Tensor<"f32">,
  inputs: LayerInputs,
  { save, cache }: { save: boolean; cache?: LayerCacheSlot },
): { out: Tensor<"f32">; saved: AttentionSaved | null } {
  const { numHeads: hq, numKvHeads: hkv, headDim, rmsNormEps: eps, ropeTheta: theta } = config;
  const { batch, time } = inputs;
  const weight = (name: string) => p.weight(`self_attn.${name}.weight`);
  const bias = (name: string) => p.maybe(`self_attn.${name}.bias`);
  const norm = (name: string) => p.get(`self_attn.${name}.weight`);
  const asHeads = (t: Tensor<"f32">, heads: number) => t.reshape([batch, time, heads, headDim]);
  const qBias = bias("q_proj");
  const kBias = bias("k_proj");
  // With nothing between them (no Qwen3 qk-norm), the q and k biases are added by RoPE's
  // dispatch (the same bits as adding them here).
  const biasesInRope = !config.qkNorm && qBias !== undefined && kBias !== undefined;
  // With a cache, v's bias is added by the dispatch that writes v into it.
  const vBias = bias("v_proj");
  const vBiasInCache = cache !== undefined && vBias !== undefined;

  const { y: h, rstd } = rmsNorm(ctx, x, p.get("input_layernorm.weight"), eps); // [N, d], [N]
  const qProjected = linear(ctx, h, weight("q_proj"), biasesInRope ? undefined : qBias); // [N, Hq·D]
  const kProjected = linear(ctx, h, weight("k_proj"), biasesInRope ? undefined : kBias); // [N, Hkv·D]
  const vProjected = linear(ctx, h, weight("v_proj"), vBiasInCache ? undefined : vBias); // [N, Hkv·D]
  // Qwen3: RMSNorm over each head vector of q and k, before RoPE.
  const qNorm = config.qkNorm ? headNorm(ctx, qProjected, norm("q_norm"), headDim, eps) : null;
  const kNorm = config.qkNorm ? headNorm(ctx, kProjected, norm("k_norm"), headDim, eps) : null;
  const qNormed = qNorm?.y ?? qProjected; // [N, Hq·D]
  const kNormed = kNorm?.y ?? kProjected; // [N, Hkv·D]
  // [B, T, Hq, D], [B, T, Hkv, D]
  const { q, k } = ropeQueriesKeys(
    ctx,
    { q: asHeads(qNormed, hq), k: asHeads(kNormed, hkv) },
    inputs.positions,
    { theta },
    biasesInRope ? { q: qBias!, k: kBias! } : undefined,
  );
  const v = asHeads(vProjected, hkv); // [B, T, Hkv, D]
  // Without the norm these are the projections themselves: only the norm's backward needs them.
  releaseAll([qNormed, kNormed]);

  // [B, T, Hq, D], and its log-sum-exp [B, Hq, T] (not on the decode path)
  const { attention, lse } = attend(
    ctx,
    q,
    k,
    v,
    inputs.keyMask,
    cache,
    save,
    vBiasInCache ? vBias : undefined,
  );

  const attention2d = attention.reshape([batch * time, hq * headDim]); // [N, Hq·D]
  // [N, d]: the residual stream, x + attention·Woᵀ (+ bo)
  // Without save nothing reads x again: the sum may overwrite it (see the function's doc).
  const out = linearPlusResidual(ctx, attention2d, weight("o_proj"), x, bias("o_proj"), {
    consume: !save,
  });

  if (!save) {
    releaseAll([rstd, h, qNorm?.rstd, kNorm?.rstd, q, k, v, attention, lse ?? undefined]);
    if (config.qkNorm) releaseAll([qProjected, kProjected]);
    return { out, saved: null };
  }
  const saved: AttentionSaved = { x, rstd, h, q, k, v, attention, lse: lse! };
  if (config.qkNorm) {
    Object.assign(saved, { qProjected, kProjected, qRstd: qNorm!.rstd, kRstd: kNorm!.rstd });
  }
  return { out, saved };
}

/**
 * The backward of headNorm: x [N, H·D] (its input), rstd [N·H], dy [N, H·D] →
 * dx [N, H·D]; the weight's gradient [D] is added into dWeight.
 */
function headNormBackward(
  ctx: GpuContext,
  x: Tensor<"f32">,
  weight: Tensor<"f32">,
  rstd: Tensor<"f32">,
  dy: Tensor<"f32">,
  dWeight: Tensor<"f32">,
): Tensor<"f32"> {
  const headDim = weight.size;
  const rows = [x.size / headDim, headDim];
  const norm = rmsNormBackward(ctx, x.reshape(rows), weight, rstd, dy.reshape(rows));
  accumulateInto(ctx, dWeight, norm.dWeight);
  return norm.dx.reshape(x.shape);
}

/**
 * dOut: [N, d] = ∂L/∂out → ∂L/∂x: [N, d] (a new tensor; dOut is not released). Parameter
 * gradients are added into `g` (the layer's gradient tensors). Releases `saved`.
 */
export function attentionBlockBackward(
  ctx: GpuContext,
  config: ModelConfig,
  p: LayerTensors,
  g: LayerTensors,
  saved: AttentionSaved,
  dOut: Tensor<"f32">,
  inputs: LayerInputs,
): Tensor<"f32"> {
  const { numHeads: hq, numKvHeads: hkv, headDim, ropeTheta: theta } = config;
  const { batch, time } = inputs;
  const rows = batch * time;
  const weight = (name: string) => p.weight(`self_attn.${name}.weight`);
  const grads = (name: string) => ({
    weight: g.weight(`self_attn.${name}.weight`),
    bias: g.maybe(`self_attn.${name}.bias`),
  });

  // out = x + a·Woᵀ (+ bo)
  const attention2d = saved.attention.reshape([rows, hq * headDim]); // [N, Hq·D]
  const dAttention = linearBackward(ctx, dOut, attention2d, weight("o_proj"), grads("o_proj"));
  const { dQ, dK, dV } = attentionBackward(
    ctx,
    dAttention.reshape([batch, time, hq, headDim]),
    saved.q,
    saved.k,
    saved.v,
    saved.attention,
    saved.lse,
    inputs.keyMask,
  ); // [B, T, Hq, D], [B, T, Hkv, D] ×2
  releaseAll([dAttention, saved.q, saved.k, saved.attention, saved.lse]);

  // RoPE, then (Qwen3) the per-head norms: back to the projections' gradients.
  const dRoped = ropeQueriesKeysBackward(ctx, { q: dQ, k: dK }, inputs.positions, { theta });
  let dQProjected = dRoped.q.reshape([rows, hq * headDim]); // [N, Hq·D]
  let dKProjected = dRoped.k.reshape([rows, hkv * headDim]); // [N, Hkv·D]
  releaseAll([dQ, dK]);
  if (config.qkNorm) {
    const dQNormed = dQProjected;
    const dKNormed = dKProjected;
    dQProjected = headNormBackward(
      ctx,
      saved.qProjected!,
      p.get("self_attn.q_norm.weight"),
      saved.qRstd!,
      dQNormed,
      g.get("self_attn.q_norm.weight"),
    );
    dKProjected = headNormBackward(
      ctx,
      saved.kProjected!,
      p.get("self_attn.k_norm.weight"),
      saved.kRstd!,
      dKNormed,
      g.get("self_attn.k_norm.weight"),
    );
    releaseAll([dQNormed, dKNormed, saved.qProjected, saved.kProjected, saved.qRstd, saved.kRstd]);
  }

  // q, k, v all read h: their input gradients add up.
  const dV2d = dV.reshape([rows, hkv * headDim]); // [N, Hkv·D]
  const dH = linearBackward(ctx, dQProjected, saved.h, weight("q_proj"), grads("q_proj")); // [N, d]
  linearBackwardAdd(ctx, dKProjected, saved.h, weight("k_proj"), grads("k_proj"), dH);
  linearBackwardAdd(ctx, dV2d, saved.h, weight("v_proj"), grads("v_proj"), dH);
  releaseAll([dQProjected, dKProjected, dV, saved.h, saved.v]);

  // h = RMSNorm(x); the residual path adds dOut.
  const norm = rmsNormBackward(ctx, saved.x, p.get("input_layernorm.weight"), saved.rstd, dH);
  accumulateInto(ctx, g.get("input_layernorm.weight"), norm.dWeight);
  const dX = add(ctx, dOut, norm.dx); // [N, d]
  releaseAll([dH, norm.dx, saved.x, saved.rstd]);
  return dX;
}
