// The GPU context: one device, its buffer pool, pipeline cache and the command encoder
// that ops record into. Ops never submit; the caller submits once per logical step
// (`submit`), and reads back only what it asks for (`read`).
//
// Binding convention for every kernel: if the op passes params, binding 0 is the
// `var<uniform> params` struct and the tensors follow at bindings 1..n; otherwise the
// tensors take bindings 0..n-1, in the order the op passes them; staging textures, if any,
// come after the tensors.

import { type AdapterSummary, openDevice } from "./device.ts";
import { GpuError } from "./errors.ts";
import { type Kernel, PipelineCache } from "./kernel.ts";
import type { Params } from "./params.ts";
import { BufferPool, POOL_USAGE } from "./pool.ts";
import { BYTES_PER_ELEMENT, type DType, numel, Tensor, type TypedArrayOf } from "./tensor.ts";
import { StagingTextures } from "./textures.ts";
import { UniformArena } from "./uniforms.ts";

/** What a user can lower when the GPU runs out of memory (said in every such message). */
const LOWER_SIZES = "lower the batch size, group size or sequence length " +
  "(training.batch_size, rl.group_size, model.max_context)";

export type Workgroups = readonly [number, number?, number?];

export interface DispatchArgs {
  params?: Params;
  tensors: readonly Tensor[];
  /** Staging textures (ctx.staging), bound after the tensors. */
  textures?: readonly GPUTexture[];
  workgroups: Workgroups;
}

export type TypedArray =
  | Float32Array<ArrayBuffer>
  | Int32Array<ArrayBuffer>
  | Uint32Array<ArrayBuffer>;

function arrayFor(dtype: DType, buffer: ArrayBuffer, length: number): TypedArray {
  if (dtype === "f32") return new Float32Array(buffer, 0, length);
  if (dtype === "i32") return new Int32Array(buffer, 0, length);
  return new Uint32Array(buffer, 0, length);
}

export class GpuContext {
  readonly pool: BufferPool;
  readonly pipelines: PipelineCache;
  readonly staging: StagingTextures;
  readonly #uniforms: UniformArena;
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #errors: string[] = [];
  #lost: string | null = null;
  #lastAllocation = 0;
  /** Staging buffers (and textures) to destroy once the command buffer that reads them is submitted. */
  #afterSubmit: (GPUBuffer | GPUTexture)[] = [];
  /** Counters a benchmark can report. */
  readonly counts = { dispatches: 0, submits: 0, readbacks: 0, textureCopies: 0 };
  /**
   * How often each buffer may have been written, in recording order: every dispatch that binds
   * it (read or write: the kernels do not say), a copy or upload into it, a clear. Staging
   * textures remember the version they copied (lib/ops/texture_staging.ts).
   */
  readonly #versions = new WeakMap<GPUBuffer, number>();

