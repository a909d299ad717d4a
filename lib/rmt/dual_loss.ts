// The dual objective (spec: "Dual objective"):
//
//   "L = L_RL + λ · L_NTP,  λ = 0.1,  where L_NTP = −Σ_p m_p log π_θ(x_p | x_<p)
//    with m_p = 1[p ∉ C]"   (teacher forcing on every position not used for RL)
//
// Choices the spec leaves open (config keys in brackets):
// - Normalisation [loss.ntp_normalise: mean | sum]: `mean` (default) divides by the number of
//   unmasked positions in the whole step (Σ m_p over every sequence of the batch, all
//   micro-batches together), so L_NTP is the usual mean cross-entropy and λ does not depend on
//   sequence length or batch size; `sum` is the spec's literal Σ (weight 1 per position).
// - Position 0 has no context and is never a target; padding past a sequence's length is never
//   a target either.
// - For the NTP method (no RL) the trainer uses L = L_NTP, i.e. a weight of 1 instead of λ
//   (methods.ts says which weight each method uses).
//
// Layout: the model reads x_0..x_{N−2} and its logits row r predicts x_{r+1}; the weights below
// are per logits row, [batch, N − 1] row-major, so that the cross-entropy backward can take them
// as they are: weight[b, r] belongs to target position p = r + 1 of sequence b.

export const NTP_NORMALISE = ["mean", "sum"] as const;
export type NtpNormalise = typeof NTP_NORMALISE[number];

export interface NtpBatch {
  /** N: tokens per sequence (the padded length). */
  sequenceLength: number;
  /** The RL set C of each sequence: target positions p (1 ≤ p < N). [batch][|C_b|] */
  rlPositions: readonly (readonly number[])[];
  /** Real tokens per sequence (the rest is padding); default N for all. [batch] */
  lengths?: readonly number[];
}

/** m_p per logits row: 1 where target p = r + 1 is a real token not in C, else 0. [batch, N−1] */
export function ntpMask(batch: NtpBatch): Uint8Array {
  const N = batch.sequenceLength;
  const rows = N - 1;
  if (!Number.isInteger(N) || N < 2) throw new Error(`ntpMask: sequence length ${N} < 2`);
  const mask = new Uint8Array(batch.rlPositions.length * rows);
  batch.rlPositions.forEach((positions, b) => {
    const length = batch.lengths?.[b] ?? N;
    if (!(length >= 0 && length <= N)) throw new Error(`ntpMask: sequence ${b} length ${length}`);
    mask.fill(1, b * rows, b * rows + Math.max(0, length - 1));
    for (const p of positions) {
      if (!Number.isInteger(p) || p < 1 || p >= N) {
        throw new Error(`ntpMask: RL position ${p} of sequence ${b} is not a target in [1, ${N})`);
      }
      mask[b * rows + p - 1] = 0;
    }
  });
  return mask;
}

/**
 * The weight of each logits row in the total loss: scale·m_p/Σm (mean) or scale·m_p (sum),
 * [batch, N−1]. scale is λ for RMT (1 for the NTP method). `denominator` overrides Σm, for a
 * step split in micro-batches (pass the count over the whole step, see ntpMask).
 */
export function ntpWeights(
  mask: Uint8Array,
  { normalise, scale, denominator }: {
    normalise: NtpNormalise;
    scale: number;
    denominator?: number;
  },
): Float32Array<ArrayBuffer> {
  let unmasked = 0;
  for (const m of mask) unmasked += m;
  const denom = normalise === "sum" ? 1 : denominator ?? unmasked;
  const weights = new Float32Array(mask.length);
  if (denom > 0) { for (let i = 0; i < mask.length; i++) weights[i] = (scale * mask[i]) / denom; }
  return weights;
}

/** −Σ_r w_r · log π(target of row r): the (weighted) NTP term, reference for the GPU loss. */
export function weightedNll(logProbs: ArrayLike<number>, weights: ArrayLike<number>): number {
  if (logProbs.length !== weights.length) {
    throw new Error(`weightedNll: ${logProbs.length} log-probs, ${weights.length} weights`);
  }
  let loss = 0;
  for (let i = 0; i < weights.length; i++) if (weights[i] !== 0) loss -= weights[i] * logProbs[i];
  return loss;
}

/** "L = L_RL + λ · L_NTP". */
export function dualLoss(rlLoss: number, ntpLoss: number, lambda: number): number {
  return rlLoss + lambda * ntpLoss;
}
