// Deterministic reductions: sum, mean and sum of squares of a whole tensor (to one value),
// and row sums / means of the last dimension.
//
// Every result comes from a fixed tree (kernels/reduce.wgsl): each workgroup sums a fixed
// segment in a fixed order, and a full reduction repeats that over the partial sums until
// one value is left. The grouping depends only on the tensor's length, so reruns are
// bit-identical and no float atomics are used.
//
// `sumInto` / `sumOfSquaresInto` write one slot of a small buffer, so that several scalars a
// step logs (losses, reward sums) land in one tensor and come back in one readback. The
// optimizer's global gradient norm is `gradNorm` in lib/ops/adamw.ts, not built from these.

import type { GpuContext } from "../gpu/context.ts";
import { Params } from "../gpu/params.ts";
import { shapeString, type Tensor } from "../gpu/tensor.ts";
import source from "../../kernels/reduce.wgsl" with { type: "text" };

const WORKGROUP_SIZE = 256;
/** Elements one workgroup sums in a full reduction (16 per thread). */
const CHUNK = WORKGROUP_SIZE * 16;
const sumSegmentsKernel = {
  name: "reduce",
  source,
  entry: "sum_segments",
  constants: { WORKGROUP_SIZE },
};

/** What a segment sum adds up: x, x², or x·y with a second tensor y of the same length. */
type Summand = { kind: "value" } | { kind: "square" } | { kind: "product"; other: Tensor<"f32"> };
const MODES = { value: 0, square: 1, product: 2 } as const;
const VALUE: Summand = { kind: "value" };
const SQUARE: Summand = { kind: "square" };

interface SegmentSums {
  segment: number;
  segments: number;
  summand: Summand;
  divisor: number;
  outOffset: number;
}

/** output[outOffset + s] = Σ f(input[segment s]) / divisor, for s < segments. */
function sumSegments(
  ctx: GpuContext,
  input: Tensor<"f32">,
  output: Tensor<"f32">,
  s: SegmentSums,
): void {
  ctx.dispatch(sumSegmentsKernel, {
    params: new Params()
      .u32(input.size)
      .u32(s.segment)
      .u32(s.segments)
      .u32(MODES[s.summand.kind])
      .f32(s.divisor)
      .u32(s.outOffset),
    // Without a product the input stands in for the (statically bound) second tensor.
    tensors: [input, output, s.summand.kind === "product" ? s.summand.other : input],
    workgroups: ctx.groupsFor(s.segments, 1),
  });
}

/**
 * Writes Σ f(t) / divisor into out[slot]: levels of CHUNK-sized segment sums until one
 * segment is left. Intermediate partial sums live in temporaries released after recording.
 */
function reduceInto(
  op: string,
  ctx: GpuContext,
  t: Tensor<"f32">,
  out: Tensor<"f32">,
  slot: number,
  summand: Summand,
  divisor: number,
): void {
  if (t.dtype !== "f32" || out.dtype !== "f32") {
    throw new Error(`${op}: tensors must be f32 (got ${t.dtype} and ${out.dtype})`);
  }
  if (!Number.isInteger(slot) || slot < 0 || slot >= out.size) {
    throw new Error(`${op}: slot ${slot} is outside out ${shapeString(out.shape)}`);
  }
  let input = t;
  let first = true; // squares and products are taken on the first level only
  while (input.size > CHUNK) {
    const segments = Math.ceil(input.size / CHUNK);
    const partials = ctx.empty([segments], "f32");
    sumSegments(ctx, input, partials, {
      segment: CHUNK,
      segments,
      summand: first ? summand : VALUE,
      divisor: 1,
      outOffset: 0,
    });
    if (!first) input.release();
    input = partials;
    first = false;
  }
  sumSegments(ctx, input, out, {
    segment: Math.max(1, input.size),
    segments: 1,
    summand: first ? summand : VALUE,
    divisor,
    outOffset: slot,
  });
  if (!first) input.release();
}

