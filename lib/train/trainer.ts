// The training loop, the same for every method (NTP, RPT, RMT and its ablations):
//
//   for t in [start, T):
//     lr = learningRate(t)
//     grads = 0
//     out = step.run(ctx, model, grads, t)         the method: grad_accumulation micro-batches
//                                                  of forward + backward into grads
//     norm, clip = AdamW over every parameter      global-norm clipping; a non-finite
//                                                  objective or norm skips it on the GPU
//     ONE readMany: objective, norm, clip, the step's logged scalars
//     metrics.jsonl line; checkpoint every checkpoint_interval steps and at the end
//
// Steps count from 0 (t, what the schedule, budget and curriculum see); metrics lines and
// checkpoints are named by the number of steps done (t + 1), so checkpoint step-N and the
// metrics lines with step ≤ N describe the same state.
//
// Resuming (--resume) loads the newest checkpoint that verifies (weights, AdamW moments, the
// step's counters), cuts metrics.jsonl back to its step, and continues: every batch is a pure
// function of (seed, t) and every kernel is deterministic, so the resumed run's metrics and
// final weights equal the uninterrupted run's bit for bit (the timing fields aside).
//
// metrics.jsonl keeps the timing fields the spec asks for (tokens_per_s, elapsed_s); they are
// the only ones that differ between two runs of the same config: compare runs with
// withoutTiming(record).
//
// SIGINT / SIGTERM finish the current step, write a checkpoint and return exit code 130 / 143.
// `training.max_bad_steps` non-finite steps in a row stop training with a
// TrainingStopped error; the checkpoints on disk are left as they are.
//
// Failures: bad input (the corpus, the tokenizer, the config against the model) shows while
// setting up or in the first step; a new run that fails before its first step is done leaves
// no run folder behind, so that fixing the input and running the same command again just
// works. A GPU error later (out of memory, device lost) ends the run with one line that names
// the last checkpoint, which is intact: a checkpoint is read off the GPU before anything of it
// is written, and written atomically.

import { gpu, type GpuContext } from "../gpu/context.ts";
import { GpuError, UserError } from "../gpu/errors.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { parameterCount } from "../model/config.ts";
import {
  type GpuModel,
  loadGpuWeights,
  readGpuWeights,
  releaseGpuModel,
} from "../model/gpu_weights.ts";
import { type ModelFolder, readModelFolder } from "../model/model_folder.ts";
import { releaseGrads, zeroGrads } from "../model/transformer.ts";
import { methodSettings } from "../rmt/methods.ts";
import { VERSION } from "../version.ts";
import {
  type CheckpointModel,
  CHECKPOINTS_DIR,
  type GoodCheckpoint,
  newestGoodCheckpoint,
  readOptimizerState,
  type TrainerStateFields,
  writeCheckpoint,
} from "./checkpoint.ts";
import { configToYaml, type RmtConfig } from "./config.ts";
import { MetricsLog, type MetricsRecord } from "./metrics.ts";
import { createMathStep } from "./math_step.ts";
import { createNtpStep } from "./ntp_step.ts";
import { createRlStep, RL_STEP_METHODS, rolloutFormat } from "./rl_step.ts";
import { AdamW } from "./optimizer.ts";
import { Progress } from "./progress.ts";
import {
  METRICS_FILE,
  openRunDir,
  pathExists,
  RUN_CONFIG_FILE,
  RUN_FILE,
  sha256Hex,
} from "./run_dir.ts";
import { learningRate } from "./schedule.ts";
import {
  type MetricValue,
  registerStep,
  STEP_METRICS,
  type StepFactory,
  stepFactory,
  type TrainStep,
} from "./train_step.ts";

export { registerStep } from "./train_step.ts";
export type { StepFactory, StepOutput, StepSetup, TrainStep } from "./train_step.ts";

registerStep("ntp", createNtpStep);
registerStep(RL_STEP_METHODS, createRlStep);
registerStep("grpo-math", createMathStep);

/** The metrics fields that depend on the machine's speed, not on the run. */
export const TIMING_FIELDS = ["tokens_per_s", "elapsed_s"] as const;

