// The GRPO policy loss on the GPU (lib/rmt/policy_loss.ts) and the dual loss of the RL step
// (lib/train/rl_step.ts) against the f64 reference transformer:
// - at ratio 1 the surrogate's gradient is a weighted NLL gradient: weights a·A_i on the
//   generated tokens' cross-entropy at the rollout temperature, 0 on the prompt;
// - the step's gradient is RL grad + λ·NTP grad, over two micro-batches, with ratios ≠ 1;
// - finite differences of the combined scalar loss on a few parameters.

import { type GpuModel, loadGpuWeights, releaseGpuModel } from "../../lib/model/gpu_weights.ts";
import { releaseGrads, zeroGrads } from "../../lib/model/transformer.ts";
import { randomWeights, tinyConfig } from "../../lib/ref/transformer.ts";
import type { ModelConfig } from "../../lib/model/config.ts";
import { ntpMask, ntpWeights } from "../../lib/rmt/dual_loss.ts";
import { methodSettings } from "../../lib/rmt/methods.ts";
import {
  chunkRollouts,
  policyLossBackward,
  type PolicyRollout,
  policyRows,
} from "../../lib/rmt/policy_loss.ts";
import { RlStep, rolloutTokenWeights } from "../../lib/train/rl_step.ts";
import {
  buildProblems,
  type Generator,
  type RolloutFormat,
  runRollouts,
} from "../../lib/rmt/rollouts.ts";
import { defaultConfig } from "../../lib/train/config.ts";
import type { GpuContext } from "../../lib/gpu/context.ts";
import type { Tensor } from "../../lib/gpu/tensor.ts";
import { assert, assertClose, Rng, testGpu } from "../helpers.ts";
import { addGrads, referenceLogprobs, referenceWeightedCe, type ScoredRow } from "./rl_helpers.ts";

const TEST_SCALES = { std: 0.2, biasStd: 0.2, normStd: 0.2 };
/** f32 GPU sums against the f64 reference (the transformer tests use the same). */
const GRADIENT_TOLERANCE = { rtol: 1e-3, atol: 1e-5 };
const TEMPERATURE = 0.8;

function randomIds(rng: Rng, n: number, below: number): number[] {
  return Array.from({ length: n }, () => rng.int(below));
}

async function readGrads(
  ctx: GpuContext,
  grads: Map<string, Tensor<"f32">>,
  extra: Tensor<"f32">[] = [],
): Promise<{ grads: Map<string, Float32Array>; extra: Float32Array[] }> {
  const names = [...grads.keys()];
  const data = await ctx.readMany([...extra, ...names.map((n) => grads.get(n)!)]);
  return {
    extra: data.slice(0, extra.length) as Float32Array[],
    grads: new Map(names.map((n, i) => [n, data[extra.length + i] as Float32Array])),
  };
}

function compareGrads(
  got: ReadonlyMap<string, Float32Array>,
  expected: ReadonlyMap<string, Float64Array>,
  what: string,
): void {
  for (const [name, g] of expected) {
    const actual = got.get(name);
    assert(actual, `${what}: no gradient for ${name}`);
    assertClose(actual, g, GRADIENT_TOLERANCE, `${what}: ∂L/∂${name}`);
  }
}

/** The scored rows of policy rollouts laid out one sequence each (as policyRows does). */
function rolloutRows(rollouts: readonly PolicyRollout[]) {
  const sequences = rollouts.map((r) => [...r.prompt, ...r.response.slice(0, -1)]);
  const rows = rollouts.flatMap((r, b) =>
    r.response.map((target, j) => ({ b, t: r.prompt.length - 1 + j, target }))
  );
  return { sequences, rows };
}

async function tinyModel(
  ctx: GpuContext,
  seed: number,
): Promise<{ config: ModelConfig; weights: Map<string, Float32Array>; model: GpuModel }> {
  const config = tinyConfig("Qwen2ForCausalLM"); // untied: the temperature trick needs it
  const weights = randomWeights(config, seed, TEST_SCALES);
  return { config, weights, model: await loadGpuWeights(ctx, config, weights) };
}

