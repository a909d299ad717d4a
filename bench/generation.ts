// Benchmark of batched generation with the KV cache (lib/model/generate.ts): B prompts of P
// tokens, N new tokens each, greedy (temperature 0, no stop ids: every row runs N steps).
// Time is wall-clock of the whole generate() call: prefill, N − 1 decode steps and the
// readbacks; tokens per second counts the B·N generated tokens. A warm-up call (2 new tokens,
// same batch) compiles the pipelines first. A call with N = 1 (prefill, one sample, one
// readback) is timed too, to split the time into prefill and per-decode-step cost.
//
// The prompts are a fixed formula, promptIds, that bench/torch_reference.py repeats, so the two
// greedy continuations of the same model can be compared token by token.
//
//   ./rmtw run -A bench/generation.ts [--quick]

import process from "node:process";
import type { GpuContext } from "../lib/gpu/context.ts";
import { generate } from "../lib/model/generate.ts";
import { loadGpuWeights, releaseGpuModel } from "../lib/model/gpu_weights.ts";
import { readModelFolder } from "../lib/model/model_folder.ts";
import { median, overPresets, round, runAlone } from "./models.ts";

/** The shapes both rmt and the PyTorch reference time. */
export const GENERATION_SHAPE = { batch: 64, promptLen: 16, newTokens: 64 };

/** Prompt r, token j: a fixed id pattern (the same in bench/torch_reference.py). */
export function promptIds(batch: number, promptLen: number, vocab: number): number[][] {
  return Array.from(
    { length: batch },
    (_, r) => Array.from({ length: promptLen }, (_, j) => (r * 131 + j * 17 + 5) % vocab),
  );
}

export interface GenerationOptions {
  quick?: boolean;
  batch?: number;
  promptLen?: number;
  newTokens?: number;
  /** Timed calls (default 2, quick 1). */
  runs?: number;
}

export interface GenerationResult {
  preset: string;
  batch: number;
  promptLen: number;
  newTokens: number;
  runs: number;
  /** Median milliseconds of one generate() call, and B·N / that. */
  ms: number;
  tokensPerSecond: number;
  /** A call with one new token: the prefill, one sample, one readback. */
  prefillMs: number;
  /** (ms − prefillMs) / (N − 1): one decode step for all B rows. */
  decodeStepMs: number;
  /** Process CPU milliseconds of one call (median; lavapipe's threads are this process's). */
  cpuMs: number;
  /** Per generate() call (from the result and the context's counters). */
  submits: number;
  readbacks: number;
  dispatches: number;
  /** Row 0's generated ids (to compare with the PyTorch reference's greedy ids). */
  firstRow: number[];
}

/** One model folder: load, warm up, time generate(). */
export async function benchGenerationModel(
  ctx: GpuContext,
  dir: string,
  preset: string,
  options: GenerationOptions = {},
): Promise<GenerationResult> {
  const {
    batch = GENERATION_SHAPE.batch,
    promptLen = GENERATION_SHAPE.promptLen,
    newTokens = GENERATION_SHAPE.newTokens,
  } = options;
  const runs = options.runs ?? (options.quick ? 1 : 2);
  const folder = await readModelFolder(dir);
  const model = await loadGpuWeights(ctx, folder.config, folder.weights);
  const prompts = promptIds(batch, promptLen, folder.config.vocabSize);
  const call = async (maxNewTokens: number) => {
    const dispatches = ctx.counts.dispatches;
    const cpuStart = process.cpuUsage();
    const start = performance.now();
    const result = await generate(ctx, model, prompts, { maxNewTokens, temperature: 0 });
    const ms = performance.now() - start;
    const cpu = process.cpuUsage(cpuStart);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    return { ms, cpuMs, result, dispatches: ctx.counts.dispatches - dispatches };
  };
  try {
    await call(2); // warm-up
    const prefillMs = (await call(1)).ms;
    const timed = [];
    for (let r = 0; r < runs; r++) timed.push(await call(newTokens));
    const ms = median(timed.map((t) => t.ms));
    const last = timed[timed.length - 1];
    return {
      preset,
      batch,
      promptLen,
      newTokens,
      runs,
      ms: round(ms, 1),
      tokensPerSecond: round((batch * newTokens) / (ms / 1000), 1),
      prefillMs: round(prefillMs, 1),
      decodeStepMs: round((ms - prefillMs) / Math.max(1, newTokens - 1), 2),
      cpuMs: round(median(timed.map((t) => t.cpuMs)), 1),
      submits: last.result.submits,
      readbacks: last.result.readbacks,
      dispatches: last.dispatches,
      firstRow: last.result.tokens[0],
    };
  } finally {
    releaseGpuModel(model);
  }
}

/** Every preset of `models` (preset → model folder). */
export function benchGeneration(
  ctx: GpuContext,
  models: Readonly<Record<string, string>>,
  options: GenerationOptions = {},
): Promise<{ adapter: string; results: GenerationResult[] }> {
  return overPresets(ctx, models, options, benchGenerationModel);
}

if (import.meta.main) await runAlone(benchGeneration);
