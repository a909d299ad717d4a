// Reference of kernels/grpo_surrogate.wgsl: GRPO's clipped surrogate per row and its gradient
// with respect to the new log-probability, in f64. (lib/rmt/grpo.ts clippedSurrogate is the
// same math organised by rollout; the test checks the two agree.)
//
//   ρ = exp(new − old),  s = min(ρA, clip(ρ, 1−ε, 1+ε)A),  clipped: the clipped term < ρA
//   loss = −a·s + β·a·k3,  k3 = exp(d) − d − 1,  d = ref − new
//   dLogprob = a·(clipped ? 0 : −ρA) + β·a·(1 − exp(d)),  clip = clipped ? a : 0
// Rows with a = 0 give 0 everywhere.

export interface GrpoSurrogateRows {
  /** [rows] */
  dLogprob: Float64Array;
  /** [rows] */
  lossTerms: Float64Array;
  /** [rows] */
  clipTerms: Float64Array;
}

/**
 * newLogprob, oldLogprob, refLogprob: [rows]; coefficients: [rows, 2] = (A, a) per row.
 * refLogprob is read only when β > 0.
 */
export function grpoSurrogate(
  newLogprob: ArrayLike<number>,
  oldLogprob: ArrayLike<number>,
  refLogprob: ArrayLike<number> | null,
  coefficients: ArrayLike<number>,
  { clipEpsilon, klBeta }: { clipEpsilon: number; klBeta: number },
): GrpoSurrogateRows {
  const rows = newLogprob.length;
  const dLogprob = new Float64Array(rows);
  const lossTerms = new Float64Array(rows);
  const clipTerms = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const A = coefficients[2 * r];
    const a = coefficients[2 * r + 1];
    if (a === 0) continue;
    const ratio = Math.exp(newLogprob[r] - oldLogprob[r]);
    const unclipped = ratio * A;
    const clipped = Math.min(Math.max(ratio, 1 - clipEpsilon), 1 + clipEpsilon) * A;
    const clipActive = clipped < unclipped;
    lossTerms[r] = -a * (clipActive ? clipped : unclipped);
    dLogprob[r] = clipActive ? 0 : -a * unclipped;
    clipTerms[r] = clipActive ? a : 0;
    if (klBeta !== 0) {
      const d = refLogprob![r] - newLogprob[r];
      lossTerms[r] += klBeta * a * (Math.exp(d) - d - 1);
      dLogprob[r] += klBeta * a * (1 - Math.exp(d));
    }
  }
  return { dLogprob, lossTerms, clipTerms };
}
