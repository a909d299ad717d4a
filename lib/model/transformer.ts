// The decoder-only transformer on the GPU (Qwen2ForCausalLM, Qwen3ForCausalLM,
// LlamaForCausalLM): forward, backward to every parameter, and the next-token loss. Hand-
// written like llm.c: the forward keeps exactly the activations the backward needs, and the
// backward adds each parameter's gradient into a tensor the caller owns. lib/ref/transformer.ts
// is the plain reference this must match.
//
// Shapes: B sequences of T tokens, N = B·T rows; d hidden size; V vocabulary.
//
//   x⁰     = embed_tokens[ids]                                [N, d]
//   xˡ⁺¹   = decoder layer ℓ (xˡ), lib/model/decoder_layer.ts  [N, d]
//   logits = RMSNorm(xᴸ; model.norm)·Wlmᵀ                      [N, V]
// Wlm is lm_head.weight, or embed_tokens itself when the embeddings are tied.
//
// A weight bigger than one storage binding is held as row chunks (lib/model/gpu_weights.ts):
// the embedding gathers and scatters chunk by chunk, and each chunk of a projection (the
// lm_head above all) gives a block of its output's columns (lib/model/linear.ts). Activations
// are never split: a forward whose [N, V] logits (or any other activation) would not fit one
// binding is refused up front, with the number of tokens that would fit.
//
// Everything is recorded into the context's current command encoder: nothing here submits or
// reads back. A training step:
//
//   const grads = zeroGrads(ctx, model);                    // once; reused across steps
//   const { logits, activations } = forward(ctx, model, batch, { train: true });
//   const { loss, dLogits } = ntpLossAndGrad(ctx, logits, targets, weights);
//   backward(ctx, model, activations!, dLogits, grads);     // grads += ∂loss/∂params
//   …release logits, dLogits and loss; micro-batches accumulate into the same grads.

import type { GpuContext } from "../gpu/context.ts";
import { shapeString, type Tensor } from "../gpu/tensor.ts";
import { crossEntropyBackward, crossEntropyForward } from "../ops/cross_entropy.ts";
import { scale } from "../ops/elementwise.ts";
import {
  embeddingBackwardRows,
  embeddingRowsInto,
  uploadEmbeddingGradIndex,
} from "../ops/embedding.ts";
import { readTimeSlice } from "../ops/kv_cache.ts";
import { dot } from "../ops/reduce.ts";
import { rmsNorm, rmsNormBackward } from "../ops/norm.ts";
import {
  decoderLayerBackward,
  decoderLayerForward,
  type LayerInputs,
  type LayerSaved,
  layerTensors,
} from "./decoder_layer.ts";
import { UserError } from "./errors.ts";
import { EMBED_TOKENS, type GpuModel, lmHeadName, param, weightChunks } from "./gpu_weights.ts";
import { formatBytes } from "./layout.ts";
import type { KvCache } from "./kv_cache.ts";
import { accumulateInto, linear, linearBackward } from "./linear.ts";
import type { ModelBatch } from "./model_batch.ts";

const FINAL_NORM = "model.norm.weight";

export interface ForwardOptions {
  /** Keep the activations for backward(). */
  train: boolean;
  /**
   * Decode with this KV cache: the batch's T tokens follow the cache's `length` positions;
   * their keys and values are appended, and batch.keyMask is [B, maxLen]. Not with `train`.
   */
  cache?: KvCache;
}

/** The forward activations backward() needs; it releases them. */
export interface Activations {
  readonly batch: number;
  readonly time: number;
  /** [B·T] the ids on the host (the embedding backward groups positions by id). */
  readonly hostIds: Uint32Array;
  /** positions and keyMask: the caller's batch tensors (keep them alive until backward). */
  readonly inputs: LayerInputs;
  readonly layers: LayerSaved[];
  /** [N, d] the residual stream after the last layer */
  readonly xFinal: Tensor<"f32">;
  /** [N] its 1/rms, and [N, d] RMSNorm(xFinal): what the lm_head read */
  readonly rstdFinal: Tensor<"f32">;
  readonly normed: Tensor<"f32">;
  released: boolean;
}

