import * as gpuOps from "../../lib/ops/norm.ts";
import * as ref from "../../lib/ref/norm.ts";
import { assert, assertBitEqual, assertClose, finiteDifference, Rng, testGpu } from "../helpers.ts";

// Awkward shapes: every rows × dim pair below, plus a Qwen3 q/k-norm shape (rows = B·T·H,
// dim = headDim), a grid that needs the y dimension (> 65535 rows) and one large case.
// 129 and 2000 rows give several row chunks in the dWeight passes, the last one partial.
const ROWS = [1, 3, 17, 129];
const DIMS = [1, 2, 6, 64, 130, 896];
const SHAPES: [number, number][] = [
  ...ROWS.flatMap((rows) => DIMS.map((dim): [number, number] => [rows, dim])),
  [4 * 33 * 7, 64],
  [66_001, 3],
  [2000, 1000],
];

// Tolerances against the f64 reference. Forward values and dx: rtol 1e-4, atol 1e-5
// (f32 row sums of up to 1000 terms). Parameter gradients are sums over up to 66k rows of
// O(1) terms: relative to the size of the sum of |terms| (see columnTolerance).
const ROW_TOLERANCE = { rtol: 1e-4, atol: 1e-5 };

/**
 * LayerNorm dx, row by row: x − mean carries an f32 rounding of about 1.2e-7·|x| (≈ 5e-7 for
 * |x| ≤ 4), which dx amplifies by ≈ rstd²·|g| (|g| ≲ 4). Rows of nearly equal values (dim 2)
 * have rstd up to 1/sqrt(eps) and are that ill-conditioned in any f32 implementation.
 */
function assertLayerNormDxClose(
  actual: ArrayLike<number>,
  expected: Float64Array,
  rstd: Float64Array,
  dim: number,
  what: string,
): void {
  const rtol = 1e-4;
  for (let r = 0; r < rstd.length; r++) {
    const atol = 1e-5 + 2e-6 * rstd[r] ** 2;
    for (let c = 0; c < dim; c++) {
      const i = r * dim + c;
      if (!(Math.abs(actual[i] - expected[i]) <= atol + rtol * Math.abs(expected[i]))) {
        const row = (a: ArrayLike<number>) => Array.from({ length: dim }, (_, k) => a[r * dim + k]);
        assertClose(row(actual), row(expected), { rtol, atol }, `${what} row ${r}`);
      }
    }
  }
}

/** Tolerance for a column sum over `rows` rows: f32 accumulation error grows with the count. */
function columnTolerance(rows: number) {
  return { rtol: 1e-4, atol: 1e-5 * Math.max(1, Math.sqrt(rows)) };
}

function inputs(rng: Rng, rows: number, dim: number, offset = 0) {
  const x = rng.normals(rows * dim).map((v) => v + offset);
  const weight = rng.normals(dim, 0.2).map((v) => 1 + v);
  const bias = rng.normals(dim, 0.5);
  const dy = rng.normals(rows * dim);
  return { x, weight, bias, dy };
}

Deno.test("norm: rmsNorm forward and backward match the reference, both variants", async () => {
  const ctx = await testGpu();
  const rng = new Rng(11);
  const eps = 1e-6;
  // The rows variant takes dims that are multiples of 4; 530,000 rows need the grid's y.
  const cases: [number, number, gpuOps.NormVariant][] = [
    ...SHAPES.map(([rows, dim]): [number, number, gpuOps.NormVariant] => [rows, dim, "workgroup"]),
    ...SHAPES.filter(([, dim]) => dim % 4 === 0).map((
      [rows, dim],
    ): [number, number, gpuOps.NormVariant] => [rows, dim, "rows"]),
    [530_000, 4, "rows"],
  ];
  for (const [rows, dim, variant] of cases) {
    const { x, weight, dy } = inputs(rng, rows, dim);
    const tx = ctx.f32(x, [rows, dim]);
    const tw = ctx.f32(weight, [dim]);
    const tdy = ctx.f32(dy, [rows, dim]);
    const { y, rstd } = gpuOps.rmsNorm(ctx, tx, tw, eps, { variant });
    const { dx, dWeight } = gpuOps.rmsNormBackward(ctx, tx, tw, rstd, tdy, { variant });
    const [gy, grstd, gdx, gdw] = await ctx.readMany([y, rstd, dx, dWeight]);
    const want = ref.rmsNorm(x, weight, rows, dim, eps);
    const grads = ref.rmsNormBackward(x, weight, dy, rows, dim, eps);
    const at = `rows=${rows} dim=${dim} ${variant}`;
    assertClose(gy, want.y, ROW_TOLERANCE, `rmsNorm y ${at}`);
    assertClose(grstd, want.rstd, ROW_TOLERANCE, `rmsNorm rstd ${at}`);
    assertClose(gdx, grads.dx, ROW_TOLERANCE, `rmsNormBackward dx ${at}`);
    assertClose(gdw, grads.dWeight, columnTolerance(rows), `rmsNormBackward dWeight ${at}`);
    for (const t of [tx, tw, tdy, y, rstd, dx, dWeight]) t.release();
  }
});

