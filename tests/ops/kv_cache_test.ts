import { readTimeSlice, writeTimeSlice, writeTimeSlicePair } from "../../lib/ops/kv_cache.ts";
import { addBiasInPlace } from "../../lib/ops/bias.ts";
import * as ref from "../../lib/ref/kv_cache.ts";
import { assertBitEqual, Rng, testGpu } from "../helpers.ts";

// [B, S, ...rest] shapes, and the [start, start + T) slice to write and read back.
// Awkward sizes: size 1, primes, widths that are not multiples of anything, one large case.
const CASES: { shape: number[]; start: number; count: number }[] = [
  { shape: [1, 1], start: 0, count: 1 },
  { shape: [1, 5, 1], start: 4, count: 1 },
  { shape: [2, 11, 3, 7], start: 3, count: 5 },
  { shape: [3, 13, 2, 12], start: 0, count: 13 },
  { shape: [5, 17, 29], start: 16, count: 1 },
  { shape: [2, 257, 4, 128], start: 100, count: 150 },
];

Deno.test("kv_cache: writeTimeSlice and readTimeSlice match the reference (bit-exact)", async () => {
  const ctx = await testGpu();
  const rng = new Rng(1);
  for (const { shape, start, count } of CASES) {
    const [batch, rows] = shape;
    const rest = shape.slice(2);
    const width = rest.reduce((a, b) => a * b, 1);
    const cache = rng.normals(batch * rows * width);
    const fresh = rng.normals(batch * count * width);
    const tCache = ctx.f32(cache, shape);
    const tFresh = ctx.f32(fresh, [batch, count, ...rest]);
    writeTimeSlice(ctx, tFresh, tCache, start);
    const prefix = readTimeSlice(ctx, tCache, 0, start + count);
    const slice = readTimeSlice(ctx, tCache, start, count);
    const [gotCache, gotPrefix, gotSlice] = await ctx.readMany([tCache, prefix, slice]);
    const written = ref.writeTimeSlice(fresh, cache, batch, count, rows, width, start);
    const what = `[${shape}] rows ${start}..${start + count}`;
    assertBitEqual(gotCache, Float32Array.from(written), `${what}: cache`);
    assertBitEqual(
      gotPrefix,
      Float32Array.from(ref.readTimeSlice(written, batch, rows, width, 0, start + count)),
      `${what}: prefix`,
    );
    assertBitEqual(gotSlice, fresh, `${what}: slice read back`);
    for (const t of [tCache, tFresh, prefix, slice]) t.release();
  }
});

Deno.test("kv_cache: writeTimeSlicePair writes both pairs as two writeTimeSlice calls would", async () => {
  const ctx = await testGpu();
  const rng = new Rng(2);
  for (const { shape, start, count } of CASES) {
    const [batch, rows] = shape;
    const rest = shape.slice(2);
    const width = rest.reduce((a, b) => a * b, 1);
    const caches = [rng.normals(batch * rows * width), rng.normals(batch * rows * width)];
    const fresh = [rng.normals(batch * count * width), rng.normals(batch * count * width)];
    const tCaches = caches.map((c) => ctx.f32(c, shape));
    const tFresh = fresh.map((f) => ctx.f32(f, [batch, count, ...rest]));
    writeTimeSlicePair(ctx, tFresh[0], tCaches[0], tFresh[1], tCaches[1], start);
    const got = await ctx.readMany(tCaches);
    const what = `[${shape}] rows ${start}..${start + count}`;
    [0, 1].forEach((i) => {
      const written = ref.writeTimeSlice(fresh[i], caches[i], batch, count, rows, width, start);
      assertBitEqual(got[i], Float32Array.from(written), `${what}: cache ${i + 1}`);
    });
    for (const t of [...tCaches, ...tFresh]) t.release();
  }
});

