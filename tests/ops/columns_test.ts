// Column blocks (lib/ops/columns.ts) against the reference: exact copies on awkward shapes,
// the untouched columns left alone, shape errors, determinism; the reference pair checked
// to be each other's backward with finite differences.

import * as gpuOps from "../../lib/ops/columns.ts";
import * as ref from "../../lib/ref/columns.ts";
import { assertBitEqual, assertClose, finiteDifference, Rng, testGpu } from "../helpers.ts";

// (N rows, C wide columns, start, c narrow columns): size 1, primes, a block at either edge,
// the whole width, and one large case (1.5M elements: a logits-like block of 7,001 columns).
const CASES: [number, number, number, number][] = [
  [1, 1, 0, 1],
  [3, 7, 2, 5],
  [13, 67, 0, 24],
  [13, 67, 48, 19],
  [257, 131, 37, 61],
  [5, 8, 0, 8],
  [221, 30_389, 3, 7_001],
];

Deno.test("columns: write and read match the reference exactly", async () => {
  const ctx = await testGpu();
  const rng = new Rng(41);
  for (const [rows, wideCols, start, cols] of CASES) {
    const narrow = rng.normals(rows * cols);
    const wide = rng.normals(rows * wideCols);
    const narrowT = ctx.f32(narrow, [rows, cols]);
    const wideT = ctx.f32(wide, [rows, wideCols]);
    const read = gpuOps.readColumns(ctx, wideT, start, cols); // before the write below
    gpuOps.writeColumns(ctx, narrowT, wideT, start);
    const [gotRead, gotWide] = await ctx.readMany([read, wideT]);
    const what = `N=${rows} C=${wideCols} [${start}, ${start + cols})`;
    assertBitEqual(gotRead, ref.readColumns(wide, rows, start, cols), `read ${what}`);
    assertBitEqual(gotWide, ref.writeColumns(narrow, wide, rows, start), `write ${what}`);
    for (const t of [narrowT, wideT, read]) t.release();
  }
});

Deno.test("columns: blocks written side by side assemble the matrix; reruns are bit-identical", async () => {
  const ctx = await testGpu();
  const rng = new Rng(42);
  const [rows, wideCols] = [11, 67];
  const whole = rng.normals(rows * wideCols);
  const wholeT = ctx.f32(whole, [rows, wideCols]);
  const runs = [0, 1].map(() => {
    const out = ctx.empty([rows, wideCols], "f32");
    for (const [start, cols] of [[0, 24], [24, 24], [48, 19]]) {
      const block = gpuOps.readColumns(ctx, wholeT, start, cols);
      gpuOps.writeColumns(ctx, block, out, start);
      block.release();
    }
    return out;
  });
  const [first, second] = await ctx.readMany(runs);
  assertBitEqual(first, whole, "assembled");
  assertBitEqual(second, first, "rerun");
  for (const t of [wholeT, ...runs]) t.release();
});

Deno.test("columns: bad blocks and shapes are rejected", async () => {
  const ctx = await testGpu();
  const wide = ctx.zeros([4, 10], "f32");
  const narrow = ctx.zeros([4, 3], "f32");
  const tall = ctx.zeros([5, 3], "f32");
  const attempts: [string, () => unknown][] = [
    ["write past the end", () => gpuOps.writeColumns(ctx, narrow, wide, 8)],
    ["negative start", () => gpuOps.writeColumns(ctx, narrow, wide, -1)],
    ["row counts differ", () => gpuOps.writeColumns(ctx, tall, wide, 0)],
    ["read past the end", () => gpuOps.readColumns(ctx, wide, 5, 6)],
    ["not 2-D", () => gpuOps.readColumns(ctx, wide.reshape([40]), 0, 1)],
  ];
  for (const [what, attempt] of attempts) {
    let threw = false;
    try {
      attempt();
    } catch {
      threw = true;
    }
    if (!threw) throw new Error(`columns: ${what} must be rejected`);
  }
  await ctx.sync();
  for (const t of [wide, narrow, tall]) t.release();
});

Deno.test("columns: reference write and read are each other's backward (finite differences)", () => {
  const rng = new Rng(43);
  const [rows, wideCols, start, cols] = [3, 7, 2, 4];
  const narrow = rng.normals(rows * cols);
  const wide = rng.normals(rows * wideCols);
  const wWide = rng.normals(rows * wideCols); // weights of a scalar loss on the wide output
  const wNarrow = rng.normals(rows * cols); // and on the narrow output
  const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    let s = 0;
    for (let i = 0; i < a.length; i++) s += a[i] * b[i];
    return s;
  };
  // f(narrow) = Σ wWide ⊙ write(narrow, wide): ∂f/∂narrow = read(wWide).
  const writeLoss = (x: Float64Array) => dot(ref.writeColumns(x, wide, rows, start), wWide);
  assertClose(
    ref.readColumns(wWide, rows, start, cols),
    finiteDifference(writeLoss, narrow),
    { rtol: 1e-6, atol: 1e-8 },
    "∂write/∂narrow",
  );
  // g(wide) = Σ wNarrow ⊙ read(wide): ∂g/∂wide = write(wNarrow, 0).
  const readLoss = (x: Float64Array) => dot(ref.readColumns(x, rows, start, cols), wNarrow);
  assertClose(
    ref.writeColumns(wNarrow, new Float64Array(rows * wideCols), rows, start),
    finiteDifference(readLoss, wide),
    { rtol: 1e-6, atol: 1e-8 },
    "∂read/∂wide",
  );
});
