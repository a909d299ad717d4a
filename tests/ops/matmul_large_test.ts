// The "registers-large" matmul kernel (32 × 32 of C per thread; lavapipe's choice for the
// few-row x·Wᵀ of a decode step) against the reference. Its build is slow on lavapipe (~6 s
// per set of flags, cached on disk afterwards), so it does only x·Wᵀ (transposeB) without
// accumulation: one build. The backward's products (dX = dY·W, dW = dYᵀ·X) and accumulation
// are left to the other variants (matmul_test.ts).

import type { Tensor } from "../../lib/gpu/tensor.ts";
import * as gpuOps from "../../lib/ops/matmul.ts";
import * as ref from "../../lib/ref/matmul.ts";
import { assertBitEqual, assertClose, AssertionError, Rng, testGpu } from "../helpers.ts";

// Same tolerance as matmul_test.ts: |gpu − ref| ≤ 1e-4·|ref| + 1e-5·√K.
const tolerance = (K: number) => ({ rtol: 1e-4, atol: 1e-5 * Math.sqrt(Math.max(1, K)) });

const numel = (shape: number[]) => shape.reduce((x, y) => x * y, 1);
const variant = "registers-large" as const;

// x: [M, K] · W^T, W: [N, K]. M = 1 and 3 (most of a 32-row block idle), rows off the block
// (33, 97), a decode batch (64) and 128 (auto now gives it 32..63 rows, textures from 64);
// K and N multiples of 4 (the vec4 requirement) but not of 8, 16 or 32.
const SHAPES: [number, number, number][] = [
  [1, 4, 4],
  [1, 12, 36],
  [3, 20, 12],
  [33, 36, 68],
  [64, 132, 100],
  [97, 44, 4],
  [128, 388, 260],
];

Deno.test("matmul registers-large: x·Wᵀ matches the reference, awkward shapes", async () => {
  const ctx = await testGpu();
  const rng = new Rng(11);
  const o = { transposeA: false, transposeB: true };
  const checks: { what: string; out: Tensor; expected: Float32Array; K: number }[] = [];
  const inputs: Tensor[] = [];
  for (const [M, K, N] of SHAPES) {
    const x = rng.normals(M * K);
    const w = rng.normals(N * K);
    const expected = ref.matmul({ data: x, shape: [M, K] }, { data: w, shape: [N, K] }, o);
    const tx = ctx.f32(x, [M, K]);
    const tw = ctx.f32(w, [N, K]);
    inputs.push(tx, tw);
    const out = gpuOps.matmul(ctx, tx, tw, { ...o, variant });
    checks.push({ what: `${M}×${K}×${N}`, out, expected, K });
  }
  const got = await ctx.readMany(checks.map((c) => c.out));
  checks.forEach((c, i) => assertClose(got[i], c.expected, tolerance(c.K), c.what));
  for (const t of [...inputs, ...checks.map((c) => c.out)]) t.release();
});

