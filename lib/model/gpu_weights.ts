// The model's parameters on the GPU: f32 tensors by Hugging Face tensor name, loaded from a
// model folder (f32, f16 or bf16 on disk: all widened to f32) or from host arrays, and read
// back to host arrays by name (for checkpoints).
//
// Tied embeddings (tie_word_embeddings): there is no lm_head.weight tensor; the logits use
// model.embed_tokens.weight itself, so both roles share one set of GPU tensors (and one
// gradient).
//
// Row chunks: a shader can bind at most maxStorageBufferBindingSize bytes of one buffer
// (128 MiB on lavapipe; Qwen2.5-0.5B's embedding alone is 545 MB). A parameter bigger than
// that is held as row chunks, as lib/model/layout.ts plans them: rows [rowStart, rowEnd) in a
// tensor of their own, stored in `params` under chunkKey, e.g.
// "model.embed_tokens.weight[0:30388]". Every other parameter is one tensor under its HF
// name. Gradients and AdamW moments are maps with the same keys and shapes, so whatever works
// element by element (zeroing, the AdamW step, the gradient norm, copies, releases) needs no
// notion of chunks; what works by rows (linear layers, the embedding, moving host arrays in and
// out) finds a parameter's chunks in `model.chunks` (weightChunks).

import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { checkTensors, expectedTensors, type ModelConfig } from "./config.ts";
import { UserError } from "./errors.ts";
import { type DeviceLimits, formatBytes, planLayout } from "./layout.ts";
import { ModelWeights } from "./weights.ts";

export const EMBED_TOKENS = "model.embed_tokens.weight";
export const LM_HEAD = "lm_head.weight";

/**
 * Chunks hold a multiple of this many rows (but the last): a matmul over a chunk of the
 * vocabulary then keeps the 4-aligned fast path (see lib/ops/matmul.ts).
 */
const CHUNK_ROW_ALIGN = 4;

/** Rows [rowStart, rowEnd) of a parameter, held in the tensor stored under `key`. */
export interface ParamChunk {
  readonly key: string;
  readonly rowStart: number;
  readonly rowEnd: number;
}

/** Rows [rowStart, rowStart + tensor.shape[0]) of a weight, as one GPU tensor. */
export interface WeightChunk {
  readonly rowStart: number;
  readonly tensor: Tensor<"f32">;
}

/**
 * A weight (or its gradient, or an AdamW moment) as its row chunks, in row order: a single
 * chunk when the tensor fits one storage binding.
 */
export type ChunkedWeight = readonly WeightChunk[];

/** The model's parameters on the GPU. */
export interface GpuModel {
  readonly config: ModelConfig;
  /**
   * Every parameter's row chunks by HF name, in checkpoint order (the names of
   * expectedTensors(config): no lm_head.weight when the embeddings are tied). One chunk, whose
   * key is the name itself, for a tensor that fits one storage binding.
   */
  readonly chunks: ReadonlyMap<string, readonly ParamChunk[]>;
  /**
   * The GPU tensors by chunk key, in the same order. A chunk's shape is the parameter's
   * (expectedTensors) with rowEnd − rowStart rows.
   */
  readonly params: ReadonlyMap<string, Tensor<"f32">>;
}

/** The key of rows [rowStart, rowEnd) of parameter `name` when it is split into chunks. */
export function chunkKey(name: string, rowStart: number, rowEnd: number): string {
  return `${name}[${rowStart}:${rowEnd}]`;
}

/** The name of the [V, d] matrix the logits use: lm_head, or embed_tokens when tied. */
export function lmHeadName(config: ModelConfig): string {
  return config.tieWordEmbeddings ? EMBED_TOKENS : LM_HEAD;
}

function chunksOf(model: GpuModel, name: string): readonly ParamChunk[] {
  const chunks = model.chunks.get(name);
  if (!chunks) throw new Error(`model: no parameter "${name}" (${model.config.architecture})`);
  return chunks;
}

