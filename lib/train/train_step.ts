// What one optimizer step of a method does, as an interface the trainer drives (trainer.ts),
// and the registry that maps a method to the code that builds its step.
//
// A TrainStep records forward + backward of one optimizer step's worth of data into `grads`
// (its grad_accumulation micro-batches all add into the same tensors) and returns the GPU
// scalars to log; the trainer then records the global norm, clipping and AdamW, and reads every
// logged scalar back in ONE readMany. The step never reads back its loss itself (an RL step
// reads back its rollouts, which it must, but not the loss).
//
//   NTP (ntp_step.ts): registered here under "ntp".
//   RL methods (rpt, rmt, rmt-*, grpo-math): the RL code calls registerStep(method, factory).

import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { GpuModel } from "../model/gpu_weights.ts";
import type { ModelFolder } from "../model/model_folder.ts";
import type { Method, MethodSettings } from "../rmt/methods.ts";
import type { RmtConfig } from "./config.ts";

/** A value in a metrics.jsonl line. */
export type MetricValue = number | string | boolean | null | number[];

/**
 * The per-step metrics a method reports, in metrics.jsonl order; the trainer writes null for
 * the ones a step does not give (NTP gives only loss_ntp). A step may add other names: they
 * follow these in the line.
 */
export const STEP_METRICS = [
  "loss_ntp",
  "loss_rl",
  "reward_mean",
  "match_rate",
  "reasoning_len",
  "budget",
  "tier_mix",
  "zero_adv_groups",
] as const;

export interface StepOutput {
  /**
   * [1] the objective whose gradient the step added into grads (L_NTP; L_RL + λ·L_NTP). A
   * non-finite value skips the optimizer update on the GPU, like a non-finite gradient norm.
   */
  objective: Tensor<"f32">;
  /**
   * [1] scalars to log, by metric name (e.g. loss_ntp, loss_rl); may include `objective`. A
   * non-finite value is written as null (JSON has no NaN); the line's `skipped` tells why.
   */
  gpuMetrics: Readonly<Record<string, Tensor<"f32">>>;
  /** Metrics already known on the host (reward_mean, budget, tier_mix, ...). */
  hostMetrics: Readonly<Record<string, MetricValue>>;
  /** Tokens the step ran through forward + backward (throughput). */
  tokens: number;
}

/**
 * One optimizer step's worth of forward + backward, recorded on the GPU. The trainer zeroes
 * `grads` before each call and owns (releases) every tensor of the returned StepOutput.
 */
export interface TrainStep {
  /** step: the optimizer step t, counting from 0 (of config.training.steps = T). */
  run(
    ctx: GpuContext,
    model: GpuModel,
    grads: ReadonlyMap<string, Tensor<"f32">>,
    step: number,
  ): Promise<StepOutput>;
  /** State a resumed run needs beyond (seed, step), saved in trainer_state.json (JSON). */
  saveState?(): unknown;
  /** Restores what saveState returned, on resume. */
  loadState?(state: unknown): void;
  /** Releases the step's own GPU buffers. */
  dispose?(): void;
}

/** What a step factory gets: everything resolved once before the first step. */
export interface StepSetup {
  ctx: GpuContext;
  config: RmtConfig;
  method: MethodSettings;
  /** The model on the GPU (weights already loaded: base model or checkpoint). */
  model: GpuModel;
  /**
   * The run's model folder, model.path (tokenizer, config, the weights training started from;
   * on resume the GPU weights come from a checkpoint instead, the folder stays model.path).
   */
  folder: ModelFolder;
  /** Where tokenised corpora are cached (lib/data/token_cache.ts). */
  cacheDir?: string;
  /** One line of progress for the user. */
  log: (line: string) => void;
}

export type StepFactory = (setup: StepSetup) => TrainStep | Promise<TrainStep>;

const factories = new Map<Method, StepFactory>();

/** Makes `method` trainable: the trainer builds its step with `factory`. Replaces an earlier one. */
export function registerStep(method: Method | readonly Method[], factory: StepFactory): void {
  for (const m of typeof method === "string" ? [method] : method) factories.set(m, factory);
}

/** The registered factory of `method`, or undefined. */
export function stepFactory(method: Method): StepFactory | undefined {
  return factories.get(method);
}
