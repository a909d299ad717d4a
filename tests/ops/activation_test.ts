import * as gpuOps from "../../lib/ops/activation.ts";
import * as ref from "../../lib/ref/activation.ts";
import type { GpuContext } from "../../lib/gpu/context.ts";
import type { Tensor } from "../../lib/gpu/tensor.ts";
import { assertBitEqual, assertClose, finiteDifference, Rng, testGpu } from "../helpers.ts";

// Tolerances against the f64 reference: one f32 exp plus a few roundings per value, so
// rtol 1e-5 with a small atol for values near 0 (exp's error is relative; near x = 0 the
// outputs are products of O(1) factors with O(x) ones).
const TOLERANCE = { rtol: 1e-5, atol: 1e-6 };

// Awkward [rows, hidden] shapes (elementwise, so this is about sizes vs the workgroup of 256).
const ROWS = [1, 3, 17, 129];
const DIMS = [1, 2, 6, 64, 130, 896];
const SHAPES: [number, number][] = [
  ...ROWS.flatMap((rows) => DIMS.map((dim): [number, number] => [rows, dim])),
  [2000, 1000],
];

const VARIANTS: gpuOps.GeluVariant[] = ["tanh", "erf"];

/** Every op on (x or gate = a, up = b, dy), in a fixed order, for a single readMany. */
function allOps(ctx: GpuContext, a: Tensor<"f32">, b: Tensor<"f32">, dy: Tensor<"f32">) {
  const swigluGrads = gpuOps.swigluBackward(ctx, a, b, dy);
  return [
    gpuOps.silu(ctx, a),
    gpuOps.siluBackward(ctx, a, dy),
    gpuOps.swiglu(ctx, a, b),
    swigluGrads.dGate,
    swigluGrads.dUp,
    ...VARIANTS.flatMap((v) => [gpuOps.gelu(ctx, a, v), gpuOps.geluBackward(ctx, a, dy, v)]),
  ];
}

function allRefs(a: ArrayLike<number>, b: ArrayLike<number>, dy: ArrayLike<number>) {
  const swigluGrads = ref.swigluBackward(a, b, dy);
  return [
    ["silu", ref.silu(a)],
    ["siluBackward", ref.siluBackward(a, dy)],
    ["swiglu", ref.swiglu(a, b)],
    ["swigluBackward dGate", swigluGrads.dGate],
    ["swigluBackward dUp", swigluGrads.dUp],
    ...VARIANTS.flatMap((v) => [
      [`gelu ${v}`, ref.gelu(a, v)],
      [`geluBackward ${v}`, ref.geluBackward(a, dy, v)],
    ]),
  ] as [string, Float64Array][];
}

Deno.test("activation: every op matches the reference", async () => {
  const ctx = await testGpu();
  const rng = new Rng(31);
  for (const [rows, dim] of SHAPES) {
    const a = rng.normals(rows * dim, 3);
    const b = rng.normals(rows * dim);
    const dy = rng.normals(rows * dim);
    const ta = ctx.f32(a, [rows, dim]);
    const tb = ctx.f32(b, [rows, dim]);
    const tdy = ctx.f32(dy, [rows, dim]);
    const outs = allOps(ctx, ta, tb, tdy);
    const got = await ctx.readMany(outs);
    allRefs(a, b, dy).forEach(([name, want], i) => {
      assertClose(got[i], want, TOLERANCE, `${name} rows=${rows} dim=${dim}`);
    });
    for (const t of [ta, tb, tdy, ...outs]) t.release();
  }
});

