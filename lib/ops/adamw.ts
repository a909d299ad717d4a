// The optimizer on the GPU: global gradient norm, clip factor and the AdamW step, all without
// readback. A training step records
//
//   const norm = gradNorm(ctx, grads);            // [2]: sum of squares, norm
//   const clip = clipFactor(ctx, norm, maxNorm);  // [2]: scale, apply (0 if norm non-finite)
//   for (each parameter) adamwStep(ctx, { param, grad, m, v, lr, step, clip, ... });
//
// and reads `norm` later, together with the loss. The math is in kernels/adamw.wgsl.

import type { GpuContext } from "../gpu/context.ts";
import { Params } from "../gpu/params.ts";
import { shapeString, type Tensor } from "../gpu/tensor.ts";
import source from "../../kernels/adamw.wgsl" with { type: "text" };

const WORKGROUP_SIZE = 256;
/**
 * Threads per workgroup of the norm's reductions on a software adapter: one SIMD group of
 * lavapipe, whose barriers cost nothing (with 256 threads the tree's barriers, each a switch
 * between 32 SIMD groups, took ~60% of the pass).
 */
const SOFTWARE_REDUCTION_WORKGROUP = 8;
/** Each gradient tensor is summed by at most this many workgroups (partials per tensor). */
const MAX_PARTIALS_PER_TENSOR = 256;
/** Elements per thread below which a tensor gets fewer workgroups. */
const ELEMENTS_PER_THREAD = 8;

const kernel = (entry: string) => ({ name: "adamw", source, entry });

/** PyTorch's AdamW defaults. */
export const ADAMW_DEFAULTS = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 } as const;

function requireF32(op: string, name: string, t: Tensor): void {
  if (t.dtype !== "f32") throw new Error(`${op}: ${name} must be f32, got ${t.dtype}`);
}

/** Threads per workgroup of the reductions (they set the order of the sums). */
function reductionWorkgroup(ctx: GpuContext): number {
  return ctx.adapter.kernels === "software" ? SOFTWARE_REDUCTION_WORKGROUP : WORKGROUP_SIZE;
}

/**
 * Workgroups (= partial sums) used for a gradient of `count` elements with `threads` per
 * workgroup; fixed by the two.
 */
function partialGroups(count: number, threads: number): number {
  return Math.min(MAX_PARTIALS_PER_TENSOR, Math.ceil(count / (threads * ELEMENTS_PER_THREAD)));
}

/**
 * Global L2 norm of a list of gradients, computed on the GPU in a fixed order (per-tensor
 * partial sums, then one fixed-order final sum; see kernels/adamw.wgsl).
 * grads: any shapes, f32 → [2] f32: [sum of squares, norm]. Caller releases.
 */
export function gradNorm(ctx: GpuContext, grads: readonly Tensor<"f32">[]): Tensor<"f32"> {
  grads.forEach((g, i) => requireF32("gradNorm", `grads[${i}]`, g));
  const threads = reductionWorkgroup(ctx);
  const reduction = (entry: string) => ({
    ...kernel(entry),
    constants: { WORKGROUP_SIZE: threads },
  });
  const groups = grads.map((g) => partialGroups(g.size, threads));
  const partialCount = groups.reduce((a, b) => a + b, 0);
  const partials = ctx.empty([Math.max(1, partialCount)], "f32");
  let offset = 0;
  grads.forEach((g, i) => {
    ctx.dispatch(reduction("sumsq_partials"), {
      params: new Params().u32(g.size).u32(offset),
      tensors: [g, partials],
      workgroups: [groups[i]],
    });
    offset += groups[i];
  });
  const norm = ctx.empty([2], "f32");
  ctx.dispatch(reduction("norm_finalize"), {
    params: new Params().u32(partialCount),
    tensors: [partials, norm],
    workgroups: [1],
  });
  partials.release();
  return norm;
}

/**
 * The clip control that `adamwStep` reads. norm: [2] from `gradNorm` → [2] f32:
 * [scale, apply] with apply = 1 if the norm is finite (else 0: the step is skipped) and
 * scale = min(1, maxNorm / (norm + 1e-6)) as torch.nn.utils.clip_grad_norm_ computes it.
 * maxNorm = Infinity only checks finiteness (scale 1). Caller releases.
 */
