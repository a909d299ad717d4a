// `rmt demo`: the main job a new user runs first: the whole method, end to end, on a model
// small enough for a CPU (about 5 minutes on two CPU cores without a GPU):
//
//   1. kernel self-check         every kernel family against its TypeScript reference
//   2. rmt init                  a tiny qwen2 model (0.16M parameters) and its BPE tokenizer
//   3. pre-training              NTP on data/math/train.jsonl with empty think blocks
//                                (configs/demo/pretrain.yaml)
//   4. mid-training              from the pre-trained model: RMT (configs/demo/rmt.yaml) and the
//                                NTP baseline with the same data and steps (configs/demo/ntp.yaml)
//   5. evaluation                base / NTP / RMT on the same held-out positions of
//                                data/math/heldout.jsonl, the base model as the entropy proxy
//   6. summary                   the table, RMT's rollouts early vs late, stage times
//
// It calls the library (initModel, train, evaluateNextToken), not subprocesses, and its configs
// go through the normal config resolution and checks; the run folder gets everything:
//
//   <out>/base/  pretrain/  rmt/  ntp/   model folder, then three `rmt train` run folders
//   <out>/data/                          the mid-training corpus (and the shipped data files,
//                                        when rmt runs outside the repository)
//   <out>/cache/                         token and entropy caches
//   <out>/eval.json  summary.txt         the three evaluations; the summary as printed
//
// The configs are text imports, so a bundled rmt carries them (and the shipped corpus).

import { parseArgs } from "node:util";
import shippedHeldoutJsonl from "../../data/math/heldout.jsonl" with { type: "text" };
import shippedTrainJsonl from "../../data/math/train.jsonl" with { type: "text" };
import midtrainYaml from "../../configs/demo/midtrain.yaml" with { type: "text" };
import ntpYaml from "../../configs/demo/ntp.yaml" with { type: "text" };
import pretrainYaml from "../../configs/demo/pretrain.yaml" with { type: "text" };
import rmtYaml from "../../configs/demo/rmt.yaml" with { type: "text" };
import { type EvalResult, evaluateNextToken } from "../eval/next_token_eval.ts";
import { formatEvalTable } from "../eval/results_table.ts";
import { earlyLate, formatEarlyLate } from "../eval/training_summary.ts";
import { gpu, type GpuContext } from "../gpu/context.ts";
import { UserError } from "../gpu/errors.ts";
import { parameterCount } from "../model/config.ts";
import { initModel } from "../model/init.ts";
import { writeModelFolder } from "../model/model_folder.ts";
import { resolveConfigText, type RmtConfig } from "../train/config.ts";
import { readMetrics } from "../train/metrics.ts";
import { formatDuration } from "../train/progress.ts";
import { train } from "../train/trainer.ts";
import { pathExists } from "../train/run_dir.ts";
import { integerOption, numberOption } from "./generate.ts";
import { formatInfo } from "./info.ts";
import { formatChecks, runKernelChecks } from "./selfcheck.ts";

export const demoHelp = `rmt demo [options]

The whole method on a model small enough for a CPU (about 5 minutes on two CPU cores):
  1. kernel self-check: every kernel family against its TypeScript reference
  2. rmt init: a tiny qwen2 model (0.16M parameters) with a BPE tokenizer
  3. pre-training: NTP on data/math/train.jsonl (configs/demo/pretrain.yaml)
  4. mid-training from the pre-trained model: RMT (configs/demo/rmt.yaml) and, as the
     baseline, NTP continued pre-training with the same data and steps (configs/demo/ntp.yaml)
  5. evaluation of base / NTP / RMT on the same held-out positions of
     data/math/heldout.jsonl, the base model as the entropy proxy (as rmt eval does)
  6. a summary: the results table, RMT's reward and match rate early vs late, the times
Everything goes into the run folder: the models, each run's metrics.jsonl, eval.json and
summary.txt.

Options:
  --out DIR          the run folder (default: runs/demo)
  --force            replace an existing demo run folder (default: off)
  --steps-scale F    multiply every stage's training steps (and the mid-training corpus) by
                     F in (0, 10], e.g. 0.05 for a quick check of every stage (default: 1)
  --samples N        held-out positions per evaluation (default: the configs' eval.samples)
  --seed S           seed of the self-check inputs (default: 1)
  --help             this help`;

