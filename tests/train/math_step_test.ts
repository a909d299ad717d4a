// GRPO post-training on math problems (method grpo-math, lib/train/math_step.ts):
// - MathStep with an injected generator that answers some problems right: reward_mean,
//   match_rate, parse_rate, zero_adv_groups, the lengths by hand; the generation split into
//   grad_accumulation calls with the Philox rows t·B·G + i·G + g; updates_per_batch reuse;
// - the real trainer on a tiny model with the real generation: the metrics of every step, the
//   same config and seed twice give the same run, stop + --resume ends the same (once with the
//   registered step, whose untrained model answers nothing right, and once with one response
//   per group replaced by a right answer, so that the weights learn); kl_beta > 0 runs; bad
//   input (no data.math_train, a prompt that cannot fit, no file) fails before step 1 leaving
//   no run folder.

import { loadMathSet, type MathProblem } from "../../lib/data/math_set.ts";
import type { GpuContext } from "../../lib/gpu/context.ts";
import type { Tensor } from "../../lib/gpu/tensor.ts";
import { type GpuModel, loadGpuWeights, releaseGpuModel } from "../../lib/model/gpu_weights.ts";
import { generate } from "../../lib/model/generate.ts";
import { initModel } from "../../lib/model/init.ts";
import { writeModelFolder } from "../../lib/model/model_folder.ts";
import { releaseGrads, zeroGrads } from "../../lib/model/transformer.ts";
import { randomWeights, tinyConfig } from "../../lib/ref/transformer.ts";
import { mathBatchIndices, type MathCodec, mathPrompts } from "../../lib/rmt/math_rollouts.ts";
import { methodSettings } from "../../lib/rmt/methods.ts";
import type { Generator, GeneratorOptions } from "../../lib/rmt/rollouts.ts";
import { defaultConfig, resolveConfigText, type RmtConfig } from "../../lib/train/config.ts";
import { configMathCodec, MathStep } from "../../lib/train/math_step.ts";
import { type MetricsRecord, readMetrics } from "../../lib/train/metrics.ts";
import type { StepFactory } from "../../lib/train/trainer.ts";
import {
  assert,
  assertClose,
  assertEquals,
  assertUserError,
  testGpu,
  withTempDir,
} from "../helpers.ts";
import { assertSameBytes, assertSameMetrics, ROOT, trainQuietly } from "./train_helpers.ts";

// ---- MathStep with an injected generator ---------------------------------------------------

// A character-level codec over the reference tiny model's 67 ids: the characters of ALPHABET
// are ids 0.., </think> = 60, end-of-text = 61.
const ALPHABET = "0123456789./-+=:?\\{} abcdefghijklmnopqrstuvwxyzAPQ\n";
const THINK_END = 60;
const EOT = 61;
const encode = (text: string) =>
  [...text].map((c) => {
    const id = ALPHABET.indexOf(c);
    if (id < 0) throw new Error(`no id for ${JSON.stringify(c)}`);
    return id;
  });
const decode = (ids: readonly number[]) =>
  ids.map((id) => (id === THINK_END ? "</think>" : id === EOT ? "" : ALPHABET[id])).join("");
const CODEC: MathCodec = {
  format: { kind: "compact", template: "Q: {question}\n", instruction: "", chat: null },
  encode,
  decode,
  thinkEnd: THINK_END,
  stopTokens: [EOT],
};

const PROBLEMS: MathProblem[] = [
  { question: "half?", answer: "1/2" }, // answered right by 2 of 4
  { question: "three?", answer: "3" }, // never (all wrong: a zero-advantage group)
  { question: "seven?", answer: "7" }, // always (all right: a zero-advantage group)
];

const G = 4;
/** The response g of each problem (index), as text; "" = end-of-text, ⟂ = </think>. */
const RESPONSES: string[][] = [
  ["ab⟂Answer: 0.5", "a⟂Answer: 2", "abcd", "⟂\\boxed{1/2}"], // right, wrong, none, right
  ["a⟂Answer: 4", "ab⟂Answer: 5", "⟂Answer: 6", "abc⟂Answer: 0"],
  ["a⟂Answer: 7", "⟂Answer: 7.0", "ab⟂\\boxed{7}", "abc⟂Answer: 7/1"],
];
const CORRECT = [2, 0, 4];
const PARSED = [3, 4, 4];

