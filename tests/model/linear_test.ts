// linearPlusResidual (lib/model/linear.ts): a residual connection fused into the product where
// the kernel allows it must give the bits of linear + add, and fall back to them elsewhere.

import type { GpuContext } from "../../lib/gpu/context.ts";
import type { Tensor } from "../../lib/gpu/tensor.ts";
import type { ChunkedWeight } from "../../lib/model/gpu_weights.ts";
import { linear, linearPlusResidual } from "../../lib/model/linear.ts";
import { add } from "../../lib/ops/elementwise.ts";
import { assert, assertBitEqual, Rng, testGpu } from "../helpers.ts";

function random(ctx: GpuContext, rng: Rng, shape: number[]): Tensor<"f32"> {
  const size = shape.reduce((a, b) => a * b, 1);
  return ctx.f32(Float32Array.from({ length: size }, () => rng.next() * 2 - 1), shape);
}

/** Rows [start, start + rows) of w: [out, in] as their own tensor (a weight chunk). */
async function rowChunk(ctx: GpuContext, w: Tensor<"f32">, start: number, rows: number) {
  const cols = w.shape[1];
  const data = (await ctx.read(w)).slice(start * cols, (start + rows) * cols);
  return { rowStart: start, tensor: ctx.f32(data, [rows, cols]) };
}

Deno.test("linearPlusResidual: the bits of linear + add, fused or not, with fewer dispatches when fused", async () => {
  const ctx = await testGpu();
  const rng = new Rng(11);
  // rows × in → out: 64 and 130 rows (the texture product on lavapipe: fused), 48 (registers-
  // large there, which has no accumulate: not fused), 1, and odd sizes (tiled).
  const shapes: [number, number, number][] = [[64, 96, 384], [130, 67, 45], [48, 64, 256], [
    1,
    8,
    4,
  ], [7, 5, 3]];
  for (const [rows, inputs, outputs] of shapes) {
    const what = `${rows} × ${inputs} → ${outputs}`;
    const x = random(ctx, rng, [rows, inputs]);
    const w = random(ctx, rng, [outputs, inputs]);
    const bias = random(ctx, rng, [outputs]);
    const residual = random(ctx, rng, [rows, outputs]);
    const whole: ChunkedWeight = [{ rowStart: 0, tensor: w }];
    const half = Math.ceil(outputs / 2);
    const chunks: ChunkedWeight = outputs > 1
      ? [await rowChunk(ctx, w, 0, half), await rowChunk(ctx, w, half, outputs - half)]
      : whole;

    const separate = (weight: ChunkedWeight, b?: Tensor<"f32">) => {
      const y = linear(ctx, x, weight, b);
      const out = add(ctx, residual, y);
      y.release();
      return out;
    };
    const before = ctx.counts.dispatches;
    const expected = separate(whole);
    const separateDispatches = ctx.counts.dispatches - before;
    const middle = ctx.counts.dispatches;
    const fused = linearPlusResidual(ctx, x, whole, residual);
    const fusedDispatches = ctx.counts.dispatches - middle;
    const expectedBias = separate(whole, bias);
    const withBias = linearPlusResidual(ctx, x, whole, residual, bias);
    const expectedChunks = separate(chunks, bias);
    const chunked = linearPlusResidual(ctx, x, chunks, residual, bias);
    const got = await ctx.readMany([
      expected,
      fused,
      expectedBias,
      withBias,
      expectedChunks,
      chunked,
    ]);
    assertBitEqual(got[1], got[0], `${what}: fused`);
    assertBitEqual(got[3], got[2], `${what}: with a bias`);
    assertBitEqual(got[5], got[4], `${what}: chunked weight`);
    // The fused form saves the add's dispatch wherever the texture or tiled kernel runs.
    if (rows !== 48 || ctx.adapter.kernels !== "software") {
      assert(
        fusedDispatches === separateDispatches - 1,
        `${what}: ${fusedDispatches} dispatches fused, ${separateDispatches} separate`,
      );
    } else {
      assert(fusedDispatches === separateDispatches, `${what}: registers-large is not fused`);
    }
    const chunkTensors = chunks === whole ? [] : chunks.map((c) => c.tensor);
    for (
      const t of [x, w, bias, residual, expected, fused, expectedBias, withBias, expectedChunks]
    ) t.release();
    for (const t of [chunked, ...chunkTensors]) t.release();
  }
});

Deno.test("linearPlusResidual: consuming the residual gives the same bits, in place where fused", async () => {
  const ctx = await testGpu();
  const rng = new Rng(12);
  // 64 rows: fused (accumulates into the residual itself); 48 on lavapipe: linear + add, the
  // residual released; a bias: linear + add everywhere.
  for (const [rows, inputs, outputs] of [[64, 96, 384], [48, 64, 256], [7, 5, 3]]) {
    for (const withBias of [false, true]) {
      const what = `${rows} × ${inputs} → ${outputs}${withBias ? " with a bias" : ""}`;
      const x = random(ctx, rng, [rows, inputs]);
      const w = random(ctx, rng, [outputs, inputs]);
      const bias = withBias ? random(ctx, rng, [outputs]) : undefined;
      const residual = random(ctx, rng, [rows, outputs]);
      const whole: ChunkedWeight = [{ rowStart: 0, tensor: w }];
      const kept = linearPlusResidual(ctx, x, whole, residual, bias);
      // Count the buffer copies the consuming call records.
      let copies = 0;
      const copy = ctx.copy;
      ctx.copy = (...args) => {
        copies++;
        return copy.apply(ctx, args);
      };
      const consumed = linearPlusResidual(ctx, x, whole, residual, bias, { consume: true });
      ctx.copy = copy;
      const [a, b] = await ctx.readMany([kept, consumed]);
      assertBitEqual(b, a, what);
      if (consumed === residual) {
        assert(!residual.released, `${what}: the sum is the residual itself`);
        assert(copies === 0, `${what}: no copy of the residual`);
      } else {
        assert(residual.released, `${what}: a residual not used as the sum is released`);
      }
      for (const t of [x, w, bias, kept, consumed]) t?.release();
    }
  }
});