/** The demo's configs by the path they have in the repository (extends resolves among them). */
const DEMO_CONFIGS: Readonly<Record<string, string>> = {
  "configs/demo/pretrain.yaml": pretrainYaml,
  "configs/demo/midtrain.yaml": midtrainYaml,
  "configs/demo/rmt.yaml": rmtYaml,
  "configs/demo/ntp.yaml": ntpYaml,
};

/** The shipped data files, where the configs name them. */
const SHIPPED_DATA: Readonly<Record<string, string>> = {
  "data/math/train.jsonl": shippedTrainJsonl,
  "data/math/heldout.jsonl": shippedHeldoutJsonl,
};
const HELDOUT = "data/math/heldout.jsonl";

/** Documents of the mid-training corpus at --steps-scale 1 (the first of train.jsonl). */
const MIDTRAIN_DOCUMENTS = 1000;
/** Marks a run folder as the demo's, so that --force never deletes anything else. */
const MARKER = "demo.json";

/** Resolves one of the demo configs with overrides (the normal resolution and checks). */
async function demoConfig(name: string, overrides: readonly string[]): Promise<RmtConfig> {
  const source = `configs/demo/${name}.yaml`;
  const read = (file: string) =>
    file in DEMO_CONFIGS
      ? Promise.resolve(DEMO_CONFIGS[file])
      : Promise.reject(new UserError(`${file}: not one of the demo configs`));
  return (await resolveConfigText(DEMO_CONFIGS[source], source, overrides, read)).config;
}

/** training.steps and warmup_steps times the scale (at least 2 steps: a first and a last). */
function scaledSteps(config: RmtConfig, scale: number): string[] {
  const steps = Math.max(2, Math.round(config.training.steps * scale));
  const warmup = Math.min(steps, Math.round(config.training.warmup_steps * scale));
  return [`training.steps=${steps}`, `training.warmup_steps=${warmup}`];
}

/** Creates the run folder; an existing one only with --force, and only if it is the demo's. */
async function prepareRunFolder(out: string, force: boolean): Promise<void> {
  if (await pathExists(out)) {
    if (!force) {
      throw new UserError(`--out ${out} already exists (pass --force to replace it)`);
    }
    const entries = [];
    for await (const entry of Deno.readDir(out)) entries.push(entry.name);
    if (entries.length > 0 && !entries.includes(MARKER)) {
      throw new UserError(
        `--out ${out} is not an rmt demo run folder (no ${MARKER}): not replacing it`,
      );
    }
    await Deno.remove(out, { recursive: true });
  }
  await Deno.mkdir(`${out}/data`, { recursive: true });
  await Deno.writeTextFile(
    `${out}/${MARKER}`,
    JSON.stringify({ started: new Date().toISOString() }) + "\n",
  );
}

/** A shipped data file: where the config names it, or the embedded copy written into data/. */
async function dataFile(path: string, out: string): Promise<string> {
  if (await pathExists(path)) return path;
  if (!(path in SHIPPED_DATA)) throw new UserError(`${path}: no such data file`);
  const copy = `${out}/data/${path.slice(path.lastIndexOf("/") + 1)}`;
  await Deno.writeTextFile(copy, SHIPPED_DATA[path]);
  return copy;
}

/** The first `documents` lines of a JSONL file, written to `path`. */
async function writeSubset(source: string, path: string, documents: number): Promise<number> {
  const lines = (await Deno.readTextFile(source)).split("\n").filter((l) => l.trim() !== "");
  const kept = lines.slice(0, documents);
  await Deno.writeTextFile(path, kept.join("\n") + "\n");
  return kept.length;
}

const pct = (x: number | null) => (x === null ? "—" : `${(100 * x).toFixed(1)}%`);

/** One line of what changed from the base model to a mid-trained one, in numbers. */
function changeLine(label: string, base: EvalResult, after: EvalResult): string {
  const ppl = (r: EvalResult) => r.perplexity.perplexity?.toFixed(3) ?? "—";
  const b = base.withReasoning;
  const a = after.withReasoning;
  return `${label} vs base: accuracy with reasoning (all positions) ${pct(b.all.accuracy)} → ` +
    `${pct(a.all.accuracy)}, parse rate ${pct(b.parseRate)} → ${pct(a.parseRate)}, ` +
    `reasoning ${b.reasoningTokens.toFixed(1)} → ${a.reasoningTokens.toFixed(1)} tokens, ` +
    `argmax accuracy ${pct(base.plain.all.accuracy)} → ${pct(after.plain.all.accuracy)}, ` +
    `perplexity ${ppl(base)} → ${ppl(after)}`;
}

interface Stage {
  name: string;
  seconds: number;
}

