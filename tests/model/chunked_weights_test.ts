// Parameters bigger than one storage binding, held as row chunks (lib/model/gpu_weights.ts):
// a small fake binding limit splits a tiny model's embedding, lm_head and MLP matrices into
// uneven chunks, and the chunked model must compute what the whole one computes: logits, loss,
// every gradient and an AdamW step, to f32 rounding (chunks only regroup sums). Also: weights
// and moments read back whole, a checkpoint round trip with chunked parameters, determinism
// and buffer hygiene, and the refusal of an activation bigger than a binding.
//
// Set RMT_TEST_VERBOSE=1 to print the largest differences.

import type { GpuContext } from "../../lib/gpu/context.ts";
import { type Architecture, expectedTensors, type ModelConfig } from "../../lib/model/config.ts";
import type { Tensor } from "../../lib/gpu/tensor.ts";
import {
  type GpuModel,
  loadGpuWeights,
  readGpuWeights,
  releaseGpuModel,
  uploadParameter,
} from "../../lib/model/gpu_weights.ts";
import { initModel } from "../../lib/model/init.ts";
import { planLayout } from "../../lib/model/layout.ts";
import { nextTokenTargets, padSequences, uploadBatch } from "../../lib/model/model_batch.ts";
import {
  backward,
  forward,
  ntpLossAndGrad,
  releaseGrads,
  zeroGrads,
} from "../../lib/model/transformer.ts";
import { randomWeights, tinyConfig, type TinyConfigOptions } from "../../lib/ref/transformer.ts";
import {
  readOptimizerState,
  type TrainerStateFields,
  verifyCheckpoint,
  writeCheckpoint,
} from "../../lib/train/checkpoint.ts";
import { AdamW, type AdamwSettings } from "../../lib/train/optimizer.ts";
import { assertBitEqual, assertClose, assertEquals, Rng, testGpu } from "../helpers.ts";
import { assert, assertUserError, withTempDir } from "./model_helpers.ts";

/** Scales large enough that biases, norm weights and attention patterns all matter. */
const TEST_SCALES = { std: 0.2, biasStd: 0.2, normStd: 0.2 };
/**
 * The fake binding limit: embed_tokens and lm_head [67, 32] (8,576 bytes) become chunks of
 * 24, 24 and 19 rows; gate/up [40, 32] two of 20; down [32, 40] two of 16; q_proj and o_proj
 * two each as well. Norms, biases, k and v fit.
 */
const LIMIT = 4096;
const LIMITS = { limits: { maxStorageBufferBindingSize: LIMIT } };
/** f32 sums regrouped by chunk: a few roundings apart. */
const CHUNKED_TOLERANCE = { rtol: 1e-6, atol: 1e-6 };
const ADAMW: AdamwSettings = {
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0.01,
  gradClip: 1,
};
const LEARNING_RATE = 1e-2;

const verbose = Deno.env.get("RMT_TEST_VERBOSE") === "1";

function randomSequences(rng: Rng, lengths: number[], vocab: number): number[][] {
  return lengths.map((n) => Array.from({ length: n }, () => rng.int(vocab)));
}

function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** The rows of each chunk of every split parameter, by name. */
function chunkRows(model: GpuModel): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const [name, chunks] of model.chunks) {
    if (chunks.length > 1) out.set(name, chunks.map((c) => c.rowEnd - c.rowStart));
  }
  return out;
}

