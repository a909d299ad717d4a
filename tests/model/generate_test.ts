// Batched KV-cache generation (lib/model/generate.ts) on tiny random models: greedy decoding
// against recomputing the full forward (no cache) at every step; sampling determinism in the
// seed; batch independence of a prompt's samples; stop tokens; log-probs against
// log-softmax(logits / T) of a no-cache forward; readbacks per chunk, not per token.

import type { GpuContext } from "../../lib/gpu/context.ts";
import type { Architecture } from "../../lib/model/config.ts";
import { generate, type GenerateOptions } from "../../lib/model/generate.ts";
import { type GpuModel, loadGpuWeights, releaseGpuModel } from "../../lib/model/gpu_weights.ts";
import { padSequences, uploadBatch } from "../../lib/model/model_batch.ts";
import { forward } from "../../lib/model/transformer.ts";
import { randomWeights, tinyConfig, type TinyConfigOptions } from "../../lib/ref/transformer.ts";
import { assertBitEqual, assertClose, Rng, testGpu } from "../helpers.ts";
import { assert, assertEquals } from "./model_helpers.ts";

/** Scales that make the next-token distributions neither flat nor one-hot. */
const TEST_SCALES = { std: 0.2, biasStd: 0.2, normStd: 0.2 };

async function tinyModel(
  ctx: GpuContext,
  arch: Architecture = "Qwen2ForCausalLM",
  options: TinyConfigOptions = {},
  seed = 3,
): Promise<GpuModel> {
  const config = tinyConfig(arch, options); // vocab 67
  return await loadGpuWeights(ctx, config, randomWeights(config, seed, TEST_SCALES));
}

function randomPrompts(seed: number, lengths: number[], vocab: number): number[][] {
  const rng = new Rng(seed);
  return lengths.map((n) => Array.from({ length: n }, () => rng.int(vocab)));
}

/** The logits [V] after the last token of each sequence, from one forward without a cache. */
async function lastLogits(
  ctx: GpuContext,
  model: GpuModel,
  sequences: number[][],
): Promise<Float32Array[]> {
  const vocab = model.config.vocabSize;
  const padded = padSequences(sequences, { padding: "left" });
  const batch = uploadBatch(ctx, padded);
  const { logits } = forward(ctx, model, batch, { train: false });
  const [all] = await ctx.readMany([logits]);
  logits.release();
  batch.release();
  return sequences.map((_, b) => {
    const row = b * padded.time + padded.time - 1;
    return all.slice(row * vocab, (row + 1) * vocab) as Float32Array;
  });
}

/** Every next-token logits row [V] of `sequence` from position `from` on (no cache). */
async function allLogits(
  ctx: GpuContext,
  model: GpuModel,
  sequence: number[],
): Promise<Float32Array> {
  const batch = uploadBatch(ctx, padSequences([sequence]));
  const { logits } = forward(ctx, model, batch, { train: false });
  const [all] = await ctx.readMany([logits]);
  logits.release();
  batch.release();
  return all as Float32Array;
}

function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** log softmax(row / T)[id] in f64. */
function logSoftmaxAt(row: ArrayLike<number>, temperature: number, id: number): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) max = Math.max(max, row[i] / temperature);
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] / temperature - max);
  return row[id] / temperature - max - Math.log(sum);
}

const SAMPLED: Omit<GenerateOptions, "seed"> = { maxNewTokens: 8, temperature: 1.2 };

Deno.test("generate: greedy with the KV cache = argmax of the full forward at every step", async () => {
  const ctx = await testGpu();
  for (
    const [arch, options] of [
      ["Qwen2ForCausalLM", {}],
      ["Qwen3ForCausalLM", { tied: true }],
    ] as const
  ) {
    const model = await tinyModel(ctx, arch, options);
    const prompts = randomPrompts(1, [5, 1, 7], model.config.vocabSize);
    const steps = 6;
    const got = await generate(ctx, model, prompts, { maxNewTokens: steps, temperature: 0 });

    const sequences = prompts.map((p) => [...p]);
    for (let s = 0; s < steps; s++) {
      const rows = await lastLogits(ctx, model, sequences);
      rows.forEach((row, b) => sequences[b].push(argmax(row)));
    }
    const expected = sequences.map((seq, b) => seq.slice(prompts[b].length));
    assertEquals(got.tokens, expected, `${arch}: greedy tokens`);
    // The prefill cut into forwards of 3 columns (a cache that is not empty) changes nothing.
    const cut = await generate(ctx, model, prompts, {
      maxNewTokens: steps,
      temperature: 0,
      prefillChunk: 3,
    });
    assertEquals(cut.tokens, expected, `${arch}: greedy tokens, prefill in chunks of 3`);
    for (const lp of got.logprobs) assertBitEqual(lp, new Array(steps).fill(0), "greedy logprobs");
    releaseGpuModel(model);
  }
});

