// The RL step (lib/train/rl_step.ts) and its rollouts (lib/rmt/rollouts.ts):
// - prompts, parsing, rewards, advantages and statistics of fixed rollouts, by hand;
// - a whole step with a stub generator: the metrics by hand, the zero-advantage group counted,
//   updates_per_batch reuse, and the ntp / rmt-no-ntp variants of the same code path;
// - π_old from the real generation equals π_new from the training forward (ratio 1);
// - a 3-step tiny RMT run through the trainer with the real generate on the shipped corpus.

import { ntpBatch } from "../../lib/data/batches.ts";
import type { GpuContext } from "../../lib/gpu/context.ts";
import type { Tensor } from "../../lib/gpu/tensor.ts";
import { generate } from "../../lib/model/generate.ts";
import { initModel } from "../../lib/model/init.ts";
import { TextTokenizer } from "../../lib/model/tokenizer.ts";
import { type GpuModel, loadGpuWeights, releaseGpuModel } from "../../lib/model/gpu_weights.ts";
import { releaseGrads, zeroGrads } from "../../lib/model/transformer.ts";
import { randomWeights, tinyConfig } from "../../lib/ref/transformer.ts";
import { selectRlPositions } from "../../lib/rmt/curriculum.ts";
import { methodSettings } from "../../lib/rmt/methods.ts";
import { policyLossBackward } from "../../lib/rmt/policy_loss.ts";
import { RlStep, rolloutFormat, tierCounts } from "../../lib/train/rl_step.ts";
import {
  buildProblems,
  byteDecoder,
  type Generator,
  type GeneratorOptions,
  matchReward,
  parseRollout,
  type RolloutFormat,
  runRollouts,
} from "../../lib/rmt/rollouts.ts";
import { defaultConfig, type RmtConfig } from "../../lib/train/config.ts";
import { readMetrics } from "../../lib/train/metrics.ts";
import { assert, assertClose, assertEquals, Rng, testGpu, withTempDir } from "../helpers.ts";
import { fixtureConfig, makeFixture, trainQuietly } from "../train/train_helpers.ts";

const THINK = 60;
const THINK_END = 61;
const EOT = 62;
const FORMAT: RolloutFormat = {
  kind: "compact",
  thinkStart: THINK,
  thinkEnd: THINK_END,
  endOfText: EOT,
};
const REWARDS = { lengthWeight: 0.2, rMax: 1, lengthRewardRequiresAnswer: false };

/** A, by the formula: (r − mean)/(population std + δ). */
function advantagesByHand(rewards: number[], delta = 1e-6): number[] {
  const mean = rewards.reduce((a, b) => a + b, 0) / rewards.length;
  const std = Math.sqrt(rewards.reduce((a, r) => a + (r - mean) ** 2, 0) / rewards.length);
  return rewards.map((r) => (r - mean) / (std + delta));
}

/**
 * A stub generator that records its calls and returns rollouts(problemIndex, g); the row ids
 * are t·R + i·G + g with R = rowsPerStep.
 */
function stubGenerator(
  groupSize: number,
  rollout: (problem: number, g: number) => number[],
  rowsPerStep = 8,
) {
  const calls: { prompts: number[][]; options: GeneratorOptions }[] = [];
  const generator: Generator = (prompts, options) => {
    calls.push({ prompts: prompts.map((p) => [...p]), options });
    const tokens = options.rowIds.map((row) =>
      rollout(Math.floor((row % rowsPerStep) / groupSize), row % groupSize)
    );
    // Any log-probs: the step's ratio then is not 1, which is fine for these checks.
    return Promise.resolve({ tokens, logprobs: tokens.map((t) => t.map(() => -1)), readbacks: 1 });
  };
  return { generator, calls };
}

