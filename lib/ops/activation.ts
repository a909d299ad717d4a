// Activations, forward and backward: SiLU, SwiGLU (Llama/Qwen MLP), GELU (tanh approximation
// or exact erf). Elementwise: any shape, and the tensors of one call have equal shapes.
// Formulas, numerical safety and accuracy: kernels/activation.wgsl.

import type { GpuContext } from "../gpu/context.ts";
import { Params } from "../gpu/params.ts";
import { shapeString, type Tensor } from "../gpu/tensor.ts";
import source from "../../kernels/activation.wgsl" with { type: "text" };

const WORKGROUP_SIZE = 256;

/**
 * "tanh": 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) — HF `gelu_pytorch_tanh`, GPT-2's
 * `gelu_new`; "erf": x·Φ(x), the exact GELU — HF `gelu`.
 */
export type GeluVariant = "tanh" | "erf";

function sameShape(op: string, names: string[], tensors: Tensor[]): void {
  const [first] = tensors;
  tensors.forEach((t, i) => {
    if (t.shape.length !== first.shape.length || t.shape.some((d, k) => d !== first.shape[k])) {
      throw new Error(
        `${op}: ${names[i]} has shape ${shapeString(t.shape)}, but ${names[0]} has ` +
          shapeString(first.shape),
      );
    }
  });
}

/** Records `entry` over `inputs.length` equal-size inputs; returns `outputs` new tensors. */
function elementwise(
  ctx: GpuContext,
  entry: string,
  inputs: Tensor<"f32">[],
  outputs: number,
): Tensor<"f32">[] {
  const { shape, size } = inputs[0];
  const results = Array.from({ length: outputs }, () => ctx.empty(shape, "f32"));
  // swiglu: four elements per thread as vec4 when the size allows (kernels/activation.wgsl).
  const perThread = entry.startsWith("swiglu") && size % 4 === 0 ? 4 : 1;
  ctx.dispatch({ name: "activation", source, entry: perThread === 4 ? `${entry}4` : entry }, {
    params: new Params().u32(size),
    tensors: [...inputs, ...results],
    workgroups: ctx.groupsFor(size / perThread, WORKGROUP_SIZE),
  });
  return results;
}

/** y = x · σ(x). x: any shape → y: same shape. */
export function silu(ctx: GpuContext, x: Tensor<"f32">): Tensor<"f32"> {
  return elementwise(ctx, "silu_forward", [x], 1)[0];
}

/** dx = dy · silu'(x). x, dy: same shape → dx: same shape. */
export function siluBackward(ctx: GpuContext, x: Tensor<"f32">, dy: Tensor<"f32">): Tensor<"f32"> {
  sameShape("siluBackward", ["x", "dy"], [x, dy]);
  return elementwise(ctx, "silu_backward", [x, dy], 1)[0];
}

/** y = silu(gate) · up. gate, up: [rows, hidden] (any equal shapes) → y: same shape. */
export function swiglu(ctx: GpuContext, gate: Tensor<"f32">, up: Tensor<"f32">): Tensor<"f32"> {
  sameShape("swiglu", ["gate", "up"], [gate, up]);
  return elementwise(ctx, "swiglu_forward", [gate, up], 1)[0];
}

export interface SwigluGradients {
  /** Same shape as gate. */
  dGate: Tensor<"f32">;
  /** Same shape as up. */
  dUp: Tensor<"f32">;
}

/**
 * SwiGLU backward: dGate = dy · up · silu'(gate), dUp = dy · silu(gate).
 * gate, up, dy: [rows, hidden] → dGate, dUp: [rows, hidden].
 */
export function swigluBackward(
  ctx: GpuContext,
  gate: Tensor<"f32">,
  up: Tensor<"f32">,
  dy: Tensor<"f32">,
): SwigluGradients {
  sameShape("swigluBackward", ["gate", "up", "dy"], [gate, up, dy]);
  const [dGate, dUp] = elementwise(ctx, "swiglu_backward", [gate, up, dy], 2);
  return { dGate, dUp };
}

function geluEntry(op: string, variant: GeluVariant, suffix: string): string {
  if (variant !== "tanh" && variant !== "erf") {
    throw new Error(`${op}: unknown GELU variant "${variant}" (expected "tanh" or "erf")`);
  }
  return `gelu_${variant}_${suffix}`;
}

/** GELU. x: any shape → y: same shape. */
export function gelu(ctx: GpuContext, x: Tensor<"f32">, variant: GeluVariant): Tensor<"f32"> {
  return elementwise(ctx, geluEntry("gelu", variant, "forward"), [x], 1)[0];
}

/** dx = dy · gelu'(x). x, dy: same shape → dx: same shape. */
export function geluBackward(
  ctx: GpuContext,
  x: Tensor<"f32">,
  dy: Tensor<"f32">,
  variant: GeluVariant,
): Tensor<"f32"> {
  sameShape("geluBackward", ["x", "dy"], [x, dy]);
  return elementwise(ctx, geluEntry("geluBackward", variant, "backward"), [x, dy], 1)[0];
}