/**
 * A parameter held as one tensor, by name, from `tensors` (the model's params by default, or
 * gradients or moments keyed like them). Throws when there is no such parameter, or when it
 * is split into row chunks (use weightChunks for those).
 */
export function param(
  model: GpuModel,
  name: string,
  tensors: ReadonlyMap<string, Tensor<"f32">> = model.params,
): Tensor<"f32"> {
  const chunks = chunksOf(model, name);
  if (chunks.length !== 1) {
    throw new Error(`model: parameter "${name}" is held in ${chunks.length} row chunks`);
  }
  const t = tensors.get(chunks[0].key);
  if (!t) throw new Error(`model: no tensor for "${name}"`);
  return t;
}

/**
 * A weight as its row chunks (one when it is not split), from `tensors`: the model's params
 * by default, or gradients or moments keyed like them.
 */
export function weightChunks(
  model: GpuModel,
  name: string,
  tensors: ReadonlyMap<string, Tensor<"f32">> = model.params,
): ChunkedWeight {
  return chunksOf(model, name).map(({ key, rowStart }) => {
    const tensor = tensors.get(key);
    if (!tensor) throw new Error(`model: no tensor for "${key}"`);
    return { rowStart, tensor };
  });
}

/** Gives every parameter buffer back to the pool. */
export function releaseGpuModel(model: GpuModel): void {
  for (const t of model.params.values()) t.release();
}

export interface LoadGpuWeightsOptions {
  /**
   * Limits to plan the row chunks against instead of the device's (each one given replaces
   * the device's value). Tests pass a small fake limit to split a tiny model's tensors.
   */
  limits?: Partial<DeviceLimits>;
}

/** Where the weights come from: a model folder (or .safetensors file) or host arrays by name. */
export type WeightSource = ModelWeights | string | ReadonlyMap<string, Float32Array>;

/**
 * The row chunks of every parameter of `config` under `limits` (lib/model/layout.ts). Throws
 * a UserError, before anything is allocated, when a row (or a vector) does not fit one binding.
 */
