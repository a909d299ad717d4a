// Next-token sampling on the GPU: temperature, top-k, top-p (Hugging Face's order) and an
// inverse-CDF draw with a counter-based RNG (Philox4x32-10 keyed by seed, step and row), so
// that a row draws the same token whatever batch it is in and however dispatches are ordered.
// Ids stay on the GPU for the next decode step. The math is in kernels/sampling.wgsl.

import type { GpuContext } from "../gpu/context.ts";
import { loopBudget, LoopLimitError } from "../gpu/loop_limit.ts";
import { Params } from "../gpu/params.ts";
import { shapeString, type Tensor } from "../gpu/tensor.ts";
import source from "../../kernels/sampling.wgsl" with { type: "text" };

/** Threads per row on a GPU for big vocabularies; small ones use fewer. */
const ROW_THREADS = 256;
const SMALL_VOCAB_ROW_THREADS = 64;
const SMALL_VOCAB = 4096;
/**
 * Fewest threads per row on a software adapter: lavapipe's SIMD width. Every barrier of a
 * bigger workgroup switches between its SIMD groups: at 64 threads a greedy step of 64 rows ×
 * V = 1,024 took 1.15 ms against 0.27 ms at 8 (tiny preset's generation).
 */
const SOFTWARE_ROW_THREADS = 8;
/**
 * Sweeps over its share of the row one invocation makes at most (argmax, sums, 4 top-k and 8
 * top-p passes, the draw): what llvmpipe's loop limit counts (lib/gpu/loop_limit.ts; measured:
 * 32 threads per row came out wrong at V = 151,936 with top-k and top-p, 64 did not).
 */
const SWEEPS = 18;
const UNIFORM_THREADS = 64;

export interface SamplingOptions {
  /** 0: greedy argmax (ties → smallest id); otherwise logits are divided by it. */
  temperature: number;
  /** Keep the k largest logits (ties at the k-th all kept); 0 or ≥ V: off. Default 0. */
  topK?: number;
  /** Nucleus: keep the smallest top set of mass ≥ p (after top-k); 1: off. Default 1. */
  topP?: number;
  /**
   * Threads per row, a power of two in [8, 256] (for tests and measurements; the default
   * depends on the adapter and V, see rowThreads). Part of the numerics: sums follow it.
   */
  threads?: number;
}

/** What keys the RNG: row r of a call draws Philox(counter (firstRow + r, step, 0, 0), seed). */
export interface RngKey {
  /** Integer in [0, 2^53): the run's seed (both halves of the 64-bit Philox key). */
  seed: number;
  /** Integer in [0, 2^32): e.g. the decode position or the rollout step. */
  step: number;
  /** Global index of this call's first row (default 0): lets rows be drawn in any batching. */
  firstRow?: number;
}

export interface Sampled {
  /** [rows] u32: the drawn token ids. */
  ids: Tensor<"u32">;
  /**
   * [rows] f32: log softmax(logits / T)[id], the log-probability of the drawn id under the
   * temperature-scaled FULL softmax (before top-k/top-p renormalisation); 0 when T = 0.
   */
  logprobs: Tensor<"f32">;
}

function checkInteger(op: string, name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new Error(`${op}: ${name} must be an integer in [0, ${max}], got ${value}`);
  }
}

/**
 * The per-row uniforms in [0, 1) that `sample` draws with (24 random bits each).
 * → [rows] f32. Caller releases.
 */
export function philoxUniforms(ctx: GpuContext, rows: number, key: RngKey): Tensor<"f32"> {
  const firstRow = key.firstRow ?? 0;
  checkInteger("philoxUniforms", "rows", rows, 2 ** 32 - 1);
  checkInteger("philoxUniforms", "seed", key.seed, Number.MAX_SAFE_INTEGER);
  checkInteger("philoxUniforms", "step", key.step, 2 ** 32 - 1);
  checkInteger("philoxUniforms", "firstRow + rows", firstRow + rows, 2 ** 32);
  const out = ctx.empty([rows], "f32");
  ctx.dispatch({ name: "sampling", source, entry: "philox_uniforms" }, {
    params: new Params()
      .u32(rows)
      .u32(firstRow)
      .u32(key.step)
      .u32(key.seed % 2 ** 32)
      .u32(Math.floor(key.seed / 2 ** 32)),
    tensors: [out],
    workgroups: ctx.groupsFor(rows, UNIFORM_THREADS),
  });
  return out;
}

/**
 * Threads per row (a workgroup each). Sums run thread-strided then in a fixed tree, so the
 * count is part of the numerics: the same adapter and vocabulary always get the same count.
 * On a software adapter, the fewest (from 8) that keep a row's sweeps inside the loop budget.
 */
