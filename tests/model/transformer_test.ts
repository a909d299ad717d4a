// The GPU transformer (lib/model/transformer.ts) against the reference decoder
// (lib/ref/transformer.ts, itself checked against finite differences and Hugging Face):
// logits, loss and every parameter gradient for each architecture, tied and untied, on
// right- and left-padded batches; gradient accumulation; KV-cache decoding against the full
// forward; loading weights from a bf16 safetensors folder; the refusal of a row wider than a
// storage binding (split weights: tests/model/chunked_weights_test.ts);
// determinism and buffer hygiene.
//
// Set RMT_TEST_VERBOSE=1 to print the largest differences from the reference.

import type { GpuContext } from "../../lib/gpu/context.ts";
import type { Tensor } from "../../lib/gpu/tensor.ts";
import { expectedTensors, type ModelConfig } from "../../lib/model/config.ts";
import { decodeBf16, encodeBf16 } from "../../lib/model/float16.ts";
import {
  type GpuModel,
  loadGpuWeights,
  readGpuWeights,
  releaseGpuModel,
} from "../../lib/model/gpu_weights.ts";
import { createKvCache, releaseKvCache } from "../../lib/model/kv_cache.ts";
import {
  nextTokenTargets,
  type Padding,
  padSequences,
  uploadBatch,
} from "../../lib/model/model_batch.ts";
import {
  backward,
  forward,
  ntpLossAndGrad,
  releaseGrads,
  zeroGrads,
} from "../../lib/model/transformer.ts";
import { writeWeights } from "../../lib/model/weights.ts";
import {
  randomWeights,
  referenceBackward,
  referenceForward,
  tinyConfig,
} from "../../lib/ref/transformer.ts";
import { assertBitEqual, assertClose, Rng, testGpu } from "../helpers.ts";
import {
  assert,
  assertUserError,
  type Variant,
  variantLabel as label,
  withTempDir,
} from "./model_helpers.ts";

/** Scales large enough that biases, norm weights and attention patterns all matter. */
const TEST_SCALES = { std: 0.2, biasStd: 0.2, normStd: 0.2 };
/** The reference's own f32 comparison with Hugging Face used these. */
const LOGIT_TOLERANCE = { rtol: 1e-4, atol: 1e-5 };
const LOSS_TOLERANCE = { rtol: 1e-5, atol: 1e-6 };
/** f32 sums over the batch (and the attention softmax) against the f64 reference. */
const GRADIENT_TOLERANCE = { rtol: 1e-3, atol: 1e-5 };

const verbose = Deno.env.get("RMT_TEST_VERBOSE") === "1";

const VARIANTS: Variant[] = [
  { arch: "Qwen2ForCausalLM", options: {} },
  { arch: "Qwen2ForCausalLM", options: { tied: true } },
  { arch: "Qwen3ForCausalLM", options: {} },
  { arch: "Qwen3ForCausalLM", options: { tied: true, attentionBias: true } },
  { arch: "LlamaForCausalLM", options: {} },
  { arch: "LlamaForCausalLM", options: { tied: true } },
  { arch: "LlamaForCausalLM", options: { attentionBias: true } },
];

function randomSequences(rng: Rng, lengths: number[], vocab: number): number[][] {
  return lengths.map((n) => Array.from({ length: n }, () => rng.int(vocab)));
}

/** The largest |a − e| and the largest |a − e| / |e| (over |e| > 1e-3), for reports. */
function maxDifference(actual: ArrayLike<number>, expected: ArrayLike<number>) {
  let abs = 0;
  let rel = 0;
  for (let i = 0; i < actual.length; i++) {
    const diff = Math.abs(actual[i] - expected[i]);
    abs = Math.max(abs, diff);
    if (Math.abs(expected[i]) > 1e-3) rel = Math.max(rel, diff / Math.abs(expected[i]));
  }
  return { abs, rel };
}