/** A metrics record without its timing fields (what equal runs agree on bit for bit). */
export function withoutTiming(record: MetricsRecord): MetricsRecord {
  const out: MetricsRecord = { ...record };
  for (const field of TIMING_FIELDS) delete out[field];
  return out;
}

/** Exit codes of a run stopped by a signal (128 + signal number, as shells report). */
export const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;

/** Training stopped because too many steps in a row were not finite. */
export class TrainingStopped extends UserError {
  constructor(message: string) {
    super(message, 1);
  }
}

export interface TrainOptions {
  config: RmtConfig;
  /** The run folder (created, or resumed with `resume`). */
  runDir: string;
  resume?: boolean;
  force?: boolean;
  /** Default: the process-wide GPU context. */
  ctx?: GpuContext;
  /** Token cache folder (default .cache/rmt under the working folder). */
  cacheDir?: string;
  /** Information lines (default console.log) and warnings (default console.error). */
  log?: (line: string) => void;
  warn?: (line: string) => void;
  /** The progress line on stderr (default true). */
  progress?: boolean;
  /** Stop cleanly on SIGINT / SIGTERM (default true). */
  handleSignals?: boolean;
  /** Aborting it stops like a signal: after the current step, with a checkpoint. */
  stop?: AbortSignal;
  /** Called after each step with t + 1 and the step's metrics (logged or not). */
  onStep?: (step: number, record: MetricsRecord) => void;
  /** Use this step instead of the method's registered one (tests). */
  stepFactory?: StepFactory;
}

export interface TrainResult {
  /** 0 when done (or stopped through `stop`), 130 after SIGINT, 143 after SIGTERM. */
  exitCode: number;
  stoppedBy: "done" | "SIGINT" | "SIGTERM" | "stop";
  /** Steps done. */
  step: number;
  /** The last checkpoint written (or resumed from), if any. */
  checkpoint: string | null;
  metricsPath: string;
}

/** A config key that is not in the schema yet, read if a future schema has it. */
/** The extra files of the model folder a checkpoint copies (a separate chat template). */
async function modelExtraFiles(folder: ModelFolder): Promise<Record<string, Uint8Array>> {
  const extra: Record<string, Uint8Array> = {};
  for (const name of ["chat_template.jinja"]) {
    try {
      extra[name] = await Deno.readFile(`${folder.dir}/${name}`);
    } catch {
      // absent: nothing to copy
    }
  }
  return extra;
}

/**
 * Removes what openRunDir wrote for a new run that failed before its first step (and the
 * folder itself when this run created it and nothing else is in it).
 */
