// `rmt pipeline`: the paper's experiment as one resumable run (spec: "What the paper reports").
//
//   1. base         rmt init (a preset) or an existing model folder      <out>/base/
//   2. pre-train    NTP from it (optional)                                <out>/pretrain/
//   3. mid-train    every midtrain method from the base, same data and steps
//                                                                         <out>/midtrain/<label>/
//   4. evaluate     next-token accuracy with reasoning by tier, base + every method, on the
//                   same held-out positions, the base model as the entropy proxy
//                                                                         <out>/eval/next_token/
//   5. post-train   grpo-math from the base and from every mid-trained model
//                                                                         <out>/posttrain/<label>/
//   6. evaluate     math accuracy before and after post-training          <out>/eval/math/
//   7. results      results.json, results.md                              <out>/
//
// Resuming: every stage's outcome is a file (a model folder, a run folder with checkpoints, an
// evaluation JSON written atomically), and <out>/pipeline.json lists the finished stages. Run
// the same command again and it skips what is done and continues a training run from its
// newest checkpoint (as `rmt train --resume`), so a pipeline stopped by Ctrl-C, a crash or a
// full disk continues where it stopped. Every stage is deterministic, so the results equal an
// uninterrupted run's.

import { gpu, type GpuContext } from "../gpu/context.ts";
import { UserError } from "../gpu/errors.ts";
import { evaluateMath, type MathEvalResult } from "../eval/math_eval.ts";
import { type EvalResult, evaluateNextToken } from "../eval/next_token_eval.ts";
import { parameterCount } from "../model/config.ts";
import { initModel } from "../model/init.ts";
import { writeModelFolder } from "../model/model_folder.ts";
import type { PresetArchitecture, PresetSize } from "../model/presets.ts";
import { resolveConfig, type RmtConfig } from "../train/config.ts";
import { formatDuration } from "../train/progress.ts";
import { train } from "../train/trainer.ts";
import { pathExists, sha256Hex } from "../train/run_dir.ts";
import type { PipelineConfig } from "./pipeline_config.ts";
import {
  ablationTable,
  nextTokenTable,
  type PipelineResults,
  postTrainingTable,
  resultsMarkdown,
} from "./results.ts";

export const STATE_FILE = "pipeline.json";

/** What <out>/pipeline.json keeps between runs. */
interface PipelineState {
  pipeline: string;
  /** Finished stages → their output (a model folder, or an evaluation file). */
  done: Record<string, string>;
  /** Seconds each stage took (summed over runs). */
  seconds: Record<string, number>;
  /**
   * What each finished stage ran with (a hash of its resolved config, or its settings): a
   * continued run whose settings differ (a config, --steps-scale, --samples) is refused.
   */
  fingerprints?: Record<string, string>;
}

export interface PipelineOptions {
  config: PipelineConfig;
  out: string;
  ctx?: GpuContext;
  log?: (line: string) => void;
  /** A description of the machine for results.md. */
  machine?: string;
  /** The training progress line (default true). */
  progress?: boolean;
  /** Multiplies every training stage's steps (quick checks; default 1). */
  stepsScale?: number;
}

export interface PipelineOutcome {
  /** 0 when finished; a training run's signal exit code when it was stopped. */
  exitCode: number;
  results: PipelineResults | null;
}

/** A training stage stopped by a signal. */
class Stopped extends Error {
  constructor(readonly exitCode: number) {
    super("stopped");
  }
}

/** Writes JSON atomically (temp name, then rename). */
async function writeJson(path: string, value: unknown): Promise<void> {
  await Deno.writeTextFile(`${path}.tmp`, JSON.stringify(value, null, 1) + "\n");
  await Deno.rename(`${path}.tmp`, path);
}

async function readState(out: string, name: string): Promise<PipelineState> {
  const path = `${out}/${STATE_FILE}`;
  if (!(await pathExists(path))) {
    if (await pathExists(out)) {
      for await (const _ of Deno.readDir(out)) {
        throw new UserError(`--out ${out}: exists and is not a pipeline folder (no ${STATE_FILE})`);
      }
    }
    return { pipeline: name, done: {}, seconds: {}, fingerprints: {} };
  }
  let state: PipelineState;
  try {
    state = JSON.parse(await Deno.readTextFile(path));
    if (typeof state.pipeline !== "string" || typeof state.done !== "object") throw new Error();
  } catch {
    throw new UserError(`${path}: not a pipeline state file (remove it to start the folder over)`);
  }
  if (state.pipeline !== name) {
    throw new UserError(
      `--out ${out}: holds pipeline '${state.pipeline}', not '${name}' (use another folder)`,
    );
  }
  return state;
}

