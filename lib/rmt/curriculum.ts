// Which positions of a sequence become RL problems at a step: the RL set C
// (spec: "Definitions → Curriculum sampling", and the method table).
//
// RMT's curriculum:
//   "p_t = p1 for t < t1; (1−τ)·p1 + τ·p2 with τ = (t−t1)/(t2−t1) for t1 ≤ t < t2; p2 after.
//    Draw a tier from p_t, then a position uniformly within that tier (if a tier is empty,
//    renormalise over the non-empty ones)."
// with t1 = 0.3T, t2 = 0.7T (config: fractions of T), p1 = 0.6/0.3/0.1, p2 = 0.1/0.3/0.6
// (easy/medium/hard). The other selectors sharing this code path:
//   RPT:            "positions with H > threshold", drawn uniformly.
//   no curriculum:  (ablation) uniform over every sampling-eligible position (H > easy
//                   threshold, the same candidates the curriculum draws from), or a fixed tier
//                   mix at every step (config ablation.no_curriculum: uniform | fixed_mix).
//   none:           NTP: C is empty.
//
// Choices the spec leaves open (each a config key, see lib/train/config.ts):
// - Positions are drawn per sequence, `count` = rl.positions_per_sequence of them, WITHOUT
//   replacement (the same position twice would be the same RL problem twice). Removing a drawn
//   position can empty its tier, which the renormalisation then handles. A sequence with fewer
//   eligible positions than `count` gives all it has.
// - Positions before rl.min_context_tokens are not eligible (too little context to predict
//   from; position 0 has none at all), nor is any position with a non-finite entropy.
// - If every non-empty tier has probability 0 in p_t, the draw stops there (p_t says "never
//   these tiers"; we do not override it).
// - Randomness: a counter-based generator (Philox4x32-10, the GPU sampler's generator) keyed by
//   (seed, step, sequence, draw), so a step's selection does not depend on what ran before it:
//   rerunning or resuming at step t gives the same C. Positions come back ascending.

import { philox4x32_10 } from "../ref/sampling.ts";
import { positionsByTier, type Tier, TIERS, type TierThresholds } from "./tiers.ts";

/** A probability for each tier (easy, medium, hard); the three sum to 1. */
export type TierMix = Record<Tier, number>;

export interface CurriculumSettings {
  /** t1 as a fraction of T: p_t = p1 before it. */
  t1: number;
  /** t2 as a fraction of T (≥ t1): p_t = p2 from it on. */
  t2: number;
  p1: TierMix;
  p2: TierMix;
}

/**
 * p_t, the tier distribution at step t of T:
 * p1 for t < t1·T; (1−τ)·p1 + τ·p2 with τ = (t − t1·T)/(t2·T − t1·T) for t1·T ≤ t < t2·T;
 * p2 for t ≥ t2·T. (At t = t1·T exactly τ = 0, i.e. p1; at t = t2·T exactly, p2.)
 * Computed on the fraction t/T, which is exact at the switch points (3/10 is the double 0.3),
 * whereas t1·T need not be (0.7·90 = 62.99999999999999: with t1 = 0.7, t = 63 would get τ > 0).
 */
export function curriculumMix(step: number, totalSteps: number, s: CurriculumSettings): TierMix {
  const f = step / totalSteps;
  if (f < s.t1) return { ...s.p1 };
  if (f >= s.t2) return { ...s.p2 };
  const tau = (f - s.t1) / (s.t2 - s.t1);
  return {
    easy: (1 - tau) * s.p1.easy + tau * s.p2.easy,
    medium: (1 - tau) * s.p1.medium + tau * s.p2.medium,
    hard: (1 - tau) * s.p1.hard + tau * s.p2.hard,
  };
}

// ---- the counter-based random numbers -----------------------------------------------------

/** Identifies one sequence's draw at one step: the random numbers are a function of these. */
export interface SelectionKey {
  seed: number;
  step: number;
  /** Index of the sequence within the step's batch. */
  sequence: number;
}

/** Philox stream for position selection (the GPU sampler uses other counters). */
const SELECTION_STREAM = 0x52_4d_54_01; // "RMT" 1

/**
 * Two uniforms in [0, 1) for draw number `draw` of a sequence at a step: 53-bit doubles from
 * Philox4x32-10 with counter [draw, step, sequence, stream] and key = the 64-bit seed.
 */
export function selectionUniforms(key: SelectionKey, draw: number): [number, number] {
  const seedKey = [key.seed % 2 ** 32, Math.floor(key.seed / 2 ** 32)];
  const [w0, w1, w2, w3] = philox4x32_10(
    [draw, key.step, key.sequence, SELECTION_STREAM],
    seedKey,
  );
  const toDouble = (hi: number, lo: number) => ((hi >>> 5) * 2 ** 26 + (lo >>> 6)) / 2 ** 53;
  return [toDouble(w0, w1), toDouble(w2, w3)];
}

// ---- the draws -----------------------------------------------------------------------------

/** One RL position of a sequence and the sampling tier it was drawn from (null: untiered). */
export interface SelectedPosition {
  position: number;
  tier: Tier | null;
}