Deno.test("policy_loss: layout of rows and chunks", () => {
  const layout = policyRows([
    {
      prompt: [5, 6],
      response: [7, 8, 9],
      oldLogprobs: [-1, -2, -3],
      advantage: 2,
      tokenWeight: 0.5,
    },
    { prompt: [4], response: [3], oldLogprobs: [-4], advantage: -1, tokenWeight: 0.25 },
  ]);
  assert(layout.time === 4, `time ${layout.time}`);
  assert(JSON.stringify(layout.sequences) === "[[5,6,7,8],[4]]", "sequences");
  assert(JSON.stringify(layout.tokenRows) === "[[1,2,3],[4]]", `rows ${layout.tokenRows}`);
  assert(JSON.stringify([...layout.targets]) === "[0,7,8,9,3,0,0,0]", "targets");
  assert(JSON.stringify([...layout.oldLogprobs]) === "[0,-1,-2,-3,-4,0,0,0]", "old");
  assert(layout.coefficients[2] === 2 && layout.coefficients[3] === 0.5, "coefficients row 1");
  assert(layout.coefficients[8] === -1 && layout.coefficients[9] === 0.25, "coefficients row 4");
  assert(layout.coefficients[0] === 0 && layout.coefficients[1] === 0, "prompt row has a = 0");
  // 3 rollouts of length 4 fit 12 rows; the fourth (length 5) starts a new chunk.
  assert(JSON.stringify(chunkRollouts([4, 4, 4, 5, 1], 12)) === "[[0,1,2],[3,4]]", "chunks");
  assert(JSON.stringify(chunkRollouts([20, 3], 12)) === "[[0],[1]]", "oversized alone");
  assert(JSON.stringify(rolloutTokenWeights([2, 0, 3], "token_mean")) === "[0.2,0,0.2]", "tm");
  const sm = rolloutTokenWeights([2, 0, 4], "sequence_mean");
  assert(sm[0] === 1 / 4 && sm[1] === 0 && sm[2] === 1 / 8, `sequence_mean ${sm}`);
});

Deno.test("policy_loss: at ratio 1 the GPU gradient is the weighted NLL gradient (a·A on generated tokens)", async () => {
  const ctx = await testGpu();
  const { config, weights, model } = await tinyModel(ctx, 21);
  const rng = new Rng(8);
  // Two prompts, G = 3 each; one rollout with A = 0 (skipped) and one chunk split.
  const prompts = [randomIds(rng, 4, 60), randomIds(rng, 6, 60)];
  const lengths = [3, 1, 5, 2, 4, 3];
  const advantages = [0.9, -0.3, -0.6, 1.2, 0, -1.2];
  const responses = lengths.map((n) => randomIds(rng, n, 67));
  const tokenWeight = 1 / lengths.reduce((a, b) => a + b, 0); // token_mean
  const base = responses.map((response, i) => ({
    prompt: prompts[Math.floor(i / 3)],
    response,
    advantage: advantages[i],
    tokenWeight,
  }));
  const { sequences, rows } = rolloutRows(base.map((r) => ({ ...r, oldLogprobs: r.response })));
  const refLogprobs = referenceLogprobs(config, weights, sequences, rows, TEMPERATURE);
  let at = 0;
  const rollouts: PolicyRollout[] = base.map((r) => {
    const old = Float32Array.from(refLogprobs.subarray(at, at + r.response.length));
    at += r.response.length;
    return { ...r, oldLogprobs: old };
  });

  const grads = zeroGrads(ctx, model);
  const result = policyLossBackward(ctx, model, grads, rollouts, {
    temperature: TEMPERATURE,
    clipEpsilon: 0.2,
    klBeta: 0,
  }, { maxRows: 24, keepLogprobs: true });
  assert(result.chunks === 2, `chunks ${result.chunks}`); // 5 active rollouts, ≤ 24 rows each
  assert(result.tokens === 14, `tokens ${result.tokens} (the A = 0 rollout is skipped)`);
  const kept = result.logprobs!;
  const read = await readGrads(ctx, grads, [
    result.loss,
    result.clipFraction,
    ...kept.map((k) => k.newLogprob),
  ]);
  const [loss, clip, ...newLogprobs] = read.extra;

  // π_new from the training forward equals π_old (the reference's, at T): ratio 1.
  let maxGap = 0;
  kept.forEach((chunk, c) => {
    chunk.layout.tokenRows.forEach((tokenRows, k) => {
      const r = rollouts[chunk.rollouts[k]];
      tokenRows.forEach((row, j) => {
        maxGap = Math.max(maxGap, Math.abs(newLogprobs[c][row] - r.oldLogprobs[j]));
      });
    });
  });
  assert(maxGap < 2e-5, `|log π_new − log π_old| up to ${maxGap}`);

  // The weighted NLL: Σ a·A·(−log π_T) over generated tokens; prompts weigh 0.
  const scored: ScoredRow[] = rows.map((row, i) => {
    let rollout = 0;
    let count = 0;
    while (count + lengths[rollout] <= i) count += lengths[rollout++];
    return { ...row, weight: tokenWeight * advantages[rollout] };
  });
  const expected = referenceWeightedCe(config, weights, sequences, scored, TEMPERATURE);
  compareGrads(read.grads, expected.grads, "policy gradient");
  // L = −Σ a·ρ·A with ρ = 1.
  const expectedLoss = -scored.reduce((s, r) => s + r.weight, 0);
  assertClose([loss[0]], [expectedLoss], { rtol: 1e-4, atol: 1e-6 }, "L_RL at ratio 1");
  assert(clip[0] === 0, `clip fraction ${clip[0]}`);

  for (const k of kept) k.newLogprob.release();
  for (const t of [result.loss, result.clipFraction]) t.release();
  releaseGrads(grads);
  releaseGpuModel(model);
});

