// Staging textures: rgba32float storage textures that an op copies operands into before a
// kernel reads them as texels (the texture matmul, lib/ops/matmul.ts). Two kinds:
// - cached copies (`cached`, `forCopy`): a copy of a buffer's bytes is kept in one of a few
//   textures with the buffer's write count (ctx.bufferVersion) and served again while the
//   buffer is unchanged; the least recently used is replaced. On the small preset's training
//   step this skips 83 of 300 copies (an operand shared by several products).
// - slots: one texture per slot, grown to the largest size asked for so far and then reused by
//   every later call (a product only uses its top-left corner): for what is too big to cache
//   and what a kernel packs (pack_rows) rather than copies.
// Recorded dispatches run in order, so a texture can be rewritten after the dispatches that read
// it were recorded; a texture replaced by a bigger one stays alive (wgpu keeps it) until the
// commands that use it have run.

export const STAGING_FORMAT: GPUTextureFormat = "rgba32float";

/**
 * Copies of buffers kept for reuse (see `cached`): room for a product's operands that come back
 * a few products later (h for q, k and v; g for gate and up; dy for dW and dx). Measured on the
 * small preset's training step: 300 → 217 copies with 8, 212 with 16.
 */
const CACHED_COPIES = 8;
/**
 * The most operands one dispatch stages (attention's q, k, v and dout): that many of the most
 * recently used copies are never replaced, so no operand of the dispatch being recorded is.
 */
const OPERANDS_PER_DISPATCH = 4;
/** Bigger copies are not cached (they take a slot), to bound the cache's memory. */
const MAX_CACHED_BYTES = 64 * 1024 * 1024;

function isPowerOfTwo(n: number): boolean {
  return (n & (n - 1)) === 0;
}

/**
 * Every staging texture is made with sides that are not powers of two. llvmpipe compiles a
 * shader variant per combination of its bound textures' power-of-two sides (part of its
 * sampler state, even for texel loads): textures of mixed sizes cost a compile of the matmul
 * kernel each (seconds, measured: first steps of 5–40 s with the copy cache below until
 * this). A side is only a lower bound for the readers, so one more texel changes nothing (but
 * a side at the device's limit stays as it is).
 */
function notPowerOfTwo(side: number, max: number): number {
  let s = side;
  while (isPowerOfTwo(s) && s < max) s++; // 1 → 3 (2 is one too), n → n + 1 otherwise
  return s;
}

/**
 * Whether `texture` can serve a request of at least width × height texels: big enough, and
 * without a power-of-two side the request does not need (a side at the device's limit is one:
 * lending it to smaller requests would bring its shader variants to their kernels too).
 */
function serves(texture: GPUTexture, width: number, height: number): boolean {
  const side = (have: number, need: number) =>
    have >= need && (!isPowerOfTwo(have) || have === need);
  return side(texture.width, width) && side(texture.height, height);
}

/**
 * A side grown from `have` to take `need` too: the larger, except that a power-of-two side
 * (one at the device's limit) is not kept for a request that does not need it (see serves).
 */
function grownSide(have: number, need: number): number {
  return have > need && isPowerOfTwo(have) ? need : Math.max(have, need);
}

/**
 * A width whose rows do not start in the same few cache sets. A row of W texels is W/4 cache
 * lines of 64 bytes; the matmul kernel reads one texel from each of 64 rows at a time (8 lanes
 * × 8 columns of B), and with W a multiple of 32 those 64 addresses fall in 64/gcd(W/4, 64) ≤
 * 8 sets of a 64-set L1 cache, which then thrashes. 4 more texels make W/4 odd: all 64 sets.
 * Measured on lavapipe (pinned weights, ms per product, interleaved runs): K = 1536 (W = 384,
 * 2 sets) M = 1024, N = 384: 21.8 → 15.8; M = 64: 1.39 → 1.16; K = 384 (W = 96, 8 sets)
 * M = 1024, N = 1536: 18.9 → 17.9; M = 64: 1.29 → 1.20. Padding a row is free for the readers
 * (a side is a lower bound).
 */
function spreadRows(width: number, max: number): number {
  return width % 32 === 0 && width + 4 <= max ? width + 4 : width;
}

/** A texture for staging, `size` texels or a little more (see notPowerOfTwo, spreadRows). */
function stagingTexture(device: GPUDevice, label: string, [width, height]: number[]): GPUTexture {
  const max = device.limits.maxTextureDimension2D;
  return device.createTexture({
    label,
    size: [notPowerOfTwo(spreadRows(width, max), max), notPowerOfTwo(height, max)],
    format: STAGING_FORMAT,
    usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.COPY_DST,
  });
}

