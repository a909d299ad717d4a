// Curriculum p_t at and around the switch points, the tier draw (renormalised over non-empty
// tiers, without replacement, reproducible from (seed, step, sequence)), and the RPT and
// no-curriculum selectors.

import {
  curriculumMix,
  type CurriculumSettings,
  drawByTier,
  drawUniform,
  type SelectionRequest,
  selectRlPositions,
  type TierMix,
} from "../../lib/rmt/curriculum.ts";
import { DEFAULT_THRESHOLDS } from "../../lib/rmt/tiers.ts";
import { assert, assertEquals, assertNear } from "./rmt_helpers.ts";

const P1: TierMix = { easy: 0.6, medium: 0.3, hard: 0.1 };
const P2: TierMix = { easy: 0.1, medium: 0.3, hard: 0.6 };
const SPEC: CurriculumSettings = { t1: 0.3, t2: 0.7, p1: P1, p2: P2 };

function spec(t: number, T: number): TierMix {
  // The spec's formula written out with t1 = 0.3T, t2 = 0.7T.
  const t1 = (3 * T) / 10;
  const t2 = (7 * T) / 10;
  if (t < t1) return P1;
  if (t >= t2) return P2;
  const tau = (t - t1) / (t2 - t1);
  return {
    easy: (1 - tau) * P1.easy + tau * P2.easy,
    medium: (1 - tau) * P1.medium + tau * P2.medium,
    hard: (1 - tau) * P1.hard + tau * P2.hard,
  };
}

function assertMix(actual: TierMix, expected: TierMix, what: string) {
  for (const tier of ["easy", "medium", "hard"] as const) {
    assertNear(actual[tier], expected[tier], 1e-12, `${what} ${tier}`);
  }
}

Deno.test("curriculum: p_t before, at and after the switch points", () => {
  assertEquals(curriculumMix(0, 100, SPEC), P1, "t = 0");
  assertEquals(curriculumMix(29, 100, SPEC), P1, "t just before t1");
  assertEquals(curriculumMix(30, 100, SPEC), P1, "t = t1 exactly: τ = 0");
  assertMix(curriculumMix(50, 100, SPEC), { easy: 0.35, medium: 0.3, hard: 0.35 }, "midpoint");
  assertMix(curriculumMix(69, 100, SPEC), spec(69, 100), "t just before t2");
  assertEquals(curriculumMix(70, 100, SPEC), P2, "t = t2 exactly");
  assertEquals(curriculumMix(100, 100, SPEC), P2, "t = T");
  // Awkward T where t1·T is not exact in floating point (0.7·90 = 62.99999999999999).
  assertEquals(curriculumMix(63, 90, { ...SPEC, t1: 0.7, t2: 0.9 }), P1, "t = 0.7·90");
  for (let t = 0; t <= 1000; t += 7) {
    assertMix(curriculumMix(t, 1000, SPEC), spec(t, 1000), `t=${t}`);
  }
  // t1 = t2: a step from p1 to p2.
  const step = { ...SPEC, t1: 0.5, t2: 0.5 };
  assertEquals([curriculumMix(4, 10, step), curriculumMix(5, 10, step)], [P1, P2], "t1 = t2");
});

const KEY = { seed: 7, step: 3, sequence: 0 };

Deno.test("curriculum: tier draws follow p_t, without replacement, reproducibly", () => {
  const byTier = { easy: [1, 2, 3, 4], medium: [10, 11, 12], hard: [20, 21] };
  const a = drawByTier(byTier, P1, 5, KEY);
  const b = drawByTier(byTier, P1, 5, KEY);
  assertEquals(a, b, "same key, same draw");
  assertEquals(new Set(a.map((s) => s.position)).size, 5, "no repeats");
  assert(a.every((s, i) => i === 0 || s.position > a[i - 1].position), "ascending");
  for (const s of a) assert(byTier[s.tier!].includes(s.position), `tier of ${s.position}`);
  const other = drawByTier(byTier, P1, 5, { ...KEY, step: 4 });
  assert(JSON.stringify(other) !== JSON.stringify(a), "another step draws differently");
  assertEquals(drawByTier(byTier, P1, 20, KEY).length, 9, "count above the eligible: all of them");

  // Frequencies over many sequences ≈ p_t (one draw each; 20 000 draws, ±0.015 ≈ 4.5σ).
  const counts = { easy: 0, medium: 0, hard: 0 };
  const draws = 20000;
  for (let sequence = 0; sequence < draws; sequence++) {
    counts[drawByTier(byTier, P1, 1, { ...KEY, sequence })[0].tier!]++;
  }
  for (const tier of ["easy", "medium", "hard"] as const) {
    assertNear(counts[tier] / draws, P1[tier], 0.015, `frequency of ${tier}`);
  }
});

