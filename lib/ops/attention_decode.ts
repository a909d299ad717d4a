// Decode attention: one new query per sequence against the KV cache, read in place (no copy of
// the cache's filled prefix). The math and the layout are in kernels/attention_decode.wgsl;
// lib/ref/attention_decode.ts is the plain reference.
//
//   q: [B, 1, Hq, D] (or [B, Hq, D])   kCache, vCache: [B, maxLen, Hkv, D]
//   keyMask: [B, L] u32 with L ≥ length (1 = token, 0 = padding)   → out: [B, 1, Hq, D]
//   keys 0..length − 1 are attended: the query sits at position length − 1.
// The same result as attentionForward (lib/ops/attention.ts) with Tq = 1 and the first `length`
// keys, up to f32 rounding, including zeros for a query that sees no key. There is no backward:
// decoding is inference only.
//
// Measured on lavapipe (2 shared EPYC vCPUs under a load of 3-4, so ±30 %; best of 3) on the
// small preset's generation shape: B = 64, Hq = 6, Hkv = 2, D = 64, a cache of 79 rows (320
// for length 300). Milliseconds per call:
//   length                                          16     48     79    300
//   before: 2 prefix copies + attentionForward      50     90    166    552
//   this kernel,  4 threads per workgroup          1.3    2.4    3.8     16
//                 8 threads (the default)          1.6    2.4    3.6     17
//                16 threads                        2.2    3.5    3.8     13
//                32 threads                        3.2    4.8    5.6     15
//   a workgroup per query head (no group sharing)  2.2    4.9    5.3
// Interleaved key blocks (thread t takes blocks t, t + 8, …) and accumulators in private
// memory instead of workgroup memory were no faster (within the noise). Default: 8 threads on
// software adapters (lavapipe's SIMD width, and fewer keys per thread than 4), 32 (a warp) on
// GPUs.
//
// The "rows" variant (software kernels only, by default) gives each (sequence, kv head, head
// slice) one thread that runs through all the keys: no key split, so no workgroup memory, no
// barrier and no merge, which at a decode step's lengths cost more than the keys themselves.
// Measured on lavapipe, ms per call, split (8 threads) → rows, B = 64:
//   small preset (Hq 6, Hkv 2, D 64)   length 16: 0.63 → 0.26   48: 1.02 → 0.66   79: 1.43 → 1.05
//                                      150: 2.46 → 1.95   300: 4.5 → 5.0
//   tiny preset (Hq 4, Hkv 2, D 16)    length 16: 0.35 → 0.13   48: 0.47 → 0.25   79: 0.52 → 0.36
// and with few sequences it leaves lanes idle (B = 1, length 300: 0.15 → 0.35). So "auto" takes
// it for at least ROWS_MIN_ITEMS items and up to ROWS_MAX_LENGTH keys. The two variants sum
// in different orders (the last bits differ); each is deterministic.

import type { GpuContext } from "../gpu/context.ts";
import { loopBudget, LoopLimitError } from "../gpu/loop_limit.ts";
import { Params } from "../gpu/params.ts";
import { shapeString, type Tensor } from "../gpu/tensor.ts";
import source from "../../kernels/attention_decode.wgsl" with { type: "text" };
import { attentionForward } from "./attention.ts";
import { readTimeSlice } from "./kv_cache.ts";

/** Threads per workgroup on a software adapter (lavapipe: its SIMD width, fastest measured). */
const CPU_THREADS = 8;
/** Threads per workgroup on a GPU (a warp; untested on hardware so far). */
const GPU_THREADS = 32;
/** Most query heads one workgroup handles (the shader's private arrays hold this many). */
const MAX_HEADS = 8;
/** The rows variant's accumulators hold D ≤ 128 (MAX_ROW_CHUNKS in the shader). */
const ROWS_MAX_HEAD_DIM = 128;
/** "auto" takes the rows variant from this many (sequence, kv head, head slice) items ... */
const ROWS_MIN_ITEMS = 16;
/** ... and up to this many keys (see the measurements above). */
const ROWS_MAX_LENGTH = 256;

