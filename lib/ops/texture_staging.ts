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
// otherwise pack_rows builds the first layout.

import type { GpuContext } from "../gpu/context.ts";
import { Params } from "../gpu/params.ts";
import type { Tensor } from "../gpu/tensor.ts";
import texturesSource from "../../kernels/matmul_textures.wgsl" with { type: "text" };

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
  if (!kMajor && K % 64 === 0) {
    const texture = ctx.staging.get(slot, K / 4, paddedRows);
    ctx.copyToTexture(x, texture, K / 4, rows);
    return { texture, kMajor: false };
  }
  if (kMajor && rows % 64 === 0 && K % 4 === 0) {
    const texture = ctx.staging.get(slot, paddedRows / 4, K);
    ctx.copyToTexture(x, texture, rows / 4, K);
    return { texture, kMajor: true };
  }
  const texture = ctx.staging.get(slot, Math.ceil(K / 4), paddedRows);
  ctx.dispatch({
    name: "matmul_textures",
    source: texturesSource,
    entry: "pack_rows",
    constants: { STORED_K_MAJOR: Number(kMajor) },
  }, {
    params: new Params().u32(rows).u32(K),
    tensors: [x],
    textures: [texture],
    workgroups: [Math.ceil(K / 4 / 8), Math.ceil(rows / 8)],
  });
  return { texture, kMajor: false };
}