/** The ids of a response text: ⟂ → </think>, and end-of-text at the end. */
const responseIds = (text: string) => [
  ...text.split("⟂").flatMap((part, i) => (i === 0 ? encode(part) : [THINK_END, ...encode(part)])),
  EOT,
];
/** [problem][g] → (reasoning length, response tokens). */
const LENGTHS = RESPONSES.map((group) =>
  group.map((text) => {
    const ids = responseIds(text);
    const end = ids.indexOf(THINK_END);
    return { reasoning: end < 0 ? ids.length - 1 : end, tokens: ids.length };
  })
);

/** Answers RESPONSES by the question in the prompt; records every call. */
function stubGenerator() {
  const calls: { prompts: number[][]; options: GeneratorOptions }[] = [];
  const generator: Generator = (prompts, options) => {
    calls.push({ prompts: prompts.map((p) => [...p]), options });
    const tokens = prompts.map((prompt, k) => {
      const question = decode(prompt).slice(3, -1); // "Q: {question}\n"
      const problem = PROBLEMS.findIndex((p) => p.question === question);
      assert(problem >= 0, `a prompt of the set: ${JSON.stringify(decode(prompt))}`);
      return responseIds(RESPONSES[problem][options.rowIds[k] % G]);
    });
    // Log π_old near the uniform one (−log 67): ratios near 1, a finite loss.
    const logprobs = tokens.map((t) => t.map((_, j) => -4.2 + 0.01 * j));
    return Promise.resolve({ tokens, logprobs, readbacks: 1 });
  };
  return { generator, calls };
}

function stubConfig(): RmtConfig {
  const config = defaultConfig();
  config.method = "grpo-math";
  config.seed = 6;
  config.model.max_context = 40;
  config.training.batch_size = 2;
  config.training.steps = 6;
  config.rl.group_size = G;
  config.rl.temperature = 1;
  config.math.max_new_tokens = 20;
  return config;
}

async function stubModel(ctx: GpuContext): Promise<GpuModel> {
  const config = tinyConfig("Qwen2ForCausalLM");
  return await loadGpuWeights(ctx, config, randomWeights(config, 17, { std: 0.2 }));
}

/** One step.run, its GPU metrics read back. */
async function runStep(ctx: GpuContext, model: GpuModel, step: MathStep, t: number) {
  const grads = zeroGrads(ctx, model);
  const out = await step.run(ctx, model, grads, t);
  const names = Object.keys(out.gpuMetrics);
  const values = await ctx.readMany([out.objective, ...names.map((n) => out.gpuMetrics[n])]);
  const gradValues = await ctx.readMany([...grads.values()]);
  for (const tensor of new Set<Tensor>([out.objective, ...Object.values(out.gpuMetrics)])) {
    tensor.release();
  }
  releaseGrads(grads);
  const gpu: Record<string, number> = { objective: values[0][0] };
  names.forEach((n, i) => (gpu[n] = values[1 + i][0]));
  let gradSum = 0;
  for (const g of gradValues) for (let i = 0; i < g.length; i++) gradSum += Math.abs(g[i]);
  return { host: { ...out.hostMetrics }, gpu, tokens: out.tokens, gradSum };
}

