// Staging textures: rgba32float storage textures that an op copies operands into before a
// kernel reads them as texels (the texture matmul, lib/ops/matmul.ts). One texture per slot,
// grown to the largest size asked for so far and then reused by every later call: a product
// only uses its top-left corner. Recorded dispatches run in order, so one slot can serve
// every product of a step; a texture replaced by a bigger one stays alive (wgpu keeps it)
// until the commands that use it have run.

export const STAGING_FORMAT: GPUTextureFormat = "rgba32float";

/** A pinned texture and the matrix [rows, K] whose texels it holds (by rows along k). */
export interface PinnedTexture {
  texture: GPUTexture;
  rows: number;
  K: number;
}

export class StagingTextures {
  readonly #slots: (GPUTexture | undefined)[] = [];
  readonly #views = new WeakMap<GPUTexture, GPUTextureView>();
  /** Pinned textures by the buffer whose texels they hold (see `pin`). */
  readonly #pinned = new Map<GPUBuffer, PinnedTexture>();

  constructor(private readonly device: GPUDevice) {}

  /**
   * A texture of its own (not a slot) for `pin`: width × height texels, zeros until written.
   */
  create(width: number, height: number, label: string): GPUTexture {
    return this.device.createTexture({
      label,
      size: [width, height],
      format: STAGING_FORMAT,
      usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.COPY_DST,
    });
  }

  /**
   * Declares that `texture` holds the texels of `buffer` (in the layout the caller wrote) and
   * keeps it until `unpin`. The caller promises that the buffer neither changes nor is
   * released meanwhile: ops then read the texture instead of copying the buffer again.
   */
  pin(buffer: GPUBuffer, pinned: PinnedTexture): void {
    this.#pinned.set(buffer, pinned);
  }

  /** The texture pinned for `buffer`, if any, and the matrix it holds. */
  pinned(buffer: GPUBuffer): PinnedTexture | undefined {
    return this.#pinned.get(buffer);
  }

  /**
   * Forgets the pin of `buffer` and returns its texture, for the caller to destroy once the
   * recorded work that reads it is submitted (ctx.destroyAfterSubmit).
   */
  unpin(buffer: GPUBuffer): GPUTexture | undefined {
    const pinned = this.#pinned.get(buffer);
    this.#pinned.delete(buffer);
    return pinned?.texture;
  }

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
