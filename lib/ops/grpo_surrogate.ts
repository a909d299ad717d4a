// GRPO's clipped surrogate per token and its gradient with respect to the new log-probability
// (kernels/grpo_surrogate.wgsl): the elementwise core of lib/rmt/grpo.ts clippedSurrogate on
// the GPU. With it the policy loss keeps everything on the GPU: new log-probabilities from the
// training forward go straight into the cross-entropy backward, and only the summed loss is
// read back (with the step's other scalars).

import type { GpuContext } from "../gpu/context.ts";
import { Params } from "../gpu/params.ts";
import { shapeString, type Tensor } from "../gpu/tensor.ts";
import source from "../../kernels/grpo_surrogate.wgsl" with { type: "text" };

const WORKGROUP_SIZE = 256;
const kernel = { name: "grpo_surrogate", source, entry: "grpo_surrogate" };

export interface GrpoSurrogateInputs {
  /** [rows] log π_θ of each row's token (the training forward). */
  newLogprob: Tensor<"f32">;
  /** [rows] log π_old of each row's token (the policy that sampled it). */
  oldLogprob: Tensor<"f32">;
  /** [rows] log π_ref (needed when β > 0; ignored when β = 0). */
  refLogprob?: Tensor<"f32">;
  /** [rows, 2]: (A, a) per row: the advantage and the aggregation weight (0: not a token). */
  coefficients: Tensor<"f32">;
}

export interface GrpoSurrogateSettings {
  /** ε: ρ is clipped to [1 − ε, 1 + ε]. */
  clipEpsilon: number;
  /** β of the k3 KL penalty. */
  klBeta: number;
}

export interface GrpoSurrogateResult {
  /** [rows] ∂L/∂logπ_new per row (0 where a = 0). */
  dLogprob: Tensor<"f32">;
  /** [rows] −a·s + β·a·k3: the loss L is their sum. */
  lossTerms: Tensor<"f32">;
  /** [rows] a where the clipped term is the min, else 0: the clip fraction is their sum. */
  clipTerms: Tensor<"f32">;
}

/**
 * Per row r: ρ = exp(new − old), s = min(ρA, clip(ρ, 1−ε, 1+ε)A), loss term −a·s (+ β·a·k3),
 * d_logprob = a·(clipped ? 0 : −ρA) (+ β·a·(1 − exp(ref − new))). See the kernel header.
 */
export function grpoSurrogate(
  ctx: GpuContext,
  inputs: GrpoSurrogateInputs,
  { clipEpsilon, klBeta }: GrpoSurrogateSettings,
): GrpoSurrogateResult {
  const { newLogprob, oldLogprob, coefficients } = inputs;
  const rows = newLogprob.size;
  const perRow: [string, Tensor<"f32"> | undefined][] = [
    ["newLogprob", newLogprob],
    ["oldLogprob", oldLogprob],
    ["refLogprob", inputs.refLogprob],
  ];
  for (const [name, t] of perRow) {
    if (t && (t.dtype !== "f32" || t.size !== rows)) {
      throw new Error(
        `grpoSurrogate: ${name} ${t.dtype} ${shapeString(t.shape)} must be f32 with ${rows} ` +
          `values (newLogprob ${shapeString(newLogprob.shape)})`,
      );
    }
  }
  if (coefficients.dtype !== "f32" || coefficients.size !== 2 * rows) {
    throw new Error(
      `grpoSurrogate: coefficients ${coefficients.dtype} ${shapeString(coefficients.shape)} ` +
        `must be f32 [${rows}, 2]`,
    );
  }
  if (!(clipEpsilon > 0 && clipEpsilon < 1)) {
    throw new Error(`grpoSurrogate: clip ε must be in (0, 1), got ${clipEpsilon}`);
  }
  if (!(klBeta >= 0 && Number.isFinite(klBeta))) {
    throw new Error(`grpoSurrogate: β must be a finite number ≥ 0, got ${klBeta}`);
  }
  if (klBeta > 0 && !inputs.refLogprob) {
    throw new Error(`grpoSurrogate: β = ${klBeta} needs reference log-probs`);
  }
  // With β = 0 the kernel never reads the reference into a result: bind old in its place.
  const ref = klBeta > 0 ? inputs.refLogprob! : oldLogprob;
  const shape = newLogprob.shape;
  const dLogprob = ctx.empty(shape, "f32");
  const lossTerms = ctx.empty(shape, "f32");
  const clipTerms = ctx.empty(shape, "f32");
  ctx.dispatch(kernel, {
    params: new Params().u32(rows).f32(1 - clipEpsilon).f32(1 + clipEpsilon).f32(klBeta),
    tensors: [newLogprob, oldLogprob, ref, coefficients, dLogprob, lossTerms, clipTerms],
    workgroups: ctx.groupsFor(rows, WORKGROUP_SIZE),
  });
  return { dLogprob, lossTerms, clipTerms };
}
