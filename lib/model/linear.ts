// The linear layer of Hugging Face's nn.Linear, y = x·Wᵀ + b with W: [out, in], and its
// backward, built from matmul and the bias ops. Parameter gradients are always accumulated
// (+=) into tensors the caller owns, so micro-batches add up.
//
//   x: [rows, in]   W: [out, in]   b: [out]   y, dy: [rows, out]   dx: [rows, in]
//
// W comes as its row chunks (lib/model/gpu_weights.ts): usually one, but a weight bigger than
// one storage binding (a large vocabulary's lm_head) is several. Rows [r0, r1) of W are the
// output features [r0, r1), so each chunk gives a block of y's columns:
//
//   y[:, r0:r1]  = x·W[r0:r1]ᵀ                       (written into y's columns)
//   dW[r0:r1]   += dy[:, r0:r1]ᵀ·x                   (the chunk's gradient, alone)
//   dx           = Σ_chunks dy[:, r0:r1]·W[r0:r1]    (accumulated in chunk order)
//
// With one chunk these are the plain products (no column copies).

import type { GpuContext } from "../gpu/context.ts";
import { shapeString, type Tensor } from "../gpu/tensor.ts";
import { addBiasInPlace, biasBackwardInto } from "../ops/bias.ts";
import { readColumns, writeColumns } from "../ops/columns.ts";
import { add } from "../ops/elementwise.ts";
import { accumulateKeepsKernel, matmul, matmulInto } from "../ops/matmul.ts";
import type { ChunkedWeight } from "./gpu_weights.ts";

/** The rows of a chunked [out, in] weight: out. */
function outFeatures(weight: ChunkedWeight): number {
  const last = weight[weight.length - 1];
  return last.rowStart + last.tensor.shape[0];
}

/**
 * x: [rows, in], weight: [out, in] as row chunks, bias: [out] or none →
 * y: [rows, out] = x·Wᵀ (+ b).
 */
export function linear(
  ctx: GpuContext,
  x: Tensor<"f32">,
  weight: ChunkedWeight,
  bias?: Tensor<"f32">,
): Tensor<"f32"> {
  let y: Tensor<"f32">;
  if (weight.length === 1) {
    y = matmul(ctx, x, weight[0].tensor, { transposeB: true }); // [rows, out]
  } else {
    y = ctx.empty([x.shape[0], outFeatures(weight)], "f32"); // [rows, out]
    for (const { rowStart, tensor } of weight) {
      const block = matmul(ctx, x, tensor, { transposeB: true }); // [rows, chunk rows]
      writeColumns(ctx, block, y, rowStart);
      block.release();
    }
  }
  if (bias) addBiasInPlace(ctx, y, bias);
  return y;
}

/**
 * A residual connection around a linear layer: out = residual + (x·Wᵀ (+ b)): [rows, out].
 * x: [rows, in], residual: [rows, out]. x is not released; residual neither, and out is a new
 * tensor, unless `consume`: then the caller gives residual up (inference, where nothing reads
 * it again), and it is either overwritten with the sum and returned as out, or released.
 * With one weight chunk, no bias, and the same matmul kernel either way, the product adds
 * itself into the residual, or into a copy of it (matmul's accumulate): one dispatch where
 * linear + add take two (a buffer copy is no dispatch, and consumed, no copy at all). Either
 * way each element is the one addition residual + (x·Wᵀ)[i], so the bits are the same.
 */
export function linearPlusResidual(
  ctx: GpuContext,
  x: Tensor<"f32">,
  weight: ChunkedWeight,
  residual: Tensor<"f32">,
  bias?: Tensor<"f32">,
  { consume = false }: { consume?: boolean } = {},
): Tensor<"f32"> {
  const w = weight[0].tensor; // [out, in]
  if (weight.length === 1 && !bias && accumulateKeepsKernel(ctx, x, w, { transposeB: true })) {
    let out = residual; // [rows, out]
    if (!consume) {
      out = ctx.empty(residual.shape, "f32");
      ctx.copy(residual, out);
    }
    matmulInto(ctx, x, w, out, { transposeB: true, accumulate: true });
    return out;
  }
  const y = linear(ctx, x, weight, bias); // [rows, out]
  const out = add(ctx, residual, y);
  y.release();
  if (consume) residual.release();
  return out;
}

