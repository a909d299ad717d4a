// Row normalisations, forward and backward: RMSNorm (Llama, Qwen) and LayerNorm (GPT-2).
// Every row of x: [rows, dim] is normalised on its own. Qwen3's per-head q/k norm is the same
// RMSNorm op on q viewed as [B·T·H, headDim] with weight [headDim].
//
// The forward passes return the per-row statistics the backward passes need. Parameter
// gradients (dWeight, dBias) are column sums over rows, computed deterministically (fixed-order
// partial sums over row chunks, then a fixed-order sum of the chunks; see kernels/norm.wgsl).

import type { GpuContext } from "../gpu/context.ts";
import { loopBudget, LoopLimitError } from "../gpu/loop_limit.ts";
import { Params } from "../gpu/params.ts";
import { shapeString, type Tensor } from "../gpu/tensor.ts";
import source from "../../kernels/norm.wgsl" with { type: "text" };

/** Columns per workgroup in the column-sum (parameter gradient) passes. */
const COLUMN_WORKGROUP_SIZE = 64;

/**
 * Threads per row on a software adapter: one SIMD group of lavapipe (8 lanes). There every
 * barrier of a bigger workgroup is a switch between its SIMD groups, and the tree's barriers
 * dominated: at 128 threads per 384-wide row the norms took ~4× as long.
 */
const SOFTWARE_ROW_WORKGROUP = 8;

/**
 * Threads per row: a power of two in [32, 256], about a quarter of the row, so short rows
 * (head-dim q/k norms) do not leave most of a 256-thread workgroup idle; on a software
 * adapter SOFTWARE_ROW_WORKGROUP. (It sets the order of the row sums: results differ in the
 * last bits between the two.)
 */
export function rowWorkgroupSize(dim: number, software = false): number {
  if (software) return SOFTWARE_ROW_WORKGROUP;
  let size = 32;
  while (size < 256 && size * 4 < dim) size *= 2;
  return size;
}

/**
 * Rows per chunk in the parameter-gradient passes: at least 64, and at most 1024 chunks.
 * Depends only on `rows`, so the summation order (and the result bits) is a function of the shape.
 */
export function chunkRowsFor(rows: number): number {
  return Math.max(64, Math.ceil(rows / 1024));
}

function rowKernel(ctx: GpuContext, entry: string, dim: number) {
  return {
    name: "norm",
    source,
    entry,
    constants: { WORKGROUP_SIZE: rowWorkgroupSize(dim, ctx.adapter.kernels === "software") },
  };
}

/**
 * RMSNorm's rows: "workgroup" (a workgroup per row, a tree over its threads), "rows" (a thread
 * per row, vec4 loads; dim a multiple of 4), "auto": rows for the software kernels, where it
 * was measured 2–3.5× faster on lavapipe (ms per forward call, workgroup → rows: [64, 384]
 * 0.16 → 0.09, [64, 64] 0.076 → 0.022, [1024, 384] 1.58 → 0.59, [1024, 64] 0.45 → 0.15), the
 * workgroup kernel on GPUs. The two sum a row in different orders (other last bits).
 */
export type NormVariant = "auto" | "workgroup" | "rows";

export interface NormOptions {
  variant?: NormVariant;
}

/** Threads per workgroup of the rows kernels (one SIMD group of lavapipe). */
const ROWS_WORKGROUP = 8;

function useRows(ctx: GpuContext, op: string, dim: number, asked: NormVariant): boolean {
  // Each thread loops twice over its row's dim / 4 chunks (lib/gpu/loop_limit.ts).
  const loops = 2 * Math.ceil(dim / 4);
  if (asked === "rows") {
    if (dim % 4 !== 0) {
      throw new Error(`${op}: the rows variant needs a dim that is a multiple of 4, not ${dim}`);
    }
    if (loops > loopBudget(ctx)) {
      throw new LoopLimitError(op, `a row of ${dim}`, loops, 'use variant "workgroup"');
    }
    return true;
  }
  return asked === "auto" && ctx.adapter.kernels === "software" && dim % 4 === 0 &&
    loops <= loopBudget(ctx);
}

/**
 * One pass over the rows of an RMSNorm kernel `entry`: its rows variant (`entry`_rows,
 * ROWS_WORKGROUP rows a workgroup) or the workgroup kernel (a workgroup a row).
 */
function rowPass(
  ctx: GpuContext,
  entry: string,
  byRows: boolean,
  rows: number,
  dim: number,
  args: { params: Params; tensors: Tensor[] },
): void {
  if (byRows) {
    ctx.dispatch(
      { name: "norm", source, entry: `${entry}_rows`, constants: { ROWS_WORKGROUP } },
      { ...args, workgroups: ctx.groupsFor(rows, ROWS_WORKGROUP) },
    );
  } else {
    ctx.dispatch(rowKernel(ctx, entry, dim), { ...args, workgroups: ctx.groupsFor(rows, 1) });
  }
}