/** What one GPU training step gave, read back. */
interface StepResult {
  /** The real tokens' logits, sequence by sequence: [Σ len_b, V]. */
  logits: Float32Array;
  loss: number;
  grads: Map<string, Float32Array>;
}

/** The real rows of [B·T, V] logits laid out with `offsets`, sequence by sequence. */
function realRows(
  logits: ArrayLike<number>,
  lengths: readonly number[],
  offsets: readonly number[],
  time: number,
  vocab: number,
): Float32Array {
  const out = new Float32Array(lengths.reduce((a, b) => a + b, 0) * vocab);
  let at = 0;
  lengths.forEach((n, b) => {
    for (let i = 0; i < n; i++) {
      const row = b * time + offsets[b] + i;
      for (let v = 0; v < vocab; v++) out[at++] = logits[row * vocab + v];
    }
  });
  return out;
}

/**
 * Forward, mean next-token loss and backward of `sequences` on the GPU, accumulated into
 * `grads` (fresh zeros when not given). Returns the logits, the loss and the gradients.
 */
async function gpuStep(
  ctx: GpuContext,
  model: GpuModel,
  sequences: number[][],
  padding: Padding,
  grads?: Map<string, Tensor<"f32">>,
): Promise<StepResult> {
  const { vocabSize: vocab } = model.config;
  const padded = padSequences(sequences, { padding });
  const batch = uploadBatch(ctx, padded);
  const { targets, weights } = nextTokenTargets(padded);
  const targetsGpu = ctx.upload(targets, [targets.length], "u32");
  const weightsGpu = ctx.upload(weights, [weights.length], "f32");
  const ownGrads = !grads;
  const into = grads ?? zeroGrads(ctx, model);

  const { logits, activations } = forward(ctx, model, batch, { train: true });
  const { loss, dLogits } = ntpLossAndGrad(ctx, logits, targetsGpu, weightsGpu);
  backward(ctx, model, activations!, dLogits, into);

  const names = [...into.keys()];
  const [logitsData, lossData, ...gradData] = await ctx.readMany([
    logits,
    loss,
    ...names.map((n) => into.get(n)!),
  ]);
  for (const t of [logits, loss, dLogits, targetsGpu, weightsGpu]) t.release();
  batch.release();
  if (ownGrads) releaseGrads(into);
  return {
    logits: realRows(logitsData, padded.lengths, padded.offsets, padded.time, vocab),
    loss: lossData[0],
    grads: new Map(names.map((n, i) => [n, gradData[i] as Float32Array])),
  };
}

/** The reference's logits of the real tokens, sequence by sequence (it pads on the right). */
function referenceRows(config: ModelConfig, result: ReturnType<typeof referenceForward>) {
  const lengths = result.cache.batch.lengths;
  return realRows(result.logits, lengths, lengths.map(() => 0), result.time, config.vocabSize);
}

// ---- logits, loss and gradients vs the reference ----------------------------------------------

