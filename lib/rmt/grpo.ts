// GRPO on the host: group advantages, the PPO clipped surrogate with its gradient with respect
// to the new log-probabilities, and the optional KL penalty (spec: "RL algorithm: GRPO").
//
//   "A_i = (r_i − mean(r)) / (std(r) + δ)"
//   "the PPO-style clipped surrogate (clip ε = 0.2) averaged over the generated tokens, minus
//    β·KL(π_θ‖π_ref) with β = 0 by default"
//   "Groups whose rewards are all equal give no gradient; count and report them"
//
// Per generated token j of rollout i, with ρ_j = exp(logπ_new,j − logπ_old,j):
//   s_j   = min(ρ_j·A_i, clip(ρ_j, 1−ε, 1+ε)·A_i)               the clipped surrogate
//   k3_j  = exp(d_j) − d_j − 1,  d_j = logπ_ref,j − logπ_new,j   KL(π_θ‖π_ref) estimator (k3)
//   L     = agg(−s + β·k3)                                        the loss the trainer minimises
// Gradients (per token, with a_j the aggregation weight, see below):
//   ∂s_j/∂logπ_new,j  = ρ_j·A_i when the unclipped term is the min, else 0 (the clipped term
//                       is constant in logπ_new). At a tie (ρ exactly on a clip edge) we take
//                       the unclipped branch.
//   ∂k3_j/∂logπ_new,j = 1 − exp(d_j)
//   ∂L/∂logπ_new,j    = a_j · (−∂s_j + β·∂k3_j)
//
// Choices the spec leaves open (config keys in brackets):
// - std [rl.grpo.std: population | sample]: default population (divide by G). Note: TRL's and
//   verl's GRPO use torch.std, which is the sample std (divide by G − 1); `sample` gives that.
// - A group whose rewards are all exactly equal gets advantages exactly 0 (not (r−mean)/δ of
//   rounding noise: the mean of equal floats need not equal them), and is counted.
// - Aggregation [rl.grpo.aggregation: token_mean | sequence_mean]: token_mean (default) divides
//   the sum over every generated token of the batch by the number of those tokens (each token
//   weighs the same, as DAPO and RPT's "averaged over the generated tokens" read); sequence_mean
//   averages per rollout first, then over rollouts (the original GRPO paper). Rollouts with no
//   generated tokens contribute nothing and are not counted in either mean.

export const STD_KINDS = ["population", "sample"] as const;
export type StdKind = typeof STD_KINDS[number];
export const AGGREGATIONS = ["token_mean", "sequence_mean"] as const;
export type Aggregation = typeof AGGREGATIONS[number];

export interface GroupAdvantages {
  /** A_i per rollout of the group: [G]. */
  advantages: Float64Array;
  /** True when every reward is equal: no gradient from this group. */
  zeroAdvantage: boolean;
  mean: number;
  std: number;
}

/** A_i = (r_i − mean(r)) / (std(r) + δ) for one group of G rollouts' rewards. */
export function groupAdvantages(
  rewards: ArrayLike<number>,
  delta: number,
  stdKind: StdKind = "population",
): GroupAdvantages {
  const G = rewards.length;
  if (G < 1) throw new Error("groupAdvantages: empty group");
  let mean = 0;
  for (let i = 0; i < G; i++) mean += rewards[i];
  mean /= G;
  let squares = 0;
  for (let i = 0; i < G; i++) squares += (rewards[i] - mean) ** 2;
  const divisor = stdKind === "sample" ? G - 1 : G;
  const std = divisor > 0 ? Math.sqrt(squares / divisor) : 0;
  const advantages = new Float64Array(G);
  let allEqual = true;
  for (let i = 1; i < G; i++) if (rewards[i] !== rewards[0]) allEqual = false;
  if (!allEqual) {
    for (let i = 0; i < G; i++) {
      advantages[i] = (rewards[i] - mean) / (std + delta);
    }
  }
  return { advantages, zeroAdvantage: allEqual, mean, std };
}

/** Advantages of consecutive groups of `groupSize` rollouts: [groups·G] and the zero count. */
export function batchAdvantages(
  rewards: ArrayLike<number>,
  groupSize: number,
  delta: number,
  stdKind: StdKind = "population",
): { advantages: Float64Array; zeroAdvantageGroups: number; groups: number } {
  if (!Number.isInteger(groupSize) || groupSize < 1 || rewards.length % groupSize !== 0) {
    throw new Error(
      `batchAdvantages: ${rewards.length} rewards do not split into groups of ${groupSize}`,
    );
  }
  const groups = rewards.length / groupSize;
  const advantages = new Float64Array(rewards.length);
  let zeroAdvantageGroups = 0;
  for (let g = 0; g < groups; g++) {
    const slice = Array.prototype.slice.call(rewards, g * groupSize, (g + 1) * groupSize);
    const group = groupAdvantages(slice as number[], delta, stdKind);
    advantages.set(group.advantages, g * groupSize);
    if (group.zeroAdvantage) zeroAdvantageGroups++;
  }
  return { advantages, zeroAdvantageGroups, groups };
}

