// Putting a tensor into a staging texture (ctx.staging) for the kernels that read their
// operands as texels on software adapters (kernels/matmul_textures.wgsl,
// kernels/attention_textures.wgsl; why: the header of the first). Two layouts of a matrix
// stored [rows, K] or [K, rows]:
//
//   by rows along k:  texel (kt, r) = x[r, 4kt .. 4kt+3]   (zero past K)
//   k-major:          texel (q, k)  = x[4q .. 4q+3, k]      (x stored [K, rows], K % 4 = 0)
//
// Where the stored rows are a multiple of 64 floats (WebGPU's 256-byte row alignment for
// copies) the tensor's bytes already are one of them and copyBufferToTexture moves them;
// otherwise pack_rows (kernels/pack_rows.wgsl) builds the first layout.

import type { GpuContext } from "../gpu/context.ts";
import { Params } from "../gpu/params.ts";
import type { Tensor } from "../gpu/tensor.ts";
import packSource from "../../kernels/pack_rows.wgsl" with { type: "text" };

/**
 * The staging slots each op uses. A slot is reused by every later call (recorded commands run
 * in order), so two operands that one dispatch reads need two slots.
 */
export const STAGING_SLOTS = {
  matmulA: 0,
  matmulB: 1,
  attentionQ: 2,
  attentionK: 3,
  attentionV: 4,
  attentionDOut: 5,
} as const;

/**
 * Puts x into staging texture `slot` and says in which layout. `kMajor`: x is stored
 * [K, rows] (else [rows, K]); a k-major copy is only made when it is a plain copy, otherwise
 * the pack kernel builds the rows-along-k layout. `paddedRows`: the texture rows the reader
 * needs (≥ rows; the rows past `rows` hold whatever was there).
 */
export function stageTexture(
  ctx: GpuContext,
  x: Tensor<"f32">,
  slot: number,
  rows: number,
  paddedRows: number,
  K: number,
  kMajor: boolean,
): { texture: GPUTexture; kMajor: boolean } {
  if (!kMajor) {
    // The same matrix (a reshaped view of the buffer is another one), tall enough.
    const pinned = ctx.staging.pinned(x.buffer);
    if (
      pinned && pinned.rows === rows && pinned.K === K && pinned.texture.height >= paddedRows
    ) {
      return { texture: pinned.texture, kMajor: false };
    }
  }
  // Either layout is x's own bytes when its stored rows are a multiple of 64 floats: a copy.
  if (kMajor && rows % 64 === 0 && K % 4 === 0) {
    return { texture: copied(ctx, x, slot, [rows / 4, K], [paddedRows / 4, K]), kMajor: true };
  }
  if (!kMajor && K % 64 === 0) {
    return { texture: copied(ctx, x, slot, [K / 4, rows], [K / 4, paddedRows]), kMajor: false };
  }
  const texture = ctx.staging.get(slot, Math.ceil(K / 4), paddedRows);
  fillRows(ctx, x, texture, rows, K, kMajor);
  return { texture, kMajor: false };
}

/**
 * A texture (at least `size` texels) holding x's first copy[1] rows of copy[0] texels: one
 * copied earlier if x's buffer has not been written since (an operand shared by several
 * products: h by q, k and v, a gradient by dW and dx, whose two layouts are the same bytes),
 * else a fresh copy, kept for the next time (or, too big to keep, in `slot`).
 */
function copied(
  ctx: GpuContext,
  x: Tensor<"f32">,
  slot: number,
  copy: [number, number],
  size: [number, number],
): GPUTexture {
  const version = ctx.bufferVersion(x.buffer);
  const cached = ctx.staging.cached(x.buffer, version, copy, size);
  if (cached) return cached;
  const write = (texture: GPUTexture) => ctx.copyToTexture(x, texture, copy[0], copy[1]);
  const kept = ctx.staging.forCopy(x.buffer, version, copy, size, write);
  if (kept) return kept;
  const texture = ctx.staging.get(slot, size[0], size[1]);
  write(texture);
  return texture;
}

/**
 * Writes x into `texture` by rows along k: a copy when x is stored [rows, K] with K a multiple
 * of 64, else pack_rows (which also reads x stored [K, rows]: `storedKMajor`).
 */
function fillRows(
  ctx: GpuContext,
  x: Tensor<"f32">,
  texture: GPUTexture,
  rows: number,
  K: number,
  storedKMajor: boolean,
): void {
  if (!storedKMajor && K % 64 === 0) {
    ctx.copyToTexture(x, texture, K / 4, rows);
    return;
  }
  ctx.dispatch({
    name: "pack_rows",
    source: packSource,
    entry: "pack_rows",
    constants: { STORED_K_MAJOR: Number(storedKMajor) },
  }, {
    params: new Params().u32(rows).u32(K),
    tensors: [x],
    textures: [texture],
    workgroups: [Math.ceil(K / 4 / 8), Math.ceil(rows / 8)],
  });
}

/**
 * Rows of a pinned texture are a multiple of this: what any product pads its operands to
 * (lib/ops/matmul.ts: 16 rows × 8 threads of A, 8 columns × 8 threads of B).
 */
const PINNED_ROW_MULTIPLE = 128;

/**
 * Gives each matrix x: [rows, K] a texture of its own holding its texels by rows along k, so
 * that every product reading it as an operand by rows (a weight in x·Wᵀ) skips the copy. Only
 * on a software adapter, where products read textures. The caller promises that the
 * matrices neither change nor are released until it calls the returned function, which
 * releases the textures. Generation pins the model's weights for the length of a call (on
 * lavapipe the weight copies took ~20% of a decode step of the small preset).
 */
export function pinTextures(ctx: GpuContext, matrices: readonly Tensor<"f32">[]): () => void {
  if (ctx.adapter.kernels !== "software") return () => {};
  const pinned: GPUBuffer[] = [];
  for (const x of matrices) {
    if (x.shape.length !== 2 || ctx.staging.pinned(x.buffer)) continue;
    const [rows, K] = x.shape;
    const height = Math.ceil(rows / PINNED_ROW_MULTIPLE) * PINNED_ROW_MULTIPLE;
    const max = ctx.limits.maxTextureDimension2D;
    if (rows === 0 || K === 0 || height > max || Math.ceil(K / 4) > max) continue;
    const texture = ctx.staging.create(Math.ceil(K / 4), height, "pinned");
    fillRows(ctx, x, texture, rows, K, false);
    ctx.staging.pin(x.buffer, { texture, rows, K });
    pinned.push(x.buffer);
  }
  return () => {
    for (const buffer of pinned) {
      const texture = ctx.staging.unpin(buffer);
      if (texture) ctx.destroyAfterSubmit(texture);
    }
  };
}
