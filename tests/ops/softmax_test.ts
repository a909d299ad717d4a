import * as gpuOps from "../../lib/ops/softmax.ts";
import * as ref from "../../lib/ref/softmax.ts";
import { assertBitEqual, assertClose, finiteDifference, Rng, testGpu } from "../helpers.ts";

const ROWS = [1, 3, 37];
// Row lengths around the workgroup (256) and a GPT-2-sized vocabulary.
const LENGTHS = [1, 2, 15, 16, 17, 1000, 50_257];

// f32 exp and one division per element: a few ulp relative.
const FORWARD_TOL = { rtol: 2e-5, atol: 1e-10 };

Deno.test("softmax: forward matches the reference on awkward shapes", async () => {
  const ctx = await testGpu();
  const rng = new Rng(21);
  for (const rows of ROWS) {
    for (const n of LENGTHS) {
      const x = rng.normals(rows * n, 3);
      const t = ctx.f32(x, [rows, n]);
      const outs = [gpuOps.softmax(ctx, t), gpuOps.softmax(ctx, t, { temperature: 0.7 })];
      const [y1, y07] = await ctx.readMany(outs);
      assertClose(y1, ref.softmax(x, rows, n), FORWARD_TOL, `softmax ${rows}x${n}`);
      assertClose(y07, ref.softmax(x, rows, n, 0.7), FORWARD_TOL, `softmax T=0.7 ${rows}x${n}`);
      for (const o of [t, ...outs]) o.release();
    }
  }
});

Deno.test("softmax: huge logits (±1e4) and ties give finite, exact-where-possible rows", async () => {
  const ctx = await testGpu();
  const x = [1e4, -1e4, 1e4, 0, -1e4, 5, 5, 5, -3e4, 3e4, 2.9e4, -1];
  const t = ctx.f32(x, [3, 4]);
  const y = gpuOps.softmax(ctx, t);
  const out = await ctx.read(y);
  if (out.some((v) => !Number.isFinite(v))) throw new Error(`non-finite softmax: ${out}`);
  assertClose(out, ref.softmax(x, 3, 4), { rtol: 1e-6, atol: 1e-30 }, "softmax ±1e4");
  t.release();
  y.release();
});

Deno.test("softmax: more rows than one grid dimension (70 000 rows)", async () => {
  const ctx = await testGpu();
  const rng = new Rng(22);
  const rows = 70_000;
  const x = rng.normals(rows * 2);
  const t = ctx.f32(x, [rows, 2]);
  const y = gpuOps.softmax(ctx, t);
  assertClose(await ctx.read(y), ref.softmax(x, rows, 2), FORWARD_TOL, "softmax 70000x2");
  t.release();
  y.release();
});

Deno.test("softmax: backward matches the reference; reruns are bit-identical", async () => {
  const ctx = await testGpu();
  const rng = new Rng(23);
  for (const rows of ROWS) {
    for (const n of [1, 17, 1000, 50_257]) {
      const x = rng.normals(rows * n, 2);
      const dyHost = rng.normals(rows * n);
      const xT = ctx.f32(x, [rows, n]);
      const dyT = ctx.f32(dyHost, [rows, n]);
      const yT = gpuOps.softmax(ctx, xT, { temperature: 1.3 });
      const outs = [
        gpuOps.softmaxBackward(ctx, yT, dyT, { temperature: 1.3 }),
        gpuOps.softmaxBackward(ctx, yT, dyT, { temperature: 1.3 }),
        gpuOps.softmax(ctx, xT, { temperature: 1.3 }),
      ];
      const [y, dx, dxAgain, yAgain] = await ctx.readMany([yT, ...outs]);
      // Same f32 y into both, so only the backward's own rounding is measured. dx has a
      // cancelling difference dy − Σ dy·y: the tolerance scales with |y|·(|dy| + |Σ dy·y|).
      const expected = ref.softmaxBackward(y, dyHost, rows, n, 1.3);
      assertClose(dx, expected, { rtol: 1e-4, atol: 1e-6 }, `softmaxBackward ${rows}x${n}`);
      assertBitEqual(dxAgain, dx, `backward rerun ${rows}x${n}`);
      assertBitEqual(yAgain, y, `forward rerun ${rows}x${n}`);
      for (const o of [xT, dyT, yT, ...outs]) o.release();
    }
  }
});

Deno.test("softmax: reference backward agrees with finite differences", () => {
  const rng = new Rng(24);
  const rows = 3;
  const n = 5;
  const x = rng.normals(rows * n);
  const w = rng.normals(rows * n);
  for (const temperature of [1, 0.7]) {
    // f(x) = Σ w ⊙ softmax(x / T); its gradient is softmaxBackward(y, w).
    const f = (p: Float64Array) =>
      ref.softmax(p, rows, n, temperature).reduce((acc, v, i) => acc + v * w[i], 0);
    const numeric = finiteDifference(f, x);
    const analytic = ref.softmaxBackward(
      ref.softmax(x, rows, n, temperature),
      w,
      rows,
      n,
      temperature,
    );
    assertClose(analytic, numeric, { rtol: 1e-5, atol: 1e-7 }, `softmax FD T=${temperature}`);
  }
});