/** The parameter gradients a linear layer adds into (owned by the caller's grads map). */
export interface LinearGrads {
  /** [out, in], in the same row chunks as the weight */
  weight: ChunkedWeight;
  /** [out], when the layer has a bias */
  bias?: Tensor<"f32">;
}

/** The gradient chunks must match the weight's. */
function checkGradChunks(weight: ChunkedWeight, grads: LinearGrads): void {
  const same = grads.weight.length === weight.length &&
    grads.weight.every((g, i) =>
      g.rowStart === weight[i].rowStart &&
      g.tensor.shape.every((d, k) => d === weight[i].tensor.shape[k])
    );
  if (!same) {
    const describe = (w: ChunkedWeight) =>
      w.map((c) => `${c.rowStart}:${shapeString(c.tensor.shape)}`).join(", ");
    throw new Error(
      `linearBackward: gradient chunks [${describe(grads.weight)}] do not match the weight's ` +
        `[${describe(weight)}]`,
    );
  }
}

/**
 * The backward of y = x·Wᵀ + b: dWeight += dyᵀ·x, dBias += Σ_rows dy, and dx = dy·W, written
 * into dx: [rows, in] (or added to it with `addToDx`). dy: [rows, out], x: [rows, in].
 */
function backwardInto(
  ctx: GpuContext,
  dy: Tensor<"f32">,
  x: Tensor<"f32">,
  weight: ChunkedWeight,
  grads: LinearGrads,
  dx: Tensor<"f32">,
  addToDx: boolean,
): void {
  checkGradChunks(weight, grads);
  weight.forEach(({ rowStart, tensor }, i) => {
    const rows = tensor.shape[0];
    // The chunk's block of dy's columns: [rows, chunk rows] (dy itself when there is one).
    const dyBlock = weight.length === 1 ? dy : readColumns(ctx, dy, rowStart, rows);
    const dWeight = grads.weight[i].tensor;
    matmulInto(ctx, dyBlock, x, dWeight, { transposeA: true, accumulate: true }); // [chunk, in]
    matmulInto(ctx, dyBlock, tensor, dx, { accumulate: addToDx || i > 0 }); // [rows, in]
    if (dyBlock !== dy) dyBlock.release();
  });
  if (grads.bias) biasBackwardInto(ctx, dy, grads.bias, { accumulate: true }); // [out]
}

/**
 * The backward of y = x·Wᵀ + b: accumulates the parameter gradients and returns
 * dx = dy·W: [rows, in]. dy: [rows, out], x: [rows, in], weight: [out, in].
 */
export function linearBackward(
  ctx: GpuContext,
  dy: Tensor<"f32">,
  x: Tensor<"f32">,
  weight: ChunkedWeight,
  grads: LinearGrads,
): Tensor<"f32"> {
  const dx = ctx.empty(x.shape, "f32"); // [rows, in]
  backwardInto(ctx, dy, x, weight, grads, dx, false);
  return dx;
}

/**
 * Like linearBackward, but adds dy·W into an existing dx: [rows, in] (for an input that feeds
 * several layers, e.g. h → q, k, v).
 */
export function linearBackwardAdd(
  ctx: GpuContext,
  dy: Tensor<"f32">,
  x: Tensor<"f32">,
  weight: ChunkedWeight,
  grads: LinearGrads,
  dx: Tensor<"f32">,
): void {
  backwardInto(ctx, dy, x, weight, grads, dx, true);
}

/** into += delta (same shape), in place; `delta` is released (it is a temporary gradient). */
export function accumulateInto(
  ctx: GpuContext,
  into: Tensor<"f32">,
  delta: Tensor<"f32">,
): void {
  const sum = add(ctx, into, delta);
  ctx.copy(sum, into);
  sum.release();
  delta.release();
}