Deno.test("rollouts: prompts, parsing, rewards, advantages and statistics by hand", async () => {
  // One window 10..18; RL positions 3 and 6 with a context limit of 4.
  const window = [10, 11, 12, 13, 14, 15, 16, 17, 18];
  const problems = buildProblems(
    [window],
    [[
      { position: 3, tier: "easy" },
      { position: 6, tier: "hard" },
    ]],
    FORMAT,
    { contextLimit: 4, prefixMaxTokens: 2, budget: 4 },
  );
  assertEquals(
    problems.map((p) => p.prompt),
    [[10, 11, 12, THINK], [12, 13, 14, 15, THINK]],
    "prompts",
  );
  assertEquals(
    problems.map((p) => [p.target, ...p.continuation]),
    [[13, 13, 14], [16, 16, 17]],
    "targets",
  );
  assertEquals(problems.map((p) => p.contextLength), [3, 4], "context lengths");

  // B = 4, cap 8: problem 0 has four different rollouts, problem 1 four equal ones.
  const fixed = [
    [1, THINK_END, 13, 9], // ℓ 1, match: r = 0.8 + 0.2·1/4 = 0.85; scored 3 of 4
    [THINK_END, 7], // ℓ 0, miss: r = 0
    [1, 2, 3, 4, 5, THINK_END, 13], // ℓ 5 ∈ (B, 2B]: r_len = (8 − 5)/4: r = 0.8 + 0.15 = 0.95
    [1, 2, EOT], // unparseable, ℓ 2: r = 0.2·2/4 = 0.1
  ];
  const { generator, calls } = stubGenerator(
    4,
    (problem, g) => problem === 0 ? fixed[g] : [THINK_END, 7],
  );
  const batch = await runRollouts(generator, problems, FORMAT, {
    groupSize: 4,
    temperature: 0.8,
    topK: 0,
    topP: 1,
    seed: 3,
    step: 5,
    cap: 8,
    budget: 4,
    reward: "exact",
    leadingSpace: "optional",
    rewards: REWARDS,
    delta: 1e-6,
    std: "population",
  });
  assert(calls.length === 1, `${calls.length} generation calls`);
  const { options, prompts } = calls[0];
  assertEquals(options.rowIds, [40, 41, 42, 43, 44, 45, 46, 47], "row ids t·R + i·G + g");
  assertEquals(
    [options.maxNewTokens, options.rngStep, options.seed, options.temperature],
    [10, 0, 3, 0.8],
    "maxNewTokens = cap + 2, rngStep 0, seed, temperature",
  );
  assertEquals(options.stopTokens, [EOT], "stop tokens");
  assertEquals(prompts[3], problems[0].prompt, "G copies of each prompt");
  assertEquals(prompts[4], problems[1].prompt, "then the next problem");

  const rewards = batch.rollouts.map((r) => r.reward.reward);
  assertClose(rewards, [0.85, 0, 0.95, 0.1, 0, 0, 0, 0], { rtol: 1e-12, atol: 1e-12 }, "rewards");
  assertEquals(batch.rollouts.map((r) => r.scored), [3, 2, 7, 3, 2, 2, 2, 2], "scored tokens");
  assertEquals(batch.rollouts.map((r) => r.parsed.reasoningLength), [1, 0, 5, 2, 0, 0, 0, 0], "ℓ");
  const expected = [...advantagesByHand([0.85, 0, 0.95, 0.1]), 0, 0, 0, 0];
  assertClose(batch.rollouts.map((r) => r.advantage), expected, { rtol: 1e-12, atol: 1e-12 }, "A");
  assert(batch.groups === 2 && batch.zeroAdvantageGroups === 1, "one zero-advantage group");
  assertClose(
    [
      batch.stats.rewardMean,
      batch.stats.matchRate,
      batch.stats.parseRate,
      batch.stats.reasoningLength,
    ],
    [1.9 / 8, 2 / 8, 7 / 8, 1],
    { rtol: 1e-12, atol: 1e-12 },
    "stats",
  );
  assertEquals([batch.stats.generatedTokens, batch.stats.scoredTokens], [24, 23], "token counts");

  // The hard cap: a rollout whose reasoning exceeds it has no answer (paper-like lengths).
  const over = parseRollout([1, 2, 3, THINK_END, 13], FORMAT, 2);
  assert(!over.parsed.parseable && over.parsed.reasoningLength === 3, "ℓ 3 > cap 2: unparseable");
  // Prefix reward in compact format: the predicted token's bytes against the continuation.
  const pieces = ["a", "b", "ab", "abc", "c"];
  const bytes = byteDecoder({
    tokenOf: (id) => pieces[id],
    decode: (ids) => ids.map((id) => pieces[id]).join(""),
  });
  const prefix: RolloutFormat = { ...FORMAT, decodeBytes: bytes } as RolloutFormat;
  const problem = { ...problems[0], target: 0, continuation: [0, 1, 4] }; // "a", "b", "c"
  const parsed = (id: number) => parseRollout([THINK_END, id], prefix, 8).parsed;
  assertEquals(
    [2, 3, 0, 1].map((id) => matchReward(parsed(id), problem, prefix, "prefix", "exact")),
    [1, 1, 1, 0],
    "prefix: ab, abc, a match; b does not",
  );
  assertEquals([2, 0].map((id) => matchReward(parsed(id), problem, prefix, "exact", "exact")), [
    0,
    1,
  ], "exact");
});