Deno.test("kv_cache: writeTimeSlicePair with a bias on the second: the bits of a bias add, then the copy", async () => {
  const ctx = await testGpu();
  const rng = new Rng(4);
  for (const { shape, start, count } of CASES) {
    const [batch, rows] = shape;
    const rest = shape.slice(2);
    const width = rest.reduce((a, b) => a * b, 1);
    const cache = rng.normals(batch * rows * width);
    const fresh = [rng.normals(batch * count * width), rng.normals(batch * count * width)];
    const bias = rng.normals(width);
    const tBias = ctx.f32(bias, [width]);
    const [k, v] = fresh.map((f) => ctx.f32(f, [batch, count, ...rest]));
    const fused = [ctx.f32(cache, shape), ctx.f32(cache, shape)];
    writeTimeSlicePair(ctx, k, fused[0], v, fused[1], start, tBias);
    // The same through bias_add then the plain copy.
    const biased = ctx.f32(fresh[1], [batch * count, width]);
    addBiasInPlace(ctx, biased, tBias);
    const separate = ctx.f32(cache, shape);
    writeTimeSlice(ctx, biased.reshape([batch, count, ...rest]), separate, start);
    const [gotK, gotV, expectedV] = await ctx.readMany([...fused, separate]);
    const what = `[${shape}] rows ${start}..${start + count}`;
    const keys = ref.writeTimeSlice(fresh[0], cache, batch, count, rows, width, start);
    assertBitEqual(gotK, Float32Array.from(keys), `${what}: keys, no bias`);
    assertBitEqual(gotV, expectedV, `${what}: values + bias`);
    for (const t of [tBias, k, v, ...fused, biased, separate]) t.release();
  }
  const cache = ctx.zeros([2, 4, 3], "f32");
  const cache2 = ctx.zeros([2, 4, 3], "f32");
  const rows = ctx.zeros([2, 1, 3], "f32");
  const rows2 = ctx.zeros([2, 1, 3], "f32");
  const wrongBias = ctx.zeros([4], "f32");
  let message = "";
  try {
    writeTimeSlicePair(ctx, rows, cache, rows2, cache2, 0, wrongBias);
  } catch (e) {
    message = (e as Error).message;
  }
  if (!message.includes("bias2 f32 [4] must be f32 [3]")) throw new Error(`unexpected: ${message}`);
  for (const t of [cache, cache2, rows, rows2, wrongBias]) t.release();
});

Deno.test("kv_cache: u32 masks and NaN/denormal bits are copied exactly", async () => {
  const ctx = await testGpu();
  const mask = ctx.u32([1, 0, 1, 1, 0, 0, 1, 1], [2, 4]);
  const prefix = readTimeSlice(ctx, mask, 1, 3);
  const bits = new Uint32Array([0x7fc00001, 0x00000001, 0x80000000, 0xffffffff]);
  const odd = ctx.upload(new Float32Array(bits.buffer), [1, 4], "f32");
  const into = ctx.zeros([1, 6], "f32");
  writeTimeSlice(ctx, odd, into, 2);
  const [gotPrefix, gotInto] = await ctx.readMany([prefix, into]);
  assertBitEqual(gotPrefix, Uint32Array.from([0, 1, 1, 0, 1, 1]), "mask prefix");
  const intoBits = new Uint32Array((gotInto as Float32Array).buffer);
  assertBitEqual(intoBits, Uint32Array.from([0, 0, ...bits]), "f32 bits");
  for (const t of [mask, prefix, odd, into]) t.release();
});

Deno.test("kv_cache: bad slices are refused with the shapes in the message", () => {
  return testGpu().then((ctx) => {
    const cache = ctx.zeros([2, 4, 3], "f32");
    const rows = ctx.zeros([2, 2, 3], "f32");
    const expectThrow = (fn: () => unknown, fragment: string) => {
      try {
        fn();
      } catch (e) {
        if (!(e as Error).message.includes(fragment)) throw e;
        return;
      }
      throw new Error(`expected an error mentioning ${fragment}`);
    };
    expectThrow(() => writeTimeSlice(ctx, rows, cache, 3), "rows [3, 5) are outside dst [2, 4, 3]");
    expectThrow(() => readTimeSlice(ctx, cache, 1, 4), "rows [1, 5) are outside src [2, 4, 3]");
    const wrong = ctx.zeros([2, 2, 4], "f32");
    expectThrow(() => writeTimeSlice(ctx, wrong, cache, 0), "does not fit dst");
    const cache2 = ctx.zeros([2, 5, 3], "f32");
    const rows2 = ctx.zeros([2, 2, 3], "f32");
    expectThrow(
      () => writeTimeSlicePair(ctx, rows, cache, rows2, cache2, 0),
      "the two copies differ in shape: [2, 2, 3] → [2, 4, 3] and [2, 2, 3] → [2, 5, 3]",
    );
    expectThrow(
      () => writeTimeSlicePair(ctx, rows, cache, rows, cache, 0),
      "the four tensors must be separate buffers",
    );
    for (const t of [cache, rows, wrong, cache2, rows2]) t.release();
  });
});

Deno.test("kv_cache: reruns are bit-identical", async () => {
  const ctx = await testGpu();
  const rng = new Rng(2);
  const src = ctx.f32(rng.normals(3 * 50 * 24), [3, 50, 24]);
  const a = readTimeSlice(ctx, src, 7, 31);
  const b = readTimeSlice(ctx, src, 7, 31);
  const [ra, rb] = await ctx.readMany([a, b]);
  assertBitEqual(ra, rb, "rerun");
  for (const t of [src, a, b]) t.release();
});
