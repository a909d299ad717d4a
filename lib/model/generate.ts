// Batched generation with a KV cache, without a readback per token.
//
// Prompts of different lengths are LEFT-padded to P columns (every prompt then ends at column
// P − 1, and each prompt's positions start at 0 at its first real token), so that every decode
// step appends one column for all rows at once:
//
//   prefill   forward over the [B, P] prompts (in column chunks if the logits would be big),
//             filling the cache; the logits of the last column [B, V] give token 0.
//   step j≥1  forward over [B, 1] = token j − 1 of each row (at position len_b + j − 1), with
//             the cache; its logits [B, V] give token j.
//
// The sampled ids never leave the GPU between steps: `sample` writes them into a [B] tensor,
// and the decode-step kernel (lib/ops/decode.ts) records them in a [B, maxNew] token buffer,
// sets the row's "finished" flag when the token is a stop id, and writes the next step's ids
// and positions. Rows that have finished keep running (a batch cannot shrink without a
// readback) but record a pad id (the first stop id) with log-prob 0, which the host cuts off.
//
// Readbacks: the host reads the generated columns once every `chunk` steps (readTimeSlice of
// the token and log-prob buffers, plus the finished flags, in one readMany) and stops early
// when every row has finished. The trade-off: each readback is a full host↔GPU round trip
// (~11 ms on lavapipe, and the GPU idles while the host waits and records the next steps), so
// small chunks cost time on every chunk; big chunks can run up to chunk − 1 useless steps after
// the last row stopped. Default: one read at the end when there are no stop ids (nothing to
// stop early for), else every DEFAULT_CHUNK = 32 steps. Readbacks = ceil(steps run / chunk).
// Submits (no readback): on a GPU every step on its own, so that the GPU starts on it while the
// host records the next one; on a software adapter (the GPU is the CPU: nothing runs in
// parallel with recording, and each submit costs) every SOFTWARE_STEPS_PER_SUBMIT steps,
// measured ~20% faster per decode step on lavapipe for the tiny preset.
//
// Randomness: the uniform that draws generated token j of prompt r is Philox keyed by
//   (seed, step = rngStep · maxNewTokens + j, row = rowIds[r])       (lib/ops/sampling.ts)
// and depends on nothing else, so a prompt samples the same tokens whatever other prompts share
// its batch, as long as it keeps its rowId (default r) — up to f32 rounding of logits that
// depend on the padding, in practice the same ids. Rows that should draw different samples of
// the same prompt (GRPO's group) need different rowIds; `rngStep` separates calls (e.g. the
// training step) so that they do not reuse uniforms. Temperature 0 is greedy (no uniforms).

import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { type DecodeState, decodeStep } from "../ops/decode.ts";
import { readTimeSlice, writeTimeSlice } from "../ops/kv_cache.ts";
import { philoxUniforms, type Sampled, sampleWithUniforms } from "../ops/sampling.ts";
import { pinTextures } from "../ops/texture_staging.ts";
import type { GpuModel } from "./gpu_weights.ts";
import { createKvCache, type KvCache, releaseKvCache } from "./kv_cache.ts";
import { padSequences } from "./model_batch.ts";
import { forward } from "./transformer.ts";

/** Steps between readbacks when rows can stop early (see the top of this file). */
export const DEFAULT_CHUNK = 32;
/** Decode steps recorded per submit on a software (CPU) adapter; 1 on a GPU. */
const SOFTWARE_STEPS_PER_SUBMIT = 8;
/** Upper bound on the bytes of one prefill forward's logits [B·T, V] (the prefill is cut). */
const PREFILL_LOGITS_BYTES = 64 * 1024 * 1024;

