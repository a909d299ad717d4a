// Shared test helpers: the GPU context, closeness checks with stated tolerances, and
// central finite differences for checking backward passes on the reference.

import { gpu, type GpuContext } from "../lib/gpu/context.ts";

export { Rng } from "../lib/ref/random.ts";

export class AssertionError extends Error {
  constructor({ message }: { message: string }) {
    super(message);
    this.name = "AssertionError";
  }
}

/** The shared GPU context (Mesa's software adapter on CI). */
export function testGpu(): Promise<GpuContext> {
  return gpu();
}

export interface Tolerance {
  /** Relative tolerance: |a - e| <= atol + rtol·|e|. */
  rtol?: number;
  atol?: number;
}

/** Asserts elementwise closeness; the message names the worst index. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { rtol = 1e-4, atol = 1e-5 }: Tolerance = {},
  what = "values",
): void {
  if (actual.length !== expected.length) {
    throw new AssertionError({
      message: `${what}: length ${actual.length}, expected ${expected.length}`,
    });
  }
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = Number.isNaN(excess) ? Infinity : excess;
    }
  }
  if (worst >= 0) {
    throw new AssertionError({
      message: `${what}: index ${worst}: got ${actual[worst]}, expected ${expected[worst]} ` +
        `(rtol ${rtol}, atol ${atol})`,
    });
  }
}

/** Asserts bit-identical arrays (determinism checks). */
export function assertBitEqual(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what = "values",
): void {
  if (actual.length !== expected.length) {
    throw new AssertionError({
      message: `${what}: lengths ${actual.length} and ${expected.length}`,
    });
  }
  for (let i = 0; i < actual.length; i++) {
    if (!Object.is(actual[i], expected[i])) {
      throw new AssertionError({
        message: `${what}: index ${i} differs: ${actual[i]} vs ${expected[i]}`,
      });
    }
  }
}

/**
 * Central finite differences of a scalar function f at x, for every element of x:
 * g[i] ≈ (f(x + h·e_i) − f(x − h·e_i)) / 2h. f must compute in f64 (the references do).
 */
export function finiteDifference(
  f: (x: Float64Array) => number,
  x: ArrayLike<number>,
  h = 1e-4,
): Float64Array {
  const point = Float64Array.from(x);
  const grad = new Float64Array(point.length);
  for (let i = 0; i < point.length; i++) {
    const saved = point[i];
    point[i] = saved + h;
    const up = f(point);
    point[i] = saved - h;
    const down = f(point);
    point[i] = saved;
    grad[i] = (up - down) / (2 * h);
  }
  return grad;
}
