// Rotary position embedding (Hugging Face "rotate half" layout, as in Llama and Qwen), forward
// and backward. See kernels/rope.wgsl for the math and the precision notes.

import type { GpuContext } from "../gpu/context.ts";
import { Params } from "../gpu/params.ts";
import { shapeString, type Tensor } from "../gpu/tensor.ts";
import source from "../../kernels/rope.wgsl" with { type: "text" };

const WORKGROUP_SIZE = 256;
const kernel = { name: "rope", source, entry: "rope" };

export interface RopeOptions {
  /** Base of the frequencies: 1e4 (Llama 2, GPT-NeoX), 1e6 (Qwen2.5/Qwen3), … */
  theta: number;
}

/**
 * inv_freq_i = 1 / theta^(2i/D) for i < D/2, rounded to f32 at each step exactly as
 * Hugging Face computes it (`1.0 / (base ** (torch.arange(0, D, 2).float() / D))`, all f32).
 */
export function ropeInverseFrequencies(headDim: number, theta: number): Float32Array<ArrayBuffer> {
  const half = headDim / 2;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const exponent = Math.fround((2 * i) / headDim);
    out[i] = Math.fround(1 / Math.fround(theta ** exponent));
  }
  return out;
}

// The [D/2] inv_freq tables, uploaded once per context, head dim and theta, and kept for the
// life of the context (a few hundred bytes each). Uploading per call and releasing would be
// unsafe: a later upload could reuse the buffer before this call's dispatch runs.
const tables = new WeakMap<GpuContext, Map<string, Tensor<"f32">>>();

function inverseFrequencyTable(ctx: GpuContext, headDim: number, theta: number): Tensor<"f32"> {
  let byKey = tables.get(ctx);
  if (!byKey) tables.set(ctx, byKey = new Map());
  const key = `${headDim}:${theta}`;
  let table = byKey.get(key);
  if (!table) {
    table = ctx.f32(ropeInverseFrequencies(headDim, theta), [headDim / 2]);
    byKey.set(key, table);
  }
  return table;
}

function checkShapes(op: string, x: Tensor, positions: Tensor, theta: number): void {
  const [batch, time, heads, headDim] = x.shape;
  if (x.shape.length !== 4 || headDim % 2 !== 0 || headDim === 0 || heads === 0) {
    throw new Error(
      `${op}: x must be [B, T, H, D] with H > 0 and D even and > 0, got ${shapeString(x.shape)}`,
    );
  }
  if (positions.shape.length !== 2 || positions.shape[0] !== batch || positions.shape[1] !== time) {
    throw new Error(
      `${op}: positions has shape ${shapeString(positions.shape)}, expected [${batch}, ${time}] ` +
        `for x ${shapeString(x.shape)}`,
    );
  }
  if (!(theta > 0) || !Number.isFinite(theta)) throw new Error(`${op}: theta ${theta} is not > 0`);
}

function rotate(
  ctx: GpuContext,
  x: Tensor<"f32">,
  positions: Tensor<"i32">,
  theta: number,
  direction: 1 | -1,
): Tensor<"f32"> {
  const [, , heads, headDim] = x.shape;
  const pairs = x.size / 2;
  const out = ctx.empty(x.shape, "f32");
  ctx.dispatch(kernel, {
    params: new Params().u32(pairs).u32(heads).u32(headDim / 2).f32(direction).u32(0).u32(1),
    tensors: [x, positions, inverseFrequencyTable(ctx, headDim, theta), out],
    workgroups: ctx.groupsFor(pairs, WORKGROUP_SIZE),
  });
  return out;
}

/** RoPE. x: [B, T, H, D] (D even), positions: [B, T] i32 → [B, T, H, D]. */
export function rope(
  ctx: GpuContext,
  x: Tensor<"f32">,
  positions: Tensor<"i32">,
  { theta }: RopeOptions,
): Tensor<"f32"> {
  checkShapes("rope", x, positions, theta);
  return rotate(ctx, x, positions, theta, 1);
}

/**
 * RoPE backward: dx = rotation of dOut by −angle. dOut: [B, T, H, D], positions: [B, T] i32
 * → dx: [B, T, H, D].
 */