Deno.test("rollouts: paper format prompts (truncated to fit), answers and rewards", () => {
  // A character-level fake tokenizer: id = UTF-16 code, 1000 = </think>, 1001 = end-of-text.
  const decode = (ids: readonly number[]) =>
    ids.map((id) => (id === 1000 ? "</think>" : id === 1001 ? "" : String.fromCharCode(id)))
      .join("");
  const encode = (text: string) => [...text].map((c) => c.charCodeAt(0));
  const paper: RolloutFormat = {
    kind: "paper",
    thinkEnd: 1000,
    endOfText: 1001,
    stopTokens: [1001],
    encode,
    decode,
    decodeBytes: (ids) => new TextEncoder().encode(decode(ids)),
    chat: null,
    template: { instruction: "Guess.", budgetSentence: "Use {budget} tokens." },
    maxAnswerTokens: 6,
    budgetInPrompt: true,
  };
  const window = encode("the cat sat on the mat");
  const p = 15; // context "the cat sat on ", target "t"
  const [problem] = buildProblems([window], [[{ position: p, tier: null }]], paper, {
    contextLimit: 7,
    prefixMaxTokens: 4,
    budget: 3,
  });
  const text = decode(problem.prompt);
  assertEquals(text, "Guess. Use 3 tokens.\n\n### Context\nsat on \n\n<think>\n", "prompt");
  assert(problem.contextLength === 7, `context ${problem.contextLength}`);
  const rollout = (
    answer: string,
  ) => [...encode("hmm"), 1000, ...encode(`\\boxed{${answer}}`), 1001];
  const parsed = (answer: string) => parseRollout(rollout(answer), paper, 8);
  const one = parsed("t");
  assert(one.parsed.parseable && one.parsed.reasoningLength === 3, "parsed");
  assert(one.scored === rollout("t").length, "paper: the whole rollout is scored");
  const reward = (answer: string, kind: "exact" | "prefix") =>
    matchReward(parsed(answer).parsed, problem, paper, kind, "optional");
  assertEquals(
    [reward("t", "exact"), reward("th", "exact"), reward("th", "prefix"), reward("x", "prefix")],
    [1, 0, 1, 0],
    "exact: the next token's text; prefix: the continuation up to a token boundary",
  );
});

Deno.test("rollouts: the prompt formats from a trained byte-level tokenizer", () => {
  const corpus = ["déjà vu <think> 2 + 2 </think> 4", "the cat sat on the mat"];
  const { tokenizerFiles } = initModel({
    arch: "qwen2",
    preset: "tiny",
    seed: 1,
    vocab: 300,
    corpus,
  });
  const tokenizer = TextTokenizer.fromJson(
    tokenizerFiles.tokenizerJson,
    tokenizerFiles.tokenizerConfig,
  );
  const config = defaultConfig();
  const compact = rolloutFormat(config, methodSettings(config), tokenizer);
  assert(compact.kind === "compact", "compact by default");
  assertEquals(
    [compact.thinkStart, compact.thinkEnd, compact.endOfText],
    [
      tokenizer.tokenId("<think>"),
      tokenizer.tokenId("</think>"),
      tokenizer.tokenId("<|endoftext|>"),
    ],
    "special tokens",
  );
  // Token bytes are exact, also for a token that holds part of a UTF-8 character.
  const ids = tokenizer.encode("déjà vu");
  assertEquals([...compact.decodeBytes!(ids)], [...new TextEncoder().encode("déjà vu")], "bytes");
  for (const id of ids) {
    const alone = compact.decodeBytes!([id]);
    assert(alone.length > 0, `token ${id} has bytes`);
  }
  config.prompt.format = "paper";
  const paper = rolloutFormat(config, methodSettings(config), tokenizer);
  assert(paper.kind === "paper" && paper.chat === null, "paper, no chat template");
  assert(paper.stopTokens.includes(compact.endOfText), "stops on end-of-text");
  assert(paper.budgetInPrompt, "rmt: the budget sentence");
});