export interface ForwardResult {
  /** [N, V] logits of every row (padding rows hold meaningless values). */
  logits: Tensor<"f32">;
  /** With `train`: what backward() needs. */
  activations: Activations | null;
}

function expectShape(name: string, t: Tensor, shape: readonly number[], dtype: string): void {
  if (
    t.dtype !== dtype || t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])
  ) {
    throw new Error(
      `forward: ${name} is ${t.dtype} ${shapeString(t.shape)}, expected ${dtype} ${
        shapeString(shape)
      }`,
    );
  }
}

/** [B, T] of the batch's ids. */
function idsShape(batch: ModelBatch): [number, number] {
  const shape = batch.ids.shape;
  if (shape.length !== 2) throw new Error(`forward: ids must be [B, T], got ${shapeString(shape)}`);
  return [shape[0], shape[1]];
}

/** Host ids must be token ids < vocab (the GPU gather cannot fail, it would clamp). */
function checkHostIds(ids: Uint32Array, vocab: number, count: number): void {
  if (ids.length !== count) {
    throw new Error(`forward: ${ids.length} host ids for a [B, T] batch of ${count} tokens`);
  }
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] >= vocab) {
      throw new Error(`forward: id ${ids[i]} at row ${i} is not < vocab ${vocab}`);
    }
  }
}

/**
 * Throws a UserError when an activation of a forward over `batch` × `time` tokens would not fit
 * one storage binding: the widest is checked (the logits, on any real model).
 */
function checkActivationSizes(ctx: GpuContext, model: GpuModel, batch: number, time: number) {
  const { config } = model;
  const rows = batch * time;
  const widths: [string, number][] = [
    ["logits", config.vocabSize],
    ["MLP activations", config.intermediateSize],
    ["attention queries", config.numHeads * config.headDim],
    ["hidden states", config.hiddenSize],
  ];
  const [what, width] = widths.reduce((a, b) => (b[1] > a[1] ? b : a));
  const { maxStorageBufferBindingSize: binding, maxBufferSize: buffer } = ctx.limits;
  const limit = Math.min(binding, buffer);
  const bytes = rows * width * 4;
  if (bytes <= limit) return;
  const limitName = binding <= buffer ? "maxStorageBufferBindingSize" : "maxBufferSize";
  throw new UserError(
    `forward: the ${what} of ${batch} × ${time} tokens (batch × sequence length), ` +
      `[${rows}, ${width}], take ` +
      `${formatBytes(bytes)} (${bytes} bytes) as f32, more than this GPU can bind at once ` +
      `(${limitName} = ${limit} bytes): lower the batch size × sequence length to at most ` +
      `${Math.floor(limit / (width * 4))} tokens per forward`,
  );
}

/** The embedding of ids [B, T]: [B, T, d], gathered from each row chunk of the table. */
function embed(ctx: GpuContext, model: GpuModel, ids: Tensor<"u32">): Tensor<"f32"> {
  const { hiddenSize: d, vocabSize: vocab } = model.config;
  const table = weightChunks(model, EMBED_TOKENS);
  const out = ctx.empty([...ids.shape, d], "f32");
  for (const { rowStart, tensor } of table) {
    embeddingRowsInto(ctx, ids, tensor, rowStart, vocab, out);
  }
  return out;
}

/**
 * The model on a batch: ids, positions, keyMask [B, T] → logits [N, V], N = B·T. With `train`,
 * also the activations for backward() (which needs the host ids: give host ids, or
 * batch.hostIds with a GPU ids tensor). With `cache`, decodes: see ForwardOptions.
 * The batch's tensors are not released (and must outlive the backward).
 */
