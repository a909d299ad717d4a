// Elementwise ops: residual add, scale, and a + alpha·b. Shapes must match exactly.

import type { GpuContext } from "../gpu/context.ts";
import { Params } from "../gpu/params.ts";
import { shapeString, type Tensor } from "../gpu/tensor.ts";
import source from "../../kernels/elementwise.wgsl" with { type: "text" };

const WORKGROUP_SIZE = 256;
const kernel = (entry: string) => ({ name: "elementwise", source, entry });

function sameShape(op: string, a: Tensor, b: Tensor): void {
  if (
    a.size !== b.size || a.shape.length !== b.shape.length ||
    a.shape.some((d, i) => d !== b.shape[i])
  ) {
    throw new Error(`${op}: shapes ${shapeString(a.shape)} and ${shapeString(b.shape)} differ`);
  }
}

/** out = a + b. a, b: any shape (equal). */
export function add(ctx: GpuContext, a: Tensor<"f32">, b: Tensor<"f32">): Tensor<"f32"> {
  sameShape("add", a, b);
  const out = ctx.empty(a.shape, "f32");
  // Four elements per thread as vec4 when the size allows (same bits, faster on lavapipe).
  const perThread = a.size % 4 === 0 ? 4 : 1;
  ctx.dispatch(kernel(perThread === 4 ? "add4" : "add"), {
    params: new Params().u32(a.size).f32(0),
    tensors: [a, b, out],
    workgroups: ctx.groupsFor(a.size / perThread, WORKGROUP_SIZE),
  });
  return out;
}

/** out = a + alpha·b. */
export function addScaled(
  ctx: GpuContext,
  a: Tensor<"f32">,
  b: Tensor<"f32">,
  alpha: number,
): Tensor<"f32"> {
  sameShape("addScaled", a, b);
  const out = ctx.empty(a.shape, "f32");
  ctx.dispatch(kernel("add_scaled"), {
    params: new Params().u32(a.size).f32(alpha),
    tensors: [a, b, out],
    workgroups: ctx.groupsFor(a.size, WORKGROUP_SIZE),
  });
  return out;
}

/** out = alpha·a. */
export function scale(ctx: GpuContext, a: Tensor<"f32">, alpha: number): Tensor<"f32"> {
  const out = ctx.empty(a.shape, "f32");
  ctx.dispatch(kernel("scale"), {
    params: new Params().u32(a.size).f32(alpha),
    tensors: [a, out],
    workgroups: ctx.groupsFor(a.size, WORKGROUP_SIZE),
  });
  return out;
}