/**
 * Draws up to `count` positions without replacement: each draw picks a tier from `mix`
 * renormalised over the tiers that still have positions, then a position uniformly within it.
 * byTier: the eligible positions of each tier (not modified). Result ascending by position.
 */
export function drawByTier(
  byTier: Readonly<Record<Tier, readonly number[]>>,
  mix: TierMix,
  count: number,
  key: SelectionKey,
): SelectedPosition[] {
  const left: Record<Tier, number[]> = {
    easy: [...byTier.easy],
    medium: [...byTier.medium],
    hard: [...byTier.hard],
  };
  const chosen: SelectedPosition[] = [];
  for (let draw = 0; draw < count; draw++) {
    // Renormalise p_t over the non-empty tiers.
    const weights = TIERS.map((tier) => (left[tier].length > 0 ? Math.max(0, mix[tier]) : 0));
    const total = weights.reduce((a, b) => a + b, 0);
    if (!(total > 0)) break;
    const [uTier, uPosition] = selectionUniforms(key, draw);
    let index = TIERS.length - 1;
    while (weights[index] === 0) index--; // the last eligible tier catches rounding at u → 1
    let acc = 0;
    for (let i = 0; i < TIERS.length; i++) {
      acc += weights[i];
      if (weights[i] > 0 && uTier * total < acc) {
        index = i;
        break;
      }
    }
    const tier = TIERS[index];
    const pool = left[tier];
    const at = Math.floor(uPosition * pool.length);
    chosen.push({ position: pool[at], tier });
    pool[at] = pool[pool.length - 1]; // remove without replacement (order is irrelevant)
    pool.pop();
  }
  return chosen.sort((a, b) => a.position - b.position);
}

/**
 * Draws up to `count` of `candidates` uniformly without replacement (a partial Fisher–Yates
 * shuffle driven by the counter-based uniforms). Result ascending.
 */
export function drawUniform(
  candidates: readonly number[],
  count: number,
  key: SelectionKey,
): number[] {
  const pool = [...candidates];
  const take = Math.min(count, pool.length);
  for (let draw = 0; draw < take; draw++) {
    const [u] = selectionUniforms(key, draw);
    const j = draw + Math.floor(u * (pool.length - draw));
    [pool[draw], pool[j]] = [pool[j], pool[draw]];
  }
  return pool.slice(0, take).sort((a, b) => a - b);
}

// ---- the selectors the methods use -------------------------------------------------------

/** How a method picks its RL set C (methods.ts builds one from the config). */
export type RlSelector =
  /** NTP: no RL positions. */
  | { kind: "none" }
  /** RMT: the curriculum p_t over the sampling tiers. */
  | { kind: "curriculum"; curriculum: CurriculumSettings; thresholds: TierThresholds }
  /** No-curriculum ablation, fixed_mix variant: the same tier mix at every step. */
  | { kind: "fixed-mix"; mix: TierMix; thresholds: TierThresholds }
  /** RPT (threshold = rpt.entropy_threshold) and the no-curriculum ablation's uniform variant
   * (threshold = the easy tier's bound): uniform over positions with H > threshold. */
  | { kind: "uniform-above"; threshold: number; thresholds: TierThresholds }
  /** Post-training on math problems: C is not drawn from a corpus sequence. */
  | { kind: "math-problems" };

export interface SelectionRequest {
  /** H_p for every position p of the sequence (non-finite: no entropy, never selected). */
  entropies: ArrayLike<number>;
  /** At most this many positions (rl.positions_per_sequence). */
  count: number;
  /** Positions p < minPosition are never selected (rl.min_context_tokens). */
  minPosition: number;
  step: number;
  totalSteps: number;
  key: SelectionKey;
}

/** The RL set C of one sequence at one step, ascending, with the sampling tier of each. */
export function selectRlPositions(selector: RlSelector, r: SelectionRequest): SelectedPosition[] {
  if (!Number.isInteger(r.count) || r.count < 0) {
    throw new Error(`selectRlPositions: count must be an integer ≥ 0, got ${r.count}`);
  }
  switch (selector.kind) {
    case "none":
    case "math-problems":
      return [];
    case "curriculum": {
      const byTier = positionsByTier(r.entropies, selector.thresholds, r.minPosition);
      const mix = curriculumMix(r.step, r.totalSteps, selector.curriculum);
      return drawByTier(byTier, mix, r.count, r.key);
    }
    case "fixed-mix": {
      const byTier = positionsByTier(r.entropies, selector.thresholds, r.minPosition);
      return drawByTier(byTier, selector.mix, r.count, r.key);
    }
    case "uniform-above": {
      const candidates: number[] = [];
      for (let p = Math.max(0, r.minPosition); p < r.entropies.length; p++) {
        const H = r.entropies[p];
        if (Number.isFinite(H) && H > selector.threshold) candidates.push(p);
      }
      const tierOf = new Map<number, Tier>();
      const byTier = positionsByTier(r.entropies, selector.thresholds, r.minPosition);
      for (const tier of TIERS) for (const p of byTier[tier]) tierOf.set(p, tier);
      return drawUniform(candidates, r.count, r.key).map((position) => ({
        position,
        tier: tierOf.get(position) ?? null,
      }));
    }
  }
}