function rowThreads(ctx: GpuContext, vocab: number): number {
  if (ctx.adapter.kernels !== "software") {
    return vocab < SMALL_VOCAB ? SMALL_VOCAB_ROW_THREADS : ROW_THREADS;
  }
  let threads = SOFTWARE_ROW_THREADS;
  while (threads < ROW_THREADS && SWEEPS * Math.ceil(vocab / threads) > loopBudget(ctx)) {
    threads *= 2;
  }
  return threads;
}

/** Checks logits [rows, V] and the options; returns [rows, V]. */
function checkSampling(logits: Tensor, options: SamplingOptions): [number, number] {
  const op = "sample";
  if (logits.dtype !== "f32" || logits.shape.length !== 2) {
    throw new Error(
      `${op}: logits must be f32 [rows, V], got ${logits.dtype} ${shapeString(logits.shape)}`,
    );
  }
  const [rows, vocab] = logits.shape;
  if (vocab < 1) throw new Error(`${op}: logits ${shapeString(logits.shape)} has no vocabulary`);
  const { temperature, topK = 0, topP = 1 } = options;
  if (!(temperature >= 0 && Number.isFinite(temperature))) {
    throw new Error(`${op}: temperature must be finite and >= 0, got ${temperature}`);
  }
  checkInteger(op, "topK", topK, Number.MAX_SAFE_INTEGER);
  if (!(topP > 0 && topP <= 1)) throw new Error(`${op}: topP must be in (0, 1], got ${topP}`);
  const { threads } = options;
  if (
    threads !== undefined && !(threads >= 8 && threads <= 256 && (threads & (threads - 1)) === 0)
  ) {
    throw new Error(`${op}: threads must be a power of two in [8, 256], got ${threads}`);
  }
  return [rows, vocab];
}

/**
 * Samples one id per row with the given uniforms (from `philoxUniforms`, or any source).
 * logits: [rows, V] f32, uniforms: [rows] f32 in [0, 1) (unused when temperature = 0)
 * → { ids: [rows] u32, logprobs: [rows] f32 }, written into `into` when given. Caller releases.
 */
export function sampleWithUniforms(
  ctx: GpuContext,
  logits: Tensor<"f32">,
  uniforms: Tensor<"f32"> | null,
  options: SamplingOptions,
  into?: Sampled,
): Sampled {
  const op = "sample";
  const [rows, vocab] = checkSampling(logits, options);
  const { temperature, topK = 0, topP = 1 } = options;
  if (temperature > 0) {
    if (!uniforms) throw new Error(`${op}: temperature ${temperature} needs uniforms`);
    const shape = shapeString(uniforms.shape);
    if (uniforms.dtype !== "f32" || uniforms.size !== rows) {
      throw new Error(`${op}: uniforms must be f32 [${rows}], got ${uniforms.dtype} ${shape}`);
    }
  }
  if (into && (into.ids.size !== rows || into.logprobs.size !== rows)) {
    throw new Error(
      `${op}: into.ids ${shapeString(into.ids.shape)} and into.logprobs ` +
        `${shapeString(into.logprobs.shape)} must both hold ${rows} rows`,
    );
  }
  const threads = options.threads ?? rowThreads(ctx, vocab);
  const iterations = SWEEPS * Math.ceil(vocab / threads);
  if (iterations > loopBudget(ctx)) {
    throw new LoopLimitError(op, `a vocabulary of ${vocab}`, iterations, "sample fewer logits");
  }
  const out = into ?? { ids: ctx.empty([rows], "u32"), logprobs: ctx.empty([rows], "f32") };
  ctx.dispatch(
    { name: "sampling", source, entry: "sample_rows", constants: { WORKGROUP_SIZE: threads } },
    {
      params: new Params()
        .u32(rows)
        .u32(vocab)
        .f32(temperature)
        .u32(topK >= vocab ? 0 : topK)
        .f32(topP),
      // Greedy reads no uniforms: the logits stand in for the (statically bound) buffer.
      tensors: [logits, uniforms ?? logits, out.ids, out.logprobs],
      workgroups: ctx.groupsFor(rows, 1),
    },
  );
  return out;
}

/**
 * Samples one id per row: temperature, then top-k, then top-p, then an inverse-CDF draw in
 * index order with row r's Philox uniform for (seed, step, firstRow + r).
 * logits: [rows, V] f32 → { ids: [rows] u32, logprobs: [rows] f32 }. Caller releases.
 */
export function sample(
  ctx: GpuContext,
  logits: Tensor<"f32">,
  options: SamplingOptions & RngKey,
  into?: Sampled,
): Sampled {
  const [rows] = checkSampling(logits, options); // before allocating the uniforms
  if (options.temperature === 0) return sampleWithUniforms(ctx, logits, null, options, into);
  const uniforms = philoxUniforms(ctx, rows, options);
  try {
    return sampleWithUniforms(ctx, logits, uniforms, options, into);
  } finally {
    uniforms.release();
  }
}
