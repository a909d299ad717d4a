import { sizeClass } from "../../lib/gpu/pool.ts";
import { Params } from "../../lib/gpu/params.ts";
import { assert, assertBitEqual, testGpu } from "../helpers.ts";

Deno.test("gpu: size classes cover the request, waste at most 25%, are 256-byte multiples", () => {
  for (const bytes of [1, 4, 255, 256, 257, 1000, 4096, 4097, 65_537, 1_000_003, 3_000_000_000]) {
    const c = sizeClass(bytes);
    assert(c >= bytes, `sizeClass(${bytes}) = ${c} is too small`);
    assert(c % 256 === 0, `sizeClass(${bytes}) = ${c} is not a multiple of 256`);
    if (bytes > 1024) assert(c <= bytes * 1.25 + 256, `sizeClass(${bytes}) = ${c} wastes too much`);
  }
});

Deno.test("gpu: params pack 32-bit scalars in order and refuse out-of-range values", () => {
  const bytes = new Params().u32(7).i32(-3).f32(0.5).bytes();
  assert(bytes.byteLength === 16, `params padded to 16 bytes, got ${bytes.byteLength}`);
  const view = new DataView(bytes.buffer);
  assert(view.getUint32(0, true) === 7 && view.getInt32(4, true) === -3, "u32/i32 packing");
  assert(view.getFloat32(8, true) === 0.5, "f32 packing");
  let threw = false;
  try {
    new Params().u32(-1);
  } catch {
    threw = true;
  }
  assert(threw, "u32(-1) must throw");
});

Deno.test("gpu: released buffers are reused by the pool", async () => {
  const ctx = await testGpu();
  const a = ctx.empty([1000], "f32");
  const buffer = a.buffer;
  a.release();
  const b = ctx.empty([990], "f32"); // same size class
  assert(b.buffer === buffer, "a buffer of the same size class should be reused");
  b.release();
});

Deno.test("gpu: upload/read round-trips every dtype; readMany reads several in one map", async () => {
  const ctx = await testGpu();
  const f = ctx.f32([1.5, -2, 3e-8, 0]);
  const i = ctx.i32([-1, 2, -2147483648]);
  const u = ctx.u32([0, 4294967295, 7]);
  const before = ctx.counts.readbacks;
  const [fr, ir, ur] = await ctx.readMany([f, i, u]);
  assert(ctx.counts.readbacks === before + 1, "readMany should map once");
  assertBitEqual(fr, new Float32Array([1.5, -2, 3e-8, 0]), "f32");
  assertBitEqual(ir, new Int32Array([-1, 2, -2147483648]), "i32");
  assertBitEqual(ur, new Uint32Array([0, 4294967295, 7]), "u32");
  assert(
    fr instanceof Float32Array && ir instanceof Int32Array && ur instanceof Uint32Array,
    "types",
  );
  for (const t of [f, i, u]) t.release();
});

Deno.test("gpu: zeros clears a reused buffer; copy copies; empty tensors read back empty", async () => {
  const ctx = await testGpu();
  const dirty = ctx.f32(new Float32Array(300).fill(7));
  dirty.release();
  const z = ctx.zeros([300], "f32");
  const c = ctx.empty([3], "f32");
  const src = ctx.f32([1, 2, 3]);
  ctx.copy(src, c);
  const none = ctx.empty([0, 5], "f32");
  const [zr, cr, nr] = await ctx.readMany([z, c, none]);
  assertBitEqual(zr, new Float32Array(300), "zeros");
  assertBitEqual(cr, new Float32Array([1, 2, 3]), "copy");
  assert(nr.length === 0, "empty tensor reads back empty");
  for (const t of [z, c, src, none]) t.release();
});

Deno.test("gpu: groupsFor splits large grids over x and y within the limit", async () => {
  const ctx = await testGpu();
  const max = ctx.limits.maxComputeWorkgroupsPerDimension;
  for (const count of [1, 255, 256, 257, 256 * max, 256 * max + 1, 1e9]) {
    const [x, y = 1] = ctx.groupsFor(count, 256);
    assert(x <= max && y <= max, `groupsFor(${count}) = [${x}, ${y}] exceeds ${max}`);
    assert(x * y * 256 >= count, `groupsFor(${count}) = [${x}, ${y}] covers too little`);
  }
});

Deno.test("gpu: a GPU validation error surfaces as a clear GpuError at the next sync", async () => {
  const ctx = await testGpu();
  const bad = {
    name: "broken",
    source: "@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }",
    entry: "main",
  };
  let message = "";
  try {
    ctx.dispatch(bad, { tensors: [], workgroups: [1] });
    await ctx.sync();
  } catch (e) {
    message = (e as Error).message;
  }
  assert(message.startsWith("GPU error"), `expected a GpuError, got '${message}'`);
});

Deno.test("gpu: an upload into a reused buffer does not overtake earlier recorded work", async () => {
  const ctx = await testGpu();
  const a = ctx.f32(new Float32Array(64).fill(1));
  const copyOfA = ctx.empty([64], "f32");
  ctx.copy(a, copyOfA); // recorded, not yet submitted: reads a
  a.release();
  const b = ctx.f32(new Float32Array(64).fill(2)); // may get a's buffer from the pool
  const [before, after] = await ctx.readMany([copyOfA, b]);
  assertBitEqual(before, new Float32Array(64).fill(1), "the earlier copy saw the old data");
  assertBitEqual(after, new Float32Array(64).fill(2), "the upload landed");
  copyOfA.release();
  b.release();
});

Deno.test("gpu: releasing one buffer twice (a tensor and its view) is an error, not aliasing", async () => {
  const ctx = await testGpu();
  const t = ctx.empty([4, 8], "f32");
  const view = t.reshape([32]);
  t.release();
  let message = "";
  try {
    view.release();
  } catch (e) {
    message = (e as Error).message;
  }
  assert(message.includes("released twice"), `expected a double-release error, got '${message}'`);
});