export function forward(
  ctx: GpuContext,
  model: GpuModel,
  batch: ModelBatch,
  { train, cache }: ForwardOptions,
): ForwardResult {
  const { config } = model;
  const { hiddenSize: d, vocabSize: vocab } = config;
  const [b, t] = idsShape(batch);
  const rows = b * t;
  if (train && cache) throw new Error("forward: training does not use a KV cache");
  expectShape("positions", batch.positions, [b, t], "i32");
  checkActivationSizes(ctx, model, b, t);

  // The ids: uploaded here when given on the host.
  const given = batch.ids;
  const hostIds = "data" in given ? given.data : batch.hostIds;
  if (hostIds) checkHostIds(hostIds, vocab, rows);
  if (train && !hostIds) {
    throw new Error("forward: training needs the ids on the host (batch.hostIds or host ids)");
  }
  const ids = "data" in given ? ctx.upload(given.data, [b, t], "u32") : given;
  expectShape("ids", ids, [b, t], "u32");

  // The keys attention sees: the batch's, or with a cache every position up to the new ones.
  let keyMask = batch.keyMask;
  const start = cache?.length ?? 0;
  if (cache) {
    if (cache.batch !== b || start + t > cache.maxLen) {
      throw new Error(
        `forward: ${t} new tokens × ${b} sequences do not fit the KV cache ` +
          `(batch ${cache.batch}, ${start} of ${cache.maxLen} positions filled)`,
      );
    }
    expectShape("keyMask", batch.keyMask, [b, cache.maxLen], "u32");
    keyMask = readTimeSlice(ctx, batch.keyMask, 0, start + t); // [B, start + T]
  } else {
    expectShape("keyMask", batch.keyMask, [b, t], "u32");
  }
  const inputs: LayerInputs = { batch: b, time: t, positions: batch.positions, keyMask };

  let x = embed(ctx, model, ids).reshape([rows, d]); // [N, d]
  if (ids !== given) ids.release();
  const layers: LayerSaved[] = [];
  for (let layer = 0; layer < config.numLayers; layer++) {
    const p = layerTensors(model, model.params, layer);
    const slot = cache ? { cache: cache.layers[layer], start } : undefined;
    const { out, saved } = decoderLayerForward(ctx, config, p, x, inputs, {
      save: train,
      cache: slot,
    });
    if (saved) layers.push(saved); // it owns x now (without save the layer consumed x)
    x = out;
  }

  const finalNorm = param(model, FINAL_NORM);
  const { y: normed, rstd: rstdFinal } = rmsNorm(ctx, x, finalNorm, config.rmsNormEps); // [N, d]
  const logits = linear(ctx, normed, weightChunks(model, lmHeadName(config))); // [N, V]
  if (cache) {
    keyMask.release();
    cache.length = start + t;
  }
  if (!train) {
    for (const tensor of [x, normed, rstdFinal]) tensor.release();
    return { logits, activations: null };
  }
  return {
    logits,
    activations: {
      batch: b,
      time: t,
      hostIds: hostIds!,
      inputs,
      layers,
      xFinal: x,
      rstdFinal,
      normed,
      released: false,
    },
  };
}

/**
 * A zero gradient tensor for every parameter tensor, keyed like model.params (a parameter
 * held as row chunks gets a gradient in the same chunks; tied: embed_tokens takes lm_head's).
 */
export function zeroGrads(ctx: GpuContext, model: GpuModel): Map<string, Tensor<"f32">> {
  const grads = new Map<string, Tensor<"f32">>();
  for (const [key, t] of model.params) grads.set(key, ctx.zeros(t.shape, "f32"));
  return grads;
}

/** Gives every gradient buffer back to the pool. */
export function releaseGrads(grads: ReadonlyMap<string, Tensor<"f32">>): void {
  for (const t of grads.values()) t.release();
}

/**
 * Adds ∂L/∂θ into the gradient of every parameter θ, given dLogits = ∂L/∂logits: [N, V]
 * (dLogits is not released). `grads` as made by zeroGrads (keyed like model.params):
 * accumulating over micro-batches is calling this once per micro-batch. Releases the
 * activations.
 */
