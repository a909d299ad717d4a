// Causal attention (flash-attention style) with grouped-query heads, a KV-cache offset and a
// key padding mask. The math and the algorithm are written out in kernels/attention.wgsl;
// lib/ref/attention.ts is the plain reference.
//
//   q: [B, Tq, Hq, D]   k, v: [B, Tk, Hkv, D]   keyMask: [B, Tk] u32 (1 = token, 0 = padding)
//   Hq a multiple of Hkv (query head h reads kv head floor(h / (Hq / Hkv))), Tq <= Tk: the
//   queries are the last Tq positions (Tq = Tk in training, Tq < Tk when decoding).

import type { GpuContext } from "../gpu/context.ts";
import { loopBudget, LoopLimitError } from "../gpu/loop_limit.ts";
import { Params } from "../gpu/params.ts";
import { shapeString, type Tensor } from "../gpu/tensor.ts";
import commonSource from "../../kernels/attention_common.wgsl" with { type: "text" };
import buffersSource from "../../kernels/attention.wgsl" with { type: "text" };
import texturesSource from "../../kernels/attention_textures.wgsl" with { type: "text" };
import { stageTexture, STAGING_SLOTS } from "./texture_staging.ts";

/**
 * Two versions of the three kernels, the same math in the same order (bit-identical results):
 * "buffers" (kernels/attention.wgsl: key or query blocks staged in workgroup memory; for
 * GPUs) and "textures" (kernels/attention_textures.wgsl: q, k, v and dOut copied into staging
 * textures and read as texels; ~3× faster on lavapipe, where buffer and workgroup-memory loads
 * are per-lane loops). "auto" picks textures on a software adapter where they fit (D a
 * multiple of 4 up to 128; B·Tk rows and Hq·D/4 texels within maxTextureDimension2D).
 */
export type AttentionVariant = "auto" | "buffers" | "textures";

/** The WGSL source of a variant for head dim d (the texture kernels size arrays by it). */
function sourceFor(variant: Variant, d: number): { name: string; source: string } {
  if (variant === "buffers") {
    return { name: "attention_buffers", source: commonSource + buffersSource };
  }
  const chunks = Math.ceil(d / 4);
  let source = texturesSources.get(chunks);
  if (!source) {
    source = `const ACCUMULATOR_CHUNKS: u32 = ${chunks}u;\n` + commonSource + texturesSource;
    texturesSources.set(chunks, source);
  }
  return { name: `attention_textures_${chunks}`, source };
}
const texturesSources = new Map<number, string>();

/** Threads per workgroup of the row_dot kernel (the others use a thread per row or key). */
const ROW_DOT_WORKGROUP = 64;

/**
 * Block sizes each kernel uses (bq query rows, bk keys; multiples of 4, since a thread owns 4
 * rows). Forward and dq: a workgroup of bq/4 threads per query block, staging bk keys at a
 * time. dkv: a workgroup of bk/4 threads per key block, staging bq query rows at a time.
 * Fixed sizes (rather than fitted to each sequence length) keep the number of compiled
 * pipelines small: lavapipe takes about a second to compile each.
 */
const BLOCKS: Record<Entry, { bq: number; bk: number }> = {
  attention_forward: { bq: 64, bk: 32 },
  attention_backward_dq: { bq: 64, bk: 32 },
  attention_backward_dkv: { bq: 32, bk: 32 },
};
/**
 * Query block for short query sequences (decoding): 8 threads, lavapipe's SIMD width, so no
 * second group of lanes runs for nothing.
 */
const SHORT_QUERY_BLOCK = 32;
/** Largest staged block: the shader's private score arrays hold MAX_BLOCK entries. */
const MAX_BLOCK = 32;
const MIN_BLOCK = 4;

export interface AttentionOptions {
  /** Multiplies q·k before the softmax; 1/sqrt(D) by default. */
  scale?: number;
  /** Which kernels; "auto" (default) picks per device and shape. For tests and benchmarks. */
  variant?: AttentionVariant;
  /** At most this many blocks per dispatch (tests of the split dispatches; see dispatchRanges). */
  blocksPerDispatch?: number;
}

export interface AttentionDims {
  batch: number;
  queryLen: number;
  keyLen: number;
  queryHeads: number;
  kvHeads: number;
  headDim: number;
}