Deno.test("math_step: a step with an injected generator: metrics by hand", async () => {
  const ctx = await testGpu();
  const model = await stubModel(ctx);
  try {
    const config = stubConfig();
    config.training.grad_accumulation = 2; // generation in 2 calls of 1 problem × G
    const prompts = mathPrompts(PROBLEMS, CODEC, 40, 20);
    const { generator, calls } = stubGenerator();
    const step = new MathStep({
      config,
      method: methodSettings(config),
      problems: PROBLEMS,
      prompts,
      codec: CODEC,
      generator: () => generator,
    });
    let sawSignal = false;
    for (let t = 0; t < 4; t++) {
      const before = calls.length;
      const { host, gpu, tokens, gradSum } = await runStep(ctx, model, step, t);
      const indices = mathBatchIndices(PROBLEMS.length, 2, config.seed, t);
      const what = `step ${t} (problems ${indices})`;

      // Two calls of G rows each: problem i of the step at rows t·B·G + i·G + g.
      assertEquals(calls.length - before, 2, `${what}: grad_accumulation calls`);
      const stepCalls = calls.slice(before);
      assertEquals(
        stepCalls.map((c) => c.options.rowIds),
        [0, 1].map((i) => [0, 1, 2, 3].map((g) => t * 8 + i * G + g)),
        `${what}: row ids`,
      );
      assertEquals(
        stepCalls.map((c) => c.prompts),
        indices.map((i) => new Array(G).fill(prompts[i])),
        `${what}: G copies of each problem's prompt`,
      );
      const o = stepCalls[0].options;
      assertEquals(
        [o.maxNewTokens, o.temperature, o.seed, o.rngStep, [...o.stopTokens]],
        [20, 1, 6, 0, [EOT]],
        `${what}: generation settings`,
      );

      const n = 2 * G;
      const sum = (f: (i: number) => number) => indices.reduce((a, i) => a + f(i), 0);
      const lengths = indices.flatMap((i) => LENGTHS[i]);
      const expected = {
        reward_mean: sum((i) => CORRECT[i]) / n,
        match_rate: sum((i) => CORRECT[i]) / n,
        parse_rate: sum((i) => PARSED[i]) / n,
        reasoning_len: lengths.reduce((a, l) => a + l.reasoning, 0) / n,
        response_len: lengths.reduce((a, l) => a + l.tokens, 0) / n,
      };
      assertClose(
        Object.keys(expected).map((k) => host[k] as number),
        Object.values(expected),
        { rtol: 1e-12, atol: 1e-12 },
        `${what}: ${Object.keys(expected).join(", ")}`,
      );
      const zeroGroups = indices.filter((i) => CORRECT[i] === 0 || CORRECT[i] === G).length;
      assertEquals(
        [host.zero_adv_groups, host.rl_groups, host.rollout_tokens, host.generation_readbacks],
        [zeroGroups, 2, lengths.reduce((a, l) => a + l.tokens, 0), 2],
        `${what}: zero_adv_groups, rl_groups, rollout_tokens, readbacks`,
      );
      for (const name of ["objective", "loss_rl", "clip_fraction"]) {
        assert(Number.isFinite(gpu[name]), `${what}: ${name} = ${gpu[name]}`);
      }
      // A policy forward and a gradient exactly when some group's rewards differ (problem 0
      // drawn): responses with A = 0 are skipped.
      const signal = indices.includes(0);
      sawSignal ||= signal;
      const forwardTokens = signal
        ? G * prompts[0].length + LENGTHS[0].reduce(
          (a, l) => a + l.tokens - 1,
          0,
        )
        : 0;
      assertEquals(tokens, forwardTokens, `${what}: forward tokens`);
      assert(signal ? gradSum > 0 : gradSum === 0, `${what}: Σ|grad| = ${gradSum}`);
    }
    assert(sawSignal, "problem 0 drawn in the first 4 steps (per-epoch shuffles of 3 problems)");

    // The same step again: the same metrics and loss, bit for bit.
    const again = new MathStep({
      config,
      method: methodSettings(config),
      problems: PROBLEMS,
      prompts,
      codec: CODEC,
      generator: () => stubGenerator().generator,
    });
    const t = [0, 1, 2, 3].find((s) => mathBatchIndices(3, 2, config.seed, s).includes(0))!;
    const [a, b] = [await runStep(ctx, model, step, t), await runStep(ctx, model, again, t)];
    assertEquals([a.host, a.gpu, a.gradSum], [b.host, b.gpu, b.gradSum], "deterministic");
    step.dispose();
    again.dispose();
  } finally {
    releaseGpuModel(model);
  }
});

Deno.test("math_step: updates_per_batch reuses the rollouts of the group's first step", async () => {
  const ctx = await testGpu();
  const model = await stubModel(ctx);
  try {
    const config = stubConfig();
    config.rl.grpo.updates_per_batch = 2;
    const { generator, calls } = stubGenerator();
    const step = new MathStep({
      config,
      method: methodSettings(config),
      problems: PROBLEMS,
      prompts: mathPrompts(PROBLEMS, CODEC, 40, 20),
      codec: CODEC,
      generator: () => generator,
    });
    const first = await runStep(ctx, model, step, 2);
    const second = await runStep(ctx, model, step, 3);
    assertEquals(calls.length, 1, "steps 2 and 3: one generation (one call: grad_accumulation 1)");
    assertEquals(calls[0].options.rowIds, [16, 17, 18, 19, 20, 21, 22, 23], "rows of step 2");
    assertEquals(second.host, first.host, "the same rollouts, the same host metrics");
    await runStep(ctx, model, step, 4);
    assertEquals(calls.length, 2, "step 4: a new batch");
    assertEquals(calls[1].options.rowIds[0], 32, "rows of step 4");
    step.dispose();
  } finally {
    releaseGpuModel(model);
  }
});

