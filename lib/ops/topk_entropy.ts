// The token entropy of the RMT spec ("Token entropy", kernels/topk_entropy.wgsl): per row of
// logits, q = softmax of the k largest logits / T, renormalised among them, and
// H = −Σ q log q in nats. crossEntropyForward (lib/ops/cross_entropy.ts) calls it for its
// `entropy` output; the reference is lib/ref/topk_entropy.ts.
//
// Each row is split among C threads (a power of two, up to the workgroup size) that keep their
// top values in registers; the row's C lists are then merged. The result depends on the row's
// top-k values only, so it is bit-identical whatever C (tests check it): C is chosen for speed.

import type { GpuContext } from "../gpu/context.ts";
import { Params } from "../gpu/params.ts";
import { shapeString, type Tensor } from "../gpu/tensor.ts";
import source from "../../kernels/topk_entropy.wgsl" with { type: "text" };

/** The largest k: a thread's list has at most this many slots. */
export const MAX_TOP_K = 32;
/** The spec's k for the token entropy. */
export const DEFAULT_TOP_K = 16;

/** Threads per workgroup; also the most threads one row can get. */
const WORKGROUP_SIZE = 64;

// How many threads a row gets (threadsPerRowFor). Measured on lavapipe, where a merge's
// workgroup-memory traffic costs far more than the registers' arithmetic, and where threads
// that share a row stream it less cache-friendly: rows are split only as far as needed.
/** llvmpipe stops an invocation's loops after 65,535 iterations in all (lib/gpu/loop_limit.ts). */
const MAX_COLUMNS_PER_THREAD = 65_535;
/** A longer share is split, whatever the number of rows. */
const LONG_SHARE = 16_384;
/** With fewer threads than this in all, rows are split further (a GPU needs threads)... */
const MIN_THREADS = 1024;
/** ...down to shares of this many columns (shorter ones: the merges would dominate). */
const MIN_SHARE = 256;

export interface TopKEntropyOptions {
  /** Logits are divided by it (> 0); default 1. */
  temperature?: number;
  /** k, 1..MAX_TOP_K (default 16); k > V uses all V logits. */
  k?: number;
  /**
   * Threads per row, a power of two in 1..64. Default: chosen from the rows and V
   * (threadsPerRowFor). The result does not depend on it; tests and tuning set it.
   */
  threadsPerRow?: number;
}

/** Slots of a thread's list: the smallest power of two ≥ k (the bitonic merge needs one). */
export function topKSlots(k: number): number {
  let slots = 1;
  while (slots < k) slots *= 2;
  return slots;
}

/**
 * Threads per row (a power of two ≤ 64): 1 for a small model's vocabulary over many rows,
 * more for long rows (≤ 16,384 columns a thread) or few rows (≥ 1024 threads in all while
 * shares stay ≥ 256 columns). E.g. 8192 × 1088 → 1, 1024 × 32,000 → 2, 64 × 151,936 → 16.
 */
export function threadsPerRowFor(rows: number, vocab: number): number {
  const share = (threads: number) => Math.ceil(vocab / threads);
  let threads = 1;
  while (
    threads < WORKGROUP_SIZE &&
    (share(threads) > LONG_SHARE ||
      (rows * threads < MIN_THREADS && share(2 * threads) >= MIN_SHARE))
  ) {
    threads *= 2;
  }
  return threads;
}

/** Checks the options; returns 1/T, k and log2 of the threads per row. */
function checkOptions(
  op: string,
  rows: number,
  vocab: number,
  { temperature = 1, k = DEFAULT_TOP_K, threadsPerRow }: TopKEntropyOptions,
): { invT: number; k: number; threadsLog2: number } {
  if (!(temperature > 0) || !Number.isFinite(temperature)) {
    throw new Error(`${op}: temperature must be a positive number (got ${temperature})`);
  }
  if (!Number.isInteger(k) || k < 1 || k > MAX_TOP_K) {
    throw new Error(`${op}: k must be an integer in 1..${MAX_TOP_K} (got ${k})`);
  }
  const threads = threadsPerRow ?? threadsPerRowFor(rows, vocab);
  const threadsLog2 = Math.log2(threads);
  if (!Number.isInteger(threadsLog2) || threads > WORKGROUP_SIZE) {
    throw new Error(
      `${op}: threadsPerRow must be a power of two in 1..${WORKGROUP_SIZE} (got ${threads})`,
    );
  }
  if (Math.ceil(vocab / threads) > MAX_COLUMNS_PER_THREAD) {
    throw new Error(
      `${op}: rows of ${vocab} logits need more than ${threads} threads each ` +
        `(at most ${MAX_COLUMNS_PER_THREAD} columns a thread, ` +
        `${MAX_COLUMNS_PER_THREAD * WORKGROUP_SIZE} a row)`,
    );
  }
  return { invT: 1 / temperature, k, threadsLog2 };
}

/**
 * Checks logits [..., V] (f32, V ≥ 1, at most 2^32 elements, the kernels' index range); returns
 * the row shape, the rows and V. op names the caller in errors.
 */
export function logitRows(
  op: string,
  logits: Tensor<"f32">,
): { rowShape: number[]; rows: number; vocab: number } {
  if (logits.shape.length < 1 || logits.dtype !== "f32") {
    throw new Error(
      `${op}: logits must be f32 [..., V] (got ${logits.dtype} ${shapeString(logits.shape)})`,
    );
  }
  const vocab = logits.shape[logits.shape.length - 1];
  const rowShape = logits.shape.slice(0, -1);
  const rows = rowShape.reduce((a, b) => a * b, 1);
  if (vocab < 1) throw new Error(`${op}: logits ${shapeString(logits.shape)} have no columns`);
  if (rows * vocab > 0xffffffff) {
    throw new Error(`${op}: logits ${shapeString(logits.shape)} exceed 2^32 elements`);
  }
  return { rowShape, rows, vocab };
}

/**
 * logits: [..., V] f32 → entropy: [...] f32, the top-k entropy of each row in nats:
 * q = softmax(the k largest logits / T) (ties: the smaller index first; all V when k > V),
 * H = −Σ q log q. A row whose largest logit is ±inf gives NaN; NaN logits give an
 * unspecified value. Rows of more than 64 · 65,535 logits are refused.
 */
export function topKEntropy(
  ctx: GpuContext,
  logits: Tensor<"f32">,
  options: TopKEntropyOptions = {},
): Tensor<"f32"> {
  const op = "topKEntropy";
  const { rowShape, rows, vocab } = logitRows(op, logits);
  const { invT, k, threadsLog2 } = checkOptions(op, rows, vocab, options);
  const entropy = ctx.empty(rowShape, "f32");
  ctx.dispatch({
    name: "topk_entropy",
    source,
    entry: "top_k_entropy",
    constants: { WORKGROUP_SIZE, TOP_K_SLOTS: topKSlots(k) },
  }, {
    params: new Params().u32(rows).u32(vocab).f32(invT).u32(k).u32(threadsLog2),
    tensors: [logits, entropy],
    workgroups: ctx.groupsFor(rows, WORKGROUP_SIZE >> threadsLog2),
  });
  return entropy;
}