function planChunks(
  config: ModelConfig,
  limits: DeviceLimits,
  source: string,
): Map<string, ParamChunk[]> {
  const plan = planLayout(expectedTensors(config), limits, { rowAlign: CHUNK_ROW_ALIGN });
  const chunks = new Map<string, ParamChunk[]>();
  for (const layout of plan.tensors.values()) {
    const { name, shape } = layout;
    if (layout.chunks.length > 1 && shape.length < 2) {
      // A norm weight or a bias: never near a binding's size on any real model.
      throw new UserError(
        `${source}: tensor "${name}" [${shape.join(", ")}] takes ${formatBytes(layout.bytes)} ` +
          `(${layout.bytes} bytes), more than this GPU can bind at once ` +
          `(${plan.chunkLimitBytes} bytes), and only matrices are split into row chunks`,
      );
    }
    chunks.set(
      name,
      layout.chunks.map(({ rowStart, rowEnd }) => ({
        key: layout.chunks.length === 1 ? name : chunkKey(name, rowStart, rowEnd),
        rowStart,
        rowEnd,
      })),
    );
  }
  return chunks;
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

/** The shape of a chunk of a parameter of shape `shape`: [rowEnd − rowStart, ...shape[1..]]. */
function chunkShape(shape: readonly number[], chunk: ParamChunk): number[] {
  return [chunk.rowEnd - chunk.rowStart, ...shape.slice(1)];
}

/**
 * Uploads one parameter's values (the whole tensor, row-major, of `shape`) as its row chunks,
 * into `into` by chunk key. For AdamW's moments from a checkpoint, as for the weights.
 */
export function uploadParameter(
  ctx: GpuContext,
  shape: readonly number[],
  chunks: readonly ParamChunk[],
  data: Float32Array,
  into: Map<string, Tensor<"f32">>,
): void {
  const rowElements = shape.slice(1).reduce((a, b) => a * b, 1);
  const values = plainF32(data);
  for (const chunk of chunks) {
    const rows = values.subarray(chunk.rowStart * rowElements, chunk.rowEnd * rowElements);
    into.set(chunk.key, ctx.upload(rows, chunkShape(shape, chunk), "f32"));
  }
}

/**
 * Uploads every parameter of `config` as f32 tensors, each split into row chunks when it is
 * bigger than one storage binding. `source`: a ModelWeights (or the path of a model folder /
 * .safetensors file, opened here) — checked with checkTensors, read one chunk at a time — or
 * a Map of f32 arrays by HF name. An lm_head.weight in the source of a tied model is ignored.
 * Throws a UserError on a missing or misshapen tensor, or on a row too wide for one binding
 * (before allocating anything).
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
  const chunks = planChunks(config, {
    maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize ??
      ctx.limits.maxStorageBufferBindingSize,
    maxBufferSize: limits.maxBufferSize ?? ctx.limits.maxBufferSize,
  }, label);

  const params = new Map<string, Tensor<"f32">>();
  try {
    for (const [name, shape] of expectedTensors(config)) {
      const parts = chunks.get(name)!;
      if (weights instanceof ModelWeights) {
        // Chunk by chunk: a 3 GB embedding never sits in host memory whole.
        const rowElements = shape.slice(1).reduce((a, b) => a * b, 1);
        for (const chunk of parts) {
          const start = chunk.rowStart * rowElements;
          const count = (chunk.rowEnd - chunk.rowStart) * rowElements;
          const data = await weights.readF32(name, { start, count });
          params.set(chunk.key, ctx.upload(data, chunkShape(shape, chunk), "f32"));
        }
      } else {
        uploadParameter(ctx, shape, parts, weights.get(name)!, params);
      }
    }
  } catch (e) {
    for (const t of params.values()) t.release();
    throw e;
  }
  return { config, chunks, params };
}

/** Bytes read back per round trip: bounds the staging buffer of a big model's readback. */
const READBACK_BYTES = 256 * 1024 * 1024;

/**
 * Reads every parameter back (submitting pending work first): HF name → f32 values of the
 * whole tensor (row chunks put back together), in checkpoint order (no lm_head.weight when
 * tied). Batched into a few round trips. Reads AdamW's moments too, given as
 * { ...model, params: moments }.
 */
export async function readGpuWeights(
  ctx: GpuContext,
  model: GpuModel,
): Promise<Map<string, Float32Array<ArrayBuffer>>> {
  // Where each chunk's values go: its parameter's array, at its first element.
  const out = new Map<string, Float32Array<ArrayBuffer>>();
  const targets: { tensor: Tensor<"f32">; into: Float32Array<ArrayBuffer>; offset: number }[] = [];
  for (const [name, shape] of expectedTensors(model.config)) {
    const rowElements = shape.slice(1).reduce((a, b) => a * b, 1);
    const into = new Float32Array(shape.reduce((a, b) => a * b, 1));
    out.set(name, into);
    for (const { key, rowStart, rowEnd } of chunksOf(model, name)) {
      const tensor = model.params.get(key);
      if (tensor?.size !== (rowEnd - rowStart) * rowElements) {
        throw new Error(`readGpuWeights: no tensor of ${rowEnd - rowStart} rows for "${key}"`);
      }
      targets.push({ tensor, into, offset: rowStart * rowElements });
    }
  }
  let i = 0;
  while (i < targets.length) {
    // A group of tensors of at most READBACK_BYTES (at least one tensor).
    const group = [targets[i++]];
    let bytes = group[0].tensor.size * 4;
    while (i < targets.length && bytes + targets[i].tensor.size * 4 <= READBACK_BYTES) {
      bytes += targets[i].tensor.size * 4;
      group.push(targets[i++]);
    }
    const values = await ctx.readMany(group.map((t) => t.tensor));
    group.forEach(({ into, offset }, k) => into.set(values[k] as Float32Array, offset));
  }
  return out;
}
