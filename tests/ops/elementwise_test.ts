import * as gpuOps from "../../lib/ops/elementwise.ts";
import * as ref from "../../lib/ref/elementwise.ts";
import { assertBitEqual, assertClose, Rng, testGpu } from "../helpers.ts";

// Awkward sizes: 1, primes, not multiples of the workgroup (256), and one large case.
const SIZES = [1, 7, 257, 1000, 65_537, 3_000_017];

Deno.test("elementwise: add, addScaled, scale match the reference (exact)", async () => {
  const ctx = await testGpu();
  const rng = new Rng(1);
  for (const n of SIZES) {
    const a = rng.normals(n);
    const b = rng.normals(n);
    const ta = ctx.f32(a);
    const tb = ctx.f32(b);
    const outs = [
      gpuOps.add(ctx, ta, tb),
      gpuOps.addScaled(ctx, ta, tb, -0.37),
      gpuOps.scale(ctx, ta, 1.5),
    ];
    const [sum, axpy, scaled] = await ctx.readMany(outs);
    // One rounding of an f32 add or multiply: exact against the f64 result rounded to f32,
    // except a + alpha·b, which may be fused (one rounding) or not (two).
    assertBitEqual(sum, ref.add(a, b), `add n=${n}`);
    assertClose(axpy, ref.addScaled(a, b, -0.37), { rtol: 1e-6, atol: 1e-7 }, `addScaled n=${n}`);
    assertBitEqual(scaled, ref.scale(a, 1.5), `scale n=${n}`);
    for (const t of [ta, tb, ...outs]) t.release();
  }
});
