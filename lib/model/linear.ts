// The linear layer of Hugging Face's nn.Linear, y = x·Wᵀ + b with W: [out, in], and its
// backward, built from matmul and the bias ops. Parameter gradients are always accumulated
// (+=) into tensors the caller owns, so micro-batches add up.
//
//   x: [rows, in]   W: [out, in]   b: [out]   y, dy: [rows, out]   dx: [rows, in]

import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { addBiasInPlace, biasBackwardInto } from "../ops/bias.ts";
import { add } from "../ops/elementwise.ts";
import { matmul, matmulInto } from "../ops/matmul.ts";

/** x: [rows, in], weight: [out, in], bias: [out] or none → y: [rows, out] = x·Wᵀ (+ b). */
export function linear(
  ctx: GpuContext,
  x: Tensor<"f32">,
  weight: Tensor<"f32">,
  bias?: Tensor<"f32">,
): Tensor<"f32"> {
  const y = matmul(ctx, x, weight, { transposeB: true }); // [rows, out]
  if (bias) addBiasInPlace(ctx, y, bias);
  return y;
}

/** The parameter gradients a linear layer adds into (owned by the caller's grads map). */
export interface LinearGrads {
  /** [out, in] */
  weight: Tensor<"f32">;
  /** [out], when the layer has a bias */
  bias?: Tensor<"f32">;
}

/** dWeight += dyᵀ·x, dBias += Σ_rows dy. dy: [rows, out], x: [rows, in]. */
export function accumulateLinearGrads(
  ctx: GpuContext,
  dy: Tensor<"f32">,
  x: Tensor<"f32">,
  grads: LinearGrads,
): void {
  matmulInto(ctx, dy, x, grads.weight, { transposeA: true, accumulate: true }); // [out, in]
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
  weight: Tensor<"f32">,
  grads: LinearGrads,
): Tensor<"f32"> {
  accumulateLinearGrads(ctx, dy, x, grads);
  return matmul(ctx, dy, weight); // [rows, in]
}

/**
 * Like linearBackward, but adds dy·W into an existing dx: [rows, in] (for an input that feeds
 * several layers, e.g. h → q, k, v).
 */
export function linearBackwardAdd(
  ctx: GpuContext,
  dy: Tensor<"f32">,
  x: Tensor<"f32">,
  weight: Tensor<"f32">,
  grads: LinearGrads,
  dx: Tensor<"f32">,
): void {
  accumulateLinearGrads(ctx, dy, x, grads);
  matmulInto(ctx, dy, weight, dx, { accumulate: true });
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
