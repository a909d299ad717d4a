// Reference activations, forward and backward, in f64: SiLU, SwiGLU, GELU (tanh approximation
// and exact erf). Elementwise; results are Float64Array so finite-difference checks see no f32
// rounding. Formulas as in kernels/activation.wgsl.

type Numbers = ArrayLike<number>;

export type GeluVariant = "tanh" | "erf";

function map(x: Numbers, f: (v: number, i: number) => number): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f(x[i], i);
  return out;
}

/** σ(v) = 1 / (1 + e^−v), from e^−|v| so it never overflows. */
export function sigmoid(v: number): number {
  const e = Math.exp(-Math.abs(v));
  return v >= 0 ? 1 / (1 + e) : e / (1 + e);
}

// ---- erf, erfc, Φ in f64 (accurate to ~1e-15; the oracle for the GPU's f32 approximation) --

/** erf(z) = (2/√π) e^−z² Σ (2z²)ⁿ z / (1·3·…·(2n+1)): all terms positive, no cancellation. */
function erfSeries(z: number): number {
  let term = z;
  let sum = z;
  for (let n = 1; Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
    term *= (2 * z * z) / (2 * n + 1);
    sum += term;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-z * z) * sum;
}

/** erfc(z) for z ≥ 3 by its continued fraction e^−z²/√π / (z + (1/2)/(z + 1/(z + (3/2)/(z + …)))). */
function erfcContinuedFraction(z: number): number {
  let f = z;
  for (let n = 80; n >= 1; n--) f = z + n / 2 / f;
  return Math.exp(-z * z) / (Math.sqrt(Math.PI) * f);
}

export function erfc(z: number): number {
  if (z < 0) return 2 - erfc(-z);
  return z < 3 ? 1 - erfSeries(z) : erfcContinuedFraction(z);
}

export function erf(z: number): number {
  return z < 0 ? -erf(-z) : z < 3 ? erfSeries(z) : 1 - erfcContinuedFraction(z);
}

/** Standard normal CDF Φ(v) = 0.5 · erfc(−v/√2). */
export function normalCdf(v: number): number {
  return 0.5 * erfc(-v / Math.SQRT2);
}

// ---- SiLU and SwiGLU ---------------------------------------------------------------------

function silu1(v: number): number {
  return v * sigmoid(v);
}

/** d silu / dv = σ(v) · (1 + v · (1 − σ(v))). */
function siluGrad1(v: number): number {
  const s = sigmoid(v);
  return s * (1 + v * (1 - s));
}

/** y = x · σ(x). */
export function silu(x: Numbers): Float64Array {
  return map(x, silu1);
}

/** dx = dy · silu'(x). */
export function siluBackward(x: Numbers, dy: Numbers): Float64Array {
  return map(x, (v, i) => dy[i] * siluGrad1(v));
}

/** y = silu(gate) · up. */
export function swiglu(gate: Numbers, up: Numbers): Float64Array {
  return map(gate, (g, i) => silu1(g) * up[i]);
}

export interface SwigluGradients {
  dGate: Float64Array;
  dUp: Float64Array;
}

/** dGate = dy · up · silu'(gate), dUp = dy · silu(gate). */
export function swigluBackward(gate: Numbers, up: Numbers, dy: Numbers): SwigluGradients {
  return {
    dGate: map(gate, (g, i) => dy[i] * up[i] * siluGrad1(g)),
    dUp: map(gate, (g, i) => dy[i] * silu1(g)),
  };
}

// ---- GELU --------------------------------------------------------------------------------

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_COEFF = 0.044715;

function gelu1(v: number, variant: GeluVariant): number {
  if (variant === "erf") return v * normalCdf(v);
  const u = SQRT_2_OVER_PI * (v + GELU_COEFF * v ** 3);
  return 0.5 * v * (1 + Math.tanh(u));
}

function geluGrad1(v: number, variant: GeluVariant): number {
  if (variant === "erf") {
    return normalCdf(v) + v * Math.exp(-0.5 * v * v) / Math.sqrt(2 * Math.PI);
  }
  const t = Math.tanh(SQRT_2_OVER_PI * (v + GELU_COEFF * v ** 3));
  const du = SQRT_2_OVER_PI * (1 + 3 * GELU_COEFF * v * v);
  return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * du;
}

/**
 * GELU. "tanh": 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (gelu_pytorch_tanh, GPT-2);
 * "erf": x·Φ(x) (exact).
 */
export function gelu(x: Numbers, variant: GeluVariant): Float64Array {
  return map(x, (v) => gelu1(v, variant));
}

/** dx = dy · gelu'(x). */
export function geluBackward(x: Numbers, dy: Numbers, variant: GeluVariant): Float64Array {
  return map(x, (v, i) => dy[i] * geluGrad1(v, variant));
}