Deno.test("generate: the same seed gives the same samples, another seed others", async () => {
  const ctx = await testGpu();
  const model = await tinyModel(ctx);
  const prompts = randomPrompts(2, [4, 6, 2], model.config.vocabSize);
  const a = await generate(ctx, model, prompts, { ...SAMPLED, seed: 11 });
  const b = await generate(ctx, model, prompts, { ...SAMPLED, seed: 11 });
  const c = await generate(ctx, model, prompts, { ...SAMPLED, seed: 12 });
  const d = await generate(ctx, model, prompts, { ...SAMPLED, seed: 11, rngStep: 1 });
  assertEquals(a.tokens, b.tokens, "same seed: tokens");
  a.logprobs.forEach((lp, r) => assertBitEqual(lp, b.logprobs[r], `same seed: logprobs ${r}`));
  assert(JSON.stringify(a.tokens) !== JSON.stringify(c.tokens), "another seed: other tokens");
  assert(JSON.stringify(a.tokens) !== JSON.stringify(d.tokens), "another rngStep: other tokens");
  releaseGpuModel(model);
});

Deno.test("generate: a prompt samples the same tokens alone or in any batch (same rowId)", async () => {
  const ctx = await testGpu();
  const model = await tinyModel(ctx, "LlamaForCausalLM");
  const [target, ...others] = randomPrompts(3, [5, 8, 2, 3], model.config.vocabSize);
  const options = { ...SAMPLED, seed: 7, topK: 20, topP: 0.95 };
  const alone = await generate(ctx, model, [target], { ...options, rowIds: [5] });
  const batched = await generate(ctx, model, [others[0], target, others[1], others[2]], {
    ...options,
    rowIds: [1, 5, 9, 10], // non-consecutive: several uniform dispatches per step
  });
  assertEquals(batched.tokens[1], alone.tokens[0], "rowId 5 alone vs in a batch");
  assertClose(batched.logprobs[1], alone.logprobs[0], { rtol: 1e-4, atol: 1e-5 }, "logprobs");
  // Default row ids: a prompt first in its batch draws like the same prompt alone.
  const first = await generate(ctx, model, [target, others[0]], options);
  const single = await generate(ctx, model, [target], options);
  assertEquals(first.tokens[0], single.tokens[0], "rowId 0 alone vs first in a batch");
  releaseGpuModel(model);
});

Deno.test("generate: log-probs are log-softmax(logits / T) of the chosen ids (no-cache forward)", async () => {
  const ctx = await testGpu();
  const model = await tinyModel(ctx, "Qwen3ForCausalLM");
  const vocab = model.config.vocabSize;
  const prompts = randomPrompts(4, [3, 6], vocab);
  for (const options of [{ temperature: 0.8 }, { temperature: 1.3, topK: 12, topP: 0.9 }]) {
    const got = await generate(ctx, model, prompts, { maxNewTokens: 7, seed: 5, ...options });
    for (let b = 0; b < prompts.length; b++) {
      const sequence = [...prompts[b], ...got.tokens[b]];
      const logits = await allLogits(ctx, model, sequence);
      const expected = got.tokens[b].map((id, j) => {
        const row = prompts[b].length - 1 + j; // the row that predicts generated token j
        return logSoftmaxAt(
          logits.subarray(row * vocab, (row + 1) * vocab),
          options.temperature,
          id,
        );
      });
      assertClose(
        got.logprobs[b],
        expected,
        { rtol: 1e-4, atol: 1e-5 },
        `T ${options.temperature}`,
      );
    }
  }
  releaseGpuModel(model);
});

