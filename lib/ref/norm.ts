// Reference RMSNorm and LayerNorm, forward and backward: plain loops in f64.
// Inputs are any number arrays (f32 data, or the f64 points finite differences probe);
// results are Float64Array so that finite-difference checks see no f32 rounding.
// Shapes as in lib/ops/norm.ts: x, y, dy, dx: [rows, dim] row-major; weight, bias: [dim].

type Numbers = ArrayLike<number>;

export interface RmsNormResult {
  /** [rows, dim] */
  y: Float64Array;
  /** [rows] */
  rstd: Float64Array;
}

/** y = x / sqrt(mean(x²) + eps) · weight, row by row. */
export function rmsNorm(
  x: Numbers,
  weight: Numbers,
  rows: number,
  dim: number,
  eps: number,
): RmsNormResult {
  const y = new Float64Array(rows * dim);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let sumSq = 0;
    for (let c = 0; c < dim; c++) sumSq += x[r * dim + c] ** 2;
    rstd[r] = 1 / Math.sqrt(sumSq / dim + eps);
    for (let c = 0; c < dim; c++) y[r * dim + c] = x[r * dim + c] * rstd[r] * weight[c];
  }
  return { y, rstd };
}

export interface RmsNormGradients {
  /** [rows, dim] */
  dx: Float64Array;
  /** [dim] */
  dWeight: Float64Array;
}

/**
 * With g = dy·weight and xhat = x·rstd:
 *   dx = rstd·(g − xhat·mean(g·xhat)),  dWeight = Σ_rows dy·xhat.
 * rstd is recomputed from x (the GPU op takes the saved one).
 */
export function rmsNormBackward(
  x: Numbers,
  weight: Numbers,
  dy: Numbers,
  rows: number,
  dim: number,
  eps: number,
): RmsNormGradients {
  const { rstd } = rmsNorm(x, weight, rows, dim, eps);
  const dx = new Float64Array(rows * dim);
  const dWeight = new Float64Array(dim);
  for (let r = 0; r < rows; r++) {
    const xhat = (c: number) => x[r * dim + c] * rstd[r];
    const g = (c: number) => dy[r * dim + c] * weight[c];
    let dot = 0;
    for (let c = 0; c < dim; c++) dot += g(c) * xhat(c);
    const meanDot = dot / dim;
    for (let c = 0; c < dim; c++) {
      dx[r * dim + c] = rstd[r] * (g(c) - xhat(c) * meanDot);
      dWeight[c] += dy[r * dim + c] * xhat(c);
    }
  }
  return { dx, dWeight };
}

export interface LayerNormResult {
  /** [rows, dim] */
  y: Float64Array;
  /** [rows] */
  mean: Float64Array;
  /** [rows]: 1 / sqrt(biased variance + eps) */
  rstd: Float64Array;
}

/** y = (x − mean)/sqrt(var + eps) · weight + bias, row by row (biased variance). */
export function layerNorm(
  x: Numbers,
  weight: Numbers,
  bias: Numbers,
  rows: number,
  dim: number,
  eps: number,
): LayerNormResult {
  const y = new Float64Array(rows * dim);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let c = 0; c < dim; c++) sum += x[r * dim + c];
    mean[r] = sum / dim;
    let sumSq = 0;
    for (let c = 0; c < dim; c++) sumSq += (x[r * dim + c] - mean[r]) ** 2;
    rstd[r] = 1 / Math.sqrt(sumSq / dim + eps);
    for (let c = 0; c < dim; c++) {
      y[r * dim + c] = (x[r * dim + c] - mean[r]) * rstd[r] * weight[c] + bias[c];
    }
  }
  return { y, mean, rstd };
}

export interface LayerNormGradients {
  /** [rows, dim] */
  dx: Float64Array;
  /** [dim] */
  dWeight: Float64Array;
  /** [dim] */
  dBias: Float64Array;
}

/**
 * With g = dy·weight and xhat = (x − mean)·rstd:
 *   dx = rstd·(g − mean(g) − xhat·mean(g·xhat)),  dWeight = Σ_rows dy·xhat,  dBias = Σ_rows dy.
 */
export function layerNormBackward(
  x: Numbers,
  weight: Numbers,
  dy: Numbers,
  rows: number,
  dim: number,
  eps: number,
): LayerNormGradients {
  const { mean, rstd } = layerNorm(x, weight, new Float64Array(dim), rows, dim, eps);
  const dx = new Float64Array(rows * dim);
  const dWeight = new Float64Array(dim);
  const dBias = new Float64Array(dim);
  for (let r = 0; r < rows; r++) {
    const xhat = (c: number) => (x[r * dim + c] - mean[r]) * rstd[r];
    const g = (c: number) => dy[r * dim + c] * weight[c];
    let sumG = 0;
    let dot = 0;
    for (let c = 0; c < dim; c++) {
      sumG += g(c);
      dot += g(c) * xhat(c);
    }
    for (let c = 0; c < dim; c++) {
      dx[r * dim + c] = rstd[r] * (g(c) - sumG / dim - xhat(c) * (dot / dim));
      dWeight[c] += dy[r * dim + c] * xhat(c);
      dBias[c] += dy[r * dim + c];
    }
  }
  return { dx, dWeight, dBias };
}
