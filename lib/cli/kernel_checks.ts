// The cases `rmt selfcheck` runs: one small random case per kernel family, GPU against
// the TypeScript reference. Each returns its worst error relative to its tolerance.

import type { GpuContext } from "../gpu/context.ts";
import * as elementwise from "../ops/elementwise.ts";
import * as elementwiseRef from "../ref/elementwise.ts";
import { Rng } from "../ref/random.ts";

export interface KernelCheck {
  name: string;
  run: (ctx: GpuContext, seed: number) => Promise<number>;
}

/** max over i of |a − e| / (atol + rtol·|e|); NaN anywhere counts as infinitely wrong. */
export function worstError(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  rtol: number,
  atol: number,
): number {
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.abs(actual[i] - expected[i]) / (atol + rtol * Math.abs(expected[i]));
    worst = Number.isNaN(e) ? Infinity : Math.max(worst, e);
  }
  return worst;
}

export const KERNEL_CHECKS: KernelCheck[] = [
  {
    name: "elementwise (add, scale)",
    run: async (ctx, seed) => {
      const rng = new Rng(seed);
      const a = rng.normals(1031);
      const b = rng.normals(1031);
      const ta = ctx.f32(a);
      const tb = ctx.f32(b);
      const sum = elementwise.add(ctx, ta, tb);
      const scaled = elementwise.scale(ctx, ta, 0.5);
      const [gotSum, gotScaled] = await ctx.readMany([sum, scaled]);
      for (const t of [ta, tb, sum, scaled]) t.release();
      return Math.max(
        worstError(gotSum, elementwiseRef.add(a, b), 1e-6, 1e-7),
        worstError(gotScaled, elementwiseRef.scale(a, 0.5), 1e-6, 1e-7),
      );
    },
  },
];
