import type { Tensor } from "../../lib/gpu/tensor.ts";
import * as gpuOps from "../../lib/ops/matmul.ts";
import type { MatmulVariant } from "../../lib/ops/matmul.ts";
import { pinTextures } from "../../lib/ops/texture_staging.ts";
import * as ref from "../../lib/ref/matmul.ts";
import {
  assert,
  assertBitEqual,
  assertClose,
  AssertionError,
  assertUserError,
  finiteDifference,
  Rng,
  testGpu,
} from "../helpers.ts";

// Tolerance: the GPU sums in f32 in another order than the f64 reference; for unit-normal
// data the rounding error of a dot product of length K grows like √K, so
// |gpu − ref| ≤ 1e-4·|ref| + 1e-5·√K.
const tolerance = (K: number) => ({ rtol: 1e-4, atol: 1e-5 * Math.sqrt(Math.max(1, K)) });

const TRANSPOSES = [
  { transposeA: false, transposeB: false },
  { transposeA: false, transposeB: true },
  { transposeA: true, transposeB: false },
  { transposeA: true, transposeB: true },
];

const label = (o: { transposeA: boolean; transposeB: boolean }) =>
  `${o.transposeA ? "A^T" : "A"}·${o.transposeB ? "B^T" : "B"}`;

/** Stored shapes of the operands of an [M, K]·[K, N] product. */
function operandShapes(
  M: number,
  K: number,
  N: number,
  o: { transposeA: boolean; transposeB: boolean },
  batch?: { a: number | null; b: number | null },
): [number[], number[]] {
  const a = o.transposeA ? [K, M] : [M, K];
  const b = o.transposeB ? [N, K] : [K, N];
  return [batch?.a ? [batch.a, ...a] : a, batch?.b ? [batch.b, ...b] : b];
}

const numel = (shape: number[]) => shape.reduce((x, y) => x * y, 1);

/** Whether every stored row of A, B and C is 4-aligned (the registers-vec4 requirement). */
function vec4Fits(
  M: number,
  K: number,
  N: number,
  o: { transposeA: boolean; transposeB: boolean },
) {
  return (o.transposeA ? M : K) % 4 === 0 && (o.transposeB ? K : N) % 4 === 0 && N % 4 === 0;
}

/** The variants that can do a product; "textures" only does unbatched ones. */
function variantsFor(
  M: number,
  K: number,
  N: number,
  o: { transposeA: boolean; transposeB: boolean },
  batched = false,
): MatmulVariant[] {
  const any: MatmulVariant[] = batched ? ["auto", "tiled"] : ["auto", "tiled", "textures"];
  return vec4Fits(M, K, N, o) ? [...any, "registers-vec4"] : any;
}

// [M, K, N]: size 1, primes, sizes off every tile (16 per thread, 128 per tiled workgroup,
// steps of 4 and 8 in k), aligned ones for the vec4 variant, and one large case.
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 7, 1],
  [3, 5, 7],
  [17, 31, 13],
  [64, 64, 64],
  [65, 129, 33],
  [127, 1, 255],
  [4, 4, 4],
  [20, 12, 8],
  [8, 12, 9],
  [36, 30, 44],
  [300, 520, 700],
];

Deno.test("matmul: each variant × transpose matches the reference, awkward shapes", async () => {
  const ctx = await testGpu();
  const rng = new Rng(1);
  for (const [M, K, N] of SHAPES) {
    const large = M * K * N > 1e6;
    const checks: { what: string; out: Tensor; expected: Float32Array }[] = [];
    const inputs: Tensor[] = [];
    for (const o of TRANSPOSES) {
      const [aShape, bShape] = operandShapes(M, K, N, o);
      const a = rng.normals(numel(aShape));
      const b = rng.normals(numel(bShape));
      const expected = ref.matmul({ data: a, shape: aShape }, { data: b, shape: bShape }, o);
      const ta = ctx.f32(a, aShape);
      const tb = ctx.f32(b, bShape);
      inputs.push(ta, tb);
      // The large case only through the variants a real run would pick and the GPU one.
      const variants = large ? ["auto", "tiled", "textures"] as const : variantsFor(M, K, N, o);
      for (const variant of variants) {
        const out = gpuOps.matmul(ctx, ta, tb, { ...o, variant });
        checks.push({ what: `${M}×${K}×${N} ${label(o)} ${variant}`, out, expected });
      }
    }
    const got = await ctx.readMany(checks.map((c) => c.out));
    checks.forEach((c, i) => assertClose(got[i], c.expected, tolerance(K), c.what));
    for (const t of [...inputs, ...checks.map((c) => c.out)]) t.release();
  }
});

