// Broadcast row bias of a linear layer (y = x·Wᵀ + b, HF's nn.Linear) and its gradient, the
// column sum of dy (kernels/bias.wgsl). Deterministic: fixed chunking, no atomics.
//
//   x, dy: [rows, cols]    bias, dBias: [cols]

import type { GpuContext } from "../gpu/context.ts";
import { Params } from "../gpu/params.ts";
import { shapeString, type Tensor } from "../gpu/tensor.ts";
import source from "../../kernels/bias.wgsl" with { type: "text" };

const WORKGROUP_SIZE = 256;
/** Columns per workgroup in the column-sum passes. */
const COLUMN_WORKGROUP_SIZE = 64;

const kernel = (entry: string) => ({
  name: "bias",
  source,
  entry,
  constants: { WORKGROUP_SIZE, COLUMN_WORKGROUP_SIZE },
});

/**
 * Rows per chunk of the column sum: at least 64, and at most 1024 chunks. Depends only on
 * `rows`, so the summation order (and the result bits) is a function of the shape.
 */
export function biasChunkRows(rows: number): number {
  return Math.max(64, Math.ceil(rows / 1024));
}

function matrixShape(op: string, x: Tensor): [rows: number, cols: number] {
  if (x.shape.length !== 2 || x.dtype !== "f32") {
    throw new Error(`${op}: expected f32 [rows, cols], got ${x.dtype} ${shapeString(x.shape)}`);
  }
  return [x.shape[0], x.shape[1]];
}

function expectVector(op: string, name: string, t: Tensor, cols: number, of: Tensor): void {
  if (t.shape.length !== 1 || t.shape[0] !== cols || t.dtype !== "f32") {
    throw new Error(
      `${op}: ${name} is ${t.dtype} ${shapeString(t.shape)}, expected f32 [${cols}] for ` +
        shapeString(of.shape),
    );
  }
}

/** x: [rows, cols], bias: [cols] → x[r, c] += bias[c], in place (x is the matmul's output). */
export function addBiasInPlace(ctx: GpuContext, x: Tensor<"f32">, bias: Tensor<"f32">): void {
  const [rows, cols] = matrixShape("addBiasInPlace", x);
  expectVector("addBiasInPlace", "bias", bias, cols, x);
  // Four columns per thread as vec4 when the width allows (same bits, faster on lavapipe).
  const perThread = cols % 4 === 0 ? 4 : 1;
  ctx.dispatch(kernel(perThread === 4 ? "bias_add4" : "bias_add"), {
    params: new Params().u32(rows).u32(cols).u32(0).u32(0).u32(0),
    tensors: [x, bias],
    workgroups: ctx.groupsFor((rows * cols) / perThread, WORKGROUP_SIZE),
  });
}

export interface BiasBackwardOptions {
  /** dBias += Σ_r dy (gradient accumulation) instead of dBias = Σ_r dy. */
  accumulate?: boolean;
}

/**
 * The bias gradient: dy: [rows, cols] → dBias[c] (+)= Σ_r dy[r, c], summed over row chunks in
 * order, then over the chunks in order. dBias: [cols] is written in place.
 */
export function biasBackwardInto(
  ctx: GpuContext,
  dy: Tensor<"f32">,
  dBias: Tensor<"f32">,
  { accumulate = false }: BiasBackwardOptions = {},
): void {
  const [rows, cols] = matrixShape("biasBackwardInto", dy);
  expectVector("biasBackwardInto", "dBias", dBias, cols, dy);
  if (cols === 0) return;
  const chunkRows = biasChunkRows(rows);
  const chunks = Math.ceil(rows / chunkRows); // 0 when rows = 0: the finish pass writes 0
  const params = new Params().u32(rows).u32(cols).u32(chunkRows).u32(chunks)
    .u32(accumulate ? 1 : 0);
  const partial = ctx.empty([Math.max(1, chunks), cols], "f32");
  ctx.dispatch(kernel("bias_grad_partial"), {
    params,
    tensors: [dy, partial],
    workgroups: [Math.ceil(cols / COLUMN_WORKGROUP_SIZE), chunks, 1],
  });
  ctx.dispatch(kernel("bias_grad_finish"), {
    params,
    tensors: [partial, dBias],
    workgroups: [Math.ceil(cols / COLUMN_WORKGROUP_SIZE), 1, 1],
  });
  partial.release();
}

/** The bias gradient as a new tensor: dy: [rows, cols] → dBias: [cols] = Σ_r dy[r, :]. */
export function biasBackward(ctx: GpuContext, dy: Tensor<"f32">): Tensor<"f32"> {
  const [, cols] = matrixShape("biasBackward", dy);
  const dBias = ctx.empty([cols], "f32");
  biasBackwardInto(ctx, dy, dBias);
  return dBias;
}