Deno.test("matmul registers-large: batches, and matmulInto overwrites", async () => {
  const ctx = await testGpu();
  const rng = new Rng(12);
  const o = { transposeA: false, transposeB: true };
  const checks: { what: string; out: Tensor; expected: Float32Array; K: number }[] = [];
  const inputs: Tensor[] = [];
  const upload = (data: Float32Array, shape: number[]) => {
    const t = ctx.f32(data, shape);
    inputs.push(t);
    return t;
  };
  // Batched x [2, 37, 24] times one W [20, 24]^T (folded into one 74-row product) and both
  // batched (grid z).
  const [batch, M, K, N] = [2, 37, 24, 20];
  for (const wBatched of [false, true]) {
    const xShape = [batch, M, K];
    const wShape = wBatched ? [batch, N, K] : [N, K];
    const x = { data: rng.normals(numel(xShape)), shape: xShape };
    const w = { data: rng.normals(numel(wShape)), shape: wShape };
    const tx = upload(x.data, xShape);
    const tw = upload(w.data, wShape);
    const what = `x ${xShape} · w ${wShape}^T`;
    const y = gpuOps.matmul(ctx, tx, tw, { ...o, variant });
    if (y.shape.join() !== [batch, M, N].join()) {
      throw new AssertionError({ message: `${what}: output shape ${y.shape}` });
    }
    checks.push({ what, out: y, expected: ref.matmul(x, w, o), K });
  }
  // matmulInto overwrites what the output held.
  const [m, k, n] = [45, 28, 36];
  const x = rng.normals(m * k);
  const w = rng.normals(n * k);
  const tx = upload(x, [m, k]);
  const tw = upload(w, [n, k]);
  const out = ctx.f32(rng.normals(m * n), [m, n]);
  gpuOps.matmulInto(ctx, tx, tw, out, { ...o, variant });
  const expected = ref.matmul({ data: x, shape: [m, k] }, { data: w, shape: [n, k] }, o);
  checks.push({ what: "matmulInto", out, expected, K: k });
  const got = await ctx.readMany(checks.map((c) => c.out));
  checks.forEach((c, i) => assertClose(got[i], c.expected, tolerance(c.K), c.what));
  for (const t of [...inputs, ...checks.map((c) => c.out)]) t.release();
});

Deno.test("matmul registers-large: deterministic, and what auto picks on lavapipe", async () => {
  const ctx = await testGpu();
  const rng = new Rng(13);
  // A decode-step x·Wᵀ: 48 sequences (from 64 rows up auto picks the texture kernel).
  const [M, K, N] = [48, 96, 260];
  const o = { transposeA: false, transposeB: true };
  const tx = ctx.f32(rng.normals(M * K), [M, K]);
  const tw = ctx.f32(rng.normals(N * K), [N, K]);
  const outs = [
    gpuOps.matmul(ctx, tx, tw, { ...o, variant }),
    gpuOps.matmul(ctx, tx, tw, { ...o, variant }),
    gpuOps.matmul(ctx, tx, tw, o), // auto
  ];
  // 64 sequences: the texture kernel's side of the boundary.
  const tx64 = ctx.f32(rng.normals(64 * K), [64, K]);
  outs.push(
    gpuOps.matmul(ctx, tx64, tw, { ...o, variant: "textures" }),
    gpuOps.matmul(ctx, tx64, tw, o), // auto
  );
  const got = await ctx.readMany(outs);
  assertBitEqual(got[0], got[1], "registers-large rerun");
  // On a software adapter auto must have picked registers-large for 48 rows, textures for 64.
  if (ctx.adapter.kernels === "software") {
    assertBitEqual(got[2], got[0], "auto vs registers-large");
    assertBitEqual(got[4], got[3], "auto vs textures at 64 rows");
  }
  for (const t of [tx, tw, tx64, ...outs]) t.release();
});

Deno.test("matmul registers-large: unaligned rows and other transposes are refused", async () => {
  const ctx = await testGpu();
  const [x, w, square] = [
    ctx.empty([3, 5], "f32"),
    ctx.empty([8, 5], "f32"),
    ctx.empty([8, 8], "f32"),
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
  expectError(
    () => gpuOps.matmul(ctx, x, w, { transposeB: true, variant }),
    /registers-large variant needs 4-aligned rows/,
  );
  expectError(
    () => gpuOps.matmul(ctx, square, square, { transposeA: true, variant }),
    /registers-large variant only does c = a · b\^T/,
  );
  expectError(
    () => gpuOps.matmul(ctx, square, square, { transposeB: false, variant }),
    /registers-large variant only does c = a · b\^T/,
  );
  const out = ctx.empty([8, 8], "f32");
  expectError(
    () =>
      gpuOps.matmulInto(ctx, square, square, out, { transposeB: true, variant, accumulate: true }),
    /registers-large variant only does c = a · b\^T/,
  );
  out.release();
  for (const t of [x, w, square]) t.release();
});