/**
 * "split": a workgroup per (head slice, kv head, sequence), its keys split over the threads
 * and merged; "rows": a thread per item over all its keys; "auto": rows for the software
 * kernels where measured faster, split otherwise.
 */
export type AttentionDecodeVariant = "auto" | "split" | "rows";

export interface AttentionDecodeOptions {
  /** Keys attended: cache rows 0..length − 1 (1 ≤ length ≤ maxLen). */
  length: number;
  /** Multiplies q·k before the softmax; 1/sqrt(D) by default. */
  scale?: number;
  /**
   * Threads per workgroup (for tests and measurements; default 8 on a software adapter, 32
   * otherwise). Lowered, if needed, until the workgroup memory fits the device.
   */
  threads?: number;
  /** Which kernel (default "auto"; "split" when `threads` is given). */
  variant?: AttentionDecodeVariant;
}

/** Sizes of one decode attention call. */
export interface AttentionDecodeDims {
  batch: number;
  maxLen: number;
  maskLen: number;
  length: number;
  queryHeads: number;
  kvHeads: number;
  headDim: number;
}

const OP = "attentionDecode";

/** Checks the tensors against each other and returns the sizes. */
function decodeDims(
  q: Tensor<"f32">,
  kCache: Tensor<"f32">,
  vCache: Tensor<"f32">,
  keyMask: Tensor<"u32">,
  length: number,
): AttentionDecodeDims {
  const shapes = `q ${shapeString(q.shape)}, kCache ${shapeString(kCache.shape)}, vCache ` +
    `${shapeString(vCache.shape)}, keyMask ${shapeString(keyMask.shape)}`;
  const fail = (why: string): never => {
    throw new Error(`${OP}: ${why} (${shapes})`);
  };
  const oneQuery = q.shape.length === 4 && q.shape[1] === 1;
  if (!oneQuery && q.shape.length !== 3) fail("q must be [B, 1, Hq, D] or [B, Hq, D]");
  if (kCache.shape.length !== 4) fail("kCache must be [B, maxLen, Hkv, D]");
  const [batch, maxLen, kvHeads, headDim] = kCache.shape;
  const [queryHeads, qDim] = q.shape.slice(-2);
  if (q.shape[0] !== batch || qDim !== headDim) fail("q and kCache differ in batch or head dim");
  if (vCache.shape.some((d, i) => d !== kCache.shape[i]) || vCache.shape.length !== 4) {
    fail("vCache must have kCache's shape");
  }
  if (keyMask.dtype !== "u32") fail("keyMask must be u32");
  if (keyMask.shape.length !== 2 || keyMask.shape[0] !== batch) fail("keyMask must be [B, L]");
  if (kvHeads === 0 || queryHeads % kvHeads !== 0) {
    fail(`${queryHeads} query heads is not a multiple of ${kvHeads} kv heads`);
  }
  if (headDim < 1) fail("head dim is 0");
  if (!Number.isInteger(length) || length < 1 || length > maxLen) {
    fail(`length ${length} must be an integer in 1..${maxLen} (the cache's rows)`);
  }
  if (keyMask.shape[1] < length) fail(`keyMask has fewer than length ${length} columns`);
  return { batch, maxLen, maskLen: keyMask.shape[1], length, queryHeads, kvHeads, headDim };
}

/** Bytes of workgroup memory the kernel declares: accumulators, m and l per thread and head. */
const workgroupBytes = (threads: number, heads: number, d: number) => threads * heads * (4 * d + 8);

/** Query heads per workgroup: the largest divisor of the group size up to MAX_HEADS. */
function headsPerWorkgroup(group: number): number {
  for (let heads = Math.min(group, MAX_HEADS); heads > 1; heads--) {
    if (group % heads === 0) return heads;
  }
  return 1;
}