export function backward(
  ctx: GpuContext,
  model: GpuModel,
  activations: Activations,
  dLogits: Tensor<"f32">,
  grads: ReadonlyMap<string, Tensor<"f32">>,
): void {
  const { config } = model;
  const rows = activations.batch * activations.time;
  if (activations.released) throw new Error("backward: these activations were already used");
  if (
    dLogits.shape.length !== 2 || dLogits.shape[0] !== rows || dLogits.shape[1] !== config.vocabSize
  ) {
    throw new Error(
      `backward: dLogits is ${shapeString(dLogits.shape)}, expected [${rows}, ${config.vocabSize}]`,
    );
  }
  for (const key of model.params.keys()) {
    if (!grads.has(key)) {
      throw new Error(`backward: no gradient tensor for "${key}" (use zeroGrads)`);
    }
  }
  activations.released = true;

  // logits = normed·Wlmᵀ (tied: Wlm is embed_tokens, and so is its gradient).
  const lmHead = lmHeadName(config);
  const dNormed = linearBackward(
    ctx,
    dLogits,
    activations.normed,
    weightChunks(model, lmHead),
    { weight: weightChunks(model, lmHead, grads) },
  ); // [N, d]
  const finalNorm = rmsNormBackward(
    ctx,
    activations.xFinal,
    param(model, FINAL_NORM),
    activations.rstdFinal,
    dNormed,
  );
  accumulateInto(ctx, param(model, FINAL_NORM, grads), finalNorm.dWeight);
  for (const t of [dNormed, activations.normed, activations.rstdFinal, activations.xFinal]) {
    t.release();
  }

  let dX = finalNorm.dx; // [N, d]
  for (let layer = config.numLayers - 1; layer >= 0; layer--) {
    const dIn = decoderLayerBackward(
      ctx,
      config,
      layerTensors(model, model.params, layer),
      layerTensors(model, grads, layer),
      activations.layers[layer],
      dX,
      activations.inputs,
    );
    dX.release();
    dX = dIn;
  }

  // x⁰ = embed_tokens[ids]: each id's rows of dX summed in a fixed order (host-built index),
  // into the gradient chunk that holds the id's row.
  const index = uploadEmbeddingGradIndex(ctx, activations.hostIds, config.vocabSize);
  for (const { rowStart, tensor } of weightChunks(model, EMBED_TOKENS, grads)) {
    embeddingBackwardRows(ctx, dX, index, tensor, rowStart);
  }
  // Releasing right after recording is safe: ctx.upload places the index data in recording
  // order (a copy recorded into this encoder), so a later upload into a reused buffer lands
  // after this dispatch has run.
  index.release();
  dX.release();
}

export interface NtpLoss {
  /** [1]: Σ_r w_r·(−log softmax(logits_r)[target_r]) */
  loss: Tensor<"f32">;
  /** [N, V]: ∂loss/∂logits */
  dLogits: Tensor<"f32">;
}

/**
 * Next-token loss and its gradient. logits: [N, V], targets: [N] u32 (< V), weights: [N] f32 →
 * loss = Σ_r w_r·(−log p_r(target_r)) and dLogits = ∂loss/∂logits.
 *
 * No normalisation happens here: the caller passes weights already normalised, e.g. 1/count
 * on the rows that have a next token and 0 on padding and last tokens for the mean NTP loss
 * (nextTokenTargets in lib/model/model_batch.ts), or 1/(count of all micro-batches) when
 * accumulating. `inPlace` overwrites logits with dLogits (saves a [N, V] buffer).
 */
export function ntpLossAndGrad(
  ctx: GpuContext,
  logits: Tensor<"f32">,
  targets: Tensor<"u32">,
  weights: Tensor<"f32">,
  { inPlace = false }: { inPlace?: boolean } = {},
): NtpLoss {
  const rows = logits.shape[0];
  if (logits.shape.length !== 2 || weights.dtype !== "f32" || weights.size !== rows) {
    throw new Error(
      `ntpLossAndGrad: logits ${shapeString(logits.shape)} must be [N, V] and weights ` +
        `${weights.dtype} ${shapeString(weights.shape)} f32 [N]`,
    );
  }
  const { logprob, lse } = crossEntropyForward(ctx, logits, targets, { entropy: false }); // [N] ×2
  const dLogprob = scale(ctx, weights.reshape([rows]), -1); // [N]: ∂loss/∂logprob = −w
  // loss = Σ_r (−w_r)·logprob_r (a fixed summation tree). (As a [1, N]·[N, 1] matmul it took
  // ~10 ms on lavapipe: one workgroup of the tiled kernel.)
  const loss = dot(ctx, dLogprob, logprob); // [1]
  const dLogits = crossEntropyBackward(ctx, logits, targets, lse, dLogprob, { inPlace }); // [N, V]
  for (const t of [logprob, lse, dLogprob]) t.release();
  return { loss, dLogits };
}