for (const variant of VARIANTS) {
  const name = `transformer: ${label(variant)}: logits, loss and gradients match the reference`;
  Deno.test(name, async () => {
    const ctx = await testGpu();
    const config = tinyConfig(variant.arch, variant.options);
    const weights = randomWeights(config, 11, TEST_SCALES);
    const sequences = randomSequences(new Rng(5), [7, 4], config.vocabSize);
    const model = await loadGpuWeights(ctx, config, weights);
    const expected = referenceForward(config, weights, sequences);
    const expectedLogits = referenceRows(config, expected);
    const { loss: expectedLoss, grads: expectedGrads } = referenceBackward(
      config,
      weights,
      sequences,
      {},
      expected,
    );

    for (const padding of ["right", "left"] as const) {
      const got = await gpuStep(ctx, model, sequences, padding);
      const what = `${label(variant)} ${padding}-padded`;
      assertClose(got.logits, expectedLogits, LOGIT_TOLERANCE, `${what}: logits`);
      assertClose([got.loss], [expectedLoss], LOSS_TOLERANCE, `${what}: loss`);
      let worst = { abs: 0, rel: 0 };
      for (const [name, expectedGrad] of expectedGrads) {
        const grad = got.grads.get(name);
        assert(grad, `${what}: no gradient for ${name}`);
        assertClose(grad, expectedGrad, GRADIENT_TOLERANCE, `${what}: ∂L/∂${name}`);
        const diff = maxDifference(grad, expectedGrad);
        worst = { abs: Math.max(worst.abs, diff.abs), rel: Math.max(worst.rel, diff.rel) };
      }
      assert(got.grads.size === expectedGrads.size, `${what}: extra gradients`);
      if (verbose) {
        const logits = maxDifference(got.logits, expectedLogits);
        console.log(
          `${what}: logits max |Δ| ${logits.abs.toExponential(2)}, ` +
            `loss |Δ| ${Math.abs(got.loss - expectedLoss).toExponential(2)}, gradients max ` +
            `|Δ| ${worst.abs.toExponential(2)}, max rel ${worst.rel.toExponential(2)}`,
        );
      }
    }
    releaseGpuModel(model);
  });
}

// ---- gradient accumulation -------------------------------------------------------------------

Deno.test("transformer: two micro-batches accumulate to the sum of their gradients", async () => {
  const ctx = await testGpu();
  const config = tinyConfig("Qwen2ForCausalLM", { tied: true });
  const model = await loadGpuWeights(ctx, config, randomWeights(config, 3, TEST_SCALES));
  const rng = new Rng(9);
  const first = randomSequences(rng, [6, 3], config.vocabSize);
  const second = randomSequences(rng, [5, 5, 2], config.vocabSize);

  const alone1 = await gpuStep(ctx, model, first, "right");
  const alone2 = await gpuStep(ctx, model, second, "left");
  const grads = zeroGrads(ctx, model);
  await gpuStep(ctx, model, first, "right", grads);
  const together = await gpuStep(ctx, model, second, "left", grads);
  releaseGrads(grads);

  for (const [name, sum] of together.grads) {
    const expected = alone1.grads.get(name)!.map((v, i) => v + alone2.grads.get(name)![i]);
    // The same f32 terms added in another order (tied: lm_head's and the embedding's parts).
    assertClose(sum, expected, { rtol: 1e-5, atol: 1e-7 }, `accumulated ∂L/∂${name}`);
  }
  releaseGpuModel(model);
});

// ---- KV cache --------------------------------------------------------------------------------

/**
 * Left-padded prompts, then decoding `continuations` one token per step with a KV cache,
 * compared with the full forward over prompt + continuation (also left-padded). `chunks`
 * splits the prefill into several forwards (T > 1 on a non-empty cache).
 */