Deno.test("matmul: batched operands and an operand shared across the batch", async () => {
  const ctx = await testGpu();
  const rng = new Rng(2);
  const [batch, M, K, N] = [3, 17, 12, 20];
  const layouts = [
    { a: batch, b: batch }, // both batched
    { a: batch, b: null }, // activations × one weight
    { a: null, b: batch }, // one matrix × a batch
  ];
  const checks: { what: string; out: Tensor; expected: Float32Array }[] = [];
  const inputs: Tensor[] = [];
  for (const layout of layouts) {
    for (const o of TRANSPOSES) {
      const [aShape, bShape] = operandShapes(M, K, N, o, layout);
      const a = rng.normals(numel(aShape));
      const b = rng.normals(numel(bShape));
      const expected = ref.matmul({ data: a, shape: aShape }, { data: b, shape: bShape }, o);
      const ta = ctx.f32(a, aShape);
      const tb = ctx.f32(b, bShape);
      inputs.push(ta, tb);
      for (const variant of variantsFor(M, K, N, o, true)) {
        const out = gpuOps.matmul(ctx, ta, tb, { ...o, variant });
        const what = `a ${aShape} b ${bShape} ${label(o)} ${variant}`;
        if (out.shape.join() !== [batch, M, N].join()) {
          throw new AssertionError({ message: `${what}: output shape ${out.shape}` });
        }
        checks.push({ what, out, expected });
      }
    }
  }
  const got = await ctx.readMany(checks.map((c) => c.out));
  checks.forEach((c, i) => assertClose(got[i], c.expected, tolerance(K), c.what));
  for (const t of [...inputs, ...checks.map((c) => c.out)]) t.release();
});

Deno.test("matmul: matmulInto overwrites, or accumulates into, the output", async () => {
  const ctx = await testGpu();
  const rng = new Rng(3);
  const [M, K, N] = [19, 24, 36];
  const checks: { what: string; out: Tensor; expected: Float32Array }[] = [];
  const inputs: Tensor[] = [];
  for (const o of TRANSPOSES) {
    const [aShape, bShape] = operandShapes(M, K, N, o);
    const a = rng.normals(numel(aShape));
    const b = rng.normals(numel(bShape));
    const product = ref.matmul({ data: a, shape: aShape }, { data: b, shape: bShape }, o);
    const start = rng.normals(M * N);
    const ta = ctx.f32(a, aShape);
    const tb = ctx.f32(b, bShape);
    inputs.push(ta, tb);
    for (const variant of variantsFor(M, K, N, o)) {
      for (const accumulate of [false, true]) {
        const out = ctx.f32(start, [M, N]);
        gpuOps.matmulInto(ctx, ta, tb, out, { ...o, variant, accumulate });
        // Accumulating twice checks that the second pass adds to the first.
        if (accumulate) gpuOps.matmulInto(ctx, ta, tb, out, { ...o, variant, accumulate });
        const expected = accumulate ? start.map((s, i) => s + 2 * product[i]) : product;
        checks.push({ what: `${label(o)} ${variant} accumulate=${accumulate}`, out, expected });
      }
    }
  }
  const got = await ctx.readMany(checks.map((c) => c.out));
  checks.forEach((c, i) => assertClose(got[i], c.expected, tolerance(K), c.what));
  for (const t of [...inputs, ...checks.map((c) => c.out)]) t.release();
});