/** t: any shape → [1]: Σ t. An empty tensor sums to 0. */
export function sum(ctx: GpuContext, t: Tensor<"f32">): Tensor<"f32"> {
  const out = ctx.empty([1], "f32");
  reduceInto("sum", ctx, t, out, 0, VALUE, 1);
  return out;
}

/** t: any shape, at least one element → [1]: Σ t / t.size. */
export function mean(ctx: GpuContext, t: Tensor<"f32">): Tensor<"f32"> {
  if (t.size === 0) throw new Error(`mean: tensor ${shapeString(t.shape)} is empty`);
  const out = ctx.empty([1], "f32");
  reduceInto("mean", ctx, t, out, 0, VALUE, t.size);
  return out;
}

/** t: any shape → [1]: Σ t². */
export function sumOfSquares(ctx: GpuContext, t: Tensor<"f32">): Tensor<"f32"> {
  const out = ctx.empty([1], "f32");
  reduceInto("sumOfSquares", ctx, t, out, 0, SQUARE, 1);
  return out;
}

/**
 * a, b: the same number of elements (any shapes) → [1]: Σ a_i·b_i, summed like `sum` (a fixed
 * tree: reruns are bit-identical; dot(x, x) has the bits of sumOfSquares(x)).
 */
export function dot(ctx: GpuContext, a: Tensor<"f32">, b: Tensor<"f32">): Tensor<"f32"> {
  if (a.size !== b.size || b.dtype !== "f32") {
    throw new Error(
      `dot: a ${shapeString(a.shape)} and b ${b.dtype} ${shapeString(b.shape)} must be f32 ` +
        `with as many elements`,
    );
  }
  const out = ctx.empty([1], "f32");
  reduceInto("dot", ctx, a, out, 0, { kind: "product", other: b }, 1);
  return out;
}

/** t: any shape; out: [slots] → out[slot] = Σ t (the other slots are untouched). */
export function sumInto(
  ctx: GpuContext,
  t: Tensor<"f32">,
  out: Tensor<"f32">,
  slot: number,
): void {
  reduceInto("sumInto", ctx, t, out, slot, VALUE, 1);
}

/**
 * t: any shape; out: [slots] → out[slot] = Σ t² (the other slots are untouched).
 * For a global norm over many tensors: one slot per tensor, then `sum(ctx, out)`.
 */
export function sumOfSquaresInto(
  ctx: GpuContext,
  t: Tensor<"f32">,
  out: Tensor<"f32">,
  slot: number,
): void {
  reduceInto("sumOfSquaresInto", ctx, t, out, slot, SQUARE, 1);
}

function rowReduce(
  op: string,
  ctx: GpuContext,
  x: Tensor<"f32">,
  isMean: boolean,
): Tensor<"f32"> {
  if (x.shape.length < 1) throw new Error(`${op}: x must have at least one dimension`);
  if (x.dtype !== "f32") throw new Error(`${op}: x must be f32 (got ${x.dtype})`);
  const n = x.shape[x.shape.length - 1];
  const leading = x.shape.slice(0, -1);
  if (isMean && n === 0) throw new Error(`${op}: rows of x ${shapeString(x.shape)} are empty`);
  // Sums of empty rows are 0: nothing to read.
  if (n === 0) return ctx.zeros(leading, "f32");
  const out = ctx.empty(leading, "f32");
  sumSegments(ctx, x, out, {
    segment: n,
    segments: x.size / n,
    summand: VALUE,
    divisor: isMean ? n : 1,
    outOffset: 0,
  });
  return out;
}

/** x: [..., n] → [...]: the sum of each row (last dimension). */
export function rowSum(ctx: GpuContext, x: Tensor<"f32">): Tensor<"f32"> {
  return rowReduce("rowSum", ctx, x, false);
}

/** x: [..., n] (n ≥ 1) → [...]: the mean of each row (last dimension). */
export function rowMean(ctx: GpuContext, x: Tensor<"f32">): Tensor<"f32"> {
  return rowReduce("rowMean", ctx, x, true);
}
