// The model's parameters on the GPU: one f32 tensor per Hugging Face tensor name, loaded from a
// model folder (f32, f16 or bf16 on disk: all widened to f32) or from host arrays, and read
// back to host arrays (for checkpoints).
//
// Tied embeddings (tie_word_embeddings): there is no lm_head.weight tensor; the logits use
// model.embed_tokens.weight itself, so both roles share one GPU tensor (and one gradient).
//
// Every tensor must fit one storage binding (maxStorageBufferBindingSize). Cutting bigger ones
// into row chunks is planned (lib/model/layout.ts) but not executed yet: such a model is
// refused up front, before anything is allocated, with the tensor's name and size.

import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { checkTensors, expectedTensors, type ModelConfig } from "./config.ts";
import { UserError } from "./errors.ts";
import { type DeviceLimits, formatBytes, planLayout } from "./layout.ts";
import { ModelWeights } from "./weights.ts";

export const EMBED_TOKENS = "model.embed_tokens.weight";
export const LM_HEAD = "lm_head.weight";

/** The model's parameters on the GPU. */
export interface GpuModel {
  readonly config: ModelConfig;
  /**
   * Every parameter by HF name, in checkpoint order (the names of expectedTensors(config):
   * no lm_head.weight when the embeddings are tied). Shapes as in expectedTensors.
   */
  readonly params: ReadonlyMap<string, Tensor<"f32">>;
}

/** The name of the [V, d] matrix the logits use: lm_head, or embed_tokens when tied. */
export function lmHeadName(config: ModelConfig): string {
  return config.tieWordEmbeddings ? EMBED_TOKENS : LM_HEAD;
}

/** A parameter by name; throws when the model has no such tensor. */
export function param(model: GpuModel, name: string): Tensor<"f32"> {
  const t = model.params.get(name);
  if (!t) throw new Error(`model: no parameter "${name}" (${model.config.architecture})`);
  return t;
}

/** Gives every parameter buffer back to the pool. */
export function releaseGpuModel(model: GpuModel): void {
  for (const t of model.params.values()) t.release();
}

export interface LoadGpuWeightsOptions {
  /**
   * Limits to check the tensors against instead of the device's (each one given replaces the
   * device's value). Tests pass a small fake limit to exercise the refusal without allocating
   * huge tensors.
   */
  limits?: Partial<DeviceLimits>;
}

/** Where the weights come from: a model folder (or .safetensors file) or host arrays by name. */
export type WeightSource = ModelWeights | string | ReadonlyMap<string, Float32Array>;

/**
 * Throws a UserError naming the first tensor too big for one binding: chunked tensors are
 * planned but not supported yet.
 */
function checkBindingLimits(config: ModelConfig, limits: DeviceLimits, source: string): void {
  const plan = planLayout(expectedTensors(config), limits);
  const limitName = limits.maxStorageBufferBindingSize <= limits.maxBufferSize
    ? "maxStorageBufferBindingSize"
    : "maxBufferSize";
  for (const layout of plan.tensors.values()) {
    if (layout.chunks.length === 1) continue;
    throw new UserError(
      `${source}: tensor "${layout.name}" [${layout.shape.join(", ")}] takes ` +
        `${formatBytes(layout.bytes)} (${layout.bytes} bytes) as f32, more than this GPU can ` +
        `bind at once (${limitName} = ${plan.chunkLimitBytes} bytes): splitting big tensors ` +
        `into row chunks is planned (lib/model/layout.ts) but not implemented yet`,
    );
  }
}

/** Host arrays by name, checked against the config (element counts: the Map has no shapes). */
function checkHostTensors(
  config: ModelConfig,
  tensors: ReadonlyMap<string, Float32Array>,
): void {
  for (const [name, shape] of expectedTensors(config)) {
    const data = tensors.get(name);
    const count = shape.reduce((a, b) => a * b, 1);
    if (!data) throw new UserError(`weights: tensor "${name}" [${shape.join(", ")}] is missing`);
    if (data.length !== count) {
      throw new UserError(
        `weights: tensor "${name}" has ${data.length} values, [${shape.join(", ")}] needs ${count}`,
      );
    }
  }
}

/** A Float32Array backed by a plain ArrayBuffer (what an upload takes), copied only if needed. */
function plainF32(data: Float32Array): Float32Array<ArrayBuffer> {
  return data.buffer instanceof ArrayBuffer
    ? data as Float32Array<ArrayBuffer>
    : new Float32Array(data);
}

/**
 * Uploads every parameter of `config` as an f32 tensor. `source`: a ModelWeights (or the path
 * of a model folder / .safetensors file, opened here) — checked with checkTensors, read one
 * tensor at a time — or a Map of f32 arrays by HF name. An lm_head.weight in the source of a
 * tied model is ignored. Throws a UserError on a missing or misshapen tensor, or on one
 * bigger than a storage binding (before allocating anything).
 */
export async function loadGpuWeights(
  ctx: GpuContext,
  config: ModelConfig,
  source: WeightSource,
  { limits = {} }: LoadGpuWeightsOptions = {},
): Promise<GpuModel> {
  const weights = typeof source === "string" ? await ModelWeights.open(source) : source;
  const label = weights instanceof ModelWeights ? weights.source : "weights";
  if (weights instanceof ModelWeights) checkTensors(config, weights.tensors, label);
  else checkHostTensors(config, weights);
  checkBindingLimits(config, {
    maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize ??
      ctx.limits.maxStorageBufferBindingSize,
    maxBufferSize: limits.maxBufferSize ?? ctx.limits.maxBufferSize,
  }, label);

  const params = new Map<string, Tensor<"f32">>();
  try {
    for (const [name, shape] of expectedTensors(config)) {
      const data = weights instanceof ModelWeights
        ? await weights.readF32(name)
        : plainF32(weights.get(name)!);
      params.set(name, ctx.upload(data, shape, "f32"));
    }
  } catch (e) {
    for (const t of params.values()) t.release();
    throw e;
  }
  return { config, params };
}

/** Bytes read back per round trip: bounds the staging buffer of a big model's readback. */
const READBACK_BYTES = 256 * 1024 * 1024;

/**
 * Reads every parameter back (submitting pending work first): HF name → f32 values, in
 * checkpoint order (no lm_head.weight when tied). Batched into a few round trips.
 */
export async function readGpuWeights(
  ctx: GpuContext,
  model: GpuModel,
): Promise<Map<string, Float32Array<ArrayBuffer>>> {
  const out = new Map<string, Float32Array<ArrayBuffer>>();
  const entries = [...model.params];
  let i = 0;
  while (i < entries.length) {
    // A group of tensors of at most READBACK_BYTES (at least one tensor).
    const group = [entries[i++]];
    let bytes = group[0][1].size * 4;
    while (i < entries.length && bytes + entries[i][1].size * 4 <= READBACK_BYTES) {
      bytes += entries[i][1].size * 4;
      group.push(entries[i++]);
    }
    const values = await ctx.readMany(group.map(([, t]) => t));
    group.forEach(([name], k) => out.set(name, values[k] as Float32Array<ArrayBuffer>));
  }
  return out;
}