async function checkDecoding(variant: Variant, chunks: number[]): Promise<number> {
  const ctx = await testGpu();
  const config = tinyConfig(variant.arch, variant.options);
  const { vocabSize: vocab } = config;
  const model = await loadGpuWeights(ctx, config, randomWeights(config, 21, TEST_SCALES));
  const rng = new Rng(4);
  const prompts = randomSequences(rng, [6, 3], vocab);
  const steps = 5;
  const continuations = randomSequences(rng, [steps, steps], vocab);
  const promptLen = 6;
  const maxLen = promptLen + steps + 2; // room to spare: unused slots stay masked

  // The full forward over every token.
  const full = padSequences(prompts.map((p, b) => [...p, ...continuations[b]]), {
    padding: "left",
  });
  const fullBatch = uploadBatch(ctx, full);
  const fullLogits = forward(ctx, model, fullBatch, { train: false }).logits;
  const [expected] = await ctx.readMany([fullLogits]);
  fullLogits.release();
  fullBatch.release();
  const expectedRow = (b: number, column: number) =>
    expected.subarray((b * full.time + column) * vocab, (b * full.time + column + 1) * vocab);

  // Prefill (in chunks of columns), then one column per step. The caller's [B, maxLen] mask.
  const prompt = padSequences(prompts, { padding: "left" });
  const cache = createKvCache(ctx, config, 2, maxLen);
  const mask = new Uint32Array(2 * maxLen);
  let worst = 0;
  const run = async (ids: number[][], positions: number[][]): Promise<void> => {
    const columns = ids[0].length;
    const start = cache.length;
    ids.forEach((row, b) => {
      row.forEach((_, c) => {
        // Left padding: a prompt's padding columns stay 0; every later column is a token.
        const column = start + c;
        mask[b * maxLen + column] = column < promptLen ? prompt.keyMask[b * promptLen + column] : 1;
      });
    });
    const idsGpu = ctx.u32(ids.flat(), [2, columns]);
    const positionsGpu = ctx.i32(positions.flat(), [2, columns]);
    const maskGpu = ctx.u32(mask, [2, maxLen]);
    const { logits } = forward(
      ctx,
      model,
      { ids: idsGpu, positions: positionsGpu, keyMask: maskGpu },
      { train: false, cache },
    );
    const [got] = await ctx.readMany([logits]);
    for (const t of [idsGpu, positionsGpu, maskGpu, logits]) t.release();
    for (let b = 0; b < 2; b++) {
      for (let c = 0; c < columns; c++) {
        const column = start + c;
        if (mask[b * maxLen + column] === 0) continue; // padding rows: meaningless
        const row = got.subarray((b * columns + c) * vocab, (b * columns + c + 1) * vocab);
        const what = `${label(variant)}: sequence ${b}, column ${column}`;
        assertClose(row, expectedRow(b, column), { rtol: 0, atol: 1e-4 }, what);
        worst = Math.max(worst, maxDifference(row, expectedRow(b, column)).abs);
      }
    }
  };

  let column = 0;
  for (const width of chunks) {
    const cols = Array.from({ length: width }, (_, c) => column + c);
    await run(
      [0, 1].map((b) => cols.map((c) => prompt.ids[b * promptLen + c])),
      [0, 1].map((b) => cols.map((c) => prompt.positions[b * promptLen + c])),
    );
    column += width;
  }
  assert(column === promptLen && cache.length === promptLen, "the prefill covers the prompt");
  for (let s = 0; s < steps; s++) {
    await run(
      [0, 1].map((b) => [continuations[b][s]]),
      [0, 1].map((b) => [prompts[b].length + s]),
    );
  }
  assert(cache.length === promptLen + steps, "the cache advanced one position per step");
  releaseKvCache(cache);
  releaseGpuModel(model);
  return worst;
}

Deno.test("transformer: KV-cache decoding gives the full forward's logits", async () => {
  const cases: [Variant, number[]][] = [
    [{ arch: "Qwen3ForCausalLM", options: { tied: true } }, [6]],
    [{ arch: "Qwen2ForCausalLM", options: {} }, [4, 2]],
    [{ arch: "LlamaForCausalLM", options: { attentionBias: true } }, [1, 5]],
  ];
  for (const [variant, chunks] of cases) {
    const worst = await checkDecoding(variant, chunks);
    if (verbose) {
      console.log(`${label(variant)} prefill ${chunks}: max |Δ| ${worst.toExponential(2)}`);
    }
  }
});

Deno.test("transformer: forward refuses a batch that does not fit the KV cache", async () => {
  const ctx = await testGpu();
  const config = tinyConfig("LlamaForCausalLM");
  const model = await loadGpuWeights(ctx, config, randomWeights(config, 1));
  const cache = createKvCache(ctx, config, 1, 4);
  const batch = uploadBatch(ctx, padSequences([[1, 2, 3, 4, 5]]));
  let message = "";
  try {
    forward(ctx, model, batch, { train: false, cache });
  } catch (e) {
    message = (e as Error).message;
  }
  assert(message.includes("do not fit the KV cache"), `got "${message}"`);
  batch.release();
  releaseKvCache(cache);
  releaseGpuModel(model);
});