export async function demo(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: "string", default: "runs/demo" },
      force: { type: "boolean", default: false },
      "steps-scale": { type: "string", default: "1" },
      samples: { type: "string" },
      seed: { type: "string", default: "1" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    console.log(demoHelp);
    return 0;
  }
  const started = performance.now();
  const out = values.out.replace(/\/+$/, "") || ".";
  const scale = numberOption("--steps-scale", values["steps-scale"], 0, 10, true);
  const checkSeed = integerOption("--seed", values.seed, 0, 2 ** 32 - 1);
  const samples = values.samples === undefined
    ? undefined
    : integerOption("--samples", values.samples, 1, 1_000_000);
  // Resolve (and check) every config before doing anything.
  const pretrainBase = await demoConfig("pretrain", []);
  const rmtBase = await demoConfig("rmt", []);
  const ntpBase = await demoConfig("ntp", []);
  if (rmtBase.training.steps !== ntpBase.training.steps) {
    throw new UserError("configs/demo: rmt.yaml and ntp.yaml must train for the same steps");
  }
  await prepareRunFolder(out, values.force);

  const stages: Stage[] = [];
  const total = 6;
  const stage = async <T>(n: number, name: string, title: string, run: () => Promise<T>) => {
    console.log(`\n[${n}/${total}] ${title}`);
    const t0 = performance.now();
    const result = await run();
    const seconds = (performance.now() - t0) / 1000;
    stages.push({ name, seconds });
    console.log(`  ${name}: ${formatDuration(seconds)}`);
    return result;
  };
  const indent = (line: string) => console.log(`  ${line}`);

  // 1. The adapter and the kernel self-check.
  const ctx: GpuContext = await gpu();
  const failed = await stage(1, "self-check", "kernel self-check (GPU vs reference)", async () => {
    console.log(formatInfo(ctx.adapter).split("\n").map((l) => `  ${l}`).join("\n"));
    const results = await runKernelChecks(ctx, checkSeed);
    console.log(formatChecks(results));
    const bad = results.filter((r) => !r.passed).length;
    console.log(`  ${results.length - bad} passed, ${bad} failed`);
    return bad;
  });
  if (failed > 0) {
    console.error("rmt demo: the kernel self-check failed: not training on a broken GPU path");
    return 1;
  }

  // 2. A new model.
  const baseDir = `${out}/base`;
  await stage(2, "init", "rmt init: tiny qwen2 model and BPE tokenizer", async () => {
    const model = initModel({ arch: "qwen2", preset: "tiny", seed: 1 });
    await writeModelFolder(baseDir, {
      config: model.config,
      weights: model.weights,
      tokenizerFiles: model.tokenizerFiles,
    });
    indent(
      `${model.modelConfig.architecture}: ` +
        `${parameterCount(model.modelConfig).toLocaleString("en-US")} parameters, vocab ` +
        `${model.tokenizerFiles.vocabSize} tokens → ${baseDir}`,
    );
  });

  // 3. Pre-training.
  const cacheDir = `${out}/cache`;
  const trainFile = await dataFile(pretrainBase.data.train!, out);
  const pretrainConfig = await demoConfig("pretrain", [
    `model.path=${baseDir}`,
    `data.train=${trainFile}`,
    ...scaledSteps(pretrainBase, scale),
  ]);
  const runTrain = async (config: RmtConfig, runDir: string) => {
    const result = await train({ config, runDir, ctx, cacheDir, log: indent });
    if (result.exitCode !== 0 || result.checkpoint === null) {
      throw new DemoStopped(result.exitCode, runDir);
    }
    return result.checkpoint;
  };
  let pretrained: string, rmtModel: string, ntpModel: string;
  try {
    pretrained = await stage(
      3,
      "pre-training",
      `pre-training: NTP, ${pretrainConfig.training.steps} steps × ` +
        `${pretrainConfig.training.batch_size} × ${pretrainConfig.model.max_context} tokens ` +
        `on ${trainFile}`,
      () => runTrain(pretrainConfig, `${out}/pretrain`),
    );

    // 4. Mid-training: RMT, then the NTP baseline, from the pre-trained model.
    const midtrainFile = `${out}/data/midtrain.jsonl`;
    const documents = await writeSubset(
      trainFile,
      midtrainFile,
      Math.max(100, Math.round(MIDTRAIN_DOCUMENTS * scale)),
    );
    const midtrain = [
      `model.path=${pretrained}`,
      `data.train=${midtrainFile}`,
      ...scaledSteps(rmtBase, scale),
    ];
    const rmtConfig = await demoConfig("rmt", midtrain);
    const ntpConfig = await demoConfig("ntp", midtrain);
    const { steps } = rmtConfig.training;
    rmtModel = await stage(
      4,
      "RMT",
      `mid-training with RMT: ${steps} steps, ${rmtConfig.training.batch_size} windows × ` +
        `${rmtConfig.rl.positions_per_sequence} RL positions × G ${rmtConfig.rl.group_size}, ` +
        `B_0 ${rmtConfig.budget.initial}, on the first ${documents} documents of ${trainFile}`,
      () => runTrain(rmtConfig, `${out}/rmt`),
    );
    ntpModel = await stage(
      5,
      "NTP baseline",
      `mid-training baseline: NTP continued pre-training, the same ${steps} steps and data`,
      () => runTrain(ntpConfig, `${out}/ntp`),
    );

    // 5. Evaluation on the same positions, the base model as the proxy.
    const heldout = await dataFile(HELDOUT, out);
    const evalSamples = samples ?? rmtConfig.eval.samples;
    const models = [
      { key: "base", label: "base (pre-trained)", dir: pretrained },
      { key: "ntp", label: "NTP baseline", dir: ntpModel },
      { key: "rmt", label: "RMT", dir: rmtModel },
    ];
    const results = await stage(
      6,
      "evaluation",
      `evaluation on ${evalSamples} held-out positions of ${heldout} (proxy: the base model)`,
      async () => {
        const rows: { key: string; label: string; result: EvalResult }[] = [];
        for (const m of models) {
          indent(`${m.label}: ${m.dir}`);
          const result = await evaluateNextToken(ctx, {
            modelDir: m.dir,
            proxyDir: pretrained,
            dataPath: heldout,
            samples: evalSamples,
            seed: 0,
            maxReasoning: rmtConfig.eval.max_reasoning_tokens,
            temperature: rmtConfig.eval.temperature,
            log: indent,
          });
          rows.push({ ...m, result });
        }
        return rows;
      },
    );
    await Deno.writeTextFile(
      `${out}/eval.json`,
      JSON.stringify(Object.fromEntries(results.map((r) => [r.key, r.result])), null, 1) + "\n",
    );

    // 6. The summary.
    const rollouts = earlyLate(await readMetrics(`${out}/rmt/metrics.jsonl`));
    const [base, ntp, rmt] = results.map((r) => r.result);
    const seconds = (performance.now() - started) / 1000;
    const summary = [
      "",
      "== summary ==",
      formatEvalTable(results),
      "",
      `RMT rollouts (${out}/rmt/metrics.jsonl, ${rollouts?.steps ?? 0} steps):`,
      ...(rollouts ? formatEarlyLate(rollouts).map((l) => `  ${l}`) : ["  (no metrics)"]),
      "",
      changeLine("RMT", base, rmt),
      changeLine("NTP", base, ntp),
      "",
      "What this shows: a 0.16M-parameter model trained for minutes on a CPU. Pre-training puts",
      "an empty <think></think> before 10% of the tokens, so the base model answers in the",
      "compact format (without it, it never predicts the next token after </think>). The run exercises",
      "every part of RMT (entropy tiers, curriculum, shrinking budget, GRPO rollouts, dual loss)",
      "and its evaluation. It is not the paper's result: a model this small finds no use for",
      "reasoning, and a short RL run can cost accuracy and perplexity. The paper's whole",
      "experiment at this scale: rmt pipeline configs/paper-tiny/pipeline.yaml.",
      "",
      `stage times: ${stages.map((s) => `${s.name} ${formatDuration(s.seconds)}`).join(", ")}`,
      `total time: ${formatDuration(seconds)}` +
      (scale !== 1 ? ` (--steps-scale ${scale})` : ""),
      `run folder: ${out} (models: ${pretrained}, ${rmtModel}, ${ntpModel}; eval.json, ` +
      "summary.txt)",
    ].join("\n");
    console.log(summary);
    await Deno.writeTextFile(`${out}/summary.txt`, summary.trimStart() + "\n");
    return 0;
  } catch (e) {
    if (e instanceof DemoStopped) {
      console.error(
        `rmt demo: stopped during ${e.runDir}; the run folder ${out} keeps what was done`,
      );
      return e.exitCode;
    }
    throw e;
  }
}

/** A training stage stopped by a signal: the demo ends with the run's exit code. */
class DemoStopped extends Error {
  constructor(readonly exitCode: number, readonly runDir: string) {
    super(`stopped in ${runDir}`);
  }
}
