// Reference broadcast row bias and its backward: plain loops in f64 (Float64Array results,
// so finite-difference checks see no f32 rounding). Shapes as in lib/ops/bias.ts:
// x, y, dy: [rows, cols] row-major; bias, dBias: [cols].

type Numbers = ArrayLike<number>;

/** y[r, c] = x[r, c] + bias[c]. */
export function addBias(x: Numbers, bias: Numbers, rows: number, cols: number): Float64Array {
  const y = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) y[r * cols + c] = x[r * cols + c] + bias[c];
  }
  return y;
}

/** dBias[c] = Σ_r dy[r, c] (and dx = dy: the bias add passes the gradient through). */
export function biasBackward(dy: Numbers, rows: number, cols: number): Float64Array {
  const dBias = new Float64Array(cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) dBias[c] += dy[r * cols + c];
  return dBias;
}