Deno.test("curriculum: empty tiers are renormalised away", () => {
  // Only medium and hard positions: p1 renormalised to 0.75 / 0.25.
  const byTier = { easy: [], medium: [5, 6, 7, 8, 9], hard: [30, 31, 32] };
  const counts = { easy: 0, medium: 0, hard: 0 };
  const draws = 20000;
  for (let sequence = 0; sequence < draws; sequence++) {
    counts[drawByTier(byTier, P1, 1, { ...KEY, sequence })[0].tier!]++;
  }
  assertEquals(counts.easy, 0, "the empty tier is never drawn");
  assertNear(counts.medium / draws, 0.75, 0.015, "medium renormalised");
  // Only hard: every draw hard, until the tier empties.
  const hardOnly = drawByTier({ easy: [], medium: [], hard: [3, 4] }, P1, 5, KEY);
  assertEquals(
    hardOnly,
    [{ position: 3, tier: "hard" }, { position: 4, tier: "hard" }],
    "only hard",
  );
  // A tier emptied by earlier draws is renormalised away too: 3 draws from {1 easy, 2 hard}.
  assertEquals(
    drawByTier({ easy: [1], medium: [], hard: [8, 9] }, P1, 3, KEY).map((s) => s.position),
    [1, 8, 9],
    "emptied tier",
  );
  // Non-empty tiers with zero probability: nothing is drawn.
  assertEquals(
    drawByTier({ easy: [], medium: [], hard: [3] }, { easy: 1, medium: 0, hard: 0 }, 2, KEY),
    [],
    "zero mass",
  );
  assertEquals(drawByTier({ easy: [], medium: [], hard: [] }, P1, 2, KEY), [], "no positions");
});

Deno.test("curriculum: uniform draw is uniform and without replacement", () => {
  const candidates = [3, 5, 8, 13, 21];
  const counts = new Map<number, number>(candidates.map((c) => [c, 0]));
  const draws = 10000;
  for (let sequence = 0; sequence < draws; sequence++) {
    const [p] = drawUniform(candidates, 1, { ...KEY, sequence });
    counts.set(p, counts.get(p)! + 1);
  }
  for (const [p, n] of counts) assertNear(n / draws, 0.2, 0.02, `frequency of ${p}`);
  assertEquals(drawUniform(candidates, 9, KEY), candidates, "all of them, ascending");
  assertEquals(drawUniform(candidates, 3, KEY), drawUniform(candidates, 3, KEY), "reproducible");
});

Deno.test("curriculum: the selectors of each method", () => {
  const thresholds = DEFAULT_THRESHOLDS;
  //                 0    1    2    3    4    5    6    7    8    9
  const entropies = [NaN, 2.0, 0.3, 0.7, 1.2, 1.7, 0.5, 0.9, 3.0, 0.1];
  const request: SelectionRequest = {
    entropies,
    count: 10,
    minPosition: 2,
    step: 0,
    totalSteps: 10,
    key: KEY,
  };
  const positions = (s: { position: number }[]) => s.map((x) => x.position);
  assertEquals(selectRlPositions({ kind: "none" }, request), [], "ntp");
  // Curriculum: every eligible position (H > 0.5, p ≥ 2) when count exceeds them.
  const all = selectRlPositions({ kind: "curriculum", curriculum: SPEC, thresholds }, request);
  assertEquals(positions(all), [3, 4, 5, 7, 8], "curriculum eligible set");
  assertEquals(all.map((s) => s.tier), ["easy", "medium", "hard", "easy", "hard"], "their tiers");
  // RPT: H > threshold only.
  const rpt = selectRlPositions({ kind: "uniform-above", threshold: 1.0, thresholds }, request);
  assertEquals(positions(rpt), [4, 5, 8], "rpt: H > 1.0");
  const fewer = selectRlPositions(
    { kind: "uniform-above", threshold: 0.5, thresholds },
    { ...request, count: 2 },
  );
  assertEquals(fewer.length, 2, "rpt: up to the count");
  assert(fewer.every((s) => entropies[s.position] > 0.5 && s.position >= 2), "rpt: eligible");
  const mix = selectRlPositions(
    { kind: "fixed-mix", mix: { easy: 0, medium: 0, hard: 1 }, thresholds },
    request,
  );
  assertEquals(positions(mix), [5, 8], "fixed mix: hard only");
});
