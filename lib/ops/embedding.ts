// Token embedding: gather rows of a [V, D] table by id, and the deterministic backward
// (kernels/embedding.wgsl).
//
// The backward needs no float atomics: training batches come from the host, so the host
// groups the positions by id into an inverse index (CSR: distinct ids, offsets, positions)
// and the GPU sums each id's dOut rows in that fixed order. Usage per step:
//
//   const index = uploadEmbeddingGradIndex(ctx, idsHost, vocab);  // host ids, [N]
//   embeddingBackward(ctx, dOut, index, dTable);                    // dTable += scatter(dOut)
//   index.release();                       // like any tensor: safe once the use is recorded
//
// Tied embeddings: lm_head's weight gradient can be added into the same dTable.
//
// Row chunks: a table too big for one storage binding is held as row chunks (rows
// [rowStart, rowStart + R) in an [R, D] tensor); embeddingRowsInto and embeddingBackwardRows
// do one chunk each: the gather writes only the rows whose id lies in the chunk, the backward
// adds only those ids. Over all chunks they give exactly what embedding / embeddingBackward
// give over the whole table.

import type { GpuContext } from "../gpu/context.ts";
import { loopBudget } from "../gpu/loop_limit.ts";
import { Params } from "../gpu/params.ts";
import { shapeString, type Tensor } from "../gpu/tensor.ts";
import source from "../../kernels/embedding.wgsl" with { type: "text" };

const FORWARD_WORKGROUP_SIZE = 256;
/** Threads across D per distinct id; the grid's parallelism comes from the ids. */
const BACKWARD_WORKGROUP_SIZE = 64;

const forwardKernel = {
  name: "embedding",
  source,
  entry: "embedding_forward",
  constants: { WORKGROUP_SIZE: FORWARD_WORKGROUP_SIZE },
};
const backwardKernel = {
  name: "embedding",
  source,
  entry: "embedding_backward",
  constants: { WORKGROUP_SIZE: BACKWARD_WORKGROUP_SIZE },
};

function tableShape(op: string, table: Tensor<"f32">): { vocab: number; dim: number } {
  if (table.shape.length !== 2 || table.dtype !== "f32" || table.shape[0] === 0) {
    throw new Error(
      `${op}: table must be f32 [V, D] with V ≥ 1 (got ${table.dtype} ` +
        `${shapeString(table.shape)})`,
    );
  }
  return { vocab: table.shape[0], dim: table.shape[1] };
}

/** The uniform of kernels/embedding.wgsl (its Params struct). */
function kernelParams(
  count: number,
  dim: number,
  vocab: number,
  rowStart: number,
  rowEnd: number,
  firstUnique = 0,
  window: [start: number, size: number] = [0, 0xffffffff],
): Params {
  return new Params().u32(count).u32(dim).u32(vocab).u32(rowStart).u32(rowEnd).u32(firstUnique)
    .u32(window[0]).u32(window[1]);
}

/** Checks that an [R, D] chunk starting at table row `rowStart` lies within V rows. */
function checkChunkRows(op: string, rows: number, rowStart: number, vocab: number): void {
  if (!Number.isInteger(rowStart) || rowStart < 0 || rowStart + rows > vocab) {
    throw new Error(
      `${op}: rows [${rowStart}, ${rowStart + rows}) do not lie within a table of ${vocab} rows`,
    );
  }
}

/**
 * ids: [...] u32 (any shape, e.g. [B, T]), table: [V, D] → out: [..., D],
 * out[n] = table[ids[n]]. An id ≥ V reads row V − 1 (the GPU cannot throw): validate
 * ids on the host first.
 */
export function embedding(
  ctx: GpuContext,
  ids: Tensor<"u32">,
  table: Tensor<"f32">,
): Tensor<"f32"> {
  const { vocab, dim } = tableShape("embedding", table);
  if (ids.dtype !== "u32") throw new Error(`embedding: ids must be u32 (got ${ids.dtype})`);
  const out = ctx.empty([...ids.shape, dim], "f32");
  embeddingRowsInto(ctx, ids, table, 0, vocab, out);
  return out;
}

/**
 * The gather from one row chunk of a [V, D] table: ids: [...] u32, tableRows: [R, D] holding
 * table rows [rowStart, rowStart + R), out: [..., D]. Writes out[n] = table[ids[n]] for the
 * n whose id lies in the chunk and leaves the other rows of out as they are; ids are clamped
 * to V − 1 first, as in `embedding`. Calling it for every chunk of the table fills out.
 */