/** What one training step (forward, NTP loss, backward, AdamW) gave, read back whole. */
interface StepResult {
  /** [B·T, V] */
  logits: Float32Array;
  loss: number;
  /** By HF name, whole tensors. */
  grads: Map<string, Float32Array>;
  /** [sum of squares, norm] of the gradients */
  norm: Float32Array;
  /** After the AdamW step. */
  weights: Map<string, Float32Array>;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

interface StepOptions {
  /** Fresh AdamW state when not given (released after the step). */
  optimizer?: AdamW;
  /**
   * Step with these gradients (whole tensors by HF name) instead of the backward's. The AdamW
   * step then compares across models exactly: a gradient that is zero in exact arithmetic
   * (k_proj's bias: softmax ignores a shift of every score) is f32 noise, and the first step
   * moves a weight by ±lr whatever the noise's size, so noise that differs in the last bits
   * can flip it.
   */
  gradients?: ReadonlyMap<string, Float32Array>;
}

/**
 * One training step of `model` on `sequences`: forward, mean next-token loss, backward, AdamW
 * at LEARNING_RATE. Everything recorded into one encoder and read back at the end.
 */
async function trainStep(
  ctx: GpuContext,
  model: GpuModel,
  sequences: number[][],
  { optimizer: given, gradients }: StepOptions = {},
): Promise<StepResult> {
  const padded = padSequences(sequences, { padding: "left" });
  const batch = uploadBatch(ctx, padded);
  const { targets, weights } = nextTokenTargets(padded);
  const targetsGpu = ctx.upload(targets, [targets.length], "u32");
  const weightsGpu = ctx.upload(weights, [weights.length], "f32");
  const optimizer = given ?? AdamW.zeros(ctx, model, ADAMW);
  const grads = zeroGrads(ctx, model);

  const { logits, activations } = forward(ctx, model, batch, { train: true });
  const { loss, dLogits } = ntpLossAndGrad(ctx, logits, targetsGpu, weightsGpu);
  backward(ctx, model, activations!, dLogits, grads);
  const stepGrads = new Map<string, Tensor<"f32">>();
  for (const [name, shape] of gradients ? expectedTensors(model.config) : []) {
    uploadParameter(ctx, shape, model.chunks.get(name)!, gradients!.get(name)!, stepGrads);
  }
  const { norm, clip } = optimizer.record(
    ctx,
    model,
    gradients ? stepGrads : grads,
    LEARNING_RATE,
    loss,
  );
  const [logitsData, lossData, normData, clipData] = await ctx.readMany([
    logits,
    loss,
    norm,
    clip,
  ]);
  optimizer.applied(clipData[1] === 1);
  const gradsWhole = await readGpuWeights(ctx, { ...model, params: grads }); // the step keeps them
  const state = await optimizer.read(ctx, model);
  const after = await readGpuWeights(ctx, model);

  for (const t of [logits, loss, dLogits, targetsGpu, weightsGpu, norm, clip]) t.release();
  batch.release();
  releaseGrads(grads);
  releaseGrads(stepGrads);
  if (!given) optimizer.release();
  return {
    logits: logitsData as Float32Array,
    loss: lossData[0],
    grads: gradsWhole,
    norm: normData as Float32Array,
    weights: after,
    m: state.m,
    v: state.v,
  };
}

// ---- the plan ----------------------------------------------------------------------------------

Deno.test("chunked weights: uneven, 4-aligned row chunks of the embedding, lm_head and MLP", async () => {
  const ctx = await testGpu();
  const config = tinyConfig("LlamaForCausalLM");
  const weights = randomWeights(config, 1, TEST_SCALES);
  const live = ctx.pool.stats.bytesLive;
  const model = await loadGpuWeights(ctx, config, weights, LIMITS);
  const rows = chunkRows(model);
  assertEquals(rows.get("model.embed_tokens.weight"), [24, 24, 19], "embed_tokens");
  assertEquals(rows.get("lm_head.weight"), [24, 24, 19], "lm_head");
  assertEquals(rows.get("model.layers.1.mlp.gate_proj.weight"), [20, 20], "gate_proj");
  assertEquals(rows.get("model.layers.0.mlp.down_proj.weight"), [16, 16], "down_proj");
  assert(!rows.has("model.layers.0.self_attn.k_proj.weight"), "k_proj fits");
  assertEquals(
    model.chunks.get("lm_head.weight")!.map((c) => c.key),
    ["lm_head.weight[0:24]", "lm_head.weight[24:48]", "lm_head.weight[48:67]"],
    "chunk keys",
  );
  for (const [key, t] of model.params) assert(t.byteLength <= LIMIT, `${key} fits the limit`);

  // Read back whole, bit for bit, in checkpoint order.
  const loaded = await readGpuWeights(ctx, model);
  assertEquals([...loaded.keys()], [...expectedTensors(config).keys()], "names, in order");
  for (const [name, data] of weights) assertBitEqual(loaded.get(name)!, data, name);
  releaseGpuModel(model);
  assert(ctx.pool.stats.bytesLive === live, "every chunk was released");

  // The planner alone: balanced in units of 4 rows, the last chunk takes the rest; 4-row units
  // are dropped when fewer than 4 rows fit; unaligned plans are unchanged.
  const plan = (rowAlign: number, limit: number, shape = [67, 32]) =>
    planLayout(new Map([["w", shape]]), {
      maxStorageBufferBindingSize: limit,
      maxBufferSize: 1 << 30,
    }, { rowAlign }).tensors.get("w")!.chunks.map((c) => c.rowEnd - c.rowStart);
  assertEquals(plan(4, LIMIT), [24, 24, 19], "aligned");
  assertEquals(plan(1, LIMIT), [23, 22, 22], "unaligned");
  assertEquals(plan(4, 3 * 128, [7, 32]), [3, 2, 2], "3 rows fit");
  // Qwen2.5-0.5B's embedding under lavapipe's 128 MiB.
  assertEquals(
    plan(4, 128 * 1024 * 1024, [151_936, 896]),
    [30388, 30388, 30388, 30388, 30384],
    "0.5B embedding",
  );
});

// ---- the chunked model computes what the whole one does -------------------------------------------

interface Variant {
  arch: Architecture;
  options: TinyConfigOptions;
}

const VARIANTS: Variant[] = [
  { arch: "Qwen2ForCausalLM", options: {} },
  { arch: "Qwen3ForCausalLM", options: { tied: true, attentionBias: true } },
  { arch: "LlamaForCausalLM", options: {} },
];

for (const { arch, options } of VARIANTS) {
  const label = `${arch.replace("ForCausalLM", "")}${options.tied ? " tied" : ""}`;
  Deno.test(`chunked weights: ${label}: logits, gradients and an AdamW step match the whole model`, async () => {
    const ctx = await testGpu();
    const config = tinyConfig(arch, options);
    const weights = randomWeights(config, 17, TEST_SCALES);
    const whole = await loadGpuWeights(ctx, config, weights);
    const chunked = await loadGpuWeights(ctx, config, weights, LIMITS);
    assert(whole.params.size === whole.chunks.size, "the whole model has no chunks");
    const split = chunkRows(chunked);
    assert(split.has("model.embed_tokens.weight"), "embed_tokens is split");
    assert(options.tied || split.has("lm_head.weight"), "lm_head is split");
    assert(split.has("model.layers.0.mlp.up_proj.weight"), "the MLP is split");

    const sequences = randomSequences(new Rng(5), [9, 4, 6], config.vocabSize);
    const expected = await trainStep(ctx, whole, sequences);
    const got = await trainStep(ctx, chunked, sequences, { gradients: expected.grads });
    const worst = { logits: 0, grads: 0, weights: 0, moments: 0 };
    assertClose(got.logits, expected.logits, CHUNKED_TOLERANCE, `${label}: logits`);
    worst.logits = maxAbsDifference(got.logits, expected.logits);
    assertClose([got.loss], [expected.loss], CHUNKED_TOLERANCE, `${label}: loss`);
    assertClose(got.norm, expected.norm, CHUNKED_TOLERANCE, `${label}: AdamW's gradient norm`);
    for (const name of expectedTensors(config).keys()) {
      const pairs: [
        string,
        Map<string, Float32Array>,
        Map<string, Float32Array>,
        keyof typeof worst,
      ][] = [
        ["∂L/∂", got.grads, expected.grads, "grads"],
        ["updated ", got.weights, expected.weights, "weights"],
        ["m of ", got.m, expected.m, "moments"],
        ["v of ", got.v, expected.v, "moments"],
      ];
      for (const [what, a, b, kind] of pairs) {
        assertClose(a.get(name)!, b.get(name)!, CHUNKED_TOLERANCE, `${label}: ${what}${name}`);
        worst[kind] = Math.max(worst[kind], maxAbsDifference(a.get(name)!, b.get(name)!));
      }
    }
    if (verbose) {
      const text = Object.entries(worst).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(", ");
      console.log(`${label}: max |Δ| chunked vs whole: ${text}`);
    }
    releaseGpuModel(whole);
    releaseGpuModel(chunked);
  });
}

Deno.test("chunked weights: reruns are bit-identical and every temporary is released", async () => {
  const ctx = await testGpu();
  const config = tinyConfig("Qwen3ForCausalLM", { tied: true, attentionBias: true });
  const weights = randomWeights(config, 8, TEST_SCALES);
  const sequences = randomSequences(new Rng(12), [7, 4, 5], config.vocabSize);
  // The step updates the weights: each run starts from a freshly loaded model.
  const run = async () => {
    const model = await loadGpuWeights(ctx, config, weights, LIMITS);
    const result = await trainStep(ctx, model, sequences);
    releaseGpuModel(model);
    return result;
  };
  const first = await run();
  const live = ctx.pool.stats.bytesLive; // after the first step: lazily built tables exist
  const second = await run();
  assert(ctx.pool.stats.bytesLive === live, "a chunked training step leaves no buffer behind");
  assertBitEqual(second.logits, first.logits, "logits");
  assertBitEqual(second.norm, first.norm, "gradient norm");
  for (const [name, grad] of first.grads) assertBitEqual(second.grads.get(name)!, grad, name);
  for (const [name, w] of first.weights) assertBitEqual(second.weights.get(name)!, w, name);
});

// ---- checkpoints -------------------------------------------------------------------------------

Deno.test("chunked weights: a checkpoint round trip restores chunked weights and moments", async () => {
  const ctx = await testGpu();
  const init = initModel({ arch: "llama", preset: "tiny", seed: 3 });
  const config = init.modelConfig;
  // embed_tokens and lm_head [1024, 64] (262 KB) in 3 chunks; the rest fits.
  const limits = { limits: { maxStorageBufferBindingSize: 100_000 } };
  const model = await loadGpuWeights(ctx, config, init.weights, limits);
  assertEquals(chunkRows(model).get("lm_head.weight")?.length, 3, "lm_head chunks");
  const optimizer = AdamW.zeros(ctx, model, ADAMW);
  const rng = new Rng(4);
  const sequences = randomSequences(rng, [12, 7], config.vocabSize);
  await trainStep(ctx, model, sequences, { optimizer });

  const state: TrainerStateFields = {
    step: 1,
    seed: 0,
    method: "ntp",
    config_sha256: "0".repeat(64),
    data: { sampler: "test", seed: 0, next_step: 1 },
    rng: null,
    optimizer_updates: optimizer.updates,
    metrics_lines: 0,
    tokens: 0,
    elapsed_s: 0,
    skipped_steps: 0,
    bad_in_a_row: 0,
    step_state: null,
    rmt_version: "test",
  };
  await withTempDir(async (run) => {
    const weights = await readGpuWeights(ctx, model);
    const moments = await optimizer.read(ctx, model);
    const dir = await writeCheckpoint(
      run,
      { config, weights, tokenizerFiles: init.tokenizerFiles },
      moments,
      state,
      { keep: 1 },
    );
    await verifyCheckpoint(dir, config);

    const restored = await loadGpuWeights(ctx, config, dir, limits);
    assertEquals(chunkRows(restored), chunkRows(model), "the same chunks");
    const restoredOptimizer = AdamW.fromState(
      ctx,
      restored,
      ADAMW,
      await readOptimizerState(dir, config),
    );
    const reread = await readGpuWeights(ctx, restored);
    const rereadMoments = await restoredOptimizer.read(ctx, restored);
    for (const [name, data] of weights) {
      assertBitEqual(reread.get(name)!, data, `weights ${name}`);
      assertBitEqual(rereadMoments.m.get(name)!, moments.m.get(name)!, `m ${name}`);
      assertBitEqual(rereadMoments.v.get(name)!, moments.v.get(name)!, `v ${name}`);
    }
    assert(restoredOptimizer.updates === optimizer.updates, "updates");

    // The next step from the checkpoint is the next step of the run, bit for bit.
    const next = randomSequences(rng, [10, 10], config.vocabSize);
    const resumed = await trainStep(ctx, restored, next, { optimizer: restoredOptimizer });
    const continued = await trainStep(ctx, model, next, { optimizer });
    for (const [name, data] of continued.weights) {
      assertBitEqual(resumed.weights.get(name)!, data, `next step ${name}`);
    }
    restoredOptimizer.release();
    releaseGpuModel(restored);
  });
  optimizer.release();
  releaseGpuModel(model);
});

// ---- activations are not split -----------------------------------------------------------------

Deno.test("chunked weights: logits bigger than a storage binding are refused with what to lower", async () => {
  const ctx = await testGpu();
  // A real vocabulary: one row of logits is 607,744 bytes. The check runs before anything is
  // read from the model, so it needs no weights.
  const vocab = 151_936;
  const config: ModelConfig = { ...tinyConfig("Qwen2ForCausalLM"), vocabSize: vocab };
  const model: GpuModel = { config, chunks: new Map(), params: new Map() };
  const { maxStorageBufferBindingSize: binding, maxBufferSize: buffer } = ctx.limits;
  const limit = Math.min(binding, buffer);
  const fit = Math.floor(limit / (vocab * 4)); // tokens whose logits fit one binding
  const time = Math.ceil((fit + 1) / 2);
  const padded = padSequences([new Array(time).fill(1), new Array(time).fill(2)]);
  const batch = uploadBatch(ctx, padded);
  const live = ctx.pool.stats.bytesLive;
  await assertUserError(
    () => forward(ctx, model, batch, { train: false }),
    [
      "logits",
      `2 × ${time} tokens`,
      `[${2 * time}, ${vocab}]`,
      `${binding <= buffer ? "maxStorageBufferBindingSize" : "maxBufferSize"} = ${limit} bytes`,
      `at most ${fit} tokens`,
    ],
    "logits too big",
  );
  assert(ctx.pool.stats.bytesLive === live, "nothing was allocated before the refusal");
  batch.release();

  // A batch of `fit` tokens passes the check (and then needs the weights this model lacks).
  const small = padSequences([
    new Array(Math.floor(fit / 2)).fill(1),
    new Array(fit - Math.floor(fit / 2)).fill(2),
  ]);
  const smallBatch = uploadBatch(ctx, small);
  let message = "";
  try {
    forward(ctx, model, smallBatch, { train: false });
  } catch (e) {
    message = (e as Error).message;
  }
  assert(message.includes("no parameter"), `a batch that fits passes the check: "${message}"`);
  smallBatch.release();
});