Deno.test("matmul: matmulBackward matches the reference backward", async () => {
  const ctx = await testGpu();
  const rng = new Rng(4);
  const batch = 2;
  const layouts = [
    { a: null, b: null },
    { a: batch, b: batch },
    { a: batch, b: null }, // dB sums over the batch
    { a: null, b: batch }, // dA sums over the batch
  ];
  const checks: { what: string; out: Tensor; expected: Float32Array; K: number }[] = [];
  const inputs: Tensor[] = [];
  // Unaligned dims (every product on the tiled kernel), then aligned ones (registers-vec4).
  for (const [M, K, N] of [[13, 21, 9], [12, 20, 8]]) {
    for (const layout of layouts) {
      for (const o of TRANSPOSES) {
        const [aShape, bShape] = operandShapes(M, K, N, o, layout);
        const a = { data: rng.normals(numel(aShape)), shape: aShape };
        const b = { data: rng.normals(numel(bShape)), shape: bShape };
        const cShape = ref.matmulShape(a, b, o);
        const dC = rng.normals(numel(cShape));
        const expected = ref.matmulBackward(a, b, dC, o);
        const ta = ctx.f32(a.data, aShape);
        const tb = ctx.f32(b.data, bShape);
        const tdC = ctx.f32(dC, cShape);
        inputs.push(ta, tb, tdC);
        const batched = layout.a !== null || layout.b !== null;
        for (const variant of variantsFor(M, K, N, o, batched)) {
          const { dA, dB } = gpuOps.matmulBackward(ctx, ta, tb, tdC, { ...o, variant });
          const what = `a ${aShape} b ${bShape} ${label(o)} ${variant}`;
          if (dA.shape.join() !== aShape.join() || dB.shape.join() !== bShape.join()) {
            throw new AssertionError({
              message: `${what}: gradient shapes ${dA.shape}, ${dB.shape}`,
            });
          }
          // dA sums over N (and the batch when shared), dB over M (and the batch when shared).
          checks.push({ what: `${what} dA`, out: dA, expected: expected.dA, K: N * batch });
          checks.push({ what: `${what} dB`, out: dB, expected: expected.dB, K: M * batch });
        }
      }
    }
  }
  const got = await ctx.readMany(checks.map((c) => c.out));
  checks.forEach((c, i) => assertClose(got[i], c.expected, tolerance(c.K), c.what));
  for (const t of [...inputs, ...checks.map((c) => c.out)]) t.release();
});

Deno.test("matmul: the reference backward matches central finite differences", () => {
  const rng = new Rng(5);
  const [batch, M, K, N] = [2, 3, 4, 5];
  for (const layout of [{ a: null, b: null }, { a: batch, b: null }, { a: null, b: batch }]) {
    for (const o of TRANSPOSES) {
      const [aShape, bShape] = operandShapes(M, K, N, o, layout);
      const a = { data: rng.normals(numel(aShape)), shape: aShape };
      const b = { data: rng.normals(numel(bShape)), shape: bShape };
      const dC = rng.normals(numel(ref.matmulShape(a, b, o)));
      // L = Σ dC ⊙ (op(a) · op(b)), so ∂L/∂c = dC.
      const loss = (c: Float64Array) => c.reduce((sum, x, i) => sum + x * dC[i], 0);
      const { dA, dB } = ref.matmulBackwardF64(a, b, dC, o);
      const what = `a ${aShape} b ${bShape} ${label(o)}`;
      const fdA = finiteDifference(
        (x) => loss(ref.matmulF64({ data: x, shape: aShape }, b, o)),
        a.data,
      );
      const fdB = finiteDifference(
        (x) => loss(ref.matmulF64(a, { data: x, shape: bShape }, o)),
        b.data,
      );
      assertClose(dA, fdA, { rtol: 1e-6, atol: 1e-6 }, `${what} dA`);
      assertClose(dB, fdB, { rtol: 1e-6, atol: 1e-6 }, `${what} dB`);
    }
  }
});

Deno.test("matmul: every variant is deterministic (bit-identical reruns)", async () => {
  const ctx = await testGpu();
  const rng = new Rng(6);
  const [M, K, N] = [70, 132, 52];
  const o = { transposeA: false, transposeB: true };
  const [aShape, bShape] = operandShapes(M, K, N, o);
  const ta = ctx.f32(rng.normals(numel(aShape)), aShape);
  const tb = ctx.f32(rng.normals(numel(bShape)), bShape);
  const variants = ["registers-vec4", "tiled", "textures"] as const;
  const outs = variants.flatMap((variant) => [
    gpuOps.matmul(ctx, ta, tb, { ...o, variant }),
    gpuOps.matmul(ctx, ta, tb, { ...o, variant }),
  ]);
  const got = await ctx.readMany(outs);
  variants.forEach((v, i) => assertBitEqual(got[2 * i], got[2 * i + 1], v));
  for (const t of [ta, tb, ...outs]) t.release();
});