type Entry = "attention_forward" | "attention_backward_dq" | "attention_backward_dkv";

/** Bytes of one staged row (ceil(D / 4) vec4 chunks). */
const rowBytes = (d: number) => 16 * Math.ceil(d / 4);

/** Bytes of workgroup memory each kernel declares (its `var<workgroup>` arrays). */
const WORKGROUP_MEMORY: Record<Entry, (bq: number, bk: number, d: number) => number> = {
  attention_forward: (_bq, bk, d) => 2 * bk * rowBytes(d) + 4 * bk,
  attention_backward_dq: (_bq, bk, d) => 2 * bk * rowBytes(d) + 4 * bk,
  attention_backward_dkv: (bq, _bk, d) => 2 * bq * rowBytes(d) + 12 * bq,
};

/**
 * Block sizes for one kernel: BLOCKS (SHORT_QUERY_BLOCK query rows for short queries), with
 * the staged block halved until the workgroup memory fits the device's limit.
 */
function chooseBlocks(ctx: GpuContext, entry: Entry, dims: AttentionDims) {
  // The texture kernels declare no workgroup memory but take the same blocks, so that both
  // variants sum in the same order.
  const limit = ctx.limits.maxComputeWorkgroupStorageSize;
  const stagesQueries = entry === "attention_backward_dkv";
  let { bq, bk } = BLOCKS[entry];
  if (!stagesQueries && dims.queryLen <= SHORT_QUERY_BLOCK) bq = SHORT_QUERY_BLOCK;
  while (WORKGROUP_MEMORY[entry](bq, bk, dims.headDim) > limit) {
    const staged = stagesQueries ? bq : bk;
    if (staged === MIN_BLOCK) {
      throw new Error(
        `attention: head dim ${dims.headDim} needs more workgroup memory than this device has ` +
          `(${limit} bytes)`,
      );
    }
    if (stagesQueries) bq /= 2;
    else bk /= 2;
  }
  if ((stagesQueries ? bq : bk) > MAX_BLOCK) throw new Error("attention: staged block too big");
  return { bq, bk };
}

type Variant = Exclude<AttentionVariant, "auto">;

function kernel(
  entry: Entry | "attention_row_dot",
  variant: Variant,
  d: number,
  bq = MIN_BLOCK,
  bk = MIN_BLOCK,
) {
  return {
    ...sourceFor(variant, d),
    entry,
    constants: { HEAD_DIM: d, BLOCK_Q: bq, BLOCK_K: bk, ROW_DOT_WORKGROUP },
  };
}

/** The kernels' uniform; [start, end): the blocks this dispatch runs (kernels/attention_common). */
function params(dims: AttentionDims, scale: number, [start, end]: [number, number]): Params {
  return new Params()
    .u32(dims.batch)
    .u32(dims.queryLen)
    .u32(dims.keyLen)
    .u32(dims.queryHeads)
    .u32(dims.kvHeads)
    .f32(scale)
    .u32(start)
    .u32(end);
}

function expectShape(op: string, name: string, t: Tensor, shape: readonly number[]): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(
      `${op}: ${name} has shape ${shapeString(t.shape)}, expected ${shapeString(shape)}`,
    );
  }
}

/** Checks q, k, v and keyMask against each other and returns the sizes. */
function attentionDims(
  op: string,
  q: Tensor<"f32">,
  k: Tensor<"f32">,
  v: Tensor<"f32">,
  keyMask: Tensor<"u32">,
): AttentionDims {
  if (q.shape.length !== 4 || k.shape.length !== 4) {
    throw new Error(
      `${op}: q ${shapeString(q.shape)} and k ${shapeString(k.shape)} must be [B, T, H, D]`,
    );
  }
  const [batch, queryLen, queryHeads, headDim] = q.shape;
  const [kBatch, keyLen, kvHeads, kDim] = k.shape;
  if (kBatch !== batch || kDim !== headDim) {
    throw new Error(
      `${op}: q ${shapeString(q.shape)} and k ${shapeString(k.shape)} differ in batch or head dim`,
    );
  }
  expectShape(op, "v", v, k.shape);
  expectShape(op, "keyMask", keyMask, [batch, keyLen]);
  if (keyMask.dtype !== "u32") throw new Error(`${op}: keyMask must be u32`);
  if (kvHeads === 0 || queryHeads % kvHeads !== 0) {
    throw new Error(
      `${op}: ${queryHeads} query heads is not a multiple of ${kvHeads} kv heads ` +
        `(q ${shapeString(q.shape)}, k ${shapeString(k.shape)})`,
    );
  }
  if (headDim < 1) throw new Error(`${op}: head dim is 0 (q ${shapeString(q.shape)})`);
  if (keyLen < queryLen) {
    throw new Error(
      `${op}: ${queryLen} queries but only ${keyLen} keys (q ${shapeString(q.shape)}, ` +
        `k ${shapeString(k.shape)}): the queries must be the last positions of the keys`,
    );
  }
  return { batch, queryLen, keyLen, queryHeads, kvHeads, headDim };
}