export function clipFactor(ctx: GpuContext, norm: Tensor<"f32">, maxNorm: number): Tensor<"f32"> {
  requireF32("clipFactor", "norm", norm);
  if (norm.size !== 2) {
    throw new Error(`clipFactor: norm must be [2] (from gradNorm), got ${shapeString(norm.shape)}`);
  }
  if (!(maxNorm > 0)) throw new Error(`clipFactor: maxNorm must be > 0, got ${maxNorm}`);
  const enabled = Number.isFinite(maxNorm);
  const clip = ctx.empty([2], "f32");
  ctx.dispatch(kernel("clip_factor"), {
    params: new Params().f32(enabled ? maxNorm : 0).u32(enabled ? 1 : 0),
    tensors: [norm, clip],
    workgroups: [1],
  });
  return clip;
}

export interface AdamwArgs {
  /** Parameter, updated in place: any shape, f32. */
  param: Tensor<"f32">;
  /** Its gradient: same shape. */
  grad: Tensor<"f32">;
  /** First moment (exp_avg), updated in place: same shape, zeros before step 1. */
  m: Tensor<"f32">;
  /** Second moment (exp_avg_sq), updated in place: same shape, zeros before step 1. */
  v: Tensor<"f32">;
  /** Learning rate of this step (schedules live on the host). */
  lr: number;
  /** Step number t, counting from 1 (bias corrections use β^t). */
  step: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** [2] from `clipFactor`: gradients are multiplied by clip[0]; clip[1] == 0 skips the step. */
  clip?: Tensor<"f32">;
}

/** One AdamW step (torch.optim.AdamW) on one parameter tensor; param, m, v updated in place. */
export function adamwStep(ctx: GpuContext, args: AdamwArgs): void {
  const { param, grad, m, v, lr, step, clip } = args;
  const beta1 = args.beta1 ?? ADAMW_DEFAULTS.beta1;
  const beta2 = args.beta2 ?? ADAMW_DEFAULTS.beta2;
  const eps = args.eps ?? ADAMW_DEFAULTS.eps;
  const weightDecay = args.weightDecay ?? ADAMW_DEFAULTS.weightDecay;
  const named: [string, Tensor][] = [["param", param], ["grad", grad], ["m", m], ["v", v]];
  for (const [name, t] of named) {
    requireF32("adamwStep", name, t);
    if (t.shape.length !== param.shape.length || t.shape.some((d, i) => d !== param.shape[i])) {
      throw new Error(
        `adamwStep: ${name} ${shapeString(t.shape)} differs from param ${shapeString(param.shape)}`,
      );
    }
  }
  if (!Number.isInteger(step) || step < 1) {
    throw new Error(`adamwStep: step must be an integer >= 1, got ${step}`);
  }
  if (!(lr >= 0 && Number.isFinite(lr))) throw new Error(`adamwStep: bad lr ${lr}`);
  if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1)) {
    throw new Error(`adamwStep: betas must be in [0, 1), got (${beta1}, ${beta2})`);
  }
  if (!(eps >= 0) || !(weightDecay >= 0)) {
    throw new Error(`adamwStep: eps and weightDecay must be >= 0, got ${eps}, ${weightDecay}`);
  }
  if (clip) {
    requireF32("adamwStep", "clip", clip);
    if (clip.size !== 2) {
      throw new Error(
        `adamwStep: clip must be [2] (from clipFactor), got ${shapeString(clip.shape)}`,
      );
    }
  }
  // Host-side scalars in f64, as PyTorch computes them in Python floats.
  const params = new Params()
    .u32(param.size)
    .f32(1 - lr * weightDecay)
    .f32(beta1)
    .f32(beta2)
    .f32(1 - beta1)
    .f32(1 - beta2)
    .f32(lr / (1 - beta1 ** step))
    .f32(Math.sqrt(1 - beta2 ** step))
    .f32(eps);
  const tensors = clip ? [param, grad, m, v, clip] : [param, grad, m, v];
  // Four elements per thread as vec4 when the size allows (same math, ~2× faster on lavapipe).
  const perThread = param.size % 4 === 0 ? 4 : 1;
  const entry = `adamw_step${perThread === 4 ? "4" : ""}${clip ? "_clipped" : ""}`;
  ctx.dispatch(kernel(entry), {
    params,
    tensors,
    workgroups: ctx.groupsFor(param.size / perThread, WORKGROUP_SIZE),
  });
}
