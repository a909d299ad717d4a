// The staging copies behind the texture kernels (lib/ops/texture_staging.ts): an operand staged
// again while its buffer is unchanged reuses its texture; every way of writing a buffer (a
// dispatch, a copy, an upload, a clear) makes the next product copy it again; and a product's
// operands are never replaced while it is being recorded.

import type { GpuContext } from "../../lib/gpu/context.ts";
import type { Tensor } from "../../lib/gpu/tensor.ts";
import { addBiasInPlace } from "../../lib/ops/bias.ts";
import { matmul } from "../../lib/ops/matmul.ts";
import { stageTexture } from "../../lib/ops/texture_staging.ts";
import * as ref from "../../lib/ref/matmul.ts";
import { assert, assertClose, assertEquals, Rng, testGpu } from "../helpers.ts";

const TOLERANCE = { rtol: 1e-4, atol: 1e-4 };

/** x·yᵀ through the texture kernel, and the copies into textures it recorded. */
function productCopies(ctx: GpuContext, x: Tensor<"f32">, y: Tensor<"f32">) {
  const before = ctx.counts.textureCopies;
  const out = matmul(ctx, x, y, { transposeB: true, variant: "textures" });
  return { out, copies: ctx.counts.textureCopies - before };
}

async function expectProduct(
  ctx: GpuContext,
  out: Tensor<"f32">,
  x: Float32Array,
  xShape: number[],
  y: Float32Array,
  yShape: number[],
  what: string,
) {
  const expected = ref.matmul({ data: x, shape: xShape }, { data: y, shape: yShape }, {
    transposeA: false,
    transposeB: true,
  });
  assertClose(await ctx.read(out), expected, TOLERANCE, what);
  out.release();
}

Deno.test("staging: an unchanged operand is copied once; a dispatch, copy, upload or clear into its buffer makes it copied again", async () => {
  const ctx = await testGpu();
  const rng = new Rng(3);
  // K = 128: operands stored [rows, K] are staged by copyBufferToTexture.
  const aData = rng.normals(64 * 128);
  const bData = rng.normals(96 * 128);
  const cData = rng.normals(80 * 128);
  const a = ctx.f32(aData, [64, 128]);
  const b = ctx.f32(bData, [96, 128]);
  const c = ctx.f32(cData, [80, 128]);

  let p = productCopies(ctx, a, b);
  assertEquals(p.copies, 2, "first product: both operands copied");
  await expectProduct(ctx, p.out, aData, [64, 128], bData, [96, 128], "a·bᵀ");
  p = productCopies(ctx, a, c);
  assertEquals(p.copies, 1, "a again, unchanged: only c copied");
  await expectProduct(ctx, p.out, aData, [64, 128], cData, [80, 128], "a·cᵀ");
  p = productCopies(ctx, a, b);
  assertEquals(p.copies, 0, "both unchanged: nothing copied");
  p.out.release();

  // A dispatch that binds a (here: writes it).
  const bias = ctx.f32(Array.from({ length: 128 }, (_, i) => i / 64), [128]);
  addBiasInPlace(ctx, a, bias);
  const biased = aData.map((v, i) => Math.fround(v + (i % 128) / 64));
  p = productCopies(ctx, a, b);
  assertEquals(p.copies, 1, "after a dispatch wrote a");
  await expectProduct(ctx, p.out, biased, [64, 128], bData, [96, 128], "(a + bias)·bᵀ");

  // A copy into b.
  const dData = rng.normals(96 * 128);
  const d = ctx.f32(dData, [96, 128]);
  ctx.copy(d, b);
  p = productCopies(ctx, a, b);
  assertEquals(p.copies, 1, "after a copy into b");
  await expectProduct(ctx, p.out, biased, [64, 128], dData, [96, 128], "a·(b after copy)ᵀ");
  d.release();
  const copied = dData;

  // An upload into a's buffer, reused by the pool, then a clear of it.
  const aBuffer = a.buffer;
  a.release();
  const fresh = rng.normals(64 * 128);
  const a2 = ctx.f32(fresh, [64, 128]);
  assert(a2.buffer === aBuffer, "the pool gave a's buffer back (else this checks nothing)");
  p = productCopies(ctx, a2, b);
  assertEquals(p.copies, 1, "after an upload into the same buffer");
  await expectProduct(ctx, p.out, fresh, [64, 128], copied, [96, 128], "a2·bᵀ");
  a2.release();
  const zeros = ctx.zeros([64, 128], "f32");
  assert(zeros.buffer === aBuffer, "the pool gave the buffer back again");
  p = productCopies(ctx, zeros, b);
  assertEquals(p.copies, 1, "after a clear of the same buffer");
  await expectProduct(ctx, p.out, new Float32Array(64 * 128), [64, 128], copied, [96, 128], "0·bᵀ");
  for (const t of [b, c, bias, zeros]) t.release();
});