/**
 * llvmpipe's loop limit (lib/gpu/loop_limit.ts): an attention invocation loops over every key
 * block (forward, dq) or over every (head of its group, query block) pair (dkv), ~5·b + 2·C·(b + 1)
 * iterations per block of b rows with C = ceil(D / 4) chunks; measured on lavapipe with one
 * dispatch: the forward went wrong from ~1,770 keys and dK, dV from ~700 queries with 3 query
 * heads per kv head (D = 64). So on a software adapter the texture kernels run a long shape as
 * several dispatches within the loop budget, every one continuing the sums of the one before in
 * the same order (the same bits as one dispatch); the buffer kernels (which run there only for
 * head dims the texture ones do not take) refuse such a shape.
 */
/** The blocks one invocation of `entry` loops over, and the loop iterations of each (a bound). */
function loopBlocks(
  entry: Entry,
  dims: AttentionDims,
  bq: number,
  bk: number,
): { blocks: number; perBlock: number; rowsPerBlock: number; rows: number; what: string } {
  const chunks = Math.ceil(dims.headDim / 4);
  const perBlock = (b: number) => 5 * b + 2 * chunks * (b + 1) + 4;
  if (entry === "attention_backward_dkv") {
    const group = dims.queryHeads / dims.kvHeads;
    return {
      blocks: group * Math.ceil(dims.queryLen / bq), // (head of the group, query block) pairs
      perBlock: perBlock(bq),
      rowsPerBlock: bq / group,
      rows: dims.queryLen,
      what: "queries",
    };
  }
  return {
    blocks: Math.ceil(dims.keyLen / bk),
    perBlock: perBlock(bk),
    rowsPerBlock: bk,
    rows: dims.keyLen,
    what: "keys",
  };
}

/**
 * The block ranges [start, end) of the dispatches that run `entry`: one on a GPU, several on a
 * software adapter when the loops would pass llvmpipe's limit (texture kernels; the buffer kernels
 * refuse). `blocksPerDispatch` (tests) forces smaller ranges.
 */
function dispatchRanges(
  ctx: GpuContext,
  op: string,
  entry: Entry,
  variant: Variant,
  dims: AttentionDims,
  blocks: { bq: number; bk: number },
  blocksPerDispatch?: number,
): [number, number][] {
  const { blocks: total, perBlock, rowsPerBlock, rows, what } = loopBlocks(
    entry,
    dims,
    blocks.bq,
    blocks.bk,
  );
  let most = Math.min(total, Math.max(1, Math.floor(loopBudget(ctx) / perBlock)));
  if (blocksPerDispatch !== undefined) {
    if (!Number.isInteger(blocksPerDispatch) || blocksPerDispatch < 1) {
      throw new Error(`${op}: blocksPerDispatch must be an integer ≥ 1, got ${blocksPerDispatch}`);
    }
    most = Math.min(most, blocksPerDispatch);
  }
  if (most >= total) return [[0, total]];
  if (variant === "buffers") {
    throw new LoopLimitError(
      op,
      `${rows} ${what} (B=${dims.batch}, Tq=${dims.queryLen}, Tk=${dims.keyLen}, ` +
        `Hq=${dims.queryHeads}, Hkv=${dims.kvHeads}, D=${dims.headDim}) with the buffer kernels, ` +
        `which run here when the texture ones do not fit (they need D a multiple of 4 up to ` +
        `${TEXTURES_MAX_HEAD_DIM}, and B·Tk and Hq·D/4 within ${ctx.limits.maxTextureDimension2D})`,
      total * perBlock,
      `use at most ~${Math.floor(most * rowsPerBlock)} ${what} here, or a shape the texture ` +
        `kernels take`,
    );
  }
  const ranges: [number, number][] = [];
  for (let start = 0; start < total; start += most) {
    ranges.push([start, Math.min(total, start + most)]);
  }
  return ranges;
}