Deno.test("math_step: kl_beta > 0 without a reference model is refused", async () => {
  const config = stubConfig();
  config.rl.grpo.kl_beta = 0.1;
  await assertUserError(
    () =>
      new MathStep({
        config,
        method: methodSettings(config),
        problems: PROBLEMS,
        prompts: mathPrompts(PROBLEMS, CODEC, 40, 20),
        codec: CODEC,
      }),
    ["rl.grpo.kl_beta", "reference model"],
    "no π_ref",
  );
});

// ---- the real trainer ------------------------------------------------------------------------

const STEPS = 4;
const STOP_AFTER = 2;

/** A tiny qwen2 model whose byte-level tokenizer (with <think>, </think>, <|endoftext|>) is
 * trained on shipped math documents, and a math file of 6 shipped problems. */
async function mathFixture(dir: string): Promise<{ modelDir: string; mathFile: string }> {
  const lines = (await Deno.readTextFile(`${ROOT}data/math/train.jsonl`)).split("\n");
  const documents = lines.slice(0, 200).map((l) => JSON.parse(l).text as string);
  const model = initModel({
    arch: "qwen2",
    preset: "tiny",
    seed: 2,
    vocab: 300,
    corpus: documents,
  });
  const modelDir = `${dir}/tiny`;
  await writeModelFolder(modelDir, {
    config: model.config,
    weights: model.weights,
    tokenizerFiles: model.tokenizerFiles,
  });
  // The six shortest questions of the first 40 (prompts well inside max_context).
  const short = lines.slice(0, 40).filter((l) => l.trim() !== "")
    .sort((a, b) => JSON.parse(a).question.length - JSON.parse(b).question.length).slice(0, 6);
  const mathFile = `${dir}/math.jsonl`;
  await Deno.writeTextFile(mathFile, short.join("\n") + "\n");
  return { modelDir, mathFile };
}

function mathYaml(modelDir: string, mathFile: string | null): string {
  return [
    "method: grpo-math",
    "seed: 9",
    "model:",
    `  path: ${modelDir}`,
    "  max_context: 96",
    "data:",
    ...(mathFile === null ? [] : [`  math_train: ${mathFile}`]),
    "training:",
    `  steps: ${STEPS}`,
    "  batch_size: 2",
    "  lr: 1.0e-3",
    "  schedule: constant",
    `  checkpoint_interval: ${STOP_AFTER}`,
    "  keep_checkpoints: 2",
    "rl:",
    "  group_size: 3",
    "  temperature: 1.0",
    "math:",
    "  max_new_tokens: 16",
    "",
  ].join("\n");
}

const METRICS = [
  "loss_rl",
  "reward_mean",
  "match_rate",
  "parse_rate",
  "reasoning_len",
  "response_len",
  "zero_adv_groups",
];

/**
 * Trains `config` three times (straight, again, stopped after STOP_AFTER and resumed) and checks
 * that all three end the same: metrics (timing aside), final weights and AdamW moments.
 */
async function assertReproducible(
  dir: string,
  config: RmtConfig,
  stepFactory?: StepFactory,
): Promise<MetricsRecord[]> {
  const cacheDir = `${dir}/cache`;
  const log: string[] = [];
  const first = await trainQuietly({ config, runDir: `${dir}/a`, cacheDir, stepFactory }, log);
  assertEquals([first.stoppedBy, first.step], ["done", STEPS], "done");
  if (stepFactory === undefined) {
    assert(log.some((l) => l.startsWith("math: 6 problems")), `setup log: ${log.join(" | ")}`);
  }

  // The same config and seed: the same run.
  const second = await trainQuietly({ config, runDir: `${dir}/b`, cacheDir, stepFactory });
  assertEquals(second.step, STEPS, "second run done");
  await assertSameMetrics(`${dir}/a/metrics.jsonl`, `${dir}/b/metrics.jsonl`, "same seed");
  const final = (run: string, file: string) => `${dir}/${run}/checkpoints/step-${STEPS}/${file}`;
  for (const file of ["model.safetensors", "optimizer.safetensors"]) {
    await assertSameBytes(final("a", file), final("b", file), `same seed: ${file}`);
  }

  // Stopped after STOP_AFTER steps, then resumed: the same as the straight run.
  const stop = new AbortController();
  const stopped = await trainQuietly({
    config,
    runDir: `${dir}/c`,
    cacheDir,
    stepFactory,
    stop: stop.signal,
    onStep: (step) => step === STOP_AFTER && stop.abort(),
  });
  assertEquals([stopped.stoppedBy, stopped.step], ["stop", STOP_AFTER], "stopped");
  const resumeLog: string[] = [];
  const resumed = await trainQuietly(
    { config, runDir: `${dir}/c`, cacheDir, stepFactory, resume: true },
    resumeLog,
  );
  assertEquals([resumed.stoppedBy, resumed.step], ["done", STEPS], "resumed");
  assert(
    resumeLog.some((l) => l.includes(`steps ${STOP_AFTER}→${STEPS}`)),
    `resumed from step ${STOP_AFTER}: ${resumeLog.join(" | ")}`,
  );
  await assertSameMetrics(`${dir}/a/metrics.jsonl`, `${dir}/c/metrics.jsonl`, "resumed");
  for (const file of ["model.safetensors", "optimizer.safetensors"]) {
    await assertSameBytes(final("a", file), final("c", file), `resumed: ${file}`);
  }
  return await readMetrics(first.metricsPath);
}

