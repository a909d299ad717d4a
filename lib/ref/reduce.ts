// Reference reductions (f64 accumulation in index order; results in f64, so tests can
// compare the GPU's f32 tree against the exact-as-possible value).

/** Σ x. */
export function sum(x: ArrayLike<number>): number {
  let acc = 0;
  for (let i = 0; i < x.length; i++) acc += x[i];
  return acc;
}

/** Σ x / length (length ≥ 1). */
export function mean(x: ArrayLike<number>): number {
  return sum(x) / x.length;
}

/** Σ x². */
export function sumOfSquares(x: ArrayLike<number>): number {
  let acc = 0;
  for (let i = 0; i < x.length; i++) acc += x[i] * x[i];
  return acc;
}

/** Σ a_i·b_i (same length). */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc += a[i] * b[i];
  return acc;
}

/** Σ |x|: the scale that bounds the rounding error of any f32 summation order. */
export function sumOfAbs(x: ArrayLike<number>): number {
  let acc = 0;
  for (let i = 0; i < x.length; i++) acc += Math.abs(x[i]);
  return acc;
}

/** x: [rows, n] → [rows]: the sum of each row. */
export function rowSum(x: ArrayLike<number>, rows: number, n: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let acc = 0;
    for (let j = 0; j < n; j++) acc += x[r * n + j];
    out[r] = acc;
  }
  return out;
}

/** x: [rows, n] (n ≥ 1) → [rows]: the mean of each row. */
export function rowMean(x: ArrayLike<number>, rows: number, n: number): Float64Array {
  return rowSum(x, rows, n).map((s) => s / n);
}