Deno.test("generate: a stop token ends its row (returned, nothing after) while others go on", async () => {
  const ctx = await testGpu();
  const model = await tinyModel(ctx);
  const prompts = randomPrompts(5, [4, 2, 5], model.config.vocabSize);
  const free = await generate(ctx, model, prompts, { maxNewTokens: 10, temperature: 0 });
  const stopId = free.tokens[0][2]; // row 0 stops at its third token (or earlier)
  const stopped = await generate(ctx, model, prompts, {
    maxNewTokens: 10,
    temperature: 0,
    stopTokens: [stopId],
    chunk: 3,
  });
  free.tokens.forEach((row, b) => {
    const at = row.indexOf(stopId);
    const expected = at < 0 ? row : row.slice(0, at + 1);
    assertEquals(stopped.tokens[b], expected, `row ${b} (stop id ${stopId})`);
    assert(stopped.logprobs[b].length === expected.length, `row ${b}: one logprob per token`);
  });
  assert(stopped.tokens[0].length <= 3, "row 0 stopped");
  assert(stopped.tokens.some((row) => row.length === 10), "another row ran to the end");
  releaseGpuModel(model);
});

Deno.test("generate: readbacks are one per chunk, and generation stops once every row stopped", async () => {
  const ctx = await testGpu();
  const model = await tinyModel(ctx);
  const prompts = randomPrompts(6, [3, 3, 4, 1], model.config.vocabSize);
  const once = await generate(ctx, model, prompts, { maxNewTokens: 20, temperature: 0 });
  assert(once.readbacks === 1, `no stop tokens: one readback, got ${once.readbacks}`);
  const chunked = await generate(ctx, model, prompts, {
    maxNewTokens: 20,
    temperature: 0,
    chunk: 6,
  });
  assert(
    chunked.readbacks === 4,
    `20 tokens in chunks of 6: 4 readbacks, got ${chunked.readbacks}`,
  );
  assertEquals(chunked.tokens, once.tokens, "chunking changes nothing");
  assert(chunked.submits <= 20 + 4 + 2, `submits ${chunked.submits}: about one per step`);

  // Every row stops within its first 2 tokens: the run ends after the first chunk of 4.
  const stopTokens = [...new Set(once.tokens.flatMap((row) => row.slice(0, 2)))];
  const early = await generate(ctx, model, prompts, {
    maxNewTokens: 20,
    temperature: 0,
    stopTokens,
    chunk: 4,
  });
  assert(
    early.steps === 4 && early.readbacks === 1,
    `early: ${early.steps} steps, ${early.readbacks} readbacks`,
  );
  early.tokens.forEach((row, b) => {
    const at = once.tokens[b].findIndex((id) => stopTokens.includes(id));
    assertEquals(row, once.tokens[b].slice(0, at + 1), `row ${b} cut at its stop token`);
  });
  releaseGpuModel(model);
});

Deno.test("generate: edge cases and bad input", async () => {
  const ctx = await testGpu();
  const model = await tinyModel(ctx);
  const none = await generate(ctx, model, [[1, 2]], { maxNewTokens: 0, temperature: 1 });
  assertEquals(none.tokens, [[]], "maxNewTokens 0");
  assert(none.readbacks === 0, "maxNewTokens 0: no readback");
  const one = await generate(ctx, model, [[1, 2], [3]], { maxNewTokens: 1, temperature: 0 });
  assert(one.tokens.every((row) => row.length === 1) && one.readbacks === 1, "maxNewTokens 1");
  const refuse = async (fn: () => Promise<unknown>, fragment: string) => {
    let message = "";
    try {
      await fn();
    } catch (e) {
      message = (e as Error).message;
    }
    assert(message.includes(fragment), `expected an error with "${fragment}", got "${message}"`);
  };
  await refuse(() => generate(ctx, model, [[1], []], SAMPLED), "prompt 1 is empty");
  await refuse(() => generate(ctx, model, [[1, 99]], SAMPLED), "not < vocab 67");
  await refuse(
    () => generate(ctx, model, [[1]], { ...SAMPLED, rowIds: [0, 1] }),
    "2 rowIds for 1 prompts",
  );
  await refuse(
    () => generate(ctx, model, [[1]], { ...SAMPLED, stopTokens: [67] }),
    "a stop token must be",
  );
  await refuse(() => generate(ctx, model, [[1]], { ...SAMPLED, topP: 0 }), "topP");
  // Nothing leaked on the error paths: the same call works afterwards.
  const again = await generate(ctx, model, [[1]], { maxNewTokens: 2, temperature: 0 });
  assert(again.tokens[0].length === 2, "works after errors");
  releaseGpuModel(model);
});