export interface GenerateOptions {
  /** Tokens to generate per prompt (at most; a row ends at its first stop id). */
  maxNewTokens: number;
  /** 0: greedy argmax; otherwise logits / temperature. */
  temperature: number;
  /** Keep the k most likely tokens; 0: off (default). */
  topK?: number;
  /** Nucleus sampling mass; 1: off (default). */
  topP?: number;
  /** The RNG seed, an integer in [0, 2^53) (default 0). */
  seed?: number;
  /** Ids that end a row (the stop id itself is returned). Default none. */
  stopTokens?: readonly number[];
  /** The Philox row of each prompt, integers in [0, 2^32) (default 0 .. B − 1). */
  rowIds?: readonly number[];
  /** Separates the RNG streams of different calls: step = rngStep·maxNewTokens + j. Default 0. */
  rngStep?: number;
  /** Steps between readbacks (≥ 1). Default: maxNewTokens without stop ids, else 32. */
  chunk?: number;
  /**
   * Prompt columns per prefill forward. Default: all of them, unless the [B·P, V] logits would
   * exceed 64 MiB (then as many as fit). The result does not depend on it.
   */
  prefillChunk?: number;
}

export interface GenerateResult {
  /** Per prompt: the generated ids, up to and including the first stop id. */
  tokens: number[][];
  /** Per prompt: log softmax(logits / T)[id] of each generated id (0 when greedy). */
  logprobs: number[][];
  /** Host readbacks made on ctx during the call (ceil(steps / chunk)). */
  readbacks: number;
  /** Command buffers submitted. */
  submits: number;
  /** Tokens generated per row before stopping (maxNewTokens, or fewer when all rows stopped). */
  steps: number;
}

