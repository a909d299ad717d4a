import * as gpuOps from "../../lib/ops/reduce.ts";
import * as ref from "../../lib/ref/reduce.ts";
import { assertBitEqual, assertClose, Rng, testGpu } from "../helpers.ts";

// Lengths around the tree's sizes (workgroup 256, chunk 4096 per workgroup), primes, and
// one that needs three levels (4096² + 1 elements: 4097 partials, then 2, then 1).
const LENGTHS = [1, 2, 15, 16, 17, 255, 257, 1000, 4096, 4097, 50_257, 1_000_003, 16_777_217];

/**
 * f32 summation in any fixed order is within (depth · ε) · Σ|x| of the exact sum; depth
 * here is at most 16 sequential adds + 8 tree levels per level, three levels.
 */
function sumTolerance(x: ArrayLike<number>): { rtol: number; atol: number } {
  return { rtol: 1e-5, atol: 4e-6 * ref.sumOfAbs(x) + 1e-30 };
}

Deno.test("reduce: sum, mean, sumOfSquares match the f64 reference", async () => {
  const ctx = await testGpu();
  const rng = new Rng(11);
  for (const n of LENGTHS) {
    // Nonzero mean so that the sum is not just cancellation noise.
    const x = rng.uniforms(n, -1, 1.5);
    const t = ctx.f32(x);
    const outs = [gpuOps.sum(ctx, t), gpuOps.mean(ctx, t), gpuOps.sumOfSquares(ctx, t)];
    const [s, m, sq] = await ctx.readMany(outs);
    const tol = sumTolerance(x);
    assertClose(s, [ref.sum(x)], tol, `sum n=${n}`);
    assertClose(m, [ref.mean(x)], { rtol: tol.rtol, atol: tol.atol / n }, `mean n=${n}`);
    assertClose(sq, [ref.sumOfSquares(x)], { rtol: 1e-5, atol: 0 }, `sumOfSquares n=${n}`);
    for (const o of [t, ...outs]) o.release();
  }
});

Deno.test("reduce: dot matches the f64 reference; dot(x, x) has sumOfSquares' bits", async () => {
  const ctx = await testGpu();
  const rng = new Rng(13);
  for (const n of LENGTHS) {
    const a = rng.uniforms(n, -1, 1.5);
    const b = rng.uniforms(n, -2, 1);
    const products = a.map((x, i) => x * b[i]);
    const ta = ctx.f32(a);
    const tb = ctx.f32(b, [1, n]); // any shape with as many elements
    const outs = [gpuOps.dot(ctx, ta, tb), gpuOps.dot(ctx, ta, ta), gpuOps.sumOfSquares(ctx, ta)];
    const [d, self, squares] = await ctx.readMany(outs);
    assertClose(d, [ref.dot(a, b)], sumTolerance(products), `dot n=${n}`);
    assertBitEqual(self, squares, `dot(x, x) vs sumOfSquares n=${n}`);
    for (const o of [ta, tb, ...outs]) o.release();
  }
  const four = ctx.zeros([4], "f32");
  const five = ctx.zeros([5], "f32");
  let message = "";
  try {
    gpuOps.dot(ctx, four, five);
  } catch (e) {
    message = (e as Error).message;
  }
  if (!message.includes("dot: a [4] and b f32 [5]")) throw new Error(`unexpected: "${message}"`);
  for (const t of [four, five]) t.release();
});

Deno.test("reduce: empty tensors and bad arguments", async () => {
  const ctx = await testGpu();
  const empty = ctx.f32([]);
  const s = gpuOps.sum(ctx, empty);
  const sq = gpuOps.sumOfSquares(ctx, empty);
  const [a, b] = await ctx.readMany([s, sq]);
  assertBitEqual(a, [0], "sum of nothing");
  assertBitEqual(b, [0], "sum of squares of nothing");
  let threw = 0;
  try {
    gpuOps.mean(ctx, empty);
  } catch {
    threw++;
  }
  const one = ctx.f32([1]);
  const slots = ctx.f32([0, 0]);
  try {
    gpuOps.sumInto(ctx, one, slots, 2);
  } catch {
    threw++;
  }
  if (threw !== 2) throw new Error("mean of an empty tensor and a bad slot must throw");
  for (const o of [empty, s, sq, one, slots]) o.release();
});

