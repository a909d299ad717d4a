// Reference optimizer (f64 math inside, Float32Array in/out): global gradient norm, the clip
// control [scale, apply], and one AdamW step written as the textbook formula
// (torch.optim.AdamW documentation):
//   p ← p − lr·wd·p
//   m ← β1·m + (1 − β1)·g          v ← β2·v + (1 − β2)·g²
//   m̂ = m / (1 − β1^t)             v̂ = v / (1 − β2^t)
//   p ← p − lr · m̂ / (sqrt(v̂) + eps)

export interface AdamwHyper {
  lr: number;
  /** Step number t, from 1. */
  step: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export interface AdamwState {
  param: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

/** Sum of squares over all gradients and its square root (the global L2 norm). */
export function gradNorm(grads: readonly Float32Array[]): { sumSquares: number; norm: number } {
  let sumSquares = 0;
  for (const g of grads) for (const x of g) sumSquares += x * x;
  return { sumSquares, norm: Math.sqrt(sumSquares) };
}

/** [scale, apply]: apply = 0 for a non-finite norm; scale = min(1, maxNorm / (norm + 1e-6)). */
export function clipFactor(norm: number, maxNorm: number): { scale: number; apply: boolean } {
  if (!Number.isFinite(norm)) return { scale: 0, apply: false };
  return { scale: Math.min(1, maxNorm / (norm + 1e-6)), apply: true };
}

/**
 * One AdamW step; returns new arrays. `clip` multiplies the gradient; clip.apply = false
 * returns the state unchanged (a skipped step).
 */
export function adamwStep(
  state: AdamwState,
  grad: Float32Array,
  h: AdamwHyper,
  clip: { scale: number; apply: boolean } = { scale: 1, apply: true },
): AdamwState {
  const param = Float32Array.from(state.param);
  const m = Float32Array.from(state.m);
  const v = Float32Array.from(state.v);
  if (!clip.apply) return { param, m, v };
  const biasCorrection1 = 1 - h.beta1 ** h.step;
  const biasCorrection2 = 1 - h.beta2 ** h.step;
  for (let i = 0; i < param.length; i++) {
    const g = grad[i] * clip.scale;
    let p = state.param[i];
    p -= h.lr * h.weightDecay * p;
    const mi = h.beta1 * state.m[i] + (1 - h.beta1) * g;
    const vi = h.beta2 * state.v[i] + (1 - h.beta2) * g * g;
    const mHat = mi / biasCorrection1;
    const vHat = vi / biasCorrection2;
    p -= h.lr * mHat / (Math.sqrt(vHat) + h.eps);
    param[i] = p;
    m[i] = mi;
    v[i] = vi;
  }
  return { param, m, v };
}