async function removeNewRun(dir: string, createdDir: boolean): Promise<void> {
  for (const name of [RUN_FILE, RUN_CONFIG_FILE, METRICS_FILE, CHECKPOINTS_DIR]) {
    await Deno.remove(`${dir}/${name}`, { recursive: true }).catch(() => {});
  }
  if (createdDir) await Deno.remove(dir).catch(() => {}); // fails when not empty: kept
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Runs (or resumes) training as the config says; see the top of this file. */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const { config } = options;
  const log = options.log ?? ((line: string) => console.log(line));
  const warn = options.warn ?? ((line: string) => console.error(line));
  if (config.model.path === null) {
    throw new UserError("model.path: required (the model folder to train)");
  }
  const factory = options.stepFactory ?? stepFactory(config.method);
  if (factory === undefined) {
    throw new UserError(`method ${config.method}: the RL step is not available yet`);
  }
  const method = methodSettings(config);
  const maxBadSteps = config.training.max_bad_steps;
  const keepCheckpoints = config.training.keep_checkpoints;
  const yamlText = configToYaml(config);
  const configHash = await sha256Hex(yamlText);
  const { steps, checkpoint_interval: checkpointInterval, log_interval: logInterval } =
    config.training;

  // Read the base model before touching the run folder: a wrong model.path changes nothing.
  const base = await readModelFolder(config.model.path);
  // The tokens the prompt format needs (<think>, </think>, <|endoftext|>): a tokenizer without
  // them is refused now, not after the corpus is tokenised and its entropies computed.
  if ((RL_STEP_METHODS as readonly string[]).includes(config.method)) {
    rolloutFormat(config, method, base.tokenizer);
  }
  const ctx = options.ctx ?? await gpu();
  const createdDir = !(await pathExists(options.runDir));
  const run = await openRunDir(options.runDir, {
    config,
    yamlText,
    adapter: ctx.adapter,
    resume: options.resume ?? false,
    force: options.force ?? false,
  });
  if (run.configChange !== null) log(`resuming with a changed config (${run.configChange})`);
  if (run.adapterChange !== null) {
    log(
      `resuming on another adapter or kernels (${run.adapterChange}): the rest of the run sums ` +
        "in another order, so it will not match an uninterrupted run bit for bit",
    );
  }

  let resumed: GoodCheckpoint | null = null;
  if (run.resuming) {
    resumed = await newestGoodCheckpoint(run.dir, base.config, warn);
    if (resumed === null) log("no usable checkpoint in the run folder: starting from step 0");
  }
  const start = resumed?.state.step ?? 0;

  // Stop requests: a signal, or the caller's AbortSignal; honoured between steps.
  // A second signal exits at once (checkpoints are written atomically, metrics line by line).
  let stopRequest: TrainResult["stoppedBy"] | null = null;
  const onSignal = (signal: "SIGINT" | "SIGTERM") => {
    if (stopRequest === "SIGINT" || stopRequest === "SIGTERM") {
      warn(`second ${signal}: exiting now, without a checkpoint of this step`);
      Deno.exit(SIGNAL_EXIT_CODES[signal]);
    }
    stopRequest = signal;
    if (options.progress !== false && Deno.stderr.isTerminal()) warn(""); // end the progress line
    warn(
      `${signal}: stopping after the current step (or setup) with a checkpoint; again to exit at once`,
    );
  };
  const onSigint = () => onSignal("SIGINT");
  const onSigterm = () => onSignal("SIGTERM");
  const onAbort = () => (stopRequest ??= "stop");
  const handleSignals = options.handleSignals ?? true;
  const listen = (signal: Deno.Signal, handler: () => void, add: boolean) => {
    try {
      if (add) Deno.addSignalListener(signal, handler);
      else Deno.removeSignalListener(signal, handler);
    } catch {
      // not a signal this platform has (Windows: no SIGTERM)
    }
  };
  if (handleSignals) {
    listen("SIGINT", onSigint, true);
    listen("SIGTERM", onSigterm, true);
  }
  options.stop?.addEventListener("abort", onAbort);
  if (options.stop?.aborted) onAbort();

  // What the finally below releases, as it gets created.
  const owned: { model?: GpuModel; optimizer?: AdamW; metrics?: MetricsLog; step?: TrainStep } = {};
  let firstStepDone = false;
  let progress: Progress | null = null;
  let lastCheckpoint: string | null = resumed?.dir ?? null;
  try {
    const model = owned.model = await loadGpuWeights(
      ctx,
      base.config,
      resumed?.dir ?? base.weights,
    );
    const adamwSettings = {
      beta1: config.training.adam_beta1,
      beta2: config.training.adam_beta2,
      eps: config.training.adam_eps,
      weightDecay: config.training.weight_decay,
      gradClip: config.training.grad_clip,
    };
    const optimizer = owned.optimizer = resumed
      ? AdamW.fromState(
        ctx,
        model,
        adamwSettings,
        await readOptimizerState(resumed.dir, base.config),
      )
      : AdamW.zeros(ctx, model, adamwSettings);

    const metricsPath = `${run.dir}/${METRICS_FILE}`;
    const metrics = owned.metrics = await MetricsLog.open(metricsPath, start);
    let metricsLines = await countLines(metricsPath);
    if (resumed && metricsLines !== resumed.state.metrics_lines) {
      warn(
        `${metricsPath}: ${metricsLines} lines up to step ${start}, the checkpoint counted ` +
          `${resumed.state.metrics_lines}`,
      );
    }

    const checkpointModel: CheckpointModel = {
      config: base.config,
      weights: new Map(),
      tokenizerFiles: base.tokenizer,
      generationConfig: base.generationConfig ?? undefined,
      extraFiles: await modelExtraFiles(base),
    };

    const step = owned.step = await factory({
      ctx,
      config,
      method,
      model,
      folder: base,
      cacheDir: options.cacheDir,
      log,
    });
    if (resumed && resumed.state.step_state != null) step.loadState?.(resumed.state.step_state);

    log(
      `training ${config.method}: ${base.config.architecture} ` +
        `(${parameterCount(base.config).toLocaleString("en-US")} parameters) from ` +
        `${resumed ? resumed.dir : base.dir}, steps ${start}→${steps}, ` +
        `on ${ctx.adapter.name} → ${run.dir}`,
    );

    let tokens = resumed?.state.tokens ?? 0;
    let skippedSteps = resumed?.state.skipped_steps ?? 0;
    let badInARow = resumed?.state.bad_in_a_row ?? 0;
    const elapsedBefore = resumed?.state.elapsed_s ?? 0;
    const loopStart = performance.now();
    const elapsed = () => elapsedBefore + (performance.now() - loopStart) / 1000;
    let intervalTokens = 0;
    let intervalStart = performance.now();
    progress = options.progress === false
      ? null
      : new Progress(start > 0 ? `step ${start}+` : "step");
    const schedule = {
      lr: config.training.lr,
      schedule: config.training.schedule,
      warmupSteps: config.training.warmup_steps,
      minLrRatio: config.training.min_lr_ratio,
      totalSteps: steps,
    };

    const saveCheckpoint = async (done: number) => {
      const weights = await readGpuWeights(ctx, model);
      const state: TrainerStateFields = {
        step: done,
        seed: config.seed,
        method: config.method,
        config_sha256: configHash,
        data: { sampler: "ntpBatch(seed, step)", seed: config.seed, next_step: done },
        rng: null,
        optimizer_updates: optimizer.updates,
        metrics_lines: metricsLines,
        tokens,
        elapsed_s: round(elapsed(), 3),
        skipped_steps: skippedSteps,
        bad_in_a_row: badInARow,
        step_state: step.saveState?.() ?? null,
        rmt_version: VERSION,
      };
      lastCheckpoint = await writeCheckpoint(
        run.dir,
        { ...checkpointModel, weights },
        await optimizer.read(ctx, model),
        state,
        { keep: keepCheckpoints },
      );
    };

    // A stop asked for while setting up (loading, tokenising, the entropy pass): no step ran
    // in this process, so there is nothing new to save; a new run leaves no folder behind.
    if (stopRequest !== null && start < steps) {
      log(`stopped by ${stopRequest} before step ${start + 1}: nothing new to save`);
      if (!run.resuming) {
        owned.metrics?.close();
        owned.metrics = undefined;
        await removeNewRun(run.dir, createdDir);
      }
      const exitCode = stopRequest === "stop" ? 0 : SIGNAL_EXIT_CODES[stopRequest];
      return {
        exitCode,
        stoppedBy: stopRequest,
        step: start,
        checkpoint: lastCheckpoint,
        metricsPath,
      };
    }

    for (let t = start; t < steps; t++) {
      const done = t + 1;
      const lr = learningRate(t, schedule);
      const grads = zeroGrads(ctx, model);
      const out = await step.run(ctx, model, grads, t);
      const { norm, clip } = optimizer.record(ctx, model, grads, lr, out.objective);
      releaseGrads(grads);

      // The one readback of the step.
      const gpuNames = Object.keys(out.gpuMetrics);
      const read: Tensor<"f32">[] = [
        out.objective,
        norm,
        clip,
        ...gpuNames.map((n) => out.gpuMetrics[n]),
      ];
      const values = await ctx.readMany(read);
      for (const tensor of new Set(read)) tensor.release();
      const objective = values[0][0];
      const gradNorm = values[1][1];
      const applied = values[2][1] === 1;
      optimizer.applied(applied);
      if (applied) {
        badInARow = 0;
      } else {
        skippedSteps++;
        badInARow++;
      }
      tokens += out.tokens;
      intervalTokens += out.tokens;

      const stepMetrics: Record<string, MetricValue> = {};
      for (const name of STEP_METRICS) stepMetrics[name] = null;
      for (const [name, value] of Object.entries(out.hostMetrics)) stepMetrics[name] = value;
      gpuNames.forEach((name, i) => (stepMetrics[name] = values[3 + i][0]));
      const now = performance.now();
      const record: MetricsRecord = {
        step: done,
        lr,
        ...stepMetrics,
        grad_norm: gradNorm,
        skipped: !applied,
        skipped_steps: skippedSteps,
        tokens,
        tokens_per_s: round(intervalTokens / Math.max(1e-9, (now - intervalStart) / 1000), 1),
        elapsed_s: round(elapsed(), 3),
      };
      if (done % logInterval === 0 || done === steps) {
        await metrics.append(record);
        metricsLines++;
        intervalTokens = 0;
        intervalStart = now;
      }
      options.onStep?.(done, record);
      const reward = stepMetrics.reward_mean;
      progress?.update({
        step: done - start,
        total: steps - start,
        values: typeof reward === "number" ? { loss: objective, reward } : { loss: objective },
        tokensPerSecond: record.tokens_per_s as number,
      });

      if (badInARow >= maxBadSteps) {
        throw new TrainingStopped(
          `stopped at step ${done}: ${badInARow} steps in a row had a non-finite loss or ` +
            `gradient norm (training.max_bad_steps = ${maxBadSteps}); the last checkpoint, ` +
            `${lastCheckpoint ?? "none"}, is intact (lower training.lr, or check the data)`,
        );
      }
      const interval = checkpointInterval > 0 && done % checkpointInterval === 0;
      if (interval || done === steps || stopRequest !== null) await saveCheckpoint(done);
      firstStepDone = true;
      if (stopRequest !== null && done < steps) {
        progress?.done();
        log(`stopped by ${stopRequest} after step ${done}: checkpoint ${lastCheckpoint}`);
        const exitCode = stopRequest === "stop" ? 0 : SIGNAL_EXIT_CODES[stopRequest];
        return {
          exitCode,
          stoppedBy: stopRequest,
          step: done,
          checkpoint: lastCheckpoint,
          metricsPath,
        };
      }
    }
    progress?.done();
    if (start >= steps) log(`the run is already complete (${start} of ${steps} steps)`);
    else log(`done: ${steps} steps, ${skippedSteps} skipped; checkpoint ${lastCheckpoint}`);
    // A signal during the last step: the run is complete, but the caller (a pipeline, a
    // scheduler) asked to stop, and must hear it rather than start the next stage.
    const signal = stopRequest === "SIGINT" || stopRequest === "SIGTERM" ? stopRequest : null;
    return {
      exitCode: signal === null ? 0 : SIGNAL_EXIT_CODES[signal],
      stoppedBy: signal ?? "done",
      step: Math.max(start, steps),
      checkpoint: lastCheckpoint,
      metricsPath,
    };
  } catch (e) {
    progress?.done(); // the error goes on a line of its own
    if (!firstStepDone && !run.resuming) {
      owned.metrics?.close();
      owned.metrics = undefined;
      await removeNewRun(run.dir, createdDir);
    } else if (e instanceof GpuError) {
      throw new GpuError(
        `${e.message}; ` +
          (lastCheckpoint === null
            ? `no checkpoint of this run yet (rmt train --force starts ${run.dir} over)`
            : `the last checkpoint, ${lastCheckpoint}, is intact: rmt train --resume ` +
              "continues from it"),
      );
    }
    throw e;
  } finally {
    if (handleSignals) {
      listen("SIGINT", onSigint, false);
      listen("SIGTERM", onSigterm, false);
    }
    options.stop?.removeEventListener("abort", onAbort);
    owned.metrics?.close();
    owned.step?.dispose?.();
    owned.optimizer?.release();
    if (owned.model) releaseGpuModel(owned.model);
  }
}

async function countLines(path: string): Promise<number> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.split("\n").filter((line) => line.trim() !== "").length;
}