function checkInteger(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`generate: ${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
}

/** Runs of consecutive row ids: [index of the first prompt, its row id, length]. */
function consecutiveRuns(rowIds: readonly number[]): [number, number, number][] {
  const runs: [number, number, number][] = [];
  rowIds.forEach((row, r) => {
    const last = runs[runs.length - 1];
    if (last && last[1] + last[2] === row) last[2]++;
    else runs.push([r, row, 1]);
  });
  return runs;
}

/**
 * The [B] uniforms of one step: Philox(seed, step, rowIds[r]) for each row, one dispatch per
 * run of consecutive row ids (one in total for the default ids). Caller releases.
 */
function stepUniforms(
  ctx: GpuContext,
  runs: readonly [number, number, number][],
  rows: number,
  seed: number,
  step: number,
): Tensor<"f32"> {
  if (runs.length === 1) return philoxUniforms(ctx, rows, { seed, step, firstRow: runs[0][1] });
  const uniforms = ctx.empty([1, rows], "f32");
  for (const [first, row, length] of runs) {
    const part = philoxUniforms(ctx, length, { seed, step, firstRow: row });
    writeTimeSlice(ctx, part.reshape([1, length]), uniforms, first);
    part.release();
  }
  return uniforms.reshape([rows]);
}

/**
 * Generates up to maxNewTokens tokens after each prompt (see the top of this file).
 * prompts: B non-empty lists of ids < V.
 */
export async function generate(
  ctx: GpuContext,
  model: GpuModel,
  prompts: readonly (readonly number[])[],
  options: GenerateOptions,
): Promise<GenerateResult> {
  const { vocabSize: vocab } = model.config;
  const {
    maxNewTokens,
    temperature,
    topK = 0,
    topP = 1,
    seed = 0,
    stopTokens = [],
    rngStep = 0,
  } = options;
  const batch = prompts.length;
  if (batch === 0) throw new Error("generate: no prompts");
  prompts.forEach((p, b) => {
    if (p.length === 0) throw new Error(`generate: prompt ${b} is empty`);
    for (const id of p) {
      if (!Number.isInteger(id) || id < 0 || id >= vocab) {
        throw new Error(`generate: prompt ${b} holds id ${id}, which is not < vocab ${vocab}`);
      }
    }
  });
  checkInteger("maxNewTokens", maxNewTokens, 0, 2 ** 31);
  if (!(temperature >= 0 && Number.isFinite(temperature))) {
    throw new Error(`generate: temperature must be finite and >= 0, got ${temperature}`);
  }
  checkInteger("topK", topK, 0, Number.MAX_SAFE_INTEGER);
  if (!(topP > 0 && topP <= 1)) throw new Error(`generate: topP must be in (0, 1], got ${topP}`);
  checkInteger("seed", seed, 0, Number.MAX_SAFE_INTEGER);
  for (const id of stopTokens) checkInteger("a stop token", id, 0, vocab - 1);
  const rowIds = options.rowIds ?? prompts.map((_, r) => r);
  if (rowIds.length !== batch) {
    throw new Error(`generate: ${rowIds.length} rowIds for ${batch} prompts`);
  }
  for (const row of rowIds) checkInteger("a rowId", row, 0, 2 ** 32 - 1);
  checkInteger("rngStep", rngStep, 0, 2 ** 32 - 1);
  if (rngStep * maxNewTokens + maxNewTokens - 1 >= 2 ** 32) {
    throw new Error(
      `generate: rngStep·maxNewTokens + maxNewTokens − 1 = ` +
        `${rngStep * maxNewTokens + maxNewTokens - 1} does not fit the 32-bit Philox step`,
    );
  }
  const chunk = options.chunk ??
    (stopTokens.length === 0 ? Math.max(1, maxNewTokens) : DEFAULT_CHUNK);
  checkInteger("chunk", chunk, 1, Number.MAX_SAFE_INTEGER);
  if (options.prefillChunk !== undefined) {
    checkInteger("prefillChunk", options.prefillChunk, 1, Number.MAX_SAFE_INTEGER);
  }

  const counts = { readbacks: ctx.counts.readbacks, submits: ctx.counts.submits };
  const result = (tokens: number[][], logprobs: number[][], steps: number): GenerateResult => ({
    tokens,
    logprobs,
    readbacks: ctx.counts.readbacks - counts.readbacks,
    submits: ctx.counts.submits - counts.submits,
    steps,
  });
  if (maxNewTokens === 0) return result(prompts.map(() => []), prompts.map(() => []), 0);

  const padded = padSequences(prompts, { padding: "left" });
  const promptLen = padded.time;
  // The last token is sampled, never fed back: the cache holds P + maxNew − 1 positions.
  const maxLen = promptLen + maxNewTokens - 1;
  const keyMask = new Uint32Array(batch * maxLen).fill(1); // generated columns: real tokens
  for (let b = 0; b < batch; b++) {
    keyMask.set(padded.keyMask.subarray(b * promptLen, (b + 1) * promptLen), b * maxLen);
  }
  const runs = consecutiveRuns(rowIds);
  const stepsPerSubmit = ctx.adapter.kernels === "software" ? SOFTWARE_STEPS_PER_SUBMIT : 1;
  const stopSet = new Set(stopTokens);
  const sampling = { temperature, topK, topP };

  const owned: Tensor[] = [];
  const own = <T extends Tensor>(t: T): T => {
    owned.push(t);
    return t;
  };
  let cache: KvCache | null = null;
  // On a software adapter the weights' texels stay in textures for the whole call, instead of
  // being copied for every product (lib/ops/texture_staging.ts).
  const unpin = pinTextures(ctx, [...model.params.values()]);
  try {
    cache = createKvCache(ctx, model.config, batch, maxLen);
    const keyMaskGpu = own(ctx.upload(keyMask, [batch, maxLen], "u32"));
    const state: DecodeState = {
      finished: own(ctx.zeros([batch], "u32")),
      nextIds: own(ctx.zeros([batch], "u32")),
      positions: own(ctx.i32(padded.lengths.map((n) => n - 1))), // the last prompt token's
      tokens: own(ctx.zeros([batch, maxNewTokens], "u32")),
      logprobs: own(ctx.zeros([batch, maxNewTokens], "f32")),
    };
    const sampled: Sampled = {
      ids: own(ctx.empty([batch], "u32")),
      logprobs: own(ctx.empty([batch], "f32")),
    };
    const stop = stopTokens.length > 0 ? own(ctx.u32(stopTokens)) : null;
    const padId = stopTokens[0] ?? 0;

    /** Samples token j from logits [B, V] and records it (releases the logits). */
    const sampleStep = (j: number, logits: Tensor<"f32">) => {
      const uniforms = temperature > 0
        ? stepUniforms(ctx, runs, batch, seed, rngStep * maxNewTokens + j)
        : null;
      sampleWithUniforms(ctx, logits, uniforms, sampling, sampled);
      decodeStep(ctx, sampled.ids, sampled.logprobs, stop, state, { column: j, padId });
      uniforms?.release();
      logits.release();
      if ((j + 1) % stepsPerSubmit === 0) ctx.submit(); // a readback submits the rest
    };

    // Prefill, in column chunks whose logits stay under PREFILL_LOGITS_BYTES.
    const columnsPerForward = options.prefillChunk ??
      Math.max(1, Math.floor(PREFILL_LOGITS_BYTES / (batch * vocab * 4)));
    for (let start = 0; start < promptLen; start += columnsPerForward) {
      const width = Math.min(columnsPerForward, promptLen - start);
      const ids = new Uint32Array(batch * width);
      const positions = new Int32Array(batch * width);
      for (let b = 0; b < batch; b++) {
        const from = b * promptLen + start;
        ids.set(padded.ids.subarray(from, from + width), b * width);
        positions.set(padded.positions.subarray(from, from + width), b * width);
      }
      const positionsGpu = ctx.upload(positions, [batch, width], "i32");
      const { logits } = forward(ctx, model, {
        ids: { data: ids, shape: [batch, width] },
        positions: positionsGpu,
        keyMask: keyMaskGpu,
      }, { train: false, cache });
      positionsGpu.release();
      if (start + width < promptLen) {
        logits.release();
        continue;
      }
      // The last column holds every prompt's last token (left padding): [B, V].
      const last = readTimeSlice(ctx, logits.reshape([batch, width, vocab]), width - 1, 1);
      logits.release();
      sampleStep(0, last.reshape([batch, vocab]));
    }

    // Decode, reading the generated columns back once per chunk.
    const tokens: number[][] = prompts.map(() => []);
    const logprobs: number[][] = prompts.map(() => []);
    const done = new Array<boolean>(batch).fill(false);
    let read = 0; // columns read so far
    const readColumns = async (end: number): Promise<boolean> => {
      const tokenSlice = readTimeSlice(ctx, state.tokens, read, end - read);
      const logprobSlice = readTimeSlice(ctx, state.logprobs, read, end - read);
      const [ids, lps, finished] = await ctx.readMany([tokenSlice, logprobSlice, state.finished]);
      tokenSlice.release();
      logprobSlice.release();
      const width = end - read;
      for (let b = 0; b < batch; b++) {
        for (let c = 0; c < width && !done[b]; c++) {
          const id = ids[b * width + c];
          tokens[b].push(id);
          logprobs[b].push(lps[b * width + c]);
          if (stopSet.has(id)) done[b] = true;
        }
      }
      read = end;
      return finished.every((f) => f !== 0);
    };

    let steps = 1;
    let allFinished = false;
    if (chunk === 1 || maxNewTokens === 1) allFinished = await readColumns(1);
    while (steps < maxNewTokens && !allFinished) {
      const { logits } = forward(ctx, model, {
        ids: state.nextIds.reshape([batch, 1]),
        positions: state.positions.reshape([batch, 1]),
        keyMask: keyMaskGpu,
      }, { train: false, cache });
      sampleStep(steps, logits);
      steps++;
      if (steps % chunk === 0 || steps === maxNewTokens) allFinished = await readColumns(steps);
    }
    if (read < steps) await readColumns(steps);
    return result(tokens, logprobs, steps);
  } finally {
    if (cache) releaseKvCache(cache);
    for (const t of owned) t.release();
    unpin();
  }
}