Deno.test("matmul: textures — many products in one submit share and grow the staging textures", async () => {
  // Each product packs its operands into the same two staging textures, which grow when a
  // product needs more: recorded in one encoder, every product must still see its own.
  // K = 128 and 192: operands stored [rows, K] go by copyBufferToTexture, not a pack kernel;
  // 192 × 20 × 128: those stored [K, rows] do (rows a multiple of 64: the k-major layout).
  const ctx = await testGpu();
  const rng = new Rng(7);
  const shapes: [number, number, number][] = [
    [5, 9, 3],
    [200, 128, 130],
    [3, 4, 2],
    [129, 257, 65],
    [256, 192, 68],
    [192, 20, 128],
  ];
  const checks: { what: string; out: Tensor; expected: Float32Array; K: number }[] = [];
  const inputs: Tensor[] = [];
  for (const [M, K, N] of shapes) {
    for (const o of TRANSPOSES) {
      const [aShape, bShape] = operandShapes(M, K, N, o);
      const a = rng.normals(numel(aShape));
      const b = rng.normals(numel(bShape));
      const ta = ctx.f32(a, aShape);
      const tb = ctx.f32(b, bShape);
      inputs.push(ta, tb);
      const out = gpuOps.matmul(ctx, ta, tb, { ...o, variant: "textures" });
      const expected = ref.matmul({ data: a, shape: aShape }, { data: b, shape: bShape }, o);
      checks.push({ what: `${M}×${K}×${N} ${label(o)}`, out, expected, K });
    }
  }
  const got = await ctx.readMany(checks.map((c) => c.out));
  checks.forEach((c, i) => assertClose(got[i], c.expected, tolerance(c.K), c.what));
  for (const t of [...inputs, ...checks.map((c) => c.out)]) t.release();
});

Deno.test("matmul: textures — a pinned operand gives the same bits as a copied one", async () => {
  // pinTextures keeps a weight's texels in a texture of its own: products that read it by
  // rows (x·Wᵀ, and W as the first operand) skip the copy. K = 130 goes through the pack
  // kernel, 128 through a copy; W = [200, K] is padded to 256 texture rows.
  const ctx = await testGpu();
  if (ctx.adapter.kernels !== "software") return; // pinning is for the software kernels
  const rng = new Rng(11);
  for (const K of [128, 130]) {
    const w = ctx.f32(rng.normals(200 * K), [200, K]);
    const x = ctx.f32(rng.normals(96 * K), [96, K]);
    const products = () => [
      gpuOps.matmul(ctx, x, w, { transposeB: true, variant: "textures" }), // [96, 200]
      gpuOps.matmul(ctx, w, x, { transposeB: true, variant: "textures" }), // [200, 96]
    ];
    const first = products();
    const copied = await ctx.readMany(first);
    const unpin = pinTextures(ctx, [w]);
    assert(ctx.staging.pinned(w.buffer) !== undefined, "w is pinned");
    // The products read the texture, not the buffer: zeroing w now does not change them.
    const zeros = ctx.zeros(w.shape, "f32");
    ctx.copy(zeros, w);
    zeros.release();
    const pinned = products();
    unpin();
    assert(ctx.staging.pinned(w.buffer) === undefined, "w is unpinned");
    const got = await ctx.readMany(pinned);
    got.forEach((g, i) => assertBitEqual(g, copied[i], `K=${K}, product ${i}`));
    for (const t of [w, x, ...first, ...pinned]) t.release();
  }
});

Deno.test("matmul: textures — a reshaped view of a pinned matrix is not read from the pin", async () => {
  // w [6, 5] pinned holds 2 texels a row; w viewed as [5, 6] also has 2 texels a row but other
  // rows: the product must copy the view, not read the pinned texture.
  const ctx = await testGpu();
  if (ctx.adapter.kernels !== "software") return;
  const rng = new Rng(17);
  const w = ctx.f32(rng.normals(30), [6, 5]);
  const x = ctx.f32(rng.normals(64 * 6), [64, 6]);
  const product = () =>
    gpuOps.matmul(ctx, x, w.reshape([5, 6]), { transposeB: true, variant: "textures" });
  const copied = product();
  const unpin = pinTextures(ctx, [w]);
  const whilePinned = product();
  unpin();
  const [a, b] = await ctx.readMany([copied, whilePinned]);
  assertBitEqual(b, a, "[64, 6] · ([5, 6] view)ᵀ");
  for (const t of [w, x, copied, whilePinned]) t.release();
});

