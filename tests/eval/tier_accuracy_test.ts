// Accuracy by nested evaluation tier: easy H > 0.5 ⊇ medium H > 1.0 ⊇ hard H > 1.5; the
// average is the mean of the three tier accuracies, as the paper's avg column.

import { tierAccuracy } from "../../lib/eval/tier_accuracy.ts";
import { DEFAULT_THRESHOLDS } from "../../lib/rmt/tiers.ts";
import { assert, assertEquals } from "../helpers.ts";

Deno.test("tier accuracy: nested tiers, counts and accuracies", () => {
  const positions = [
    { entropy: 0.2, correct: true }, // no tier
    { entropy: 0.5, correct: true }, // no tier (H > 0.5 is strict)
    { entropy: 0.7, correct: true }, // easy
    { entropy: 1.0, correct: false }, // easy
    { entropy: 1.2, correct: true }, // easy, medium
    { entropy: 1.6, correct: false }, // easy, medium, hard
    { entropy: 2.5, correct: true }, // easy, medium, hard
    { entropy: NaN, correct: false }, // no entropy: no tier
  ];
  const a = tierAccuracy(positions, DEFAULT_THRESHOLDS);
  assertEquals(a.all, { count: 8, correct: 5, accuracy: 0.625 }, "all");
  assertEquals(a.easy, { count: 5, correct: 3, accuracy: 0.6 }, "easy");
  assertEquals(a.medium, { count: 3, correct: 2, accuracy: 2 / 3 }, "medium");
  assertEquals(a.hard, { count: 2, correct: 1, accuracy: 0.5 }, "hard");
  assert(Math.abs(a.average! - (0.6 + 2 / 3 + 0.5) / 3) < 1e-12, `average ${a.average}`);
  // Nested: every hard position is medium, every medium one easy.
  assert(a.hard.count <= a.medium.count && a.medium.count <= a.easy.count, "nested counts");
});

Deno.test("tier accuracy: the paper's avg is the mean of its three tiers", () => {
  // Build tiers with accuracies 42.04 / 31.71 / 19.64 %, from disjoint bands of entropy:
  // hard 491 / 2,500; medium adds 2,680 / 7,500 (3,171 / 10,000); easy adds 5,237 / 10,000
  // (8,408 / 20,000).
  const band = (entropy: number, count: number, correct: number) =>
    Array.from({ length: count }, (_, i) => ({ entropy, correct: i < correct }));
  const hard = band(2, 2500, 491);
  const mediumOnly = band(1.2, 7500, 2680);
  const easyOnly = band(0.7, 10000, 5237);
  const a = tierAccuracy([...hard, ...mediumOnly, ...easyOnly], DEFAULT_THRESHOLDS);
  assertEquals(
    [a.easy.accuracy, a.medium.accuracy, a.hard.accuracy],
    [0.4204, 0.3171, 0.1964],
    "tiers",
  );
  assertEquals(Number((100 * a.average!).toFixed(2)), 31.13, "the paper's avg, 31.13");
});

Deno.test("tier accuracy: empty tiers are null and left out of the average", () => {
  const a = tierAccuracy(
    [{ entropy: 0.8, correct: true }, { entropy: 0.9, correct: false }],
    DEFAULT_THRESHOLDS,
  );
  assertEquals(a.medium, { count: 0, correct: 0, accuracy: null }, "medium");
  assertEquals(a.hard.accuracy, null, "hard");
  assertEquals(a.average, 0.5, "average over easy only");
  const none = tierAccuracy([], DEFAULT_THRESHOLDS);
  assertEquals(none.all.accuracy, null, "no positions");
  assertEquals(none.average, null, "no average");
});