/** The largest head dim of the texture kernels (their private accumulators grow with it). */
const TEXTURES_MAX_HEAD_DIM = 128;

/** Whether the texture kernels can run `dims`: whole texels per head, rows within a texture. */
function texturesFit(ctx: GpuContext, dims: AttentionDims): boolean {
  const max = ctx.limits.maxTextureDimension2D;
  return dims.headDim % 4 === 0 && dims.headDim <= TEXTURES_MAX_HEAD_DIM &&
    dims.batch * dims.keyLen <= max &&
    (dims.queryHeads * dims.headDim) / 4 <= max;
}

function chooseVariant(
  ctx: GpuContext,
  op: string,
  dims: AttentionDims,
  asked: AttentionVariant = "auto",
): Variant {
  const fits = texturesFit(ctx, dims);
  if (asked === "textures" && !fits) {
    throw new Error(
      `${op}: the textures variant needs a head dim that is a multiple of 4, at most ` +
        `${TEXTURES_MAX_HEAD_DIM}, and at most ` +
        `${ctx.limits.maxTextureDimension2D} rows of B·Tk and texels of Hq·D/4 ` +
        `(B=${dims.batch}, Tk=${dims.keyLen}, Hq=${dims.queryHeads}, D=${dims.headDim})`,
    );
  }
  if (asked !== "auto") return asked;
  return ctx.adapter.kernels === "software" && fits ? "textures" : "buffers";
}

/** x: [B, T, H, D] → its staging texture: B·T rows of H·D/4 texels (kernels/attention_textures). */
function stageHeads(ctx: GpuContext, x: Tensor<"f32">, slot: number): GPUTexture {
  const [batch, time, heads, headDim] = x.shape;
  const rows = batch * time;
  return stageTexture(ctx, x, slot, rows, rows, heads * headDim, false).texture;
}

/**
 * Causal attention forward.
 * q: [B, Tq, Hq, D], k, v: [B, Tk, Hkv, D], keyMask: [B, Tk] u32 →
 * out: [B, Tq, Hq, D], lse: [B, Hq, Tq] (log-sum-exp of each row's scores, for the backward;
 * 0 for a row that sees no key, whose output is zeros).
 */
export function attentionForward(
  ctx: GpuContext,
  q: Tensor<"f32">,
  k: Tensor<"f32">,
  v: Tensor<"f32">,
  keyMask: Tensor<"u32">,
  options: AttentionOptions = {},
): { out: Tensor<"f32">; lse: Tensor<"f32"> } {
  const dims = attentionDims("attentionForward", q, k, v, keyMask);
  const scale = options.scale ?? 1 / Math.sqrt(dims.headDim);
  const variant = chooseVariant(ctx, "attentionForward", dims, options.variant);
  const blocks = chooseBlocks(ctx, "attention_forward", dims);
  const ranges = dispatchRanges(
    ctx,
    "attentionForward",
    "attention_forward",
    variant,
    dims,
    blocks,
    options.blocksPerDispatch,
  );
  const out = ctx.empty(q.shape, "f32");
  const lse = ctx.empty([dims.batch, dims.queryHeads, dims.queryLen], "f32");
  const workgroups = [Math.ceil(dims.queryLen / blocks.bq), dims.queryHeads, dims.batch] as const;
  const forward = kernel("attention_forward", variant, dims.headDim, blocks.bq, blocks.bk);
  if (variant === "textures") {
    // [B, Hq, Tq, 2]: each row's running max and sum between the dispatches of a long shape.
    const state = ctx.empty([dims.batch, dims.queryHeads, dims.queryLen, 2], "f32");
    const textures = [
      stageHeads(ctx, q, STAGING_SLOTS.attentionQ),
      stageHeads(ctx, k, STAGING_SLOTS.attentionK),
      stageHeads(ctx, v, STAGING_SLOTS.attentionV),
    ];
    for (const range of ranges) {
      ctx.dispatch(forward, {
        params: params(dims, scale, range),
        tensors: [keyMask, out, lse, state],
        textures,
        workgroups,
      });
    }
    state.release();
  } else {
    ctx.dispatch(forward, {
      params: params(dims, scale, ranges[0]),
      tensors: [q, k, v, keyMask, out, lse],
      workgroups,
    });
  }
  return { out, lse };
}