export function embeddingRowsInto(
  ctx: GpuContext,
  ids: Tensor<"u32">,
  tableRows: Tensor<"f32">,
  rowStart: number,
  vocab: number,
  out: Tensor<"f32">,
): void {
  const { vocab: rows, dim } = tableShape("embedding", tableRows);
  checkChunkRows("embedding", rows, rowStart, vocab);
  if (ids.dtype !== "u32") throw new Error(`embedding: ids must be u32 (got ${ids.dtype})`);
  const outShape = [...ids.shape, dim];
  if (
    out.dtype !== "f32" || out.shape.length !== outShape.length ||
    out.shape.some((d, i) => d !== outShape[i])
  ) {
    throw new Error(
      `embedding: out is ${out.dtype} ${shapeString(out.shape)}, expected f32 ` +
        `${shapeString(outShape)} for ids ${shapeString(ids.shape)}`,
    );
  }
  const count = ids.size * dim;
  ctx.dispatch(forwardKernel, {
    params: kernelParams(count, dim, vocab, rowStart, rowStart + rows),
    tensors: [ids, tableRows, out],
    workgroups: ctx.groupsFor(count, FORWARD_WORKGROUP_SIZE),
  });
}

/** The positions of a batch grouped by id (CSR), built on the host from the batch's ids. */
export interface EmbeddingGradIndex {
  /** V: every id is < vocab. */
  vocab: number;
  /** The distinct ids, ascending: [U]. */
  uniqueIds: Uint32Array<ArrayBuffer>;
  /** [U + 1]: the positions of uniqueIds[u] are positions[offsets[u] .. offsets[u + 1]). */
  offsets: Uint32Array<ArrayBuffer>;
  /** [N]: positions 0..N−1 sorted by (id, position). */
  positions: Uint32Array<ArrayBuffer>;
}

/**
 * Groups positions by id: O(N log N), independent of the vocabulary size. Throws on an
 * id ≥ vocab (ids are host data here, so this is where they are validated).
 */
export function buildEmbeddingGradIndex(
  ids: ArrayLike<number>,
  vocab: number,
): EmbeddingGradIndex {
  const count = ids.length;
  // Sort keys id·N + position: exact in f64 (V·N < 2^53) and ordered by (id, position).
  const keys = new Float64Array(count);
  for (let p = 0; p < count; p++) {
    const id = ids[p];
    if (!Number.isInteger(id) || id < 0 || id >= vocab) {
      throw new Error(`embedding index: id ${id} at position ${p} is outside [0, ${vocab})`);
    }
    keys[p] = id * count + p;
  }
  keys.sort();
  const positions = new Uint32Array(count);
  const unique: number[] = [];
  const offsets: number[] = [];
  for (let i = 0; i < count; i++) {
    const id = Math.floor(keys[i] / count);
    positions[i] = keys[i] - id * count;
    if (unique.length === 0 || unique[unique.length - 1] !== id) {
      unique.push(id);
      offsets.push(i);
    }
  }
  offsets.push(count);
  return {
    vocab,
    uniqueIds: Uint32Array.from(unique),
    offsets: Uint32Array.from(offsets),
    positions,
  };
}

/** An EmbeddingGradIndex on the GPU; release it once embeddingBackward is recorded. */
export interface EmbeddingGradIndexGpu {
  vocab: number;
  /** N: the number of positions (rows of dOut). */
  count: number;
  /** U: the number of distinct ids. */
  uniqueCount: number;
  /** The most positions one id has (the longest loop of the backward). */
  maxOccurrences: number;
  /** [U] the distinct ids on the host (a row chunk's backward finds its ids here). */
  hostUniqueIds: Uint32Array<ArrayBuffer>;
  uniqueIds: Tensor<"u32">;
  offsets: Tensor<"u32">;
  positions: Tensor<"u32">;
  release(): void;
}

/**
 * Builds the inverse index of `ids` (host, [N]) and uploads it (in recording order, like
 * every upload: see GpuContext.upload).
 */