/** A tiny rmt config for the stub-generator steps (ids < 67: the reference tiny model). */
function stubConfig(): RmtConfig {
  const config = defaultConfig();
  config.method = "rmt";
  config.seed = 4;
  config.model.max_context = 16;
  config.training.batch_size = 2;
  config.training.steps = 10;
  config.rl.positions_per_sequence = 1;
  config.rl.min_context_tokens = 2;
  config.rl.group_size = 4;
  config.rl.max_reasoning_tokens = 8;
  config.budget.initial = 4; // B_0 = 4: B_0 at step 0, cap 8
  return config;
}

async function stubModel(ctx: GpuContext): Promise<GpuModel> {
  const config = tinyConfig("Qwen2ForCausalLM");
  return await loadGpuWeights(ctx, config, randomWeights(config, 31, { std: 0.2 }));
}

async function runStep(
  ctx: GpuContext,
  model: GpuModel,
  step: RlStep,
  t: number,
): Promise<{ host: Record<string, unknown>; gpu: Record<string, number>; tokens: number }> {
  const grads = zeroGrads(ctx, model);
  const out = await step.run(ctx, model, grads, t);
  const names = Object.keys(out.gpuMetrics);
  const values = await ctx.readMany([out.objective, ...names.map((n) => out.gpuMetrics[n])]);
  for (const tensor of new Set<Tensor>([out.objective, ...Object.values(out.gpuMetrics)])) {
    tensor.release();
  }
  releaseGrads(grads);
  const gpu: Record<string, number> = { objective: values[0][0] };
  names.forEach((n, i) => (gpu[n] = values[1 + i][0]));
  return { host: { ...out.hostMetrics }, gpu, tokens: out.tokens };
}

Deno.test("rl_step: a step with a stub generator: metrics by hand, zero-advantage group counted", async () => {
  const ctx = await testGpu();
  const model = await stubModel(ctx);
  const config = stubConfig();
  const method = methodSettings(config);
  // Every corpus token is 5, so every target is 5; entropies spread over the tiers.
  const tokens = new Uint32Array(300).fill(5);
  const rng = new Rng(12);
  const entropies = Float32Array.from({ length: 300 }, () => 2 * rng.next());
  const fixed = [[1, THINK_END, 5, 9], [THINK_END, 6], [1, 2, 3, 4, 5, THINK_END, 5], [1, 2, EOT]];
  const { generator, calls } = stubGenerator(
    4,
    (problem, g) => problem === 0 ? fixed[g] : [THINK_END, 6],
  );
  const step = new RlStep({
    config,
    method,
    data: { tokens, entropies },
    format: FORMAT,
    generator: () => generator,
  });

  const plan = await step.plan(ctx, model, 0);
  assert(calls.length === 1 && calls[0].prompts.length === 8, "one call, 2 problems × G = 4");
  assertEquals(plan.budget, { budget: 4, cap: 8 }, "B_0 and the cap 2·B_0");
  for (const [b, selection] of plan.selections.entries()) {
    assert(selection.length === 1, `window ${b}: one RL position`);
    const p = selection[0].position;
    assert(p >= 2 && p <= 16, `window ${b}: position ${p} ≥ min_context_tokens`);
  }
  assertEquals(
    plan.problems.map((p) => p.prompt),
    plan.selections.map((s) => [...new Array(Math.min(s[0].position, 6)).fill(5), THINK]),
    "prompts: up to max_context − overhead − (cap + 2) + 1 = 6 context tokens, then <think>",
  );
  const rewards = plan.rollouts!.rollouts.map((r) => r.reward.reward);
  assertClose(rewards, [0.85, 0, 0.95, 0.1, 0, 0, 0, 0], { rtol: 1e-12, atol: 1e-12 }, "rewards");

  const { host, gpu, tokens: stepTokens } = await runStep(ctx, model, step, 0);
  assertEquals(calls.length, 2, "run() plans again (updates_per_batch = 1)");
  assertClose(
    [host.reward_mean, host.match_rate, host.reasoning_len, host.parse_rate] as number[],
    [1.9 / 8, 2 / 8, 1, 7 / 8],
    { rtol: 1e-12, atol: 1e-12 },
    "reward_mean, match_rate, reasoning_len, parse_rate",
  );
  assertEquals(
    [host.budget, host.zero_adv_groups, host.rl_positions, host.rl_groups],
    [4, 1, 2, 2],
    "budget, zero_adv_groups, rl_positions, rl_groups",
  );
  assertEquals([host.rollout_tokens, host.scored_tokens], [24, 23], "rollout tokens");
  assertEquals(host.tier_mix, tierCounts(plan.selections), "tier_mix");
  assert((host.tier_mix as number[]).reduce((a, b) => a + b, 0) === 2, "both positions tiered");
  for (const name of ["objective", "loss_rl", "loss_ntp", "clip_fraction"]) {
    assert(Number.isFinite(gpu[name]), `${name} = ${gpu[name]}`);
  }
  assertClose([gpu.objective], [gpu.loss_rl + 0.1 * gpu.loss_ntp], { rtol: 1e-5, atol: 1e-6 }, "L");
  // NTP on 2 × 16 rows, and the policy forwards of the 4 rollouts with A ≠ 0.
  const policyTokens = plan.rollouts!.rollouts.slice(0, 4).reduce(
    (a, r) => a + plan.problems[0].prompt.length + r.scored - 1,
    0,
  );
  assert(stepTokens === 32 + policyTokens, `tokens ${stepTokens}, expected ${32 + policyTokens}`);

  releaseGpuModel(model);
});

