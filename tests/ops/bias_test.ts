import * as gpuOps from "../../lib/ops/bias.ts";
import * as ref from "../../lib/ref/bias.ts";
import { assertBitEqual, assertClose, finiteDifference, Rng, testGpu } from "../helpers.ts";

// Awkward shapes: size 1, primes, not multiples of the workgroups (256 elements, 64 columns)
// or of the 64-row chunk, and one large case (more than 1024 chunks' worth of rows).
const SHAPES: [rows: number, cols: number][] = [
  [1, 1],
  [7, 3],
  [13, 67],
  [64, 64],
  [65, 129],
  [1031, 5],
  [70_001, 17],
];

Deno.test("bias: addBiasInPlace matches the reference (exact)", async () => {
  const ctx = await testGpu();
  const rng = new Rng(1);
  for (const [rows, cols] of SHAPES) {
    const x = rng.normals(rows * cols);
    const bias = rng.normals(cols);
    const tx = ctx.f32(x, [rows, cols]);
    const tb = ctx.f32(bias);
    gpuOps.addBiasInPlace(ctx, tx, tb);
    // One f32 addition: exact against the f64 sum rounded to f32.
    assertBitEqual(
      await ctx.read(tx),
      Float32Array.from(ref.addBias(x, bias, rows, cols)),
      `[${rows}, ${cols}]`,
    );
    tx.release();
    tb.release();
  }
});

Deno.test("bias: biasBackward (and accumulate) match the reference (rtol 1e-5)", async () => {
  const ctx = await testGpu();
  const rng = new Rng(2);
  for (const [rows, cols] of SHAPES) {
    const dy = rng.normals(rows * cols);
    const start = rng.normals(cols);
    const tdy = ctx.f32(dy, [rows, cols]);
    const fresh = gpuOps.biasBackward(ctx, tdy);
    const accumulated = ctx.f32(start);
    gpuOps.biasBackwardInto(ctx, tdy, accumulated, { accumulate: true });
    const [got, gotAccumulated] = await ctx.readMany([fresh, accumulated]);
    const expected = ref.biasBackward(dy, rows, cols);
    // f32 sums of up to 70k terms of size ~1: the rounding error grows like sqrt(rows).
    const tol = { rtol: 1e-5, atol: 1e-6 * Math.sqrt(rows) };
    assertClose(got, expected, tol, `dBias [${rows}, ${cols}]`);
    assertClose(gotAccumulated, expected.map((v, i) => v + start[i]), tol, `accumulated`);
    for (const t of [tdy, fresh, accumulated]) t.release();
  }
});

Deno.test("bias: zero rows give a zero gradient", async () => {
  const ctx = await testGpu();
  const dy = ctx.f32([], [0, 5]);
  const dBias = gpuOps.biasBackward(ctx, dy);
  assertBitEqual(await ctx.read(dBias), new Float32Array(5), "dBias of no rows");
  dy.release();
  dBias.release();
});

Deno.test("bias: the reference backward matches finite differences", () => {
  const rng = new Rng(3);
  const rows = 5;
  const cols = 4;
  const x = rng.normals(rows * cols);
  const bias = rng.normals(cols);
  const probe = rng.normals(rows * cols); // L = Σ probe · y
  const loss = (b: ArrayLike<number>) =>
    ref.addBias(x, b, rows, cols).reduce((s, y, i) => s + probe[i] * y, 0);
  assertClose(
    ref.biasBackward(probe, rows, cols),
    finiteDifference(loss, bias),
    { rtol: 1e-6, atol: 1e-8 },
    "dBias vs finite differences",
  );
});

Deno.test("bias: reruns are bit-identical", async () => {
  const ctx = await testGpu();
  const rng = new Rng(4);
  const [rows, cols] = [20_011, 37];
  const tdy = ctx.f32(rng.normals(rows * cols), [rows, cols]);
  const a = gpuOps.biasBackward(ctx, tdy);
  const b = gpuOps.biasBackward(ctx, tdy);
  const [ra, rb] = await ctx.readMany([a, b]);
  assertBitEqual(ra, rb, "dBias rerun");
  for (const t of [tdy, a, b]) t.release();
});