// ±30, ±100 and beyond: no NaN or Inf from exp overflow, x³ overflow or tanh(±large),
// and still within tolerance of the reference (tiny results are compared with atol).
Deno.test("activation: extreme inputs stay finite and accurate", async () => {
  const ctx = await testGpu();
  const specials = [0, -0, 1e-30, -1e-30, 10, -10, 17, -17, 30, -30, 88, -88, 100, -100, 1e4, -1e4];
  const huge = [1e19, -1e19, 3e38, -3e38];
  const a = Float32Array.from([...specials, ...huge]);
  const b = Float32Array.from(a, (_, i) => ((i % 3) - 1) * 0.5);
  const dy = Float32Array.from(a, (_, i) => 0.25 + 0.25 * (i % 4));
  const ta = ctx.f32(a);
  const tb = ctx.f32(b);
  const tdy = ctx.f32(dy);
  const outs = allOps(ctx, ta, tb, tdy);
  const got = await ctx.readMany(outs);
  allRefs(a, b, dy).forEach(([name, want], i) => {
    for (let k = 0; k < a.length; k++) {
      if (!Number.isFinite(got[i][k])) throw new Error(`${name}(${a[k]}) = ${got[i][k]}`);
    }
    // The huge inputs overflow the f64 reference's x³ and x², so the GPU's values there are
    // checked against the limits instead: y → x (x > 0) or 0, dx = dy · y' → dy or 0.
    const n = specials.length;
    assertClose(got[i].subarray(0, n), want.subarray(0, n), TOLERANCE, `${name} specials`);
  });
  const [silu, siluGrad, , , , geluTanh, geluTanhGrad, geluErf, geluErfGrad] = got;
  const limits: [name: string, values: ArrayLike<number>, isGradient: boolean][] = [
    ["silu", silu, false],
    ["siluBackward", siluGrad, true],
    ["gelu tanh", geluTanh, false],
    ["geluBackward tanh", geluTanhGrad, true],
    ["gelu erf", geluErf, false],
    ["geluBackward erf", geluErfGrad, true],
  ];
  for (let k = specials.length; k < a.length; k++) {
    for (const [name, values, isGradient] of limits) {
      const want = a[k] > 0 ? (isGradient ? dy[k] : a[k]) : 0;
      assertClose([values[k]], [want], { rtol: 1e-6, atol: 0 }, `${name}(${a[k]})`);
    }
  }
  for (const t of [ta, tb, tdy, ...outs]) t.release();
});

// The in-kernel Φ (erf GELU) on a fine grid: absolute error < 2e-7 everywhere, and for
// x < 0, where Φ is a small tail, relative error < 2e-5 down to x = −12 (Φ ≈ 2e-33).
Deno.test("activation: exact GELU's normal CDF is accurate, tails included", async () => {
  const ctx = await testGpu();
  const count = 4801;
  const x = Float32Array.from({ length: count }, (_, i) => -12 + (i * 18) / (count - 1));
  const tx = ctx.f32(x);
  const y = gpuOps.gelu(ctx, tx, "erf");
  const got = await ctx.read(y);
  for (let i = 0; i < count; i++) {
    if (x[i] === 0) continue;
    const phi = got[i] / x[i];
    const want = ref.normalCdf(x[i]);
    const error = Math.abs(phi - want);
    if (!(error < 2e-7)) throw new Error(`Φ(${x[i]}): error ${error} ≥ 2e-7`);
    if (x[i] < 0 && !(error < 2e-5 * want)) {
      throw new Error(`Φ(${x[i]}) = ${phi}: relative error ${error / want} ≥ 2e-5`);
    }
  }
  tx.release();
  y.release();
});

Deno.test("activation: reruns are bit-identical", async () => {
  const ctx = await testGpu();
  const rng = new Rng(32);
  const n = 2000 * 1000;
  const ta = ctx.f32(rng.normals(n, 4));
  const tb = ctx.f32(rng.normals(n));
  const tdy = ctx.f32(rng.normals(n));
  const first = allOps(ctx, ta, tb, tdy);
  const second = allOps(ctx, ta, tb, tdy);
  const values = await ctx.readMany([...first, ...second]);
  for (let i = 0; i < first.length; i++) {
    assertBitEqual(values[i], values[first.length + i], `output ${i}`);
  }
  for (const t of [ta, tb, tdy, ...first, ...second]) t.release();
});