Deno.test("reduce: rowSum and rowMean on awkward shapes", async () => {
  const ctx = await testGpu();
  const rng = new Rng(12);
  for (const rows of [1, 3, 37]) {
    for (const n of [1, 2, 15, 16, 17, 1000, 50_257]) {
      const x = rng.normals(rows * n);
      const t = ctx.f32(x, [rows, n]);
      const outs = [gpuOps.rowSum(ctx, t), gpuOps.rowMean(ctx, t)];
      const [s, m] = await ctx.readMany(outs);
      // Per row: at most ceil(n / 256) sequential adds + 8 tree levels.
      const rowAbs = ref.rowSum(x.map(Math.abs), rows, n);
      const expectedSum = ref.rowSum(x, rows, n);
      const expectedMean = ref.rowMean(x, rows, n);
      for (let r = 0; r < rows; r++) {
        const atol = 4e-6 * rowAbs[r] + 1e-30;
        assertClose([s[r]], [expectedSum[r]], { rtol: 1e-5, atol }, `rowSum ${rows}x${n} r=${r}`);
        assertClose([m[r]], [expectedMean[r]], { rtol: 1e-5, atol: atol / n }, `rowMean r=${r}`);
      }
      for (const o of [t, ...outs]) o.release();
    }
  }
  // Leading dimensions are kept: [2, 3, 5] → [2, 3].
  const x = rng.normals(30);
  const t = ctx.f32(x, [2, 3, 5]);
  const out = gpuOps.rowSum(ctx, t);
  if (out.shape.join() !== "2,3") throw new Error(`rowSum shape ${out.shape}`);
  assertClose(await ctx.read(out), ref.rowSum(x, 6, 5), { rtol: 1e-5, atol: 1e-6 }, "[2,3,5]");
  t.release();
  out.release();
});

Deno.test("reduce: global squared norm over a list of tensors, bit-identical reruns", async () => {
  const ctx = await testGpu();
  const rng = new Rng(13);
  const sizes = [1, 7, 4097, 64 * 1000, 300_007, 17];
  const hosts = sizes.map((n) => rng.normals(n, 0.1));
  const tensors = hosts.map((h) => ctx.f32(h));
  const run = () => {
    const squares = ctx.empty([tensors.length], "f32");
    tensors.forEach((t, i) => gpuOps.sumOfSquaresInto(ctx, t, squares, i));
    const total = gpuOps.sum(ctx, squares);
    return { squares, total };
  };
  const first = run();
  const second = run();
  const [sq1, tot1, sq2, tot2] = await ctx.readMany([
    first.squares,
    first.total,
    second.squares,
    second.total,
  ]);
  assertClose(sq1, hosts.map(ref.sumOfSquares), { rtol: 1e-5, atol: 0 }, "per-tensor Σx²");
  const all = hosts.reduce((acc, h) => acc + ref.sumOfSquares(h), 0);
  assertClose(tot1, [all], { rtol: 1e-5, atol: 0 }, "global Σx²");
  assertBitEqual(sq2, sq1, "per-tensor rerun");
  assertBitEqual(tot2, tot1, "global rerun");

  // Row sums and a three-level sum rerun bit-identically too.
  const big = ctx.f32(rng.normals(4096 * 4096 + 5));
  const rowsT = ctx.f32(rng.normals(37 * 1000), [37, 1000]);
  const outs = [
    gpuOps.sum(ctx, big),
    gpuOps.sum(ctx, big),
    gpuOps.rowSum(ctx, rowsT),
    gpuOps.rowSum(ctx, rowsT),
  ];
  const [b1, b2, r1, r2] = await ctx.readMany(outs);
  assertBitEqual(b2, b1, "three-level sum rerun");
  assertBitEqual(r2, r1, "rowSum rerun");
  for (const t of [...tensors, first.squares, first.total, second.squares, second.total]) {
    t.release();
  }
  for (const t of [big, rowsT, ...outs]) t.release();
});