Deno.test("policy_loss: the step's dual gradient is RL + λ·NTP (2 micro-batches); finite differences agree", async () => {
  const ctx = await testGpu();
  const { config: modelConfig, weights, model } = await tinyModel(ctx, 22);
  const rng = new Rng(9);
  const N = 10;
  const B = 4;
  const G = 3;
  const lambda = 0.1;
  const config = defaultConfig();
  config.method = "rmt";
  config.model.max_context = N;
  config.training.batch_size = B;
  config.training.grad_accumulation = 2;
  config.training.steps = 10;
  config.rl.group_size = G;
  config.rl.temperature = TEMPERATURE;
  config.loss.ntp_weight = lambda;
  const method = methodSettings(config);
  const format: RolloutFormat = { kind: "compact", thinkStart: 60, thinkEnd: 61, endOfText: 62 };

  // The plan, by hand: 4 windows, RL positions in three of them.
  const windows = Array.from({ length: B }, () => randomIds(rng, N + 1, 60));
  const selections = [[3, 7], [], [5], [9]].map((ps) =>
    ps.map((position) => ({ position, tier: "medium" as const }))
  );
  const problems = buildProblems(windows, selections, format, {
    contextLimit: 5,
    prefixMaxTokens: 4,
    budget: 4,
  });
  // Rollouts: some close </think> early (scored < generated), the rest are unparseable.
  // Old log-probs: the reference's (at T) plus noise, so that ρ ≠ 1 but stays unclipped.
  const generated: number[][] = [];
  const generator: Generator = (prompts) => {
    const tokens = prompts.map((_, i) => {
      const n = 2 + (i % 4);
      const ids = randomIds(rng, n, 60);
      if (i % 3 === 0) ids.splice(1, 0, 61, rng.int(60)); // </think> then the prediction
      return ids;
    });
    generated.push(...tokens);
    const sequences = prompts.map((p, i) => [...p, ...tokens[i].slice(0, -1)]);
    const rows = tokens.flatMap((t, b) =>
      t.map((target, j) => ({ b, t: prompts[b].length - 1 + j, target }))
    );
    const lp = referenceLogprobs(modelConfig, weights, sequences, rows, TEMPERATURE);
    let at = 0;
    const logprobs = tokens.map((t) => t.map(() => lp[at++] + 0.1 * (rng.next() - 0.5)) // ρ ∈ [0.95, 1.05]
    );
    return Promise.resolve({ tokens, logprobs });
  };
  const rollouts = await runRollouts(generator, problems, format, {
    groupSize: G,
    temperature: TEMPERATURE,
    topK: 0,
    topP: 1,
    seed: 0,
    step: 0,
    cap: 8,
    budget: 4,
    reward: "exact",
    leadingSpace: "optional",
    rewards: method.rewards,
    delta: 1e-6,
    std: "population",
    problemsPerCall: 2,
  });
  assert(rollouts.calls === 2, `generation calls ${rollouts.calls}`);
  const tokenWeights = rolloutTokenWeights(rollouts.rollouts.map((r) => r.scored), "token_mean");
  const flat = windows.flat();
  const ids = new Uint32Array(B * N);
  const targets = new Uint32Array(B * N);
  windows.forEach((w, b) => {
    ids.set(w.slice(0, N), b * N);
    targets.set(w.slice(1), b * N);
  });
  assert(flat.length === B * (N + 1), "windows");
  const plan = {
    batchStep: 0,
    ids,
    targets,
    selections,
    budget: { budget: 4, cap: 8 },
    problems,
    rollouts,
    tokenWeights,
  };
  const step = new RlStep({
    config,
    method,
    data: { tokens: new Uint32Array(100), entropies: new Float32Array(100) },
    format,
  });
  const grads = zeroGrads(ctx, model);
  const out = step.gradients(ctx, model, grads, plan);
  const read = await readGrads(ctx, grads, [
    out.objective,
    out.gpuMetrics.loss_rl,
    out.gpuMetrics.loss_ntp,
    out.gpuMetrics.clip_fraction,
  ]);
  const [objective, lossRl, lossNtp, clip] = read.extra.map((x) => x[0]);

  // The reference: the RL part with weights a·ρ·A (unclipped) at T, the NTP part λ·m_p/Σm.
  const policy: PolicyRollout[] = rollouts.rollouts.map((r, i) => ({
    prompt: problems[r.problem].prompt,
    response: r.tokens.slice(0, r.scored),
    oldLogprobs: r.logprobs.slice(0, r.scored),
    advantage: r.advantage,
    tokenWeight: tokenWeights[i],
  }));
  assert(policy.some((p, i) => p.response.length < generated[i].length), "a truncated rollout");
  const rl = rolloutRows(policy);
  const surrogate = (w: ReadonlyMap<string, ArrayLike<number>>) => {
    const lp = referenceLogprobs(modelConfig, w, rl.sequences, rl.rows, TEMPERATURE);
    let loss = 0;
    const rows: ScoredRow[] = [];
    let at = 0;
    policy.forEach((p) => {
      p.response.forEach((_, j) => {
        const ratio = Math.exp(lp[at] - p.oldLogprobs[j]);
        const clipped = Math.min(Math.max(ratio, 0.8), 1.2) * p.advantage;
        loss -= p.tokenWeight * Math.min(ratio * p.advantage, clipped);
        rows.push({ ...rl.rows[at], weight: p.tokenWeight * p.advantage * ratio });
        at++;
      });
    });
    return { loss, rows };
  };
  const mask = ntpMask({
    sequenceLength: N + 1,
    rlPositions: selections.map((s) => s.map((x) => x.position)),
  });
  const ntpW = ntpWeights(mask, { normalise: "mean", scale: lambda });
  const ntpRows: ScoredRow[] = [];
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < N; t++) {
      if (ntpW[b * N + t] > 0) {
        ntpRows.push({ b, t, target: windows[b][t + 1], weight: ntpW[b * N + t] });
      }
    }
  }
  const ntpSequences = windows.map((w) => w.slice(0, N));
  const { loss: rlLoss, rows: rlRows } = surrogate(weights);
  const rlRef = referenceWeightedCe(modelConfig, weights, rl.sequences, rlRows, TEMPERATURE);
  const ntpRef = referenceWeightedCe(modelConfig, weights, ntpSequences, ntpRows, 1);
  compareGrads(read.grads, addGrads(rlRef.grads, ntpRef.grads), "RL + λ·NTP");
  assertClose([lossRl], [rlLoss], { rtol: 1e-4, atol: 1e-6 }, "loss_rl");
  assertClose([lossNtp], [ntpRef.loss / lambda], { rtol: 1e-4, atol: 1e-6 }, "loss_ntp (L_NTP)");
  assertClose([objective], [rlLoss + ntpRef.loss], { rtol: 1e-4, atol: 1e-6 }, "objective");
  assert(clip === 0, `clip fraction ${clip}`);

  // Finite differences of L = L_RL + λ·L_NTP (f64 reference) on a few parameters: the entry
  // with the largest GPU gradient of each of five tensors.
  const f64 = new Map([...weights].map(([n, w]) => [n, Float64Array.from(w)]));
  const combined = () =>
    surrogate(f64).loss + referenceWeightedCe(modelConfig, f64, ntpSequences, ntpRows, 1).loss;
  const names = [
    "model.embed_tokens.weight",
    "model.layers.0.self_attn.q_proj.weight",
    "model.layers.1.mlp.down_proj.weight",
    "model.norm.weight",
    "lm_head.weight",
  ];
  const h = 1e-3;
  for (const name of names) {
    const g = read.grads.get(name)!;
    let index = 0;
    for (let i = 0; i < g.length; i++) if (Math.abs(g[i]) > Math.abs(g[index])) index = i;
    const p = f64.get(name)!;
    const saved = p[index];
    p[index] = saved + h;
    const up = combined();
    p[index] = saved - h;
    const down = combined();
    p[index] = saved;
    const numeric = (up - down) / (2 * h);
    assertClose([g[index]], [numeric], { rtol: 2e-3, atol: 1e-6 }, `finite difference ${name}`);
  }
  for (const t of new Set([out.objective, ...Object.values(out.gpuMetrics)])) t.release();
  releaseGrads(grads);
  releaseGpuModel(model);
});
