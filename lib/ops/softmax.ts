// Row softmax over the last dimension, with an optional temperature, and its backward.
// Numerically stable (the row max is subtracted before exp); deterministic (one workgroup
// per row, fixed reduction tree: see kernels/softmax.wgsl).

import type { GpuContext } from "../gpu/context.ts";
import { Params } from "../gpu/params.ts";
import { shapeString, type Tensor } from "../gpu/tensor.ts";
import source from "../../kernels/softmax.wgsl" with { type: "text" };

const WORKGROUP_SIZE = 256;
const kernel = (entry: string) => ({
  name: "softmax",
  source,
  entry,
  constants: { WORKGROUP_SIZE },
});

export interface SoftmaxOptions {
  /** y = softmax(x / temperature); > 0, default 1. */
  temperature?: number;
}

function inverseTemperature(op: string, temperature = 1): number {
  if (!(temperature > 0) || !Number.isFinite(temperature)) {
    throw new Error(`${op}: temperature must be a positive number (got ${temperature})`);
  }
  return 1 / temperature;
}

/** Rows and row length of a [..., n] tensor. */
function rowsOf(op: string, name: string, t: Tensor<"f32">): { rows: number; n: number } {
  if (t.shape.length < 1 || t.dtype !== "f32") {
    throw new Error(
      `${op}: ${name} must be an f32 tensor [..., n] (got ${t.dtype} ` +
        `${shapeString(t.shape)})`,
    );
  }
  const n = t.shape[t.shape.length - 1];
  return { rows: n === 0 ? 0 : t.size / n, n };
}

/** x: [..., n] → y: [..., n], y = softmax(x / temperature) along the last dimension. */
export function softmax(
  ctx: GpuContext,
  x: Tensor<"f32">,
  { temperature }: SoftmaxOptions = {},
): Tensor<"f32"> {
  const invT = inverseTemperature("softmax", temperature);
  const { rows, n } = rowsOf("softmax", "x", x);
  const y = ctx.empty(x.shape, "f32");
  ctx.dispatch(kernel("softmax_forward"), {
    params: new Params().u32(rows).u32(n).f32(invT),
    tensors: [x, y],
    workgroups: ctx.groupsFor(rows, 1),
  });
  return y;
}

/**
 * y: [..., n] (the forward's output), dy: [..., n] → dx: [..., n],
 * dx = y ⊙ (dy − rowsum(dy ⊙ y)) / temperature (same temperature as the forward).
 */
export function softmaxBackward(
  ctx: GpuContext,
  y: Tensor<"f32">,
  dy: Tensor<"f32">,
  { temperature }: SoftmaxOptions = {},
): Tensor<"f32"> {
  const invT = inverseTemperature("softmaxBackward", temperature);
  const { rows, n } = rowsOf("softmaxBackward", "y", y);
  if (dy.dtype !== "f32" || shapeString(dy.shape) !== shapeString(y.shape)) {
    throw new Error(
      `softmaxBackward: dy ${dy.dtype} ${shapeString(dy.shape)} must be f32 ` +
        `${shapeString(y.shape)} like y`,
    );
  }
  const dx = ctx.empty(y.shape, "f32");
  ctx.dispatch(kernel("softmax_backward"), {
    params: new Params().u32(rows).u32(n).f32(invT),
    tensors: [y, dy, dx],
    workgroups: ctx.groupsFor(rows, 1),
  });
  return dx;
}