Deno.test("norm: auto is the rows variant for the software kernels, workgroup otherwise", async () => {
  const ctx = await testGpu();
  const rng = new Rng(12);
  const [rows, dim] = [40, 384];
  const { x, weight, dy } = inputs(rng, rows, dim);
  const tx = ctx.f32(x, [rows, dim]);
  const tw = ctx.f32(weight, [dim]);
  const tdy = ctx.f32(dy, [rows, dim]);
  const outputs = (["auto", "workgroup", "rows"] as const).map((variant) => {
    const { y, rstd } = gpuOps.rmsNorm(ctx, tx, tw, 1e-6, { variant });
    const { dx, dWeight } = gpuOps.rmsNormBackward(ctx, tx, tw, rstd, tdy, { variant });
    return [y, rstd, dx, dWeight];
  });
  const values = await ctx.readMany(outputs.flat());
  const [auto, workgroup, byRows] = [0, 1, 2].map((v) => values.slice(4 * v, 4 * v + 4));
  const expected = ctx.adapter.kernels === "software" ? byRows : workgroup;
  const name = ctx.adapter.kernels === "software" ? "rows" : "workgroup";
  ["y", "rstd", "dx", "dWeight"].forEach((what, i) => {
    assertBitEqual(auto[i], expected[i], `auto ${what} is the ${name} variant's`);
  });
  assert(
    workgroup[0].some((v, i) => v !== byRows[0][i]),
    "the two variants should differ in some last bit of y",
  );
  const [t6, w6] = [ctx.f32(x.subarray(0, 6), [1, 6]), ctx.f32(weight.subarray(0, 6), [6])];
  let error: unknown = null;
  try {
    gpuOps.rmsNorm(ctx, t6, w6, 1e-6, { variant: "rows" });
  } catch (e) {
    error = e;
  }
  assert(error instanceof Error && error.message.includes("multiple of 4, not 6"), String(error));
  for (const t of [tx, tw, tdy, t6, w6, ...outputs.flat()]) t.release();
});

Deno.test("norm: layerNorm forward and backward match the reference", async () => {
  const ctx = await testGpu();
  const rng = new Rng(12);
  const eps = 1e-5;
  for (const [rows, dim] of SHAPES) {
    const { x, weight, bias, dy } = inputs(rng, rows, dim);
    const tx = ctx.f32(x, [rows, dim]);
    const tw = ctx.f32(weight, [dim]);
    const tb = ctx.f32(bias, [dim]);
    const tdy = ctx.f32(dy, [rows, dim]);
    const { y, mean, rstd } = gpuOps.layerNorm(ctx, tx, tw, tb, eps);
    const { dx, dWeight, dBias } = gpuOps.layerNormBackward(ctx, tx, tw, mean, rstd, tdy);
    const [gy, gmean, grstd, gdx, gdw, gdb] = await ctx.readMany([
      y,
      mean,
      rstd,
      dx,
      dWeight,
      dBias,
    ]);
    const want = ref.layerNorm(x, weight, bias, rows, dim, eps);
    const grads = ref.layerNormBackward(x, weight, dy, rows, dim, eps);
    const at = `rows=${rows} dim=${dim}`;
    assertClose(gy, want.y, ROW_TOLERANCE, `layerNorm y ${at}`);
    assertClose(gmean, want.mean, ROW_TOLERANCE, `layerNorm mean ${at}`);
    // dim = 1: the variance is 0 and rstd = 1/sqrt(eps) ≈ 316; relative tolerance covers it.
    assertClose(grstd, want.rstd, ROW_TOLERANCE, `layerNorm rstd ${at}`);
    assertLayerNormDxClose(gdx, grads.dx, want.rstd, dim, `layerNormBackward dx ${at}`);
    assertClose(gdw, grads.dWeight, columnTolerance(rows), `layerNormBackward dWeight ${at}`);
    assertClose(gdb, grads.dBias, columnTolerance(rows), `layerNormBackward dBias ${at}`);
    for (const t of [tx, tw, tb, tdy, y, mean, rstd, dx, dWeight, dBias]) t.release();
  }
});

