// Row ranges along the time axis (dim 1) of [B, S, ...] tensors: writing new keys and values
// into a KV cache at its current length, and reading the cache's filled prefix back as a
// contiguous [B, len, ...] tensor, the layout attention reads (kernels/kv_cache.wgsl).
// Bit-exact copies of any 32-bit dtype (f32 keys and values, u32 key masks).
//
//   writeTimeSlice: src [B, T, ...rest] → dst[:, start : start + T] (dst: [B, S, ...rest]);
//                   writeTimeSlicePair does two of the same shape in one dispatch
//   readTimeSlice:  src [B, S, ...rest] → [B, length, ...rest] = src[:, start : start + length]

import type { GpuContext } from "../gpu/context.ts";
import { Params } from "../gpu/params.ts";
import { shapeString, type Tensor } from "../gpu/tensor.ts";
import source from "../../kernels/kv_cache.wgsl" with { type: "text" };

const WORKGROUP_SIZE = 256;
const kernel = {
  name: "kv_cache",
  source,
  entry: "copy_time_rows",
  constants: { WORKGROUP_SIZE },
};
const pairKernel = (addBias: boolean) => ({
  ...kernel,
  entry: "copy_time_rows_pair",
  constants: { WORKGROUP_SIZE, ADD_BIAS2: Number(addBias) },
});

/** [B, S, ...rest] → B, S and W = the product of rest (elements per time row). */
function timeRows(
  op: string,
  name: string,
  t: Tensor,
): [batch: number, rows: number, width: number] {
  if (t.shape.length < 2) {
    throw new Error(`${op}: ${name} must be [B, S, ...], got ${shapeString(t.shape)}`);
  }
  const width = t.shape.slice(2).reduce((a, b) => a * b, 1);
  return [t.shape[0], t.shape[1], width];
}

interface Copy {
  batch: number;
  count: number;
  width: number;
  srcRows: number;
  srcStart: number;
  dstRows: number;
  dstStart: number;
}

/**
 * One copy (src → dst), or two of the same shape in one dispatch (second: src2 → dst2, plus
 * `bias` [W] added to each row when given).
 */
function record(
  ctx: GpuContext,
  src: Tensor,
  dst: Tensor,
  c: Copy,
  second?: { src: Tensor; dst: Tensor; bias?: Tensor<"f32"> },
): void {
  const total = c.batch * c.count * c.width;
  if (total === 0) return;
  // Without a bias the second source stands in for the (statically bound) bias buffer.
  const pair = second && [src, dst, second.src, second.dst, second.bias ?? second.src];
  ctx.dispatch(second ? pairKernel(second.bias !== undefined) : kernel, {
    params: new Params()
      .u32(total).u32(c.count).u32(c.width)
      .u32(c.srcRows).u32(c.srcStart).u32(c.dstRows).u32(c.dstStart),
    tensors: pair ?? [src, dst],
    workgroups: ctx.groupsFor(second ? 2 * total : total, WORKGROUP_SIZE),
  });
}

/** Checks a write of src into dst's rows [start, start + T); returns the copy. */
function planWrite(op: string, src: Tensor, dst: Tensor, start: number): Copy {
  const [batch, count, width] = timeRows(op, "src", src);
  const [dstBatch, dstRows] = timeRows(op, "dst", dst);
  const sameRest = src.shape.length === dst.shape.length &&
    src.shape.every((d, i) => i < 2 || d === dst.shape[i]);
  if (dstBatch !== batch || !sameRest || src.dtype !== dst.dtype) {
    throw new Error(
      `${op}: src ${src.dtype} ${shapeString(src.shape)} does not fit dst ${dst.dtype} ` +
        `${shapeString(dst.shape)} (same dtype, batch and trailing dims needed)`,
    );
  }
  if (!Number.isInteger(start) || start < 0 || start + count > dstRows) {
    throw new Error(
      `${op}: rows [${start}, ${start + count}) are outside dst ${shapeString(dst.shape)}`,
    );
  }
  if (src.buffer === dst.buffer) throw new Error(`${op}: src and dst share a buffer`);
  return { batch, count, width, srcRows: count, srcStart: 0, dstRows, dstStart: start };
}

/**
 * dst[:, start : start + T] = src. src: [B, T, ...rest], dst: [B, S, ...rest] (same dtype and
 * rest), start + T ≤ S. Writes dst in place.
 */
export function writeTimeSlice(ctx: GpuContext, src: Tensor, dst: Tensor, start: number): void {
  record(ctx, src, dst, planWrite("writeTimeSlice", src, dst, start));
}

/**
 * writeTimeSlice of two same-shaped pairs in one dispatch (a layer's new keys and values into
 * its cache): dst[:, start : start + T] = src and dst2[:, start : start + T] = src2 (+ bias2:
 * f32 [W], W = the elements of a time row, added to each row of the second when given).
 */
export function writeTimeSlicePair(
  ctx: GpuContext,
  src: Tensor,
  dst: Tensor,
  src2: Tensor,
  dst2: Tensor,
  start: number,
  bias2?: Tensor<"f32">,
): void {
  const op = "writeTimeSlicePair";
  const copy = planWrite(op, src, dst, start);
  planWrite(op, src2, dst2, start);
  const sameShapes = src.shape.length === src2.shape.length &&
    src.shape.every((d, i) => d === src2.shape[i]) && dst.shape.length === dst2.shape.length &&
    dst.shape.every((d, i) => d === dst2.shape[i]);
  if (!sameShapes) {
    throw new Error(
      `${op}: the two copies differ in shape: ${shapeString(src.shape)} → ` +
        `${shapeString(dst.shape)} and ${shapeString(src2.shape)} → ${shapeString(dst2.shape)}`,
    );
  }
  const buffers = new Set([src.buffer, dst.buffer, src2.buffer, dst2.buffer]);
  if (buffers.size !== 4) throw new Error(`${op}: the four tensors must be separate buffers`);
  if (bias2 && (bias2.dtype !== "f32" || src2.dtype !== "f32" || bias2.size !== copy.width)) {
    throw new Error(
      `${op}: bias2 ${bias2.dtype} ${shapeString(bias2.shape)} must be f32 [${copy.width}] ` +
        `for f32 rows of ${copy.width} (src2 is ${src2.dtype} ${shapeString(src2.shape)})`,
    );
  }
  record(ctx, src, dst, copy, { src: src2, dst: dst2, bias: bias2 });
}

/**
 * src[:, start : start + length] as a new contiguous tensor. src: [B, S, ...rest] →
 * [B, length, ...rest] (same dtype), start + length ≤ S.
 */
export function readTimeSlice<D extends Tensor["dtype"]>(
  ctx: GpuContext,
  src: Tensor<D>,
  start: number,
  length: number,
): Tensor<D> {
  const op = "readTimeSlice";
  const [batch, srcRows, width] = timeRows(op, "src", src);
  if (
    !Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0 ||
    start + length > srcRows
  ) {
    throw new Error(
      `${op}: rows [${start}, ${start + length}) are outside src ${shapeString(src.shape)}`,
    );
  }
  const out = ctx.empty([batch, length, ...src.shape.slice(2)], src.dtype);
  record(ctx, src, out, {
    batch,
    count: length,
    width,
    srcRows,
    srcStart: start,
    dstRows: length,
    dstStart: 0,
  });
  return out;
}
