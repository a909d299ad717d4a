// Token entropy and difficulty tiers (spec: "Definitions → Token entropy").
//
// A proxy model gives the next-token distribution at every position p (context x_<p, target
// x_p). RPT measures difficulty with the entropy of the top-k probabilities, renormalised:
//   "H_p = -Σ_{i≤k} q_i log q_i,  q = softmax(top-k logits),  k = 16"
// and buckets positions with the thresholds 0.5 / 1.0 / 1.5 nats, in two ways:
//   sampling (disjoint):  "easy 0.5 < H ≤ 1.0, medium 1.0 < H ≤ 1.5, hard H > 1.5;
//                          positions with H ≤ 0.5 are never RL positions"
//   evaluation (nested):  "easy H > 0.5, medium H > 1.0, hard H > 1.5"
// The thresholds are config keys (entropy.thresholds.*), passed in here as TierThresholds.

/** The three difficulty tiers, in curriculum order (p1/p2 list them in this order). */
export const TIERS = ["easy", "medium", "hard"] as const;
export type Tier = typeof TIERS[number];

/** Lower bounds (nats) of the three tiers: easy > easy, medium > medium, hard > hard. */
export interface TierThresholds {
  easy: number;
  medium: number;
  hard: number;
}

/** RPT's thresholds (spec defaults). */
export const DEFAULT_THRESHOLDS: TierThresholds = { easy: 0.5, medium: 1.0, hard: 1.5 };

/**
 * Entropy (nats) of the top-k of one logits row, renormalised:
 * H = −Σ_{i≤k} q_i log q_i with q = softmax(top-k logits). Ties at the k-th logit are broken by
 * the lower index (any choice gives the same H, since tied logits have equal q).
 * logits: [vocab] → scalar. k ≥ 1; k ≥ vocab uses the whole row.
 */
export function topKEntropy(logits: ArrayLike<number>, k: number): number {
  if (!Number.isInteger(k) || k < 1) throw new Error(`topKEntropy: k must be ≥ 1, got ${k}`);
  const top = Array.from(logits).sort((a, b) => b - a).slice(0, k);
  const max = top[0];
  let sum = 0;
  for (const z of top) sum += Math.exp(z - max);
  let entropy = 0;
  for (const z of top) {
    const q = Math.exp(z - max) / sum;
    if (q > 0) entropy -= q * Math.log(q);
  }
  return entropy;
}

/** Throws unless easy < medium < hard (all finite). */
export function checkThresholds(t: TierThresholds): void {
  const finite = [t.easy, t.medium, t.hard].every(Number.isFinite);
  if (!finite || !(t.easy < t.medium && t.medium < t.hard)) {
    throw new Error(`tier thresholds must satisfy easy < medium < hard, got ${JSON.stringify(t)}`);
  }
}

/**
 * The disjoint sampling tier of one entropy: easy (easy, medium], medium (medium, hard],
 * hard (hard, ∞); null for H ≤ easy (never an RL position) and for a non-finite H (no entropy,
 * e.g. position 0 with an empty context).
 */
export function samplingTier(entropy: number, t: TierThresholds): Tier | null {
  if (!Number.isFinite(entropy) || entropy <= t.easy) return null;
  if (entropy <= t.medium) return "easy";
  if (entropy <= t.hard) return "medium";
  return "hard";
}

/** The nested evaluation tiers one entropy belongs to: easy H > easy, medium H > medium, ... */
export function evaluationTiers(entropy: number, t: TierThresholds): Record<Tier, boolean> {
  const finite = Number.isFinite(entropy);
  return {
    easy: finite && entropy > t.easy,
    medium: finite && entropy > t.medium,
    hard: finite && entropy > t.hard,
  };
}

/** Positions of one sequence grouped by sampling tier (each list ascending). */
export type TierPositions = Record<Tier, number[]>;

/**
 * Groups the positions p ∈ [minPosition, entropies.length) by sampling tier; positions with
 * H ≤ easy or a non-finite H are left out. entropies: [positions], H of predicting x_p.
 */
export function positionsByTier(
  entropies: ArrayLike<number>,
  t: TierThresholds,
  minPosition = 0,
): TierPositions {
  const byTier: TierPositions = { easy: [], medium: [], hard: [] };
  for (let p = Math.max(0, minPosition); p < entropies.length; p++) {
    const tier = samplingTier(entropies[p], t);
    if (tier !== null) byTier[tier].push(p);
  }
  return byTier;
}

/** Counts of positions per sampling tier, plus those below the easy threshold and non-finite. */
export interface TierHistogram {
  /** H ≤ easy threshold: never RL positions. */
  below: number;
  easy: number;
  medium: number;
  hard: number;
  /** No entropy (NaN / ±∞), e.g. position 0. */
  missing: number;
  total: number;
}

/** Tier counts of a list of entropies (for logs and for checking a corpus has hard tokens). */
export function tierHistogram(entropies: ArrayLike<number>, t: TierThresholds): TierHistogram {
  const h: TierHistogram = { below: 0, easy: 0, medium: 0, hard: 0, missing: 0, total: 0 };
  for (let i = 0; i < entropies.length; i++) {
    const H = entropies[i];
    h.total++;
    if (!Number.isFinite(H)) h.missing++;
    else {
      const tier = samplingTier(H, t);
      if (tier === null) h.below++;
      else h[tier]++;
    }
  }
  return h;
}

/**
 * Equal-width histogram of finite entropies: bin i counts binWidth·i ≤ H < binWidth·(i+1), the
 * last bin also everything above; returns [bins] counts.
 */
export function entropyHistogram(
  entropies: ArrayLike<number>,
  binWidth = 0.25,
  bins = 16,
): number[] {
  if (!(binWidth > 0) || !Number.isInteger(bins) || bins < 1) {
    throw new Error(`entropyHistogram: binWidth > 0 and bins ≥ 1, got ${binWidth}, ${bins}`);
  }
  const counts = new Array<number>(bins).fill(0);
  for (let i = 0; i < entropies.length; i++) {
    const H = entropies[i];
    if (!Number.isFinite(H)) continue;
    counts[Math.min(bins - 1, Math.max(0, Math.floor(H / binWidth)))]++;
  }
  return counts;
}