Deno.test("staging: a matrix staged by rows and its k-major use share one copy (the same bytes)", async () => {
  // dy [128, 64]: dyᵀ·x reads it k-major, dy·w by rows; both are its own bytes, 16 × 128 texels.
  const ctx = await testGpu();
  const rng = new Rng(5);
  const dy = ctx.f32(rng.normals(128 * 64), [128, 64]);
  const before = ctx.counts.textureCopies;
  const first = stageTexture(ctx, dy, 0, 64, 64, 128, true); // op(A) = dyᵀ: 64 rows, K = 128
  const second = stageTexture(ctx, dy, 1, 128, 128, 64, false); // op(A) = dy: 128 rows, K = 64
  assertEquals(ctx.counts.textureCopies - before, 1, "one copy for both layouts");
  assert(first.texture === second.texture && first.kMajor && !second.kMajor, "the same texture");
  ctx.staging.dispatched(); // no dispatch reads them: as if one had
  dy.release();
});

Deno.test("staging: products recorded together keep their operands while later ones replace copies", async () => {
  // More distinct operands than the cache keeps, in one command encoder, then the first ones
  // again: every product must read its own operands.
  const ctx = await testGpu();
  const rng = new Rng(9);
  const shared = rng.normals(72 * 64);
  const tShared = ctx.f32(shared, [72, 64]);
  const xs = Array.from({ length: 14 }, (_, i) => rng.normals((64 + 8 * i) * 64));
  const tx = xs.map((x, i) => ctx.f32(x, [64 + 8 * i, 64]));
  const outs = [...tx, ...tx.slice(0, 4)].map((t) =>
    matmul(ctx, t, tShared, { transposeB: true, variant: "textures" })
  );
  const got = await ctx.readMany(outs);
  got.forEach((g, i) => {
    const j = i % tx.length;
    const expected = ref.matmul({ data: xs[j], shape: [64 + 8 * j, 64] }, {
      data: shared,
      shape: [72, 64],
    }, { transposeA: false, transposeB: true });
    assertClose(g, expected, TOLERANCE, `product ${i} (x${j}·sharedᵀ)`);
  });
  for (const t of [tShared, ...tx, ...outs]) t.release();
});

Deno.test("staging: textures have no power-of-two side (one llvmpipe shader variant)", async () => {
  const ctx = await testGpu();
  const x = ctx.zeros([64, 64], "f32");
  const { texture } = stageTexture(ctx, x, 0, 64, 64, 64, false); // 16 × 64 texels asked for
  const isPowerOfTwo = (n: number) => (n & (n - 1)) === 0;
  assert(
    !isPowerOfTwo(texture.width) && !isPowerOfTwo(texture.height) && texture.width >= 16 &&
      texture.height >= 64,
    `staging texture ${texture.width} × ${texture.height}`,
  );
  // K = 4: one texel per row (through the pack kernel and a slot): 1 is a power of two too.
  const narrow = ctx.zeros([32, 4], "f32");
  const packed = stageTexture(ctx, narrow, 0, 32, 32, 4, false).texture;
  assert(
    !isPowerOfTwo(packed.width) && !isPowerOfTwo(packed.height),
    `staging texture ${packed.width} × ${packed.height} for one texel per row`,
  );
  ctx.staging.dispatched();
  // A side at the device's limit is a power of two that cannot grow: such a texture serves
  // only requests that need that side, and no texture grows into it for a smaller one.
  const max = ctx.limits.maxTextureDimension2D;
  const tall = ctx.zeros([max, 64], "f32");
  const tallTexture = stageTexture(ctx, tall, 0, max, max, 64, false).texture;
  assertEquals(tallTexture.height, max, "the tall operand's texture");
  ctx.staging.dispatched();
  for (let i = 0; i < 12; i++) {
    // Fresh small operands, through slot 0 and the cache's entries in turn.
    const small = ctx.zeros([96, 64], "f32");
    const { texture } = stageTexture(ctx, small, 0, 96, 96, 64, false);
    assert(!isPowerOfTwo(texture.height), `a [96, 64] operand staged in ${texture.height} rows`);
    ctx.staging.dispatched();
    small.release();
  }
  for (const t of [x, narrow, tall]) t.release();
});

Deno.test("staging: more cached operands for one dispatch than the cache protects is refused", async () => {
  const ctx = await testGpu();
  const xs = Array.from({ length: 5 }, (_, i) => ctx.zeros([64 + i, 64], "f32"));
  let message = "";
  try {
    for (const x of xs) stageTexture(ctx, x, 0, x.shape[0], x.shape[0], 64, false);
  } catch (e) {
    message = (e as Error).message;
  }
  ctx.staging.dispatched();
  assert(message.includes("more than 4 cached operands for one dispatch"), message);
  for (const x of xs) x.release();
});