/**
 * Decode attention forward, reading the cache in place.
 * q: [B, 1, Hq, D] or [B, Hq, D], kCache, vCache: [B, maxLen, Hkv, D] (rows 0..length − 1 are
 * read), keyMask: [B, L] u32 (L ≥ length) → out: [B, 1, Hq, D].
 * D not a multiple of 4 (no vec4 rows) falls back to copying the prefix out for
 * attentionForward: the same result, slower.
 */
export function attentionDecode(
  ctx: GpuContext,
  q: Tensor<"f32">,
  kCache: Tensor<"f32">,
  vCache: Tensor<"f32">,
  keyMask: Tensor<"u32">,
  options: AttentionDecodeOptions,
): Tensor<"f32"> {
  const dims = decodeDims(q, kCache, vCache, keyMask, options.length);
  const { batch, length, queryHeads, kvHeads, headDim } = dims;
  const scale = options.scale ?? 1 / Math.sqrt(headDim);
  const q4 = q.reshape([batch, 1, queryHeads, headDim]);
  // Threads asked for mean the split kernel, the only one they shape.
  const asked = options.variant ?? (options.threads === undefined ? "auto" : "split");
  if (asked === "rows" && options.threads !== undefined) {
    throw new Error(`${OP}: threads only shape the split variant, not rows`);
  }
  if (headDim % 4 !== 0) {
    if (asked !== "auto") {
      throw new Error(
        `${OP}: the ${asked} variant needs a head dim that is a multiple of 4, not ${headDim}`,
      );
    }
    return decodeByCopy(ctx, q4, kCache, vCache, keyMask, length, scale);
  }

  const group = queryHeads / kvHeads;
  const heads = headsPerWorkgroup(group);
  const items = batch * kvHeads * (group / heads);
  const rows = chooseVariant(ctx, dims, heads, items, asked) === "rows";
  const threads = rows ? ROWS_WORKGROUP : splitThreads(ctx, dims, heads, options.threads);
  const params = new Params()
    .u32(batch)
    .u32(dims.maxLen)
    .u32(dims.maskLen)
    .u32(length)
    .u32(queryHeads)
    .u32(kvHeads)
    .f32(scale);
  const out = ctx.empty([batch, 1, queryHeads, headDim], "f32");
  const tensors = [q4, kCache, vCache, keyMask, out];
  const constants = { HEAD_DIM: headDim, HEADS: heads, THREADS: threads };
  if (rows) {
    ctx.dispatch({ name: "attention_decode", source, entry: "attention_decode_rows", constants }, {
      params,
      tensors,
      workgroups: ctx.groupsFor(items, ROWS_WORKGROUP),
    });
  } else {
    ctx.dispatch({ name: "attention_decode", source, entry: "attention_decode", constants }, {
      params,
      tensors,
      workgroups: [group / heads, kvHeads, batch],
    });
  }
  return out;
}

/** Threads per workgroup of the rows variant (lavapipe's SIMD width). */
const ROWS_WORKGROUP = 8;
/** Most threads the split variant takes to keep a long cache inside the loop budget. */
const MAX_SPLIT_THREADS = 256;

/**
 * Loop iterations of one invocation (lib/gpu/loop_limit.ts) over `blocks` 4-key blocks: per
 * block its own iteration, the 4 keys and the two loops over the D/4 chunks (scores, values;
 * the loops over heads are unrolled: measured at D = 128, llvmpipe's limit fell at ~67 per
 * block), plus the accumulators' zeroing and, in `tail`, what follows the key loop.
 */
function keyLoops(blocks: number, heads: number, headDim: number, tail: number): number {
  const chunks = headDim / 4;
  return blocks * (6 + 2 * chunks) + heads * (1 + chunks) + tail;
}

/** The rows variant's loops: all the keys, then the output of each head's chunks. */
function rowsLoops(dims: AttentionDecodeDims, heads: number): number {
  const blocks = Math.ceil(dims.length / 4);
  return keyLoops(blocks, heads, dims.headDim, heads * (1 + dims.headDim / 4));
}