function columnKernel(entry: string) {
  return { name: "norm", source, entry, constants: { COLUMN_WORKGROUP_SIZE } };
}

// ---- shape checks ----------------------------------------------------------------------

function matrixShape(op: string, name: string, t: Tensor): [rows: number, dim: number] {
  if (t.shape.length !== 2 || t.shape[1] === 0) {
    throw new Error(`${op}: ${name} must be [rows, dim] with dim > 0, got ${shapeString(t.shape)}`);
  }
  return [t.shape[0], t.shape[1]];
}

function expectShape(op: string, name: string, t: Tensor, shape: readonly number[]): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(
      `${op}: ${name} has shape ${shapeString(t.shape)}, expected ${shapeString(shape)}`,
    );
  }
}

function rowParams(rows: number, dim: number, eps: number, chunkRows = 0, chunks = 0): Params {
  return new Params().u32(rows).u32(dim).f32(eps).u32(chunkRows).u32(chunks);
}

// ---- column sums -----------------------------------------------------------------------

interface ColumnPlan {
  chunkRows: number;
  chunks: number;
  params: Params;
}

function columnPlan(rows: number, dim: number): ColumnPlan {
  const chunkRows = chunkRowsFor(rows);
  const chunks = Math.max(1, Math.ceil(rows / chunkRows));
  return { chunkRows, chunks, params: rowParams(rows, dim, 0, chunkRows, chunks) };
}

/**
 * A [chunks, dim] partial-sum buffer, or, with a single chunk, the [dim] result itself
 * (the partial pass then writes the answer directly and the second pass is skipped).
 */
function partialBuffer(ctx: GpuContext, plan: ColumnPlan, dim: number): Tensor<"f32"> {
  return plan.chunks === 1 ? ctx.empty([dim], "f32") : ctx.empty([plan.chunks, dim], "f32");
}

/** partial: [chunks, dim] → [dim], summed in chunk order; releases `partial`. */
function finishColumnSum(
  ctx: GpuContext,
  plan: ColumnPlan,
  dim: number,
  partial: Tensor<"f32">,
): Tensor<"f32"> {
  if (plan.chunks === 1) return partial;
  const total = ctx.empty([dim], "f32");
  ctx.dispatch(columnKernel("sum_chunks"), {
    params: plan.params,
    tensors: [partial, total],
    workgroups: [Math.ceil(dim / COLUMN_WORKGROUP_SIZE), 1, 1],
  });
  partial.release();
  return total;
}

// ---- RMSNorm ---------------------------------------------------------------------------

export interface RmsNormOutput {
  /** [rows, dim] */
  y: Tensor<"f32">;
  /** [rows]: 1 / sqrt(mean(x²) + eps), saved for the backward pass. */
  rstd: Tensor<"f32">;
}

/** RMSNorm. x: [rows, dim], weight: [dim] → y: [rows, dim], rstd: [rows]. */
export function rmsNorm(
  ctx: GpuContext,
  x: Tensor<"f32">,
  weight: Tensor<"f32">,
  eps: number,
  options: NormOptions = {},
): RmsNormOutput {
  const op = "rmsNorm";
  const [rows, dim] = matrixShape(op, "x", x);
  expectShape(op, "weight", weight, [dim]);
  const rowsVariant = useRows(ctx, op, dim, options.variant ?? "auto");
  const y = ctx.empty([rows, dim], "f32");
  const rstd = ctx.empty([rows], "f32");
  rowPass(ctx, "rms_norm_forward", rowsVariant, rows, dim, {
    params: rowParams(rows, dim, eps),
    tensors: [x, weight, y, rstd],
  });
  return { y, rstd };
}

export interface RmsNormGradients {
  /** [rows, dim] */
  dx: Tensor<"f32">;
  /** [dim] */
  dWeight: Tensor<"f32">;
}

/**
 * RMSNorm backward. x: [rows, dim], weight: [dim], rstd: [rows] (from rmsNorm),
 * dy: [rows, dim] → dx: [rows, dim], dWeight: [dim].
 */