/** The per-step checks every grpo-math metrics line passes. */
function checkRecords(records: readonly MetricsRecord[]): void {
  assertEquals(records.map((r) => r.step), [1, 2, 3, 4], "a line per step");
  for (const r of records) {
    for (const name of METRICS) {
      assert(typeof r[name] === "number", `step ${r.step}: ${name} = ${r[name]}`);
    }
    const value = (name: string) => r[name] as number;
    for (const name of ["reward_mean", "match_rate", "parse_rate"]) {
      assert(value(name) >= 0 && value(name) <= 1, `step ${r.step}: ${name} ${value(name)}`);
    }
    assertEquals(r.reward_mean, r.match_rate, `step ${r.step}: reward = match`);
    const len = value("response_len");
    assert(len >= 1 && len <= 16, `step ${r.step}: response_len ${len} ≤ max_new_tokens`);
    assert(value("reasoning_len") <= len, `step ${r.step}: reasoning ≤ response`);
    const zero = value("zero_adv_groups");
    assert(Number.isInteger(zero) && zero >= 0 && zero <= 2, `step ${r.step}: ${zero}`);
    assertEquals([r.rl_groups, r.rollout_tokens], [2, 6 * len], `step ${r.step}: 2 × 3 rows`);
    assertEquals([r.budget, r.tier_mix, r.loss_ntp], [null, null, null], "no budget, no NTP");
    assert(r.skipped === false, `step ${r.step} applied`);
  }
}

Deno.test("math_step: grpo-math through the trainer: metrics, same seed, stop + resume", async () => {
  await withTempDir(async (dir) => {
    const { modelDir, mathFile } = await mathFixture(dir);
    const { config } = await resolveConfigText(mathYaml(modelDir, mathFile), "math.yaml");
    // The registered step with the real generation. The untrained model answers nothing right
    // (every group has reward 0: no gradient), but generation, grading and the AdamW state
    // (weight decay moves the weights) still have to repeat exactly.
    const records = await assertReproducible(dir, config);
    checkRecords(records);

    // rl.grpo.kl_beta > 0: π_ref is loaded (the starting weights) and released with the step.
    const kl = (await resolveConfigText(mathYaml(modelDir, mathFile), "math.yaml", [
      "rl.grpo.kl_beta=0.1",
      "training.steps=2",
    ])).config;
    const result = await trainQuietly({ config: kl, runDir: `${dir}/kl`, cacheDir: `${dir}/c` });
    assertEquals(result.step, 2, "kl_beta run done");
    for (const r of await readMetrics(result.metricsPath)) {
      assert(Number.isFinite(r.loss_rl) && r.skipped === false, `kl: step ${r.step}`);
    }
  });
});