  private constructor(readonly device: GPUDevice, readonly adapter: AdapterSummary) {
    this.pool = new BufferPool((size) => {
      this.#lastAllocation = size;
      return device.createBuffer({ size, usage: POOL_USAGE });
    }, device.limits.maxBufferSize);
    this.pipelines = new PipelineCache(device);
    this.staging = new StagingTextures(device, (texture) => this.destroyAfterSubmit(texture));
    this.#uniforms = new UniformArena(device, device.limits.minUniformBufferOffsetAlignment);
    device.addEventListener("uncapturederror", (event) => {
      const error = (event as GPUUncapturedErrorEvent).error;
      if (error instanceof GPUOutOfMemoryError) {
        this.#errors.push(
          `GPU out of memory (last allocation ${this.#lastAllocation} bytes, ` +
            `${this.pool.stats.bytesLive} bytes in use): ${LOWER_SIZES}`,
        );
      } else {
        this.#errors.push(error.message);
      }
    });
    device.lost.then((info) => {
      if (info.reason !== "destroyed") this.#lost = info.message || "unknown reason";
    });
  }

  static async create(): Promise<GpuContext> {
    const { device, summary } = await openDevice();
    return new GpuContext(device, summary);
  }

  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  hasFeature(name: GPUFeatureName): boolean {
    return this.device.features.has(name);
  }

  // ---- tensors -------------------------------------------------------------------

  releaseBuffer(buffer: GPUBuffer): void {
    this.pool.release(buffer);
  }

  /** The buffer's write count so far (see #versions): equal counts, the same contents. */
  bufferVersion(buffer: GPUBuffer): number {
    return this.#versions.get(buffer) ?? 0;
  }

  #written(buffer: GPUBuffer): void {
    this.#versions.set(buffer, this.bufferVersion(buffer) + 1);
  }

  /** An uninitialised tensor from the pool. */
  empty<D extends DType>(shape: readonly number[], dtype: D): Tensor<D> {
    const bytes = Math.max(4, numel(shape) * BYTES_PER_ELEMENT);
    if (bytes > this.limits.maxBufferSize) {
      throw new GpuError(
        `tensor of shape [${shape.join(", ")}] needs ${bytes} bytes, more than this ` +
          `device's maxBufferSize (${this.limits.maxBufferSize}): ${LOWER_SIZES}`,
      );
    }
    return new Tensor(this, this.pool.acquire(bytes), shape, dtype);
  }

  /**
   * A tensor holding `data`, in recording order: dispatches recorded before see the old
   * contents of the (possibly reused) buffer, dispatches recorded after see `data`.
   *
   * queue.writeBuffer alone would be wrong while commands are being recorded: it runs at
   * submit time *before* the whole command buffer, so it could overwrite a pooled buffer
   * that an earlier recorded dispatch still reads. Then the data goes through a staging
   * buffer and a recorded copy instead.
   */
  upload<D extends DType>(data: TypedArrayOf<D>, shape: readonly number[], dtype: D): Tensor<D> {
    if (data.length !== numel(shape)) {
      throw new Error(`upload: ${data.length} values for shape [${shape.join(", ")}]`);
    }
    const t = this.empty(shape, dtype);
    if (data.length === 0) return t;
    this.#written(t.buffer);
    if (!this.#encoder) {
      this.device.queue.writeBuffer(t.buffer, 0, data);
      return t;
    }
    const staging = this.device.createBuffer({
      size: data.byteLength,
      usage: GPUBufferUsage.COPY_SRC,
      mappedAtCreation: true,
    });
    new Uint8Array(staging.getMappedRange()).set(
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    );
    staging.unmap();
    this.#endPass();
    this.#encoder.copyBufferToBuffer(staging, 0, t.buffer, 0, data.byteLength);
    this.#afterSubmit.push(staging);
    return t;
  }

  f32(data: ArrayLike<number>, shape: readonly number[] = [data.length]): Tensor<"f32"> {
    return this.upload(Float32Array.from(data), shape, "f32");
  }

  u32(data: ArrayLike<number>, shape: readonly number[] = [data.length]): Tensor<"u32"> {
    return this.upload(Uint32Array.from(data), shape, "u32");
  }

  i32(data: ArrayLike<number>, shape: readonly number[] = [data.length]): Tensor<"i32"> {
    return this.upload(Int32Array.from(data), shape, "i32");
  }

  /** A zero-filled tensor (the clear is recorded into the current encoder). */
  zeros<D extends DType>(shape: readonly number[], dtype: D): Tensor<D> {
    const t = this.empty(shape, dtype);
    this.#written(t.buffer);
    this.#endPass();
    this.#currentEncoder().clearBuffer(t.buffer, 0, Math.ceil(t.byteLength / 4) * 4);
    return t;
  }

  /** Records a copy of `src` into `dst` (same element count). */
  copy(src: Tensor, dst: Tensor): void {
    if (src.size !== dst.size) throw new Error("copy: sizes differ");
    if (src.size === 0) return;
    this.#written(dst.buffer);
    this.#endPass();
    this.#currentEncoder().copyBufferToBuffer(src.buffer, 0, dst.buffer, 0, src.size * 4);
  }

  /**
   * Records a copy of `src`'s first height × width·4 floats into the top-left width × height
   * texels of an rgba32float staging texture (row y = floats y·width·4 ..). width·16 must be
   * a multiple of 256 bytes (WebGPU's bytesPerRow alignment).
   */
  copyToTexture(src: Tensor, texture: GPUTexture, width: number, height: number): void {
    if ((width * 16) % 256 !== 0 || width * height * 4 > src.size) {
      throw new Error(`copyToTexture: ${width} × ${height} texels do not fit the copy rules`);
    }
    if (width === 0 || height === 0) return;
    this.counts.textureCopies++;
    this.#endPass();
    this.#currentEncoder().copyBufferToTexture(
      { buffer: src.buffer, bytesPerRow: width * 16 },
      { texture },
      [width, height],
    );
  }

  // ---- recording -----------------------------------------------------------------

  #currentEncoder(): GPUCommandEncoder {
    this.#throwIfFailed();
    return this.#encoder ??= this.device.createCommandEncoder();
  }

  #endPass(): void {
    this.#pass?.end();
    this.#pass = null;
  }

  /** Records one dispatch of `kernel` into the current command encoder. */
  dispatch(kernel: Kernel, args: DispatchArgs): void {
    const [x, y = 1, z = 1] = args.workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const maxGroups = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxGroups || y > maxGroups || z > maxGroups) {
      throw new Error(
        `${kernel.name}: dispatch [${x}, ${y}, ${z}] exceeds ${maxGroups} per dimension`,
      );
    }
    const pipeline = this.pipelines.get(kernel);
    const entries: GPUBindGroupEntry[] = [];
    if (args.params) {
      const { buffer, offset, size } = this.#uniforms.push(args.params.bytes());
      entries.push({ binding: 0, resource: { buffer, offset, size } });
    }
    const first = entries.length;
    args.tensors.forEach((t, i) => {
      if (t.released) throw new Error(`${kernel.name}: tensor ${i} was released`);
      this.#written(t.buffer);
      entries.push({
        binding: first + i,
        resource: { buffer: t.buffer, offset: 0, size: t.byteLength },
      });
    });
    args.textures?.forEach((t, i) => {
      entries.push({ binding: first + args.tensors.length + i, resource: this.staging.view(t) });
    });
    const bindGroup = this.device.createBindGroup({
      layout: this.pipelines.layout(pipeline),
      entries,
    });
    this.#pass ??= this.#currentEncoder().beginComputePass();
    this.#pass.setPipeline(pipeline);
    this.#pass.setBindGroup(0, bindGroup);
    this.#pass.dispatchWorkgroups(x, y, z);
    this.staging.dispatched();
    this.counts.dispatches++;
  }

  /**
   * Workgroup counts for `count` independent items of `perGroup` each: spread over x and
   * y when x alone would exceed the per-dimension limit. Kernels recover the linear index
   * as `gid.x + gid.y * (num_workgroups.x * WORKGROUP_SIZE)` and skip indices >= count.
   */
  groupsFor(count: number, perGroup: number): Workgroups {
    const groups = Math.ceil(count / perGroup);
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    if (groups <= max) return [groups, 1, 1];
    const y = Math.ceil(groups / max);
    return [Math.ceil(groups / y), y, 1];
  }

  /**
   * Destroys a buffer or texture that recorded work may still read: now if nothing is
   * recorded, else right after the next submit (wgpu frees it once the GPU is done).
   */
  destroyAfterSubmit(resource: GPUBuffer | GPUTexture): void {
    if (this.#encoder) this.#afterSubmit.push(resource);
    else resource.destroy();
  }

  /** Submits everything recorded since the last submit. */
  submit(): void {
    this.#endPass();
    if (!this.#encoder) return;
    this.#uniforms.flush(this.device.queue);
    this.device.queue.submit([this.#encoder.finish()]);
    this.#encoder = null;
    for (const b of this.#afterSubmit) b.destroy(); // freed by wgpu once the GPU is done
    this.#afterSubmit = [];
    this.counts.submits++;
  }

  /** Waits until the GPU has finished all submitted work, then reports any GPU error. */
  async sync(): Promise<void> {
    this.submit();
    await this.device.queue.onSubmittedWorkDone();
    this.#throwIfFailed();
  }

  #throwIfFailed(): void {
    if (this.#lost) {
      throw new GpuError(
        `GPU device lost (${this.#lost.replace(/\s+/g, " ").trim()}): the driver reset it, ` +
          `often after running out of memory or a dispatch that ran too long; ${LOWER_SIZES}`,
      );
    }
    if (this.#errors.length > 0) {
      const first = this.#errors[0];
      this.#errors = [];
      throw new GpuError(`GPU error: ${first.replace(/\s+/g, " ").trim()}`);
    }
  }

  // ---- readback ------------------------------------------------------------------

  /** Submits pending work and reads tensors back in one map (one ~10 ms round trip). */
  async readMany(tensors: readonly Tensor[]): Promise<TypedArray[]> {
    const offsets: number[] = [];
    let total = 0;
    for (const t of tensors) {
      offsets.push(total);
      total += Math.ceil((t.size * 4) / 256) * 256;
    }
    this.#endPass();
    const encoder = this.#currentEncoder(); // throws first if the device has failed
    const staging = this.device.createBuffer({
      size: Math.max(4, total),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    try {
      tensors.forEach((t, i) => {
        if (t.size > 0) encoder.copyBufferToBuffer(t.buffer, 0, staging, offsets[i], t.size * 4);
      });
      this.submit();
      this.counts.readbacks++;
      try {
        await staging.mapAsync(GPUMapMode.READ);
      } catch (e) {
        // A lost device rejects the map before device.lost has settled: give it a moment,
        // so the user sees the GpuError (with what to do) rather than a bare OperationError.
        await Promise.race([this.device.lost, new Promise((r) => setTimeout(r, 100))]);
        this.#throwIfFailed();
        throw new GpuError(`GPU readback failed: ${(e as Error).message}`.replace(/\s+/g, " "));
      }
      this.#throwIfFailed();
      const mapped = staging.getMappedRange();
      return tensors.map((t, i) => {
        const copy = mapped.slice(offsets[i], offsets[i] + t.size * 4);
        return arrayFor(t.dtype, copy, t.size);
      });
    } finally {
      if (staging.mapState === "mapped") staging.unmap();
      staging.destroy();
    }
  }

  async read<D extends DType>(t: Tensor<D>): Promise<TypedArrayOf<D>> {
    const [data] = await this.readMany([t]);
    return data as TypedArrayOf<D>;
  }

  destroy(): void {
    this.pool.trim();
    this.device.destroy();
  }
}

let shared: Promise<GpuContext> | null = null;

/** The process-wide GPU context, opened on first use. */
export function gpu(): Promise<GpuContext> {
  return shared ??= GpuContext.create();
}
