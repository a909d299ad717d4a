// Benchmark of one full NTP training step, as the trainer runs it (lib/train/trainer.ts):
//
//   grads = 0; NtpStep.run (forward, loss, backward); AdamW.record (global norm, clip,
//   update of every parameter); ONE readMany of objective, norm and clip.
//
// on B sequences of T tokens drawn from a random token stream. One warm-up step (pipeline
// compilation, buffer pool) is excluded; each timed step is measured on its own, from the first
// recorded dispatch to the end of its readback, and the median is reported.
//
//   ./rmtw run -A bench/train_step.ts [--quick]

import process from "node:process";
import type { GpuContext } from "../lib/gpu/context.ts";
import { parameterCount } from "../lib/model/config.ts";
import { loadGpuWeights, releaseGpuModel } from "../lib/model/gpu_weights.ts";
import { readModelFolder } from "../lib/model/model_folder.ts";
import { releaseGrads, zeroGrads } from "../lib/model/transformer.ts";
import { Rng } from "../lib/ref/random.ts";
import { NtpStep } from "../lib/train/ntp_step.ts";
import { AdamW } from "../lib/train/optimizer.ts";
import { median, overPresets, round, runAlone } from "./models.ts";

/** The shapes both rmt and the PyTorch reference time (bench/torch_reference.py). */
export const TRAIN_SHAPE = { batchSize: 8, seqLen: 128 };
/** AdamW as the trainer's defaults, except a learning rate that visibly moves the loss. */
export const TRAIN_ADAMW = { lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };
export const TRAIN_GRAD_CLIP = 1.0;

export interface TrainStepOptions {
  quick?: boolean;
  batchSize?: number;
  seqLen?: number;
  /** Timed steps (default 5, quick 2). */
  steps?: number;
}

export interface TrainStepResult {
  preset: string;
  parameters: number;
  batchSize: number;
  seqLen: number;
  /** Tokens through forward + backward per step (B·T). */
  tokensPerStep: number;
  steps: number;
  /** Median wall-clock milliseconds of one step, and tokens per second at that median. */
  ms: number;
  tokensPerSecond: number;
  minMs: number;
  maxMs: number;
  /** Process CPU milliseconds per step (lavapipe runs the kernels on this process's threads). */
  cpuMs: number;
  dispatchesPerStep: number;
  submitsPerStep: number;
  readbacksPerStep: number;
  /** The loss of the first and the last timed step (random data: it must only be finite). */
  lossFirst: number;
  lossLast: number;
}

/** One model folder: load, warm up, time `steps` training steps. */
export async function benchTrainStepModel(
  ctx: GpuContext,
  dir: string,
  preset: string,
  options: TrainStepOptions = {},
): Promise<TrainStepResult> {
  const { batchSize = TRAIN_SHAPE.batchSize, seqLen = TRAIN_SHAPE.seqLen } = options;
  const steps = options.steps ?? (options.quick ? 2 : 5);
  const folder = await readModelFolder(dir);
  const { config } = folder;
  const model = await loadGpuWeights(ctx, config, folder.weights);
  const { lr, ...adamw } = TRAIN_ADAMW;
  const optimizer = AdamW.zeros(ctx, model, { ...adamw, gradClip: TRAIN_GRAD_CLIP });
  const rng = new Rng(7);
  const stream = Uint32Array.from({ length: 64 * 1024 }, () => rng.int(config.vocabSize));
  const ntp = new NtpStep(stream, { batchSize, microBatches: 1, seqLen, seed: 0 });

  /** One trainer step; returns the loss (read back with the norm and the clip control). */
  const step = async (t: number): Promise<number> => {
    const grads = zeroGrads(ctx, model);
    const out = await ntp.run(ctx, model, grads, t);
    const { norm, clip } = optimizer.record(ctx, model, grads, lr, out.objective);
    releaseGrads(grads);
    const [loss, , applied] = await ctx.readMany([out.objective, norm, clip]);
    optimizer.applied(applied[1] === 1);
    for (const tensor of [out.objective, norm, clip]) tensor.release();
    return loss[0];
  };

  try {
    await step(0); // warm-up
    const before = { ...ctx.counts };
    const cpuStart = process.cpuUsage();
    const times: number[] = [];
    const losses: number[] = [];
    for (let t = 1; t <= steps; t++) {
      const start = performance.now();
      losses.push(await step(t));
      times.push(performance.now() - start);
    }
    const cpu = process.cpuUsage(cpuStart);
    const per = (key: keyof GpuContext["counts"]) => (ctx.counts[key] - before[key]) / steps;
    const ms = median(times);
    return {
      preset,
      parameters: parameterCount(config),
      batchSize,
      seqLen,
      tokensPerStep: batchSize * seqLen,
      steps,
      ms: round(ms, 1),
      tokensPerSecond: round((batchSize * seqLen) / (ms / 1000), 1),
      minMs: round(Math.min(...times), 1),
      maxMs: round(Math.max(...times), 1),
      cpuMs: round((cpu.user + cpu.system) / 1000 / steps, 1),
      dispatchesPerStep: per("dispatches"),
      submitsPerStep: per("submits"),
      readbacksPerStep: per("readbacks"),
      lossFirst: round(losses[0], 4),
      lossLast: round(losses[losses.length - 1], 4),
    };
  } finally {
    optimizer.release();
    releaseGpuModel(model);
  }
}

/** Every preset of `models` (preset → model folder). */
export function benchTrainStep(
  ctx: GpuContext,
  models: Readonly<Record<string, string>>,
  options: TrainStepOptions = {},
): Promise<{ adapter: string; results: TrainStepResult[] }> {
  return overPresets(ctx, models, options, benchTrainStepModel);
}

if (import.meta.main) await runAlone(benchTrainStep);
