// Accuracy split into the nested evaluation tiers (spec: "Definitions → Token entropy",
// "What the paper reports"):
//
//   easy H > 0.5,  medium H > 1.0,  hard H > 1.5       (nested: a hard position is also
//                                                        medium and easy)
//   average = (easy + medium + hard) / 3                as the paper's "avg" column
//                                                        (42.04, 31.71, 19.64 → 31.13)
//
// H is the proxy model's top-16 entropy at the position. `all` counts every position, also the
// ones with H ≤ 0.5 that belong to no tier. A tier without positions has accuracy null, and the
// average is then over the tiers that have some (null when none has): with a fixed proxy every
// checkpoint sees the same tiers, so averages of one comparison stay comparable.

import { evaluationTiers, TIERS, type TierThresholds } from "../rmt/tiers.ts";

export interface TierScore {
  /** Positions in the tier. */
  count: number;
  /** Of them, predicted right. */
  correct: number;
  /** correct / count, or null for an empty tier. */
  accuracy: number | null;
}

export interface TierAccuracy {
  all: TierScore;
  easy: TierScore;
  medium: TierScore;
  hard: TierScore;
  /** Mean of the three tier accuracies (the non-empty ones); null when all are empty. */
  average: number | null;
}

/** One scored position: the proxy's entropy there and whether the prediction was right. */
export interface ScoredPosition {
  entropy: number;
  correct: boolean;
}

function score(count: number, correct: number): TierScore {
  return { count, correct, accuracy: count > 0 ? correct / count : null };
}

/** Accuracy over all positions and per nested tier (see the top of this file). */
export function tierAccuracy(
  positions: readonly ScoredPosition[],
  thresholds: TierThresholds,
): TierAccuracy {
  const counts = { easy: 0, medium: 0, hard: 0 };
  const correct = { easy: 0, medium: 0, hard: 0 };
  let allCorrect = 0;
  for (const p of positions) {
    const tiers = evaluationTiers(p.entropy, thresholds);
    if (p.correct) allCorrect++;
    for (const tier of TIERS) {
      if (!tiers[tier]) continue;
      counts[tier]++;
      if (p.correct) correct[tier]++;
    }
  }
  const byTier = {
    easy: score(counts.easy, correct.easy),
    medium: score(counts.medium, correct.medium),
    hard: score(counts.hard, correct.hard),
  };
  const present = TIERS.map((t) => byTier[t].accuracy).filter((a): a is number => a !== null);
  return {
    all: score(positions.length, allCorrect),
    ...byTier,
    average: present.length > 0 ? present.reduce((a, b) => a + b, 0) / present.length : null,
  };
}