Deno.test("rl_step: the RL set is the selector's draw on each window's entropies", async () => {
  const ctx = await testGpu();
  const model = await stubModel(ctx);
  const config = stubConfig();
  config.rl.positions_per_sequence = 3;
  const method = methodSettings(config);
  const tokens = Uint32Array.from({ length: 200 }, (_, i) => i % 67);
  const rng = new Rng(13);
  const entropies = Float32Array.from({ length: tokens.length }, () => 2 * rng.next());
  const { generator } = stubGenerator(4, () => [THINK_END, 6]);
  const step = new RlStep({
    config,
    method,
    data: { tokens, entropies },
    format: FORMAT,
    generator: () => generator,
  });
  const plan = await step.plan(ctx, model, 3);
  const { starts } = ntpBatch(tokens, { batchSize: 2, seqLen: 16, seed: 4 }, 3);
  assert(starts[0] !== starts[1], "two different windows");
  plan.selections.forEach((selection, b) => {
    const start = starts[b];
    assertEquals([...plan.ids.subarray(b * 16, b * 16 + 16)], [
      ...tokens.subarray(start, start + 16),
    ], "ids");
    const expected = selectRlPositions(method.selector, {
      entropies: entropies.subarray(start, start + 17),
      count: 3,
      minPosition: 2,
      step: 3,
      totalSteps: 10,
      key: { seed: 4, step: 3, sequence: b },
    });
    assertEquals(selection, expected, `window ${b}`);
  });
  releaseGpuModel(model);
});

