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
    params: new Params().u32(pairs).u32(heads).u32(headDim / 2).f32(direction),
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