export function rmsNormBackward(
  ctx: GpuContext,
  x: Tensor<"f32">,
  weight: Tensor<"f32">,
  rstd: Tensor<"f32">,
  dy: Tensor<"f32">,
  options: NormOptions = {},
): RmsNormGradients {
  const op = "rmsNormBackward";
  const [rows, dim] = matrixShape(op, "x", x);
  expectShape(op, "weight", weight, [dim]);
  expectShape(op, "rstd", rstd, [rows]);
  expectShape(op, "dy", dy, [rows, dim]);

  const rowsVariant = useRows(ctx, op, dim, options.variant ?? "auto");
  const dx = ctx.empty([rows, dim], "f32");
  rowPass(ctx, "rms_norm_backward_dx", rowsVariant, rows, dim, {
    params: rowParams(rows, dim, 0),
    tensors: [x, weight, rstd, dy, dx],
  });

  if (rows === 0) return { dx, dWeight: ctx.zeros([dim], "f32") };
  const plan = columnPlan(rows, dim);
  const partial = partialBuffer(ctx, plan, dim);
  ctx.dispatch(columnKernel("rms_norm_dweight_partial"), {
    params: plan.params,
    tensors: [x, rstd, dy, partial],
    workgroups: [Math.ceil(dim / COLUMN_WORKGROUP_SIZE), plan.chunks, 1],
  });
  return { dx, dWeight: finishColumnSum(ctx, plan, dim, partial) };
}

// ---- LayerNorm -------------------------------------------------------------------------

export interface LayerNormOutput {
  /** [rows, dim] */
  y: Tensor<"f32">;
  /** [rows] */
  mean: Tensor<"f32">;
  /** [rows]: 1 / sqrt(biased variance + eps) */
  rstd: Tensor<"f32">;
}

/**
 * LayerNorm with weight and bias (GPT-2). x: [rows, dim], weight: [dim], bias: [dim]
 * → y: [rows, dim], mean: [rows], rstd: [rows].
 */
export function layerNorm(
  ctx: GpuContext,
  x: Tensor<"f32">,
  weight: Tensor<"f32">,
  bias: Tensor<"f32">,
  eps: number,
): LayerNormOutput {
  const op = "layerNorm";
  const [rows, dim] = matrixShape(op, "x", x);
  expectShape(op, "weight", weight, [dim]);
  expectShape(op, "bias", bias, [dim]);
  const y = ctx.empty([rows, dim], "f32");
  const mean = ctx.empty([rows], "f32");
  const rstd = ctx.empty([rows], "f32");
  ctx.dispatch(rowKernel(ctx, "layer_norm_forward", dim), {
    params: rowParams(rows, dim, eps),
    tensors: [x, weight, bias, y, mean, rstd],
    workgroups: ctx.groupsFor(rows, 1),
  });
  return { y, mean, rstd };
}

export interface LayerNormGradients {
  /** [rows, dim] */
  dx: Tensor<"f32">;
  /** [dim] */
  dWeight: Tensor<"f32">;
  /** [dim] */
  dBias: Tensor<"f32">;
}

/**
 * LayerNorm backward. x: [rows, dim], weight: [dim], mean: [rows], rstd: [rows] (from
 * layerNorm), dy: [rows, dim] → dx: [rows, dim], dWeight: [dim], dBias: [dim].
 */
export function layerNormBackward(
  ctx: GpuContext,
  x: Tensor<"f32">,
  weight: Tensor<"f32">,
  mean: Tensor<"f32">,
  rstd: Tensor<"f32">,
  dy: Tensor<"f32">,
): LayerNormGradients {
  const op = "layerNormBackward";
  const [rows, dim] = matrixShape(op, "x", x);
  expectShape(op, "weight", weight, [dim]);
  expectShape(op, "mean", mean, [rows]);
  expectShape(op, "rstd", rstd, [rows]);
  expectShape(op, "dy", dy, [rows, dim]);

  const dx = ctx.empty([rows, dim], "f32");
  ctx.dispatch(rowKernel(ctx, "layer_norm_backward_dx", dim), {
    params: rowParams(rows, dim, 0),
    tensors: [x, weight, mean, rstd, dy, dx],
    workgroups: ctx.groupsFor(rows, 1),
  });

  if (rows === 0) {
    return { dx, dWeight: ctx.zeros([dim], "f32"), dBias: ctx.zeros([dim], "f32") };
  }
  const plan = columnPlan(rows, dim);
  const weightPartial = partialBuffer(ctx, plan, dim);
  const biasPartial = partialBuffer(ctx, plan, dim);
  ctx.dispatch(columnKernel("layer_norm_dparams_partial"), {
    params: plan.params,
    tensors: [x, mean, rstd, dy, weightPartial, biasPartial],
    workgroups: [Math.ceil(dim / COLUMN_WORKGROUP_SIZE), plan.chunks, 1],
  });
  return {
    dx,
    dWeight: finishColumnSum(ctx, plan, dim, weightPartial),
    dBias: finishColumnSum(ctx, plan, dim, biasPartial),
  };
}