Deno.test("math_step: grpo-math with a learning signal: same seed, stop + resume", async () => {
  await withTempDir(async (dir) => {
    const { modelDir, mathFile } = await mathFixture(dir);
    const { config } = await resolveConfigText(mathYaml(modelDir, mathFile), "math.yaml");
    // The real generation, with response g = 0 of every problem replaced by a right answer: the
    // groups' rewards differ, so the policy loss has a gradient and the weights learn.
    const factory: StepFactory = async (setup) => {
      const problems = await loadMathSet(config.data.math_train!);
      const codec = configMathCodec(config, setup);
      const prompts = mathPrompts(problems, codec, 96, config.math.max_new_tokens);
      const key = (ids: readonly number[]) => ids.join(",");
      const answerOf = new Map(prompts.map((p, i) => [key(p), problems[i].answer]));
      return new MathStep({
        config,
        method: setup.method,
        problems,
        prompts,
        codec,
        generator: (ctx, model) => async (batch, options) => {
          const result = await generate(ctx, model, batch, options);
          options.rowIds.forEach((row, k) => {
            if (row % config.rl.group_size !== 0) return;
            const right = codec.encode(`1 + 1\n</think>\nAnswer: ${answerOf.get(key(batch[k]))}`);
            result.tokens[k] = [...right, codec.stopTokens[0]];
            result.logprobs[k] = result.tokens[k].map(() => -5);
          });
          return result;
        },
      });
    };
    const records = await assertReproducible(dir, config, factory);
    checkRecordsWithSignal(records);
  });
});

/** Every group has one right answer of three: reward ≥ 1/3, a gradient every step. */
function checkRecordsWithSignal(records: readonly MetricsRecord[]): void {
  assertEquals(records.map((r) => r.step), [1, 2, 3, 4], "a line per step");
  for (const r of records) {
    const value = (name: string) => r[name] as number;
    assert(value("reward_mean") >= 1 / 3 - 1e-12, `step ${r.step}: reward ${r.reward_mean}`);
    assertEquals(r.reward_mean, r.match_rate, `step ${r.step}: reward = match`);
    assert(value("zero_adv_groups") === 0, `step ${r.step}: zero_adv_groups ${r.zero_adv_groups}`);
    assert(value("loss_rl") !== 0 && Number.isFinite(value("loss_rl")), `step ${r.step}: loss`);
    assert(value("grad_norm") > 0 && value("tokens") > 0, `step ${r.step}: a gradient`);
    assert(r.skipped === false, `step ${r.step} applied`);
  }
}

Deno.test("math_step: bad input fails before step 1 and leaves no run folder", async () => {
  await withTempDir(async (dir) => {
    const { modelDir, mathFile } = await mathFixture(dir);
    const cacheDir = `${dir}/cache`;

    // No data.math_train: the config is refused, and so is a config built around the check.
    await assertUserError(
      () => resolveConfigText(mathYaml(modelDir, null), "math.yaml"),
      ["math.yaml", "data.math_train"],
      "config without data.math_train",
    );
    const { config } = await resolveConfigText(mathYaml(modelDir, mathFile), "math.yaml");
    const noData = { ...config, data: { ...config.data, math_train: null } };
    await assertUserError(
      () => trainQuietly({ config: noData, runDir: `${dir}/none`, cacheDir }),
      ["data.math_train"],
      "the step without data.math_train",
    );
    await assertNoRun(`${dir}/none`);

    // No problem whose prompt and response fit max_context: refused while setting up.
    const long: MathProblem = {
      question: `${"Compute 1 + 2 + 3 + 4. ".repeat(8)}\nThen?`,
      answer: "1",
    };
    const longFile = `${dir}/long.jsonl`;
    await Deno.writeTextFile(
      longFile,
      [long, long].map((p) => JSON.stringify(p)).join("\n") + "\n",
    );
    const tooLong = (await resolveConfigText(mathYaml(modelDir, longFile), "math.yaml")).config;
    let steps = 0;
    await assertUserError(
      () =>
        trainQuietly({
          config: tooLong,
          runDir: `${dir}/long`,
          cacheDir,
          onStep: () => steps++,
        }),
      ["math problem 1", "96 positions", "math.max_new_tokens"],
      "no prompt fits (one that does not is left out; none fitting is an error)",
    );
    assertEquals(steps, 0, "no step ran");
    await assertNoRun(`${dir}/long`);

    // A missing file: the same.
    const missing = (await resolveConfigText(mathYaml(modelDir, `${dir}/nope.jsonl`), "m.yaml"))
      .config;
    await assertUserError(
      () => trainQuietly({ config: missing, runDir: `${dir}/missing`, cacheDir }),
      [`${dir}/nope.jsonl`, "not found"],
      "no math file",
    );
    await assertNoRun(`${dir}/missing`);
  });
});

async function assertNoRun(runDir: string): Promise<void> {
  const exists = await Deno.stat(runDir).then(() => true, () => false);
  assert(!exists, `${runDir} was left behind`);
}
