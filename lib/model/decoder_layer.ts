// One decoder layer of Qwen2 / Qwen3 / Llama: the attention block, then the MLP block, each
// adding to the residual stream (lib/model/attention_block.ts, lib/model/mlp_block.ts).
//
//   x: [N, d] → xMid = x + attention(RMSNorm(x))  → out = xMid + mlp(RMSNorm(xMid)): [N, d]
//
// The backward runs the blocks in reverse, adds every parameter gradient into the caller's
// gradient tensors (by HF name) and releases the saved activations.

import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import {
  attentionBlockBackward,
  attentionBlockForward,
  type AttentionSaved,
  type LayerCacheSlot,
  type LayerInputs,
  type LayerTensors,
} from "./attention_block.ts";
import type { ModelConfig } from "./config.ts";
import { type GpuModel, param, weightChunks } from "./gpu_weights.ts";
import { mlpBlockBackward, mlpBlockForward, type MlpSaved } from "./mlp_block.ts";

export type { LayerCacheSlot, LayerInputs, LayerTensors } from "./attention_block.ts";

/** The activations one layer's backward needs. */
export interface LayerSaved {
  attention: AttentionSaved;
  mlp: MlpSaved;
}

/** The prefix of layer ℓ's tensor names. */
export function layerPrefix(layer: number): string {
  return `model.layers.${layer}`;
}

/**
 * Layer ℓ's tensors of `tensors` (the model's parameters, or gradients keyed like them) by
 * name suffix: get("post_attention_layernorm.weight") is the tensor of
 * "model.layers.ℓ.post_attention_layernorm.weight"; weight("mlp.up_proj.weight") gives that
 * matrix's row chunks (see lib/model/gpu_weights.ts).
 */
export function layerTensors(
  model: GpuModel,
  tensors: ReadonlyMap<string, Tensor<"f32">>,
  layer: number,
): LayerTensors {
  const prefix = layerPrefix(layer);
  return {
    get: (suffix) => param(model, `${prefix}.${suffix}`, tensors),
    maybe: (suffix) =>
      model.chunks.has(`${prefix}.${suffix}`)
        ? param(model, `${prefix}.${suffix}`, tensors)
        : undefined,
    weight: (suffix) => weightChunks(model, `${prefix}.${suffix}`, tensors),
  };
}

/**
 * x: [N, d] → out: [N, d]. With `save`, out is a new tensor and the activations for
 * decoderLayerBackward come along, which then owns x too; without, x is consumed (the residual
 * stream is added into in place: out may be x itself). With `cache`, the new keys and values
 * are written into the layer's KV cache and attention reads every cached position.
 */
export function decoderLayerForward(
  ctx: GpuContext,
  config: ModelConfig,
  p: LayerTensors,
  x: Tensor<"f32">,
  inputs: LayerInputs,
  options: { save: boolean; cache?: LayerCacheSlot },
): { out: Tensor<"f32">; saved: LayerSaved | null } {
  const attention = attentionBlockForward(ctx, config, p, x, inputs, options); // xMid: [N, d]
  const mlp = mlpBlockForward(ctx, config, p, attention.out, options); // out: [N, d]
  if (!options.save) return { out: mlp.out, saved: null }; // x and xMid consumed
  return { out: mlp.out, saved: { attention: attention.saved!, mlp: mlp.saved! } };
}

/**
 * dOut: [N, d] = ∂L/∂out → ∂L/∂x: [N, d] (a new tensor; dOut is not released). Parameter
 * gradients are added into `grads` (this layer's gradient tensors). Releases `saved`.
 */
export function decoderLayerBackward(
  ctx: GpuContext,
  config: ModelConfig,
  p: LayerTensors,
  grads: LayerTensors,
  saved: LayerSaved,
  dOut: Tensor<"f32">,
  inputs: LayerInputs,
): Tensor<"f32"> {
  const dMid = mlpBlockBackward(ctx, p, grads, saved.mlp, dOut); // [N, d]
  const dX = attentionBlockBackward(ctx, config, p, grads, saved.attention, dMid, inputs); // [N, d]
  dMid.release();
  return dX;
}