// ---- loading ---------------------------------------------------------------------------------

Deno.test("transformer: weights load from a bf16 safetensors folder, bf16-exact", async () => {
  const ctx = await testGpu();
  for (const tied of [false, true]) {
    const config = tinyConfig("Qwen3ForCausalLM", { tied });
    const weights = randomWeights(config, 2, TEST_SCALES);
    const names = [...expectedTensors(config)];
    const tensors = names.map(([name, shape]) => ({
      name,
      shape,
      dtype: "BF16" as const,
      data: weights.get(name)!,
    }));
    // A tied checkpoint that also saved lm_head (some tools do): it must be ignored.
    if (tied) {
      tensors.push({ ...tensors[0], name: "lm_head.weight", data: new Float32Array(67 * 32) });
    }
    await withTempDir(async (dir) => {
      await writeWeights(dir, tensors);
      const model = await loadGpuWeights(ctx, config, dir);
      const loaded = await readGpuWeights(ctx, model);
      assert(
        [...loaded.keys()].join() === names.map(([n]) => n).join(),
        `tied=${tied}: loaded ${[...loaded.keys()]}`,
      );
      for (const [name] of names) {
        const rounded = decodeBf16(encodeBf16(weights.get(name)!));
        assertBitEqual(loaded.get(name)!, rounded, `tied=${tied}: ${name}`);
      }
      releaseGpuModel(model);
    });
  }
});

Deno.test("transformer: a row wider than a storage binding is refused by name", async () => {
  const ctx = await testGpu();
  const config = tinyConfig("LlamaForCausalLM");
  const weights = randomWeights(config, 1);
  const live = ctx.pool.stats.bytesLive;
  // Bigger tensors are split into row chunks (tests/model/chunked_weights_test.ts), but one
  // row of embed_tokens [67, 32] is 128 bytes: under a 100-byte limit nothing can hold it.
  await assertUserError(
    () => loadGpuWeights(ctx, config, weights, { limits: { maxStorageBufferBindingSize: 100 } }),
    ['"model.embed_tokens.weight" [67, 32]', "one row is 128 bytes", "(100 bytes)"],
    "binding limit",
  );
  assert(ctx.pool.stats.bytesLive === live, "nothing was allocated before the refusal");
  const missing = new Map(weights);
  missing.delete("model.layers.1.mlp.up_proj.weight");
  await assertUserError(
    () => loadGpuWeights(ctx, config, missing),
    ['"model.layers.1.mlp.up_proj.weight"', "missing"],
    "missing tensor",
  );
});

// ---- determinism and buffer hygiene ----------------------------------------------------------

Deno.test("transformer: reruns are bit-identical and every temporary is released", async () => {
  const ctx = await testGpu();
  const config = tinyConfig("Qwen3ForCausalLM", { tied: true, attentionBias: true });
  const model = await loadGpuWeights(ctx, config, randomWeights(config, 8, TEST_SCALES));
  const sequences = randomSequences(new Rng(12), [7, 4, 5], config.vocabSize);

  const first = await gpuStep(ctx, model, sequences, "left");
  const live = ctx.pool.stats.bytesLive; // after the first step: lazily built tables exist
  const second = await gpuStep(ctx, model, sequences, "left");
  assert(ctx.pool.stats.bytesLive === live, "a training step leaves no buffer behind");
  assertBitEqual(second.logits, first.logits, "logits");
  assertBitEqual([second.loss], [first.loss], "loss");
  for (const [name, grad] of first.grads) assertBitEqual(second.grads.get(name)!, grad, name);

  // The inference forward (here from host ids) computes the same logits, and also releases
  // everything.
  const padded = padSequences(sequences, { padding: "left" });
  const batch = uploadBatch(ctx, padded);
  const hostIds = { data: padded.ids, shape: [padded.batch, padded.time] as [number, number] };
  const { logits } = forward(ctx, model, { ...batch, ids: hostIds }, { train: false });
  const rows = realRows(await ctx.read(logits), padded.lengths, padded.offsets, padded.time, 67);
  logits.release();
  batch.release();
  assert(ctx.pool.stats.bytesLive === live, "an inference forward leaves no buffer behind");
  assertBitEqual(rows, first.logits, "inference logits");
  releaseGpuModel(model);
});

