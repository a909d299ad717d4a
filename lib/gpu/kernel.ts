// A kernel: one entry point of a WGSL source, with values for its `override` constants.
// Each distinct (name, entry, constants) compiles to one pipeline, cached for the process.

export interface Kernel {
  /** Unique name of the WGSL source, e.g. "matmul". Part of the cache key. */
  name: string;
  source: string;
  entry: string;
  /** Values for the shader's `override` declarations (workgroup sizes, tile sizes, flags). */
  constants?: Record<string, number>;
}

export function kernelKey(k: Kernel): string {
  const c = k.constants ? Object.entries(k.constants).sort().map(([n, v]) => `${n}=${v}`) : [];
  return `${k.name}:${k.entry}:${c.join(",")}`;
}

export class PipelineCache {
  readonly #pipelines = new Map<string, GPUComputePipeline>();
  readonly #modules = new Map<string, GPUShaderModule>();
  // getBindGroupLayout makes a new handle on every call (measured in Deno: part of the ~20 µs
  // a dispatch takes to record); one per pipeline is enough.
  readonly #layouts = new WeakMap<GPUComputePipeline, GPUBindGroupLayout>();

  constructor(private readonly device: GPUDevice) {}

  get size(): number {
    return this.#pipelines.size;
  }

  /** The pipeline's (only) bind group layout, group 0. */
  layout(pipeline: GPUComputePipeline): GPUBindGroupLayout {
    let layout = this.#layouts.get(pipeline);
    if (!layout) this.#layouts.set(pipeline, layout = pipeline.getBindGroupLayout(0));
    return layout;
  }

  get(kernel: Kernel): GPUComputePipeline {
    const key = kernelKey(kernel);
    let pipeline = this.#pipelines.get(key);
    if (pipeline) return pipeline;
    let module = this.#modules.get(kernel.name);
    if (!module) {
      module = this.device.createShaderModule({ label: kernel.name, code: kernel.source });
      this.#modules.set(kernel.name, module);
    }
    pipeline = this.device.createComputePipeline({
      label: key,
      layout: "auto",
      compute: { module, entryPoint: kernel.entry, constants: kernel.constants },
    });
    this.#pipelines.set(key, pipeline);
    return pipeline;
  }
}