Deno.test("activation: swiglu's vec4 entries (size % 4 = 0) give the scalar entries' bits", async () => {
  // 1000 elements take swiglu_*4, 1001 (the same 1000 and one more) the scalar entries.
  const ctx = await testGpu();
  const rng = new Rng(77);
  const [a, b, dy] = [rng.normals(1001, 3), rng.normals(1001), rng.normals(1001)];
  const results: Float32Array[][] = [];
  for (const n of [1000, 1001]) {
    const [ta, tb, tdy] = [a, b, dy].map((x) => ctx.f32(x.slice(0, n), [n]));
    const y = gpuOps.swiglu(ctx, ta, tb);
    const { dGate, dUp } = gpuOps.swigluBackward(ctx, ta, tb, tdy);
    results.push(await ctx.readMany([y, dGate, dUp]) as Float32Array[]);
    for (const t of [ta, tb, tdy, y, dGate, dUp]) t.release();
  }
  results[0].forEach((x, i) => assertBitEqual(results[1][i].subarray(0, 1000), x, `output ${i}`));
});

Deno.test("activation: reference erf and erfc match known values", () => {
  // Values from Abramowitz & Stegun / high-precision tables.
  const cases: [number, number, number][] = [
    [0.5, 0.5204998778130465, ref.erf(0.5)],
    [1, 0.8427007929497149, ref.erf(1)],
    [2.5, 0.999593047982555, ref.erf(2.5)],
    [-1, -0.8427007929497149, ref.erf(-1)],
    [3, 2.209049699858544e-5, ref.erfc(3)],
    [5, 1.5374597944280349e-12, ref.erfc(5)],
    [10, 2.088487583762545e-45, ref.erfc(10)],
  ];
  for (const [z, want, got] of cases) {
    assertClose([got], [want], { rtol: 1e-13, atol: 0 }, `z=${z}`);
  }
});

Deno.test("activation: reference backward passes match finite differences", () => {
  const x = [-30, -6, -3.3, -1, -0.2, 0, 0.3, 1.1, 2.9, 4.5, 7, 30];
  const up = x.map((_, i) => 0.75 - 0.2 * i);
  const dy = x.map((_, i) => 1 + 0.1 * i);
  // Elementwise ops: the derivative of Σ dy · f(x) at x_i is dy_i · f'(x_i).
  const weighted = (out: ArrayLike<number>) => {
    let s = 0;
    for (let i = 0; i < out.length; i++) s += dy[i] * out[i];
    return s;
  };
  const tolerance = { rtol: 1e-6, atol: 1e-8 };
  assertClose(
    ref.siluBackward(x, dy),
    finiteDifference((v) => weighted(ref.silu(v)), x),
    tolerance,
    "siluBackward",
  );
  const swigluGrads = ref.swigluBackward(x, up, dy);
  assertClose(
    swigluGrads.dGate,
    finiteDifference((v) => weighted(ref.swiglu(v, up)), x),
    tolerance,
    "swigluBackward dGate",
  );
  assertClose(
    swigluGrads.dUp,
    finiteDifference((v) => weighted(ref.swiglu(x, v)), up),
    tolerance,
    "swigluBackward dUp",
  );
  for (const variant of VARIANTS) {
    assertClose(
      ref.geluBackward(x, dy, variant),
      finiteDifference((v) => weighted(ref.gelu(v, variant)), x),
      tolerance,
      `geluBackward ${variant}`,
    );
  }
});

Deno.test("activation: shape errors name the op and the shapes", async () => {
  const ctx = await testGpu();
  const gate = ctx.zeros([3, 8], "f32");
  const up = ctx.zeros([3, 7], "f32");
  let message = "";
  try {
    gpuOps.swiglu(ctx, gate, up);
  } catch (e) {
    message = (e as Error).message;
  }
  if (!message.includes("swiglu") || !message.includes("[3, 7]")) {
    throw new Error(`unexpected error message: "${message}"`);
  }
  gate.release();
  up.release();
});