Deno.test("transformer: training needs host ids; host ids are checked against the vocabulary", async () => {
  const ctx = await testGpu();
  const config = tinyConfig("LlamaForCausalLM");
  const model = await loadGpuWeights(ctx, config, randomWeights(config, 1));
  const batch = uploadBatch(ctx, padSequences([[1, 2, 3]]));
  const messages: string[] = [];
  for (
    const attempt of [
      () => forward(ctx, model, { ...batch, hostIds: undefined }, { train: true }),
      () =>
        forward(ctx, model, { ...batch, hostIds: Uint32Array.from([1, 67, 3]) }, { train: false }),
    ]
  ) {
    try {
      attempt();
    } catch (e) {
      messages.push((e as Error).message);
    }
  }
  assert(messages[0]?.includes("needs the ids on the host"), `got "${messages[0]}"`);
  assert(messages[1]?.includes("id 67 at row 1 is not < vocab 67"), `got "${messages[1]}"`);
  batch.release();
  releaseGpuModel(model);
});

Deno.test("transformer: ntpLossAndGrad is Σ w·(−log p) and its gradient, in place or not", async () => {
  const ctx = await testGpu();
  const rng = new Rng(6);
  const [rows, vocab] = [13, 67];
  const logits = rng.normals(rows * vocab, 2);
  const targets = Array.from({ length: rows }, () => rng.int(vocab));
  const weights = Array.from({ length: rows }, (_, r) => (r % 4 === 3 ? 0 : rng.next()));
  // The reference: log-softmax in f64; dLogits = w·(softmax − onehot).
  let expectedLoss = 0;
  const expectedGrad = new Float64Array(rows * vocab);
  for (let r = 0; r < rows; r++) {
    const row = logits.subarray(r * vocab, (r + 1) * vocab);
    const max = Math.max(...row);
    const total = row.reduce((a, v) => a + Math.exp(v - max), 0);
    const lse = max + Math.log(total);
    expectedLoss -= weights[r] * (row[targets[r]] - lse);
    for (let v = 0; v < vocab; v++) {
      expectedGrad[r * vocab + v] = weights[r] *
        (Math.exp(row[v] - lse) - (v === targets[r] ? 1 : 0));
    }
  }
  const logitsGpu = ctx.f32(logits, [rows, vocab]);
  const targetsGpu = ctx.u32(targets);
  const weightsGpu = ctx.f32(weights);
  const fresh = ntpLossAndGrad(ctx, logitsGpu, targetsGpu, weightsGpu);
  const inPlace = ntpLossAndGrad(ctx, logitsGpu, targetsGpu, weightsGpu, { inPlace: true });
  assert(inPlace.dLogits === logitsGpu, "in place: dLogits is the logits tensor");
  const [loss, grad, loss2, grad2] = await ctx.readMany([
    fresh.loss,
    fresh.dLogits,
    inPlace.loss,
    inPlace.dLogits,
  ]);
  assertClose(loss, [expectedLoss], { rtol: 1e-5, atol: 1e-6 }, "loss");
  assertClose(grad, expectedGrad, { rtol: 1e-4, atol: 1e-6 }, "dLogits");
  assertBitEqual(loss2, loss, "in-place loss");
  assertBitEqual(grad2, grad, "in-place dLogits");
  for (const t of [logitsGpu, targetsGpu, weightsGpu, fresh.loss, fresh.dLogits, inPlace.loss]) {
    t.release();
  }
});