Deno.test("rl_step: updates_per_batch reuses rollouts; ntp and rmt-no-ntp share the code path", async () => {
  const ctx = await testGpu();
  const model = await stubModel(ctx);
  const tokens = new Uint32Array(300).fill(5);
  const entropies = new Float32Array(300).fill(1.2); // every position medium
  const fixed = [[1, THINK_END, 5], [THINK_END, 6], [THINK_END, 5], [1, EOT]];
  const make = (config: RmtConfig) => {
    const stub = stubGenerator(4, (_, g) => fixed[g]);
    const step = new RlStep({
      config,
      method: methodSettings(config),
      data: { tokens, entropies },
      format: FORMAT,
      generator: () => stub.generator,
    });
    return { step, calls: stub.calls };
  };

  const reuse = stubConfig();
  reuse.rl.grpo.updates_per_batch = 2;
  const a = make(reuse);
  const step0 = await runStep(ctx, model, a.step, 0);
  const step1 = await runStep(ctx, model, a.step, 1);
  assert(a.calls.length === 1, `steps 0 and 1 share one batch of rollouts (${a.calls.length})`);
  assertEquals(step1.host, step0.host, "the same rollouts' metrics");
  assertEquals(step0.host.tier_mix, [0, 2, 0], "tier_mix: both positions medium");
  await runStep(ctx, model, a.step, 2);
  assertEquals(a.calls.length, 2, "step 2 starts a new batch");

  const ntp = stubConfig();
  ntp.method = "ntp";
  const b = make(ntp);
  const ntpStep = await runStep(ctx, model, b.step, 0);
  assert(b.calls.length === 0, "ntp generates nothing");
  assertEquals(Object.keys(ntpStep.gpu).sort(), ["loss_ntp", "objective"], "ntp metrics");
  assert(ntpStep.gpu.objective === ntpStep.gpu.loss_ntp, "ntp: L = L_NTP (weight 1)");
  assertEquals(ntpStep.host, {}, "no RL metrics");
  assert(ntpStep.tokens === 32, `ntp tokens ${ntpStep.tokens}`);

  const noNtp = stubConfig();
  noNtp.method = "rmt-no-ntp";
  const c = make(noNtp);
  const noNtpStep = await runStep(ctx, model, c.step, 0);
  assertEquals(
    Object.keys(noNtpStep.gpu).sort(),
    ["clip_fraction", "loss_rl", "objective"],
    "no NTP",
  );
  assert(noNtpStep.gpu.objective === noNtpStep.gpu.loss_rl, "L = L_RL");
  releaseGpuModel(model);
});

Deno.test("rl_step: π_old from generate equals π_new from the training forward (ratio 1)", async () => {
  const ctx = await testGpu();
  const model = await stubModel(ctx);
  const rng = new Rng(14);
  const prompts = [[3, 4, 5, THINK], [7, 8, THINK], [9, 10, 11, 12, 13, THINK]];
  const G = 3;
  const rows = prompts.flatMap((p) => new Array(G).fill(p));
  const temperature = 0.8;
  const out = await generate(ctx, model, rows, {
    maxNewTokens: 7,
    temperature,
    seed: 5,
    stopTokens: [EOT],
    rowIds: rows.map((_, i) => i),
  });
  const grads = zeroGrads(ctx, model);
  const policy = policyLossBackward(
    ctx,
    model,
    grads,
    rows.map((prompt, i) => ({
      prompt,
      response: out.tokens[i],
      oldLogprobs: out.logprobs[i],
      advantage: rng.next() - 0.5,
      tokenWeight: 0.01,
    })),
    { temperature, clipEpsilon: 0.2, klBeta: 0 },
    { keepLogprobs: true },
  );
  const kept = policy.logprobs!;
  const values = await ctx.readMany(kept.map((k) => k.newLogprob));
  let maxGap = 0;
  kept.forEach((chunk, c) => {
    chunk.layout.tokenRows.forEach((tokenRows, k) => {
      const old = out.logprobs[chunk.rollouts[k]];
      tokenRows.forEach((row, j) => (maxGap = Math.max(maxGap, Math.abs(values[c][row] - old[j]))));
    });
  });
  if (Deno.env.get("RMT_TEST_VERBOSE") === "1") {
    console.log(`max |log π_new − log π_old| = ${maxGap}`);
  }
  assert(maxGap < 1e-4, `max |log π_new − log π_old| = ${maxGap}`);
  for (const k of kept) k.newLogprob.release();
  policy.loss.release();
  policy.clipFraction.release();
  releaseGrads(grads);
  releaseGpuModel(model);
});