/** The split variant's loops with `threads` threads: a share of the keys, then the merge. */
function splitLoops(dims: AttentionDecodeDims, heads: number, threads: number): number {
  const blocks = Math.ceil(Math.ceil(dims.length / 4) / threads);
  const merge = Math.ceil((heads * dims.headDim) / 4 / threads) * (1 + 2 * threads);
  return keyLoops(blocks, heads, dims.headDim, merge);
}

/**
 * The split variant's threads per workgroup: `asked`, or 8 on the software kernels and 32 on
 * GPUs, doubled (unless asked) while a thread's share of a long cache would pass the loop
 * budget, and halved while the workgroup memory does not fit.
 */
function splitThreads(
  ctx: GpuContext,
  dims: AttentionDecodeDims,
  heads: number,
  asked: number | undefined,
): number {
  const most = ctx.limits.maxComputeInvocationsPerWorkgroup;
  if (asked !== undefined && (!Number.isInteger(asked) || asked < 1 || asked > most)) {
    throw new Error(`${OP}: threads ${asked} must be an integer in 1..${most}`);
  }
  const limit = ctx.limits.maxComputeWorkgroupStorageSize;
  const fits = (t: number) => workgroupBytes(t, heads, dims.headDim) <= limit;
  let threads = asked ?? (ctx.adapter.kernels === "software" ? CPU_THREADS : GPU_THREADS);
  if (asked === undefined) {
    while (
      splitLoops(dims, heads, threads) > loopBudget(ctx) && threads < MAX_SPLIT_THREADS &&
      fits(threads * 2)
    ) threads *= 2;
  }
  while (threads > 1 && !fits(threads)) threads = Math.ceil(threads / 2);
  if (!fits(threads)) {
    throw new Error(
      `${OP}: head dim ${dims.headDim} needs more workgroup memory than this device has ` +
        `(${limit} bytes)`,
    );
  }
  const loops = splitLoops(dims, heads, threads);
  if (loops > loopBudget(ctx)) {
    throw new LoopLimitError(
      OP,
      `a cache of ${dims.length} keys at head dim ${dims.headDim} (${threads} threads)`,
      loops,
      "use a shorter context",
    );
  }
  return threads;
}

/** The variant to run: what was asked, checked, or auto's pick. */
function chooseVariant(
  ctx: GpuContext,
  dims: AttentionDecodeDims,
  heads: number,
  items: number,
  asked: AttentionDecodeVariant,
): "split" | "rows" {
  const loops = rowsLoops(dims, heads);
  if (asked === "rows") {
    if (dims.headDim > ROWS_MAX_HEAD_DIM) {
      throw new Error(
        `${OP}: the rows variant takes head dims up to ${ROWS_MAX_HEAD_DIM}, not ${dims.headDim}`,
      );
    }
    if (loops > loopBudget(ctx)) {
      throw new LoopLimitError(
        OP,
        `the rows variant over ${dims.length} keys`,
        loops,
        'use variant "split"',
      );
    }
    return "rows";
  }
  if (asked === "split") return "split";
  const rows = ctx.adapter.kernels === "software" && items >= ROWS_MIN_ITEMS &&
    dims.length <= ROWS_MAX_LENGTH && dims.headDim <= ROWS_MAX_HEAD_DIM &&
    loops <= loopBudget(ctx);
  return rows ? "rows" : "split";
}

/** The fallback for D % 4 ≠ 0: prefix copies [B, length, …] and attentionForward. */
function decodeByCopy(
  ctx: GpuContext,
  q: Tensor<"f32">,
  kCache: Tensor<"f32">,
  vCache: Tensor<"f32">,
  keyMask: Tensor<"u32">,
  length: number,
  scale: number,
): Tensor<"f32"> {
  const keys = readTimeSlice(ctx, kCache, 0, length); // [B, length, Hkv, D]
  const values = readTimeSlice(ctx, vCache, 0, length); // [B, length, Hkv, D]
  const mask = readTimeSlice(ctx, keyMask, 0, length); // [B, length]
  const { out, lse } = attentionForward(ctx, q, keys, values, mask, { scale });
  for (const t of [keys, values, mask, lse]) t.release();
  return out;
}
