// Entropy tiers: top-k entropy, the disjoint sampling tiers and the nested evaluation tiers at
// their exact boundaries, and the histograms.

import {
  DEFAULT_THRESHOLDS as T,
  entropyHistogram,
  evaluationTiers,
  positionsByTier,
  samplingTier,
  tierHistogram,
  topKEntropy,
} from "../../lib/rmt/tiers.ts";
import { assertEquals, assertNear, Rng } from "./rmt_helpers.ts";

Deno.test("tiers: top-k entropy matches the definition", () => {
  // 16 equal logits among 100 smaller ones: q uniform over 16 → H = ln 16.
  const logits = new Array(116).fill(-5);
  for (let i = 0; i < 16; i++) logits[i * 7] = 3;
  assertNear(topKEntropy(logits, 16), Math.log(16), 1e-12, "uniform top-16");
  // A random row against a straightforward computation.
  const rng = new Rng(5);
  const row = Array.from({ length: 50 }, () => rng.normal() * 2);
  const top = [...row].sort((a, b) => b - a).slice(0, 16);
  const z = top.reduce((s, x) => s + Math.exp(x), 0);
  const expected = -top.reduce((s, x) => s + (Math.exp(x) / z) * Math.log(Math.exp(x) / z), 0);
  assertNear(topKEntropy(row, 16), expected, 1e-12, "random row");
  assertNear(topKEntropy([1, 2, 3], 16), topKEntropy([3, 2, 1], 3), 1e-15, "k ≥ vocab");
  assertEquals(topKEntropy([0, 100], 1), 0, "k = 1");
});

Deno.test("tiers: sampling tiers are disjoint with H ≤ 0.5 never RL", () => {
  const cases: [number, string | null][] = [
    [0, null],
    [0.5, null],
    [0.5000001, "easy"],
    [1.0, "easy"],
    [1.0000001, "medium"],
    [1.5, "medium"],
    [1.5000001, "hard"],
    [9, "hard"],
    [NaN, null],
    [Infinity, null],
  ];
  for (const [H, tier] of cases) assertEquals(samplingTier(H, T), tier, `H = ${H}`);
});

Deno.test("tiers: evaluation tiers are nested", () => {
  assertEquals(evaluationTiers(0.5, T), { easy: false, medium: false, hard: false }, "0.5");
  assertEquals(evaluationTiers(0.7, T), { easy: true, medium: false, hard: false }, "0.7");
  assertEquals(evaluationTiers(1.2, T), { easy: true, medium: true, hard: false }, "1.2");
  assertEquals(evaluationTiers(1.5, T), { easy: true, medium: true, hard: false }, "1.5");
  assertEquals(evaluationTiers(2, T), { easy: true, medium: true, hard: true }, "2");
  const custom = { easy: 1, medium: 2, hard: 3 };
  assertEquals(samplingTier(1.5, custom), "easy", "configurable thresholds");
});

Deno.test("tiers: grouping positions and histograms", () => {
  const H = [NaN, 0.2, 0.6, 1.1, 1.6, 0.9, 2.5, 0.5];
  assertEquals(positionsByTier(H, T), { easy: [2, 5], medium: [3], hard: [4, 6] }, "by tier");
  assertEquals(positionsByTier(H, T, 4), { easy: [5], medium: [], hard: [4, 6] }, "min position");
  assertEquals(
    tierHistogram(H, T),
    { below: 2, easy: 2, medium: 1, hard: 2, missing: 1, total: 8 },
    "tier histogram",
  );
  assertEquals(entropyHistogram([0, 0.24, 0.25, 0.9, 100, NaN], 0.25, 4), [2, 1, 0, 2], "bins");
});
