// The GPU layout plan: how each parameter tensor is cut into GPU buffers. A WebGPU shader can
// bind at most maxStorageBufferBindingSize bytes of one buffer, and no buffer may exceed
// maxBufferSize; a big matrix (a 152,064 × 5,120 f32 embedding is 3.1 GB) must therefore be
// split. We split along the first dimension into row ranges ("chunks"): each chunk is a
// contiguous slice of the row-major tensor, so it reads straight from the file as one element
// range and a matmul over it is just a matmul over fewer output rows. lib/model/gpu_weights.ts
// holds the model's parameters on the GPU by this plan.
//
// Pure arithmetic: nothing is allocated. The plan also gives the memory bill of training
// (parameters, gradients, AdamW's two moments), all f32.

import { UserError } from "./errors.ts";

/** The device limits that matter here (a GPUSupportedLimits satisfies this). */
export interface DeviceLimits {
  readonly maxStorageBufferBindingSize: number;
  readonly maxBufferSize: number;
}

/** Rows [rowStart, rowEnd) of a tensor, stored in one GPU buffer. */
export interface RowChunk {
  readonly rowStart: number;
  readonly rowEnd: number;
  readonly bytes: number;
}

export interface TensorLayout {
  readonly name: string;
  readonly shape: readonly number[];
  /** shape[0] (1 for a scalar). */
  readonly rows: number;
  /** Elements per row: the product of shape[1..] (1 for a vector). */
  readonly rowElements: number;
  readonly bytes: number;
  /** At least one; more when the tensor is bigger than one binding. */
  readonly chunks: readonly RowChunk[];
}

export interface LayoutPlan {
  /** Per tensor, in the order given. */
  readonly tensors: ReadonlyMap<string, TensorLayout>;
  /** Bytes of all tensors together. */
  readonly totalBytes: number;
  /** The most bytes one chunk may hold: min(binding limit, buffer limit). */
  readonly chunkLimitBytes: number;
  readonly chunkCount: number;
  readonly largestChunkBytes: number;
}

export interface PlanOptions {
  /** Bytes per element (4: f32). */
  bytesPerElement?: number;
  /**
   * Cut chunks at multiples of this many rows (all chunks but the last hold a multiple of
   * it). The GPU model asks for 4: a matmul over a chunk then keeps its 4-aligned fast path.
   * Ignored when fewer rows than this fit one binding.
   */
  rowAlign?: number;
}

/**
 * Plans the chunks of every tensor. A tensor that fits one binding is one chunk; a bigger one
 * is cut into the fewest chunks that fit, balanced: sizes differ by at most one row, or by at
 * most `rowAlign` rows when aligned (the last chunk takes what is left).
 * Throws a UserError when a single row does not fit a binding (nothing could be done).
 */
export function planLayout(
  tensors: ReadonlyMap<string, readonly number[]>,
  limits: DeviceLimits,
  { bytesPerElement = 4, rowAlign = 1 }: PlanOptions = {},
): LayoutPlan {
  const chunkLimitBytes = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  const layouts = new Map<string, TensorLayout>();
  let totalBytes = 0;
  let chunkCount = 0;
  let largestChunkBytes = 0;
  for (const [name, shape] of tensors) {
    const rows = shape.length === 0 ? 1 : shape[0];
    const rowElements = shape.slice(1).reduce((a, b) => a * b, 1);
    const rowBytes = rowElements * bytesPerElement;
    const bytes = rows * rowBytes;
    let chunks: RowChunk[];
    if (bytes <= chunkLimitBytes) {
      chunks = [{ rowStart: 0, rowEnd: rows, bytes }];
    } else {
      const maxRows = Math.floor(chunkLimitBytes / rowBytes);
      if (maxRows === 0) {
        throw new UserError(
          `tensor "${name}" [${shape.join(", ")}]: one row is ${rowBytes} bytes, more than ` +
            `the GPU can bind at once (${chunkLimitBytes} bytes)`,
        );
      }
      // Balance whole units of `align` rows; the last chunk is cut short at the last row.
      const align = maxRows >= rowAlign ? rowAlign : 1;
      const units = Math.ceil(rows / align);
      const count = Math.ceil(units / Math.floor(maxRows / align));
      const base = Math.floor(units / count);
      const extra = units % count; // the first `extra` chunks take one more unit
      chunks = [];
      let rowStart = 0;
      for (let i = 0; i < count; i++) {
        const rowEnd = Math.min(rows, rowStart + (base + (i < extra ? 1 : 0)) * align);
        chunks.push({ rowStart, rowEnd, bytes: (rowEnd - rowStart) * rowBytes });
        rowStart = rowEnd;
      }
    }
    layouts.set(name, { name, shape, rows, rowElements, bytes, chunks });
    totalBytes += bytes;
    chunkCount += chunks.length;
    for (const c of chunks) largestChunkBytes = Math.max(largestChunkBytes, c.bytes);
  }
  return { tensors: layouts, totalBytes, chunkLimitBytes, chunkCount, largestChunkBytes };
}

/** Bytes that full f32 training with AdamW keeps on the GPU, not counting activations. */
export interface TrainingMemory {
  readonly parameters: number;
  readonly gradients: number;
  /** AdamW's first and second moments. */
  readonly adamMoments: number;
  readonly total: number;
}

/** The memory bill of training a model of `parameterBytes` f32 parameter bytes with AdamW. */
export function trainingMemory(parameterBytes: number): TrainingMemory {
  const parameters = parameterBytes;
  const gradients = parameterBytes;
  const adamMoments = 2 * parameterBytes;
  return { parameters, gradients, adamMoments, total: parameters + gradients + adamMoments };
}

/** "3.11 GB"-style rendering of a byte count, for messages and reports (decimal units). */
export function formatBytes(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(2)} ${units[unit]}`;
}
