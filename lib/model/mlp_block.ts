// The MLP half of a decoder layer (SwiGLU), forward and backward. N = B·T rows, d = hidden
// size, F = intermediate size.
//
//   g    = RMSNorm(x; post_attention_layernorm)                     [N, d]
//   gate = g·Wgateᵀ    up = g·Wupᵀ                                   [N, F] ×2
//   act  = silu(gate) ⊙ up                                           [N, F]
//   out  = x + act·Wdownᵀ                                            [N, d]

import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { swiglu, swigluBackward } from "../ops/activation.ts";
import { add } from "../ops/elementwise.ts";
import { rmsNorm, rmsNormBackward } from "../ops/norm.ts";
import type { ModelConfig } from "./config.ts";
import type { LayerTensors } from "./attention_block.ts";
import {
  accumulateInto,
  linear,
  linearBackward,
  linearBackwardAdd,
  linearPlusResidual,
} from "./linear.ts";

/** The forward activations the MLP backward needs. */
export interface MlpSaved {
  /** [N, d] the block's input (the residual stream after attention) */
  x: Tensor<"f32">;
  /** [N] 1/rms of each row of x */
  rstd: Tensor<"f32">;
  /** [N, d] RMSNorm(x) */
  g: Tensor<"f32">;
  /** [N, F] the gate and up projections, and silu(gate) ⊙ up */
  gate: Tensor<"f32">;
  up: Tensor<"f32">;
  act: Tensor<"f32">;
}

/**
 * x: [N, d] → out = x + mlp(x): [N, d]. With `save`, out is a new tensor and the activations
 * for mlpBlockBackward come along (which then owns x too); without, x is consumed (out may be
 * x itself, overwritten; else x is released).
 */
export function mlpBlockForward(
  ctx: GpuContext,
  config: ModelConfig,
  p: LayerTensors,
  x: Tensor<"f32">,
  { save }: { save: boolean },
): { out: Tensor<"f32">; saved: MlpSaved | null } {
  const norm = p.get("post_attention_layernorm.weight");
  const { y: g, rstd } = rmsNorm(ctx, x, norm, config.rmsNormEps); // [N, d], [N]
  const gate = linear(ctx, g, p.weight("mlp.gate_proj.weight")); // [N, F]
  const up = linear(ctx, g, p.weight("mlp.up_proj.weight")); // [N, F]
  const act = swiglu(ctx, gate, up); // [N, F]
  // [N, d]; without save x is consumed (overwritten as out, or released).
  const out = linearPlusResidual(ctx, act, p.weight("mlp.down_proj.weight"), x, undefined, {
    consume: !save,
  });
  if (!save) {
    for (const t of [rstd, g, gate, up, act]) t.release();
    return { out, saved: null };
  }
  return { out, saved: { x, rstd, g, gate, up, act } };
}

/**
 * dOut: [N, d] = ∂L/∂out → ∂L/∂x: [N, d] (a new tensor; dOut is not released). Parameter
 * gradients are added into `grad`. Releases `saved`.
 */
export function mlpBlockBackward(
  ctx: GpuContext,
  p: LayerTensors,
  grad: LayerTensors,
  saved: MlpSaved,
  dOut: Tensor<"f32">,
): Tensor<"f32"> {
  const weight = (name: string) => p.weight(`mlp.${name}.weight`);
  const grads = (name: string) => ({ weight: grad.weight(`mlp.${name}.weight`) });

  // dAct: [N, F], then dGate, dUp: [N, F]
  const dAct = linearBackward(ctx, dOut, saved.act, weight("down_proj"), grads("down_proj"));
  const { dGate, dUp } = swigluBackward(ctx, saved.gate, saved.up, dAct);
  for (const t of [dAct, saved.act, saved.gate, saved.up]) t.release();

  // gate and up both read g: their input gradients add up.
  const dG = linearBackward(ctx, dGate, saved.g, weight("gate_proj"), grads("gate_proj")); // [N, d]
  linearBackwardAdd(ctx, dUp, saved.g, weight("up_proj"), grads("up_proj"), dG);
  for (const t of [dGate, dUp, saved.g]) t.release();

  // g = RMSNorm(x); the residual path adds dOut.
  const norm = rmsNormBackward(
    ctx,
    saved.x,
    p.get("post_attention_layernorm.weight"),
    saved.rstd,
    dG,
  );
  accumulateInto(ctx, grad.get("post_attention_layernorm.weight"), norm.dWeight);
  const dX = add(ctx, dOut, norm.dx); // [N, d]
  for (const t of [dG, norm.dx, saved.x, saved.rstd]) t.release();
  return dX;
}