export function uploadEmbeddingGradIndex(
  ctx: GpuContext,
  ids: ArrayLike<number>,
  vocab: number,
): EmbeddingGradIndexGpu {
  const index = buildEmbeddingGradIndex(ids, vocab);
  const uniqueIds = ctx.upload(index.uniqueIds, [index.uniqueIds.length], "u32");
  const offsets = ctx.upload(index.offsets, [index.offsets.length], "u32");
  const positions = ctx.upload(index.positions, [index.positions.length], "u32");
  return {
    vocab,
    count: ids.length,
    uniqueCount: index.uniqueIds.length,
    maxOccurrences: index.offsets.reduce(
      (most, end, u) => u === 0 ? 0 : Math.max(most, end - index.offsets[u - 1]),
      0,
    ),
    hostUniqueIds: index.uniqueIds,
    uniqueIds,
    offsets,
    positions,
    release() {
      uniqueIds.release();
      offsets.release();
      positions.release();
    },
  };
}

/**
 * dOut: [..., D] with N rows (N = index.count), dTable: [V, D] (V = index.vocab):
 * dTable[v] += Σ_{n : ids[n] = v} dOut[n], summed in ascending position order, then added
 * once. Accumulates in place (zero dTable first for a fresh gradient); deterministic.
 */
export function embeddingBackward(
  ctx: GpuContext,
  dOut: Tensor<"f32">,
  index: EmbeddingGradIndexGpu,
  dTable: Tensor<"f32">,
): void {
  const { vocab } = tableShape("embeddingBackward", dTable);
  if (vocab !== index.vocab) {
    throw new Error(
      `embeddingBackward: dTable ${shapeString(dTable.shape)} has ${vocab} rows but the ` +
        `index was built for vocab ${index.vocab}`,
    );
  }
  embeddingBackwardRows(ctx, dOut, index, dTable, 0);
}

/** The first i with sorted[i] ≥ value (sorted.length when none). */
function lowerBound(sorted: Uint32Array, value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * embeddingBackward for one row chunk of the table: dTableRows: [R, D] is the gradient of
 * table rows [rowStart, rowStart + R) (rowStart + R ≤ index.vocab); only the ids in that range
 * are added, each exactly as embeddingBackward adds it.
 */
export function embeddingBackwardRows(
  ctx: GpuContext,
  dOut: Tensor<"f32">,
  index: EmbeddingGradIndexGpu,
  dTableRows: Tensor<"f32">,
  rowStart: number,
): void {
  const { vocab: rows, dim } = tableShape("embeddingBackward", dTableRows);
  checkChunkRows("embeddingBackward", rows, rowStart, index.vocab);
  const dOutDim = dOut.shape[dOut.shape.length - 1];
  if (dOut.dtype !== "f32" || dOut.shape.length < 1 || dOutDim !== dim) {
    throw new Error(
      `embeddingBackward: dOut ${dOut.dtype} ${shapeString(dOut.shape)} must ` +
        `be f32 [..., ${dim}] like dTable ${shapeString(dTableRows.shape)}`,
    );
  }
  if (dOut.size !== index.count * dim) {
    throw new Error(
      `embeddingBackward: dOut ${shapeString(dOut.shape)} has ` +
        `${dim === 0 ? 0 : dOut.size / dim} rows but the index has ${index.count} positions`,
    );
  }
  if (dim === 0) return;
  // The distinct ids are ascending: the chunk's are the run [first, end) of them.
  const first = lowerBound(index.hostUniqueIds, rowStart);
  const end = lowerBound(index.hostUniqueIds, rowStart + rows);
  // An invocation loops ceil(D / 64) times over its id's positions: past llvmpipe's loop limit
  // (lib/gpu/loop_limit.ts) an id's positions go through several dispatches, each adding its
  // window's sum (then the sum is rounded per window: the same bits only in one dispatch).
  const perPosition = Math.ceil(dim / BACKWARD_WORKGROUP_SIZE);
  const window = Math.max(1, Math.floor(loopBudget(ctx) / perPosition) - 1);
  for (let start = 0; start === 0 || start < index.maxOccurrences; start += window) {
    ctx.dispatch(backwardKernel, {
      params: kernelParams(end - first, dim, index.vocab, rowStart, rowStart + rows, first, [
        start,
        Number.isFinite(window) ? window : 0xffffffff,
      ]),
      tensors: [dOut, index.uniqueIds, index.offsets, index.positions, dTableRows],
      workgroups: ctx.groupsFor(end - first, 1),
    });
  }
}
