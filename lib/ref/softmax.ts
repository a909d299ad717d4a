// Reference row softmax with temperature and its backward (f64 math; results in f64).
// x, y, dy: [rows, n] row-major.

/** y[r, j] = exp((x[r, j] − max_r) / T) / Σ_i exp((x[r, i] − max_r) / T). */
export function softmax(
  x: ArrayLike<number>,
  rows: number,
  n: number,
  temperature = 1,
): Float64Array {
  const y = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let j = 0; j < n; j++) max = Math.max(max, x[r * n + j]);
    let total = 0;
    for (let j = 0; j < n; j++) {
      y[r * n + j] = Math.exp((x[r * n + j] - max) / temperature);
      total += y[r * n + j];
    }
    for (let j = 0; j < n; j++) y[r * n + j] /= total;
  }
  return y;
}

/** dx = y ⊙ (dy − rowsum(dy ⊙ y)) / T: the gradient of Σ dy ⊙ softmax(x / T) w.r.t. x. */
export function softmaxBackward(
  y: ArrayLike<number>,
  dy: ArrayLike<number>,
  rows: number,
  n: number,
  temperature = 1,
): Float64Array {
  const dx = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    let dot = 0;
    for (let j = 0; j < n; j++) dot += dy[r * n + j] * y[r * n + j];
    for (let j = 0; j < n; j++) {
      dx[r * n + j] = y[r * n + j] * (dy[r * n + j] - dot) / temperature;
    }
  }
  return dx;
}