/** Runs (or continues) a pipeline; see the top of this file. */
export async function runPipeline(options: PipelineOptions): Promise<PipelineOutcome> {
  const { config: p } = options;
  const out = options.out.replace(/\/+$/, "") || ".";
  const log = options.log ?? ((line: string) => console.log(line));
  const indent = (line: string) => log(`  ${line}`);
  const scale = options.stepsScale ?? 1;
  const state = await readState(out, p.name);
  await Deno.mkdir(out, { recursive: true });
  await writeJson(`${out}/${STATE_FILE}`, state);
  const save = () => writeJson(`${out}/${STATE_FILE}`, state);
  const ctx = options.ctx ?? await gpu();
  const cacheDir = `${out}/cache`;

  /**
   * Runs a stage once: skipped when done (its output still there) with the same settings
   * (`fingerprint`); done with other settings, refused (its results would mix with the new
   * ones); timed and recorded. `partial`: what a half-done run of it leaves (a training run's
   * run.json).
   */
  const stage = async (
    name: string,
    title: string,
    fingerprint: string,
    run: () => Promise<string>,
    partial?: string,
  ) => {
    const fingerprints = state.fingerprints ??= {};
    const done = state.done[name];
    // Recorded when the stage starts: a stage run, or begun and left half done (a training run
    // folder to continue), with other settings is refused; one that failed before leaving
    // anything may run again with new ones.
    const finished = done !== undefined && await pathExists(done);
    const begun = finished || (partial !== undefined && await pathExists(partial));
    if (begun && (fingerprints[name] ?? fingerprint) !== fingerprint) {
      const what = finished ? done : partial!.slice(0, partial!.lastIndexOf("/"));
      throw new UserError(
        `stage ${name} of ${out} was ${finished ? "run" : "started"} with other settings than ` +
          `the pipeline now gives (a config changed): restore them, remove ${what} to run the ` +
          "stage again, or use a new --out",
      );
    }
    if (finished) {
      log(`[done] ${name}: ${done}`);
      return done!;
    }
    fingerprints[name] = fingerprint;
    await save();
    log(`\n[${name}] ${title}`);
    const t0 = performance.now();
    const output = await run();
    const seconds = (performance.now() - t0) / 1000;
    state.seconds[name] = (state.seconds[name] ?? 0) + seconds;
    state.done[name] = output;
    await save();
    indent(`${name}: ${formatDuration(seconds)} → ${output}`);
    return output;
  };

  /** The resolved config of a training stage: the file, model.path, the steps scale. */
  const trainingConfig = async (file: string, modelPath: string) => {
    const overrides = [`model.path=${modelPath}`];
    if (scale !== 1) {
      const { training } = (await resolveConfig(file, overrides)).config;
      const steps = Math.max(2, Math.round(training.steps * scale));
      overrides.push(
        `training.steps=${steps}`,
        `training.warmup_steps=${Math.min(steps, Math.round(training.warmup_steps * scale))}`,
      );
    }
    return await resolveConfig(file, overrides);
  };

  /**
   * A training stage: a new run, or the run folder continued from its newest checkpoint;
   * returns the final checkpoint.
   */
  const trainStage = async (
    name: string,
    title: string,
    file: string,
    modelPath: string,
    runDir: string,
  ) => {
    const { config, yamlText } = await trainingConfig(file, modelPath);
    return await stage(name, title, await sha256Hex(yamlText), async () => {
      const resume = await pathExists(`${runDir}/run.json`);
      if (resume) indent(`continuing ${runDir} from its newest checkpoint`);
      await Deno.mkdir(runDir.slice(0, runDir.lastIndexOf("/")), { recursive: true });
      const result = await train({
        config,
        runDir,
        resume,
        ctx,
        cacheDir,
        log: indent,
        progress: options.progress,
      });
      if (result.exitCode !== 0 || result.stoppedBy !== "done" || result.checkpoint === null) {
        throw new Stopped(result.exitCode || 130);
      }
      return result.checkpoint;
    }, `${runDir}/run.json`);
  };

  try {
    // 1–2. The base model.
    let base: string;
    if (p.base.init !== null) {
      const init = p.base.init;
      const title = `rmt init: ${init.arch} ${init.preset}`;
      base = await stage("init", title, JSON.stringify(init), async () => {
        const dir = `${out}/base`;
        const model = initModel({
          arch: init.arch as PresetArchitecture,
          preset: init.preset as PresetSize,
          seed: init.seed,
        });
        await writeModelFolder(dir, {
          config: model.config,
          weights: model.weights,
          tokenizerFiles: model.tokenizerFiles,
        });
        indent(`${parameterCount(model.modelConfig).toLocaleString("en-US")} parameters`);
        return dir;
      });
    } else {
      base = p.base.model!;
    }
    if (p.base.pretrain !== null) {
      const title = `pre-training (${p.base.pretrain})`;
      base = await trainStage("pretrain", title, p.base.pretrain, base, `${out}/pretrain`);
    }

    // 3. Mid-training, every method from the same base.
    const models: [string, string][] = [["base", base]];
    for (const [label, file] of p.midtrain) {
      const model = await trainStage(
        `midtrain/${label}`,
        `mid-training: ${label} (${file})`,
        file,
        base,
        `${out}/midtrain/${label}`,
      );
      models.push([label, model]);
    }

    // 4. Next-token evaluation on the same positions, the base model as the proxy; the paper
    // format's texts as the (first) mid-training config has them.
    const e = p.eval;
    const { prompt: trained } = (await trainingConfig(p.midtrain[0][1], base)).config;
    const evalPrompt = {
      format: e.format,
      maxAnswerTokens: e.max_answer_tokens,
      budget: e.budget,
      instruction: trained.paper_instruction,
      budgetSentence: trained.paper_budget_sentence,
      chatTemplate: trained.chat_template,
    };
    const nextToken: [string, EvalResult][] = [];
    for (const [label, model] of models) {
      const settings = JSON.stringify({ model, proxy: base, ...e, prompt: evalPrompt });
      const file = await stage(
        `eval/next_token/${label}`,
        `next-token evaluation: ${label}`,
        settings,
        async () => {
          const result = await evaluateNextToken(ctx, {
            modelDir: model,
            proxyDir: base,
            dataPath: e.data,
            samples: e.samples,
            seed: e.seed,
            maxReasoning: e.max_reasoning_tokens,
            temperature: e.temperature,
            prompt: evalPrompt,
            log: indent,
          });
          const path = `${out}/eval/next_token/${label}.json`;
          await Deno.mkdir(`${out}/eval/next_token`, { recursive: true });
          await writeJson(path, result);
          indent(
            `avg ${pct(result.withReasoning.average)}, all ${
              pct(result.withReasoning.all.accuracy)
            }`,
          );
          return path;
        },
      );
      nextToken.push([label, JSON.parse(await Deno.readTextFile(file)) as EvalResult]);
    }

    // 5–6. Post-training and the math evaluation before and after it.
    const postTraining: [string, MathEvalResult, MathEvalResult][] = [];
    if (p.posttrain !== null && p.mathEval !== null) {
      const m = p.mathEval;
      const posttrain: RmtConfig =
        (await resolveConfig(p.posttrain, [`model.path=${base}`])).config;
      const mathSettings = {
        dataPath: m.data,
        samples: m.samples,
        seed: m.seed,
        maxNewTokens: m.max_new_tokens,
        temperature: m.temperature,
        format: posttrain.prompt.format,
        template: posttrain.math.prompt,
        instruction: posttrain.math.instruction,
        chatTemplate: posttrain.prompt.chat_template,
      };
      const mathEval = (label: string, model: string, when: string) =>
        stage(
          `eval/math/${label}-${when}`,
          `math evaluation ${when}: ${label}`,
          JSON.stringify({ model, ...mathSettings }),
          async () => {
            const result = await evaluateMath(ctx, { modelDir: model, ...mathSettings });
            const path = `${out}/eval/math/${label}-${when}.json`;
            await Deno.mkdir(`${out}/eval/math`, { recursive: true });
            await writeJson(path, result);
            indent(`accuracy ${pct(result.accuracy)}, parse rate ${pct(result.parse_rate)}`);
            return path;
          },
        );
      const read = async (path: string) =>
        JSON.parse(await Deno.readTextFile(path)) as MathEvalResult;
      for (const [label, model] of models) {
        const before = await mathEval(label, model, "before");
        const after = await trainStage(
          `posttrain/${label}`,
          `post-training (grpo-math): ${label}`,
          p.posttrain,
          model,
          `${out}/posttrain/${label}`,
        );
        const afterEval = await mathEval(label, after, "after");
        postTraining.push([label, await read(before), await read(afterEval)]);
      }
    }

    // 7. The results.
    const labels = new Map(nextToken);
    const main = nextToken.filter(([label]) => !p.ablations.includes(label) || label === "rmt");
    const results: PipelineResults = {
      pipeline: p.name,
      created: new Date().toISOString(),
      machine: `${options.machine ?? "this machine"}; WebGPU adapter ${ctx.adapter.name} ` +
        `(${ctx.adapter.backend})`,
      tables: [
        nextTokenTable(main),
        ...(p.ablations.length > 0
          ? [ablationTable(p.ablations.map((l) => [l, labels.get(l)!] as [string, EvalResult]))]
          : []),
        ...(postTraining.length > 0 ? [postTrainingTable(postTraining)] : []),
      ],
      runs: [
        ...(p.base.pretrain !== null
          ? [{ name: "pretrain", dir: "pretrain", group: "pre-training" }]
          : []),
        ...p.midtrain.map(([label]) => ({
          name: label,
          dir: `midtrain/${label}`,
          group: "mid-training",
        })),
        ...(p.posttrain !== null
          ? models.map(([label]) => ({
            name: `post ${label}`,
            dir: `posttrain/${label}`,
            group: "post-training (grpo-math)",
          }))
          : []),
      ],
      stage_seconds: state.seconds,
    };
    await writeJson(`${out}/results.json`, results);
    await Deno.writeTextFile(`${out}/results.md.tmp`, resultsMarkdown(results));
    await Deno.rename(`${out}/results.md.tmp`, `${out}/results.md`);
    log(`\nresults: ${out}/results.md, ${out}/results.json`);
    return { exitCode: 0, results };
  } catch (e) {
    if (e instanceof Stopped) {
      log(`pipeline stopped; run the same command again to continue (${out}/${STATE_FILE})`);
      return { exitCode: e.exitCode, results: null };
    }
    throw e;
  }
}

const pct = (x: number | null) => (x === null ? "–" : `${(100 * x).toFixed(2)}%`);