/** A cached copy: `texture` holds height rows of width texels of `buffer` at `version`. */
interface CachedCopy {
  buffer: GPUBuffer;
  version: number;
  width: number;
  height: number;
  texture: GPUTexture;
  /** When it was last used (a counter): the least recent is replaced first. */
  used: number;
}

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
  readonly #cached: CachedCopy[] = [];
  #clock = 0;
  /** Cached copies served since the last dispatch (see OPERANDS_PER_DISPATCH). */
  #sinceDispatch = 0;

  /**
   * `retire`: destroys a texture once the commands recorded so far that read it have run
   * (ctx.destroyAfterSubmit), for textures that bigger ones replace.
   */
  constructor(
    private readonly device: GPUDevice,
    private readonly retire: (texture: GPUTexture) => void,
  ) {}

  /** Called by ctx.dispatch: the operands staged since belong to the next dispatch. */
  dispatched(): void {
    this.#sinceDispatch = 0;
  }

  /** Counts a copy served to the dispatch being recorded; more than the LRU protects is a bug. */
  #served(entry: CachedCopy): void {
    entry.used = ++this.#clock;
    if (++this.#sinceDispatch > OPERANDS_PER_DISPATCH) {
      throw new Error(
        `staging: more than ${OPERANDS_PER_DISPATCH} cached operands for one dispatch ` +
          `(raise OPERANDS_PER_DISPATCH in lib/gpu/textures.ts)`,
      );
    }
  }

  /**
   * A texture of its own (not a slot) for `pin`: width × height texels, zeros until written.
   */
  create(width: number, height: number, label: string): GPUTexture {
    return stagingTexture(this.device, label, [width, height]);
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

  /**
   * A texture that already holds the copy of `buffer`'s first height rows of width texels made
   * at `version` (ctx.bufferVersion: the buffer has not been written since), at least
   * minWidth × minHeight texels in all; undefined if none.
   */
  cached(
    buffer: GPUBuffer,
    version: number,
    [width, height]: [number, number],
    [minWidth, minHeight]: [number, number],
  ): GPUTexture | undefined {
    const hit = this.#cached.find((c) =>
      c.buffer === buffer && c.version === version && c.width === width &&
      c.height === height && serves(c.texture, minWidth, minHeight)
    );
    if (hit) this.#served(hit);
    return hit?.texture;
  }

  /**
   * A texture (at least minWidth × minHeight) that `write` copies those texels into, kept as
   * their cached copy once it has; it replaces the least recently used one. Undefined (and
   * nothing written) when the copy is too big to cache: the caller then uses a slot.
   */
  forCopy(
    buffer: GPUBuffer,
    version: number,
    [width, height]: [number, number],
    [minWidth, minHeight]: [number, number],
    write: (texture: GPUTexture) => void,
  ): GPUTexture | undefined {
    if (minWidth * minHeight * 16 > MAX_CACHED_BYTES) return undefined;
    const fits = (c: CachedCopy) => serves(c.texture, minWidth, minHeight);
    let entry: CachedCopy | undefined;
    if (this.#cached.length === CACHED_COPIES) {
      // Replaceable: all but the most recent few; the least recent whose texture is big enough,
      // else the least recent (its texture is then replaced by a bigger one).
      const replaceable = [...this.#cached].sort((a, b) => a.used - b.used)
        .slice(0, CACHED_COPIES - OPERANDS_PER_DISPATCH);
      entry = replaceable.find(fits) ?? replaceable[0];
    }
    // Recorded dispatches run in order: rewriting a texture after them is safe; a replaced one
    // stays alive until the commands that read it have run (as for the slots).
    if (!entry || !fits(entry)) {
      let size = [minWidth, minHeight];
      if (entry) {
        // Grown to fit both shapes where that stays within the bound, else just this one.
        const grown = [
          grownSide(entry.texture.width, minWidth),
          grownSide(entry.texture.height, minHeight),
        ];
        if (grown[0] * grown[1] * 16 <= MAX_CACHED_BYTES) size = grown;
      }
      const texture = stagingTexture(this.device, "staging cache", size);
      if (entry) {
        this.retire(entry.texture);
        entry.texture = texture;
      } else {
        this.#cached.push(entry = { buffer, version: NaN, width, height, texture, used: 0 });
      }
    }
    // Matches nothing until the copy is recorded (should `write` throw, no stale hit remains).
    entry.version = NaN;
    write(entry.texture);
    Object.assign(entry, { buffer, version, width, height });
    this.#served(entry);
    return entry.texture;
  }

  /** The texture of `slot`, at least width × height texels. */
  get(slot: number, width: number, height: number): GPUTexture {
    const current = this.#slots[slot];
    if (current && serves(current, width, height)) return current;
    const texture = stagingTexture(this.device, `staging ${slot}`, [
      grownSide(current?.width ?? 1, width),
      grownSide(current?.height ?? 1, height),
    ]);
    if (current) this.retire(current);
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
