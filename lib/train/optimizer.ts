// AdamW over every parameter of the model, on the GPU: the moments m, v (one f32 tensor each
// per parameter, by HF name), and one optimizer step that clips by the global gradient norm.
// Nothing here reads back: the step returns the norm and the clip control as GPU tensors for
// the trainer's one readback.
//
//   norm  = ‖(g_1, …, g_n)‖₂ over all parameters, fixed order      (gradNorm)
//   guard = norm + 0·objective  in the norm slot: non-finite when the objective is
//   clip  = [scale, apply]                                          (clipFactor on guard)
//   every θ: AdamW(θ, g·scale, m, v, lr, t) unless apply == 0       (adamwStep)
//
// A step whose objective or gradient norm is non-finite is thus skipped on the GPU: weights,
// m and v stay as they were. `t` counts the updates actually applied (the trainer calls
// `applied` after reading `clip`), so bias corrections ignore skipped steps, as PyTorch's
// GradScaler does.
//
// The moments are keyed like model.params: a parameter held as row chunks has its moments in
// the same chunks (lib/model/gpu_weights.ts). AdamW works element by element and the norm
// sums over every tensor, so the step never needs to know; only the host copies (checkpoints)
// are whole tensors by HF name.

import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { adamwStep, clipFactor, gradNorm } from "../ops/adamw.ts";
import { add, scale } from "../ops/elementwise.ts";
import { sumInto } from "../ops/reduce.ts";
import { expectedTensors } from "../model/config.ts";
import { type GpuModel, readGpuWeights, uploadParameter } from "../model/gpu_weights.ts";

export interface AdamwSettings {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Clip the global gradient norm to this; 0: no clipping (only the finiteness check). */
  gradClip: number;
}

/** The recorded step's GPU results, for the trainer's readback (the caller releases them). */
export interface RecordedStep {
  /** [2]: sum of squares, global gradient norm (of the gradients alone). */
  norm: Tensor<"f32">;
  /** [2]: clip scale, apply (1: the update was made; 0: skipped, non-finite). */
  clip: Tensor<"f32">;
}

/** Host copies of the moments by HF name (what a checkpoint stores). */
export interface OptimizerState {
  m: Map<string, Float32Array<ArrayBuffer>>;
  v: Map<string, Float32Array<ArrayBuffer>>;
  /** Updates applied so far (the next one is t = updates + 1). */
  updates: number;
}

export class AdamW {
  private constructor(
    readonly settings: AdamwSettings,
    /** First moments, keyed like model.params, same shapes as the parameters' tensors. */
    readonly m: Map<string, Tensor<"f32">>,
    /** Second moments. */
    readonly v: Map<string, Tensor<"f32">>,
    /** Updates applied so far. */
    public updates: number,
  ) {}

  /** Fresh state: zero moments for every parameter of `model`. */
  static zeros(ctx: GpuContext, model: GpuModel, settings: AdamwSettings): AdamW {
    const m = new Map<string, Tensor<"f32">>();
    const v = new Map<string, Tensor<"f32">>();
    for (const [key, p] of model.params) {
      m.set(key, ctx.zeros(p.shape, "f32"));
      v.set(key, ctx.zeros(p.shape, "f32"));
    }
    return new AdamW(settings, m, v, 0);
  }

  /**
   * State uploaded from host copies (a checkpoint: whole tensors by HF name, split here into
   * the model's row chunks); every parameter must have m and v.
   */
  static fromState(
    ctx: GpuContext,
    model: GpuModel,
    settings: AdamwSettings,
    state: OptimizerState,
  ): AdamW {
    const m = new Map<string, Tensor<"f32">>();
    const v = new Map<string, Tensor<"f32">>();
    for (const [name, shape] of expectedTensors(model.config)) {
      const count = shape.reduce((a, b) => a * b, 1);
      for (const [which, host, gpu] of [["m", state.m, m], ["v", state.v, v]] as const) {
        const data = host.get(name);
        if (!data || data.length !== count) {
          for (const t of [...m.values(), ...v.values()]) t.release();
          throw new Error(`optimizer state: ${which} of "${name}" is missing or misshapen`);
        }
        uploadParameter(ctx, shape, model.chunks.get(name)!, data, gpu);
      }
    }
    return new AdamW(settings, m, v, state.updates);
  }

  /**
   * Records one step over every parameter of `model` with its gradient in `grads`, at learning
   * rate `lr`. objective: [1], the step's loss; a non-finite one skips the update.
   */
  record(
    ctx: GpuContext,
    model: GpuModel,
    grads: ReadonlyMap<string, Tensor<"f32">>,
    lr: number,
    objective: Tensor<"f32">,
  ): RecordedStep {
    // Every parameter tensor (row chunks included), in order: the norm's summation order.
    const keys = [...model.params.keys()];
    const gradList = keys.map((key) => {
      const g = grads.get(key);
      if (!g) throw new Error(`optimizer: no gradient for "${key}"`);
      return g;
    });
    const norm = gradNorm(ctx, gradList); // [2]

    // guard = [0, 0·objective]: 0, or NaN when the objective is not finite (0·±∞ = NaN).
    const zeroed = scale(ctx, objective.reshape([1]), 0); // [1]
    const guard = ctx.zeros([2], "f32");
    sumInto(ctx, zeroed, guard, 1);
    const guarded = add(ctx, norm, guard); // [2]: [sumsq, norm + guard]
    const { gradClip } = this.settings;
    const clip = clipFactor(ctx, guarded, gradClip > 0 ? gradClip : Infinity);
    for (const t of [zeroed, guard, guarded]) t.release();

    const s = this.settings;
    const t = this.updates + 1;
    for (const key of keys) {
      adamwStep(ctx, {
        param: model.params.get(key)!,
        grad: grads.get(key)!,
        m: this.m.get(key)!,
        v: this.v.get(key)!,
        lr,
        step: t,
        beta1: s.beta1,
        beta2: s.beta2,
        eps: s.eps,
        weightDecay: s.weightDecay,
        clip,
      });
    }
    return { norm, clip };
  }

  /** After reading the clip control back: counts the update if it was applied. */
  applied(apply: boolean): void {
    if (apply) this.updates++;
  }

  /** Reads the moments back as whole tensors by HF name (for a checkpoint). */
  async read(ctx: GpuContext, model: GpuModel): Promise<OptimizerState> {
    const m = await readGpuWeights(ctx, { ...model, params: this.m });
    const v = await readGpuWeights(ctx, { ...model, params: this.v });
    return { m, v, updates: this.updates };
  }

  release(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.release();
  }
}
