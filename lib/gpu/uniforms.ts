// Uniform arena: the parameters of every dispatch recorded in one command buffer are
// written into a few large uniform buffers (one queue.writeBuffer each, at submit),
// instead of one small buffer per dispatch.
//
// Reusing the chunks right after a submit is safe: queue.writeBuffer is ordered after
// the work already submitted on the queue.

const CHUNK_BYTES = 65536; // WebGPU guarantees maxUniformBufferBindingSize >= 64 KiB

interface Chunk {
  buffer: GPUBuffer;
  bytes: Uint8Array<ArrayBuffer>;
  used: number;
}

export class UniformArena {
  readonly #chunks: Chunk[] = [];
  #current = 0;

  constructor(private readonly device: GPUDevice, private readonly alignment: number) {}

  /** Stages `data` and returns where it will live once `flush` has written it. */
  push(data: Uint8Array): { buffer: GPUBuffer; offset: number; size: number } {
    let chunk = this.#chunks[this.#current];
    const aligned = chunk ? Math.ceil(chunk.used / this.alignment) * this.alignment : 0;
    if (!chunk || aligned + data.byteLength > CHUNK_BYTES) {
      if (chunk) this.#current++;
      chunk = this.#chunks[this.#current];
      if (!chunk) {
        chunk = {
          buffer: this.device.createBuffer({
            label: `uniforms-${this.#current}`,
            size: CHUNK_BYTES,
            usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
          }),
          bytes: new Uint8Array(CHUNK_BYTES),
          used: 0,
        };
        this.#chunks.push(chunk);
      }
    }
    const offset = chunk.used === 0 ? 0 : Math.ceil(chunk.used / this.alignment) * this.alignment;
    chunk.bytes.set(data, offset);
    chunk.used = offset + data.byteLength;
    return { buffer: chunk.buffer, offset, size: data.byteLength };
  }

  /** Writes the staged parameters to the GPU; call right before submitting. */
  flush(queue: GPUQueue): void {
    for (let i = 0; i <= this.#current && i < this.#chunks.length; i++) {
      const c = this.#chunks[i];
      if (c.used > 0) queue.writeBuffer(c.buffer, 0, c.bytes, 0, Math.ceil(c.used / 4) * 4);
      c.used = 0;
    }
    this.#current = 0;
  }
}