// |mean| ≫ std: a one-pass variance (E[x²] − mean²) would lose about four digits in f32 here
// (E[x²] ≈ 10001 cancels to a variance ≈ 1); with the two-pass kernel the error is set by the
// rounding of x − mean itself (ulp(100)/2 ≈ 4e-6 per term): atol 1e-4, rtol 1e-4.
Deno.test("norm: layerNorm is accurate when the mean is large", async () => {
  const ctx = await testGpu();
  const rng = new Rng(15);
  const [rows, dim, eps] = [17, 896, 1e-5];
  const { x, weight, bias, dy } = inputs(rng, rows, dim, 100);
  const tx = ctx.f32(x, [rows, dim]);
  const tw = ctx.f32(weight, [dim]);
  const tb = ctx.f32(bias, [dim]);
  const tdy = ctx.f32(dy, [rows, dim]);
  const { y, mean, rstd } = gpuOps.layerNorm(ctx, tx, tw, tb, eps);
  const { dx, dWeight, dBias } = gpuOps.layerNormBackward(ctx, tx, tw, mean, rstd, tdy);
  const [gy, grstd, gdx] = await ctx.readMany([y, rstd, dx]);
  const want = ref.layerNorm(x, weight, bias, rows, dim, eps);
  const grads = ref.layerNormBackward(x, weight, dy, rows, dim, eps);
  const tolerance = { rtol: 1e-4, atol: 1e-4 };
  assertClose(gy, want.y, tolerance, "layerNorm y, mean 100");
  assertClose(grstd, want.rstd, tolerance, "layerNorm rstd, mean 100");
  assertClose(gdx, grads.dx, tolerance, "layerNormBackward dx, mean 100");
  for (const t of [tx, tw, tb, tdy, y, mean, rstd, dx, dWeight, dBias]) t.release();
});

Deno.test("norm: reruns are bit-identical", async () => {
  const ctx = await testGpu();
  const rng = new Rng(13);
  const [rows, dim] = [2000, 1000];
  const { x, weight, bias, dy } = inputs(rng, rows, dim, 1);
  const tx = ctx.f32(x, [rows, dim]);
  const tw = ctx.f32(weight, [dim]);
  const tb = ctx.f32(bias, [dim]);
  const tdy = ctx.f32(dy, [rows, dim]);
  const run = () => {
    const rms = gpuOps.rmsNorm(ctx, tx, tw, 1e-6);
    const rmsGrads = gpuOps.rmsNormBackward(ctx, tx, tw, rms.rstd, tdy);
    const ln = gpuOps.layerNorm(ctx, tx, tw, tb, 1e-5);
    const lnGrads = gpuOps.layerNormBackward(ctx, tx, tw, ln.mean, ln.rstd, tdy);
    return [
      rms.y,
      rms.rstd,
      rmsGrads.dx,
      rmsGrads.dWeight,
      ln.y,
      ln.mean,
      ln.rstd,
      lnGrads.dx,
      lnGrads.dWeight,
      lnGrads.dBias,
    ];
  };
  const first = run();
  const second = run();
  const values = await ctx.readMany([...first, ...second]);
  const n = first.length;
  for (let i = 0; i < n; i++) assertBitEqual(values[i], values[n + i], `output ${i}`);
  for (const t of [tx, tw, tb, tdy, ...first, ...second]) t.release();
});

// Finite differences of the scalar L = Σ dy · y on the f64 reference.
Deno.test("norm: reference backward passes match finite differences", () => {
  const rng = new Rng(14);
  const [rows, dim] = [3, 5];
  const { x, weight, bias, dy } = inputs(rng, rows, dim, 0.5);
  const dot = (a: ArrayLike<number>) => {
    let s = 0;
    for (let i = 0; i < a.length; i++) s += a[i] * dy[i];
    return s;
  };
  const tolerance = { rtol: 1e-6, atol: 1e-7 };

  const rmsEps = 1e-6;
  const rms = ref.rmsNormBackward(x, weight, dy, rows, dim, rmsEps);
  const rmsLoss = (xv: ArrayLike<number>, wv: ArrayLike<number>) =>
    dot(ref.rmsNorm(xv, wv, rows, dim, rmsEps).y);
  assertClose(rms.dx, finiteDifference((xv) => rmsLoss(xv, weight), x), tolerance, "rms dx");
  assertClose(
    rms.dWeight,
    finiteDifference((wv) => rmsLoss(x, wv), weight),
    tolerance,
    "rms dWeight",
  );

  const lnEps = 1e-5;
  const ln = ref.layerNormBackward(x, weight, dy, rows, dim, lnEps);
  const lnLoss = (xv: ArrayLike<number>, wv: ArrayLike<number>, bv: ArrayLike<number>) =>
    dot(ref.layerNorm(xv, wv, bv, rows, dim, lnEps).y);
  assertClose(ln.dx, finiteDifference((xv) => lnLoss(xv, weight, bias), x), tolerance, "ln dx");
  assertClose(
    ln.dWeight,
    finiteDifference((wv) => lnLoss(x, wv, bias), weight),
    tolerance,
    "ln dWeight",
  );
  assertClose(
    ln.dBias,
    finiteDifference((bv) => lnLoss(x, weight, bv), bias),
    tolerance,
    "ln dBias",
  );
});

Deno.test("norm: shape errors name the op and the shapes", async () => {
  const ctx = await testGpu();
  const x = ctx.zeros([4, 8], "f32");
  const w = ctx.zeros([7], "f32");
  let message = "";
  try {
    gpuOps.rmsNorm(ctx, x, w, 1e-6);
  } catch (e) {
    message = (e as Error).message;
  }
  if (!message.includes("rmsNorm") || !message.includes("[7]") || !message.includes("[8]")) {
    throw new Error(`unexpected error message: "${message}"`);
  }
  x.release();
  w.release();
});