Deno.test("rl_step: with the real generate, rewards vary and L_RL is the ratio-1 policy loss", async () => {
  const ctx = await testGpu();
  const model = await stubModel(ctx); // 67 tokens: </think> and end-of-text come up by chance
  const config = stubConfig();
  config.rl.positions_per_sequence = 2;
  const method = methodSettings(config);
  const tokens = Uint32Array.from({ length: 300 }, (_, i) => (i * 7) % 60);
  const rng = new Rng(15);
  const entropies = Float32Array.from({ length: 300 }, () => 2 * rng.next());
  const step = new RlStep({ config, method, data: { tokens, entropies }, format: FORMAT });
  const plan = await step.plan(ctx, model, 0);
  const rollouts = plan.rollouts!;
  assert(rollouts.groups === 4, `${rollouts.groups} groups`);
  assert(rollouts.zeroAdvantageGroups < 4, "some group has different rewards");
  // ρ = 1: L_RL = −Σ_i a_i·n_i·A_i (token_mean), and nothing is clipped.
  let expected = 0;
  rollouts.rollouts.forEach((r, i) => (expected -= plan.tokenWeights[i] * r.scored * r.advantage));
  const grads = zeroGrads(ctx, model);
  const out = step.gradients(ctx, model, grads, plan);
  const [lossRl, clip] = await ctx.readMany([out.gpuMetrics.loss_rl, out.gpuMetrics.clip_fraction]);
  assert(expected !== 0, "a non-zero policy loss");
  assertClose([lossRl[0]], [expected], { rtol: 1e-4, atol: 1e-7 }, "L_RL at ratio 1");
  assert(clip[0] === 0, `clip fraction ${clip[0]}`);
  for (const t of new Set<Tensor>([out.objective, ...Object.values(out.gpuMetrics)])) t.release();
  releaseGrads(grads);
  releaseGpuModel(model);
});

Deno.test("rl_step: a 3-step tiny rmt run with the real generate on the shipped corpus", async () => {
  await withTempDir(async (dir) => {
    const f = await makeFixture(dir);
    const config = await fixtureConfig(f, 3, [
      "method=rmt",
      "model.max_context=48",
      "training.batch_size=2",
      "training.checkpoint_interval=0",
      "rl.positions_per_sequence=2",
      "rl.min_context_tokens=4",
      "rl.group_size=4",
      "rl.max_reasoning_tokens=16",
      "budget.initial=8",
    ]);
    const lines: string[] = [];
    const result = await trainQuietly(
      { config, runDir: `${dir}/run`, cacheDir: f.cacheDir },
      lines,
    );
    assert(
      result.exitCode === 0 && result.step === 3,
      `exit ${result.exitCode}: ${lines.join("\n")}`,
    );
    const records = await readMetrics(result.metricsPath);
    if (Deno.env.get("RMT_TEST_VERBOSE") === "1") {
      for (const r of records) console.log(JSON.stringify(r));
    }
    assert(records.length === 3, `${records.length} metrics lines`);
    const budgets = records.map((r) => r.budget);
    // B_t = floor(8·0.2^(t/3)) for t = 0, 1, 2.
    assertEquals(budgets, [8, 4, 2], "budget");
    for (const r of records) {
      const num = (name: string) => r[name] as number;
      for (const name of ["loss_rl", "loss_ntp", "grad_norm", "clip_fraction"]) {
        assert(Number.isFinite(num(name)), `step ${r.step}: ${name} = ${r[name]}`);
      }
      assert(num("loss_ntp") > 3 && num("loss_ntp") < 10, `step ${r.step}: loss_ntp ${r.loss_ntp}`);
      for (const name of ["reward_mean", "match_rate", "parse_rate"]) {
        assert(num(name) >= 0 && num(name) <= 1, `step ${r.step}: ${name} = ${r[name]}`);
      }
      const cap = 2 * num("budget");
      assert(num("reasoning_len") >= 0 && num("reasoning_len") <= cap + 2, `reasoning_len`);
      assert(
        num("rl_positions") === 4 && num("rl_groups") === 4,
        `step ${r.step}: 2 × 2 positions`,
      );
      const tiers = r.tier_mix as number[];
      assert(tiers.length === 3 && tiers.reduce((a, b) => a + b, 0) === 4, `tier_mix ${tiers}`);
      assert(num("zero_adv_groups") >= 0 && num("zero_adv_groups") <= 4, "zero_adv_groups");
      assert(
        num("rollout_tokens") > 0 && num("rollout_tokens") <= 16 * (cap + 2),
        "rollout tokens",
      );
      assert(r.skipped === false, `step ${r.step} skipped`);
    }
  });
});
