// Staging textures: rgba32float storage textures that an op copies operands into before a
// kernel reads them as texels (the texture matmul, lib/ops/matmul.ts). One texture per slot,
// grown to the largest size asked for so far and then reused by every later call: a product
// only uses its top-left corner. Recorded dispatches run in order, so one slot can serve
// every product of a step; a texture replaced by a bigger one stays alive (wgpu keeps it)
// until the commands that use it have run.

export const STAGING_FORMAT: GPUTextureFormat = "rgba32float";

export class StagingTextures {
  readonly #slots: (GPUTexture | undefined)[] = [];
  readonly #views = new WeakMap<GPUTexture, GPUTextureView>();

  constructor(private readonly device: GPUDevice) {}

  /** The texture of `slot`, at least width × height texels. */
  get(slot: number, width: number, height: number): GPUTexture {
    const current = this.#slots[slot];
    if (current && current.width >= width && current.height >= height) return current;
    const texture = this.device.createTexture({
      label: `staging ${slot}`,
      size: [Math.max(width, current?.width ?? 1), Math.max(height, current?.height ?? 1)],
      format: STAGING_FORMAT,
      usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.COPY_DST,
    });
    this.#slots[slot] = texture;
    return texture;
  }

  view(texture: GPUTexture): GPUTextureView {
    let view = this.#views.get(texture);
    if (!view) {
      view = texture.createView();
      this.#views.set(texture, view);
    }
    return view;
  }
}