/** Number of groups whose rewards are all equal (no gradient). */
export function countZeroAdvantageGroups(groups: readonly ArrayLike<number>[]): number {
  let count = 0;
  for (const rewards of groups) {
    let equal = true;
    for (let i = 1; i < rewards.length; i++) if (rewards[i] !== rewards[0]) equal = false;
    if (equal) count++;
  }
  return count;
}

export interface SurrogateSettings {
  /** ε: ρ is clipped to [1 − ε, 1 + ε]. */
  clipEpsilon: number;
  /** β: weight of the KL penalty (0: no reference model needed). */
  klBeta: number;
  aggregation: Aggregation;
}

export interface SurrogateInput {
  /** logπ_θ of each generated token under the policy being trained: [tokens]. */
  newLogProbs: ArrayLike<number>;
  /** logπ_old of each token, from the policy that sampled the rollout: [tokens]. */
  oldLogProbs: ArrayLike<number>;
  /** logπ_ref of each token (needed only when β > 0): [tokens]. */
  refLogProbs?: ArrayLike<number>;
  /** A_i per rollout: [rollouts]. */
  advantages: ArrayLike<number>;
  /** Generated tokens per rollout, in order; they sum to `tokens`: [rollouts]. */
  lengths: ArrayLike<number>;
}

export interface SurrogateResult {
  /** L = agg(−s + β·k3). */
  loss: number;
  /** agg(−s), the policy part. */
  policyLoss: number;
  /** agg(k3), the KL estimate (0 when no reference log-probs are given). */
  kl: number;
  /** ∂L/∂logπ_new per token: [tokens] (what the trainer feeds into the GPU backward). */
  gradient: Float64Array;
  /** Fraction of tokens (aggregation-weighted) whose clipped term is the min and ρ is clipped. */
  clipFraction: number;
  /** Number of tokens the loss averages over. */
  tokens: number;
}

/** The aggregation weight a_j of each token: [tokens] (sums to 1 over non-empty rollouts). */
export function aggregationWeights(
  lengths: ArrayLike<number>,
  aggregation: Aggregation,
): Float64Array {
  let tokens = 0;
  let rollouts = 0;
  for (let i = 0; i < lengths.length; i++) {
    const n = lengths[i];
    if (!Number.isInteger(n) || n < 0) throw new Error(`rollout ${i}: bad length ${n}`);
    tokens += n;
    if (n > 0) rollouts++;
  }
  const weights = new Float64Array(tokens);
  let at = 0;
  for (let i = 0; i < lengths.length; i++) {
    const n = lengths[i];
    const w = aggregation === "token_mean" ? 1 / tokens : 1 / (rollouts * n);
    weights.fill(w, at, at + n);
    at += n;
  }
  return weights;
}

/** The clipped-surrogate loss, the KL term and ∂L/∂logπ_new for one batch of rollouts. */
export function clippedSurrogate(input: SurrogateInput, s: SurrogateSettings): SurrogateResult {
  const { newLogProbs, oldLogProbs, refLogProbs, advantages, lengths } = input;
  const weights = aggregationWeights(lengths, s.aggregation);
  const tokens = weights.length;
  if (newLogProbs.length !== tokens || oldLogProbs.length !== tokens) {
    throw new Error(
      `clippedSurrogate: lengths sum to ${tokens} tokens, but new/old log-probs have ` +
        `${newLogProbs.length}/${oldLogProbs.length}`,
    );
  }
  if (advantages.length !== lengths.length) {
    throw new Error(
      `clippedSurrogate: ${advantages.length} advantages for ${lengths.length} rollouts`,
    );
  }
  if (s.klBeta !== 0 && refLogProbs === undefined) {
    throw new Error(`clippedSurrogate: β = ${s.klBeta} needs reference log-probs`);
  }
  if (refLogProbs !== undefined && refLogProbs.length !== tokens) {
    throw new Error(
      `clippedSurrogate: ${refLogProbs.length} reference log-probs for ${tokens} tokens`,
    );
  }
  const lo = 1 - s.clipEpsilon;
  const hi = 1 + s.clipEpsilon;
  const gradient = new Float64Array(tokens);
  let policyLoss = 0;
  let kl = 0;
  let clipFraction = 0;
  let j = 0;
  for (let i = 0; i < lengths.length; i++) {
    const A = advantages[i];
    const end = j + lengths[i];
    for (; j < end; j++) {
      const a = weights[j];
      const ratio = Math.exp(newLogProbs[j] - oldLogProbs[j]);
      const unclipped = ratio * A;
      const clipped = Math.min(Math.max(ratio, lo), hi) * A;
      const clipActive = clipped < unclipped; // the min picks the clipped (constant) term
      policyLoss -= a * (clipActive ? clipped : unclipped);
      let grad = clipActive ? 0 : -unclipped;
      if (clipActive) clipFraction += a;
      if (refLogProbs !== undefined) { // with β = 0 the KL is still measured, for the logs
        const d = refLogProbs[j] - newLogProbs[j];
        kl += a * (Math.exp(d) - d - 1);
        grad += s.klBeta * (1 - Math.exp(d));
      }
      gradient[j] = a * grad;
    }
  }
  return { loss: policyLoss + s.klBeta * kl, policyLoss, kl, gradient, clipFraction, tokens };
}
