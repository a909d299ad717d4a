// Buffer pool: freed buffers are kept by size class and handed out again, so a training
// step allocates nothing after the first one.
//
// Size classes: powers of two, each split into 4 steps (1, 1.25, 1.5, 1.75 × 2^k), so a
// buffer wastes at most 25% of its size. Every pooled buffer has the same usage flags.

export const POOL_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC |
  GPUBufferUsage.COPY_DST;

/** Rounds a byte size up to its size class (a multiple of 256, at least 256). */
export function sizeClass(bytes: number): number {
  const minimum = 256;
  if (bytes <= minimum) return minimum;
  const power = 2 ** Math.floor(Math.log2(bytes));
  const step = power / 4;
  const rounded = Math.ceil(bytes / step) * step;
  return Math.ceil(rounded / minimum) * minimum;
}

export interface PoolStats {
  created: number;
  reused: number;
  bytesLive: number;
  bytesFree: number;
}

export class BufferPool {
  readonly #free = new Map<number, GPUBuffer[]>();
  readonly #classOf = new WeakMap<GPUBuffer, number>();
  /** Buffers now in the free lists: a second release would hand one buffer out twice. */
  readonly #isFree = new WeakSet<GPUBuffer>();
  readonly stats: PoolStats = { created: 0, reused: 0, bytesLive: 0, bytesFree: 0 };

  constructor(
    private readonly create: (size: number) => GPUBuffer,
    readonly maxBufferSize: number,
  ) {}

  acquire(bytes: number): GPUBuffer {
    const size = Math.min(sizeClass(bytes), Math.max(bytes, this.maxBufferSize));
    const list = this.#free.get(size);
    const reused = list?.pop();
    if (reused) {
      this.#isFree.delete(reused);
      this.stats.reused++;
      this.stats.bytesFree -= size;
      this.stats.bytesLive += size;
      return reused;
    }
    const buffer = this.create(size);
    this.#classOf.set(buffer, size);
    this.stats.created++;
    this.stats.bytesLive += size;
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    const size = this.#classOf.get(buffer);
    if (size === undefined) throw new Error("buffer released to a pool that did not create it");
    if (this.#isFree.has(buffer)) {
      throw new Error("buffer released twice (a tensor and a reshaped view of it?)");
    }
    this.#isFree.add(buffer);
    let list = this.#free.get(size);
    if (!list) this.#free.set(size, list = []);
    list.push(buffer);
    this.stats.bytesLive -= size;
    this.stats.bytesFree += size;
  }

  /** Destroys every free buffer (live ones are untouched). */
  trim(): void {
    for (const list of this.#free.values()) for (const b of list) b.destroy();
    this.#free.clear();
    this.stats.bytesFree = 0;
  }
}