export function ropeBackward(
  ctx: GpuContext,
  dOut: Tensor<"f32">,
  positions: Tensor<"i32">,
  { theta }: RopeOptions,
): Tensor<"f32"> {
  checkShapes("ropeBackward", dOut, positions, theta);
  return rotate(ctx, dOut, positions, theta, -1);
}

/** A layer's queries and keys, and their projection biases if the layer has them. */
export interface QueriesKeys {
  /** [B, T, Hq, D] */
  q: Tensor<"f32">;
  /** [B, T, Hkv, D] */
  k: Tensor<"f32">;
}

function checkPair(op: string, q: Tensor, k: Tensor, biases?: { q: Tensor; k: Tensor }): void {
  const [batch, time, , headDim] = q.shape;
  if (
    k.shape.length !== 4 || k.shape[0] !== batch || k.shape[1] !== time || k.shape[3] !== headDim
  ) {
    throw new Error(
      `${op}: q ${shapeString(q.shape)} and k ${shapeString(k.shape)} must be [B, T, H, D] ` +
        `with the same B, T and D`,
    );
  }
  if (
    biases && (biases.q.size !== q.shape[2] * headDim || biases.k.size !== k.shape[2] * headDim)
  ) {
    throw new Error(
      `${op}: biases ${shapeString(biases.q.shape)} and ${shapeString(biases.k.shape)} must ` +
        `hold H·D values for q ${shapeString(q.shape)} and k ${shapeString(k.shape)}`,
    );
  }
}

function rotatePair(
  ctx: GpuContext,
  { q, k }: QueriesKeys,
  positions: Tensor<"i32">,
  theta: number,
  direction: 1 | -1,
  biases?: { q: Tensor<"f32">; k: Tensor<"f32"> },
): QueriesKeys {
  const headDim = q.shape[3];
  const qPairs = q.size / 2;
  const kPairs = k.size / 2;
  const qOut = ctx.empty(q.shape, "f32");
  const kOut = ctx.empty(k.shape, "f32");
  const params = new Params().u32(qPairs).u32(q.shape[2]).u32(headDim / 2).f32(direction)
    .u32(kPairs).u32(k.shape[2]);
  ctx.dispatch(
    { name: "rope", source, entry: "rope_qk", constants: { HAS_BIAS: Number(Boolean(biases)) } },
    {
      params,
      // Without biases q and k stand in for the bias buffers (read, then dropped: rotated_plus_bias).
      tensors: [
        q,
        positions,
        inverseFrequencyTable(ctx, headDim, theta),
        qOut,
        k,
        kOut,
        biases?.q ?? q,
        biases?.k ?? k,
      ],
      workgroups: ctx.groupsFor(qPairs + kPairs, WORKGROUP_SIZE),
    },
  );
  return { q: qOut, k: kOut };
}

/**
 * RoPE of a layer's queries and keys in one dispatch, each after adding its projection bias
 * when given: q: [B, T, Hq, D], k: [B, T, Hkv, D], positions: [B, T] i32, biases [Hq·D] and
 * [Hkv·D] → { q: rope(q + bq), k: rope(k + bk) }: the bits of bias adds then two ropes, in one
 * dispatch instead of up to four.
 */
export function ropeQueriesKeys(
  ctx: GpuContext,
  qk: QueriesKeys,
  positions: Tensor<"i32">,
  { theta }: RopeOptions,
  biases?: { q: Tensor<"f32">; k: Tensor<"f32"> },
): QueriesKeys {
  checkShapes("ropeQueriesKeys", qk.q, positions, theta);
  checkShapes("ropeQueriesKeys", qk.k, positions, theta);
  checkPair("ropeQueriesKeys", qk.q, qk.k, biases);
  return rotatePair(ctx, qk, positions, theta, 1, biases);
}

/** The backward of ropeQueriesKeys for q and k (the biases' gradients are those of its input). */
export function ropeQueriesKeysBackward(
  ctx: GpuContext,
  dOut: QueriesKeys,
  positions: Tensor<"i32">,
  { theta }: RopeOptions,
): QueriesKeys {
  checkShapes("ropeQueriesKeysBackward", dOut.q, positions, theta);
  checkShapes("ropeQueriesKeysBackward", dOut.k, positions, theta);
  checkPair("ropeQueriesKeysBackward", dOut.q, dOut.k);
  return rotatePair(ctx, dOut, positions, theta, -1);
}
