// A tensor handle: a shape, an element type and a GPU buffer. Row-major, contiguous.
// The buffer may be larger than the tensor (pooled buffers are rounded up to a size class).

export type DType = "f32" | "i32" | "u32";

/** Bytes per element; all types are 32-bit, which keeps WGSL indexing simple. */
export const BYTES_PER_ELEMENT = 4;

export type TypedArrayOf<D extends DType> = D extends "f32" ? Float32Array<ArrayBuffer>
  : D extends "i32" ? Int32Array<ArrayBuffer>
  : Uint32Array<ArrayBuffer>;

/** The part of the GPU context a tensor needs to give its buffer back. */
export interface BufferOwner {
  releaseBuffer(buffer: GPUBuffer): void;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

export class Tensor<D extends DType = DType> {
  #released = false;

  constructor(
    readonly owner: BufferOwner,
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly dtype: D,
  ) {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new Error(`bad tensor shape ${shapeString(shape)}`);
    }
  }

  /** Number of elements. */
  get size(): number {
    return numel(this.shape);
  }

  /** Bytes the tensor's data occupies (at least 4, so that empty tensors still bind). */
  get byteLength(): number {
    return Math.max(4, this.size * BYTES_PER_ELEMENT);
  }

  get released(): boolean {
    return this.#released;
  }

  /** A view of the same buffer with another shape of the same element count. */
  reshape(shape: readonly number[]): Tensor<D> {
    if (numel(shape) !== this.size) {
      throw new Error(`cannot reshape ${shapeString(this.shape)} to ${shapeString(shape)}`);
    }
    return new Tensor(this.owner, this.buffer, shape, this.dtype);
  }

  /** Gives the buffer back to the pool. The tensor (and any reshaped view) must not be used after. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.owner.releaseBuffer(this.buffer);
  }
}