Deno.test("matmul: textures — vec4 stores (N % 4 = 0) give the scalar stores' bits", async () => {
  // Each C element is its own sum, so C = a·bᵀ with N = 68 (vec4 stores) must equal the first
  // 68 columns of the same product with N = 69 (scalar stores), overwritten or accumulated.
  const ctx = await testGpu();
  const rng = new Rng(13);
  const [M, K] = [130, 96];
  const a = ctx.f32(rng.normals(M * K), [M, K]);
  const b69 = rng.normals(69 * K);
  const c69 = rng.normals(M * 69);
  const results: Float32Array[][] = [];
  for (const N of [68, 69]) {
    const b = ctx.f32(b69.slice(0, N * K), [N, K]);
    const start = new Float32Array(M * N);
    for (let r = 0; r < M; r++) start.set(c69.subarray(r * 69, r * 69 + N), r * N);
    const set = ctx.empty([M, N], "f32");
    const added = ctx.f32(start, [M, N]);
    gpuOps.matmulInto(ctx, a, b, set, { transposeB: true, variant: "textures" });
    gpuOps.matmulInto(ctx, a, b, added, {
      transposeB: true,
      variant: "textures",
      accumulate: true,
    });
    const got = await ctx.readMany([set, added]);
    results.push(got.map((x) => {
      const cols = new Float32Array(M * 68);
      for (let r = 0; r < M; r++) cols.set(x.subarray(r * N, r * N + 68), r * 68);
      return cols;
    }));
    for (const t of [b, set, added]) t.release();
  }
  results[0].forEach((x, i) => assertBitEqual(results[1][i], x, i === 0 ? "C =" : "C +="));
  a.release();
});

Deno.test("matmul: on a software adapter, K past llvmpipe's loop limit is refused", async () => {
  // The tiled kernel loops ~8 times per 8 of K: from K ≈ 65,536 llvmpipe cut its loops and the
  // product came out wrong (lib/gpu/loop_limit.ts). Refused in one line instead.
  const ctx = await testGpu();
  if (!ctx.adapter.isFallback) return;
  const a = ctx.zeros([5, 70_001], "f32");
  const b = ctx.zeros([70_001, 3], "f32");
  await assertUserError(
    () => gpuOps.matmul(ctx, a, b, { variant: "tiled" }),
    ["matmul: K=70001", "llvmpipe stops every loop after 65535"],
    "tiled matmul, K = 70,001",
  );
  for (const t of [a, b]) t.release();
});

Deno.test("matmul: shape errors name the op and the shapes", async () => {
  const ctx = await testGpu();
  const t = (...shape: number[]) => ctx.empty(shape, "f32");
  const [a34, b56, b46, c35, v4, a35, batched, other] = [
    t(3, 4),
    t(5, 6),
    t(4, 6),
    t(3, 5),
    t(4),
    t(3, 5),
    t(2, 4, 6),
    t(3, 6, 5),
  ];
  const expectError = (f: () => unknown, pattern: RegExp) => {
    try {
      f();
    } catch (e) {
      if (e instanceof Error && pattern.test(e.message)) return;
      throw e;
    }
    throw new AssertionError({ message: `expected an error matching ${pattern}` });
  };
  expectError(() => gpuOps.matmul(ctx, a34, b56), /matmul: inner dimensions differ: a \[3, 4\]/);
  expectError(() => gpuOps.matmul(ctx, batched, other), /matmul: batch sizes differ/);
  expectError(() => gpuOps.matmul(ctx, v4, b56), /matmul: a must be 2-D/);
  expectError(
    () => gpuOps.matmulInto(ctx, a34, b46, c35),
    /matmulInto: out is \[3, 5\], expected \[3, 6\]/,
  );
  expectError(
    () => gpuOps.matmul(ctx, a35, b56, { variant: "registers-vec4" }),
    /registers-vec4 variant needs 4-aligned rows/,
  );
  expectError(
    () => gpuOps.matmul(ctx, batched, t(2, 6, 3), { variant: "textures" }),
    /textures variant does one unbatched product/,
  );
  expectError(
    () => gpuOps.matmulBackward(ctx, a34, b46, c35),
    /matmulBackward: dC is \[3, 5\], expected \[3, 6\]/,
  );
  for (const x of [a34, b56, b46, c35, v4, a35, batched, other]) x.release();
});