/**
 * Causal attention backward (flash-attention 2).
 * dOut, q, out: [B, Tq, Hq, D], k, v: [B, Tk, Hkv, D], lse: [B, Hq, Tq] (from the forward),
 * keyMask: [B, Tk] u32 → dQ: [B, Tq, Hq, D], dK, dV: [B, Tk, Hkv, D].
 * Three dispatches: row_dot = rowsum(dOut·out) [B, Hq, Tq], then dQ per query block, then
 * dK and dV per key block (summing the query heads of each kv head's group in order).
 */
export function attentionBackward(
  ctx: GpuContext,
  dOut: Tensor<"f32">,
  q: Tensor<"f32">,
  k: Tensor<"f32">,
  v: Tensor<"f32">,
  out: Tensor<"f32">,
  lse: Tensor<"f32">,
  keyMask: Tensor<"u32">,
  options: AttentionOptions = {},
): { dQ: Tensor<"f32">; dK: Tensor<"f32">; dV: Tensor<"f32"> } {
  const op = "attentionBackward";
  const dims = attentionDims(op, q, k, v, keyMask);
  expectShape(op, "dOut", dOut, q.shape);
  expectShape(op, "out", out, q.shape);
  expectShape(op, "lse", lse, [dims.batch, dims.queryHeads, dims.queryLen]);
  const scale = options.scale ?? 1 / Math.sqrt(dims.headDim);
  const d = dims.headDim;

  const variant = chooseVariant(ctx, op, dims, options.variant);
  const dq = chooseBlocks(ctx, "attention_backward_dq", dims);
  const dkv = chooseBlocks(ctx, "attention_backward_dkv", dims);
  const split = options.blocksPerDispatch;
  const dqRanges = dispatchRanges(ctx, op, "attention_backward_dq", variant, dims, dq, split);
  const dkvRanges = dispatchRanges(ctx, op, "attention_backward_dkv", variant, dims, dkv, split);

  const rows = dims.batch * dims.queryHeads * dims.queryLen;
  const rowDot = ctx.empty([dims.batch, dims.queryHeads, dims.queryLen], "f32");
  // The texture kernels read q, k, v and dOut from textures, staged once for both kernels.
  const textures = variant === "textures"
    ? [
      stageHeads(ctx, q, STAGING_SLOTS.attentionQ),
      stageHeads(ctx, k, STAGING_SLOTS.attentionK),
      stageHeads(ctx, v, STAGING_SLOTS.attentionV),
      stageHeads(ctx, dOut, STAGING_SLOTS.attentionDOut),
    ]
    : undefined;
  ctx.dispatch(kernel("attention_row_dot", "buffers", d), {
    params: params(dims, scale, [0, 0]),
    tensors: [dOut, out, rowDot],
    workgroups: ctx.groupsFor(rows, ROW_DOT_WORKGROUP),
  });

  const dQ = ctx.empty(q.shape, "f32");
  for (const range of dqRanges) {
    ctx.dispatch(kernel("attention_backward_dq", variant, d, dq.bq, dq.bk), {
      params: params(dims, scale, range),
      tensors: textures ? [keyMask, lse, rowDot, dQ] : [q, k, v, keyMask, dOut, lse, rowDot, dQ],
      textures,
      workgroups: [Math.ceil(dims.queryLen / dq.bq), dims.queryHeads, dims.batch],
    });
  }

  const dK = ctx.empty(k.shape, "f32");
  const dV = ctx.empty(k.shape, "f32");
  for (const range of dkvRanges) {
    ctx.dispatch(kernel("attention_backward_dkv", variant, d, dkv.bq, dkv.bk), {
      params: params(dims, scale, range),
      tensors: textures
        ? [keyMask, lse, rowDot, dK, dV]
        : [q, k, v, keyMask, dOut, lse, rowDot, dK, dV],
      textures,
      workgroups: [Math.ceil(dims.keyLen / dkv.bk), dims.kvHeads, dims.batch],
    });
  }

  rowDot.release();
  return { dQ, dK, dV };
}
