// GRPO: group advantages (population / sample std, equal-reward groups exactly zero and
// counted), the clipped surrogate and the k3 KL against a straightforward reference, and the
// gradient with respect to logπ_new against central finite differences.

import {
  type Aggregation,
  batchAdvantages,
  clippedSurrogate,
  countZeroAdvantageGroups,
  groupAdvantages,
} from "../../lib/rmt/grpo.ts";
import {
  assertClose,
  assertEquals,
  assertNear,
  assertThrows,
  finiteDifference,
  Rng,
} from "./rmt_helpers.ts";

Deno.test("grpo: advantages with population and sample std", () => {
  const r = [1, 0, 0, 1, 1, 0, 0, 0];
  const mean = 3 / 8;
  const pop = Math.sqrt(r.reduce((s, x) => s + (x - mean) ** 2, 0) / 8);
  const sample = Math.sqrt(r.reduce((s, x) => s + (x - mean) ** 2, 0) / 7);
  const delta = 1e-6;
  const a = groupAdvantages(r, delta);
  assertClose(a.advantages, r.map((x) => (x - mean) / (pop + delta)), { rtol: 1e-14, atol: 0 });
  assertEquals(a.zeroAdvantage, false, "not zero");
  const b = groupAdvantages(r, delta, "sample");
  assertClose(b.advantages, r.map((x) => (x - mean) / (sample + delta)), { rtol: 1e-14, atol: 0 });
  const sum = Array.from(a.advantages).reduce((s, x) => s + x, 0);
  assertNear(sum, 0, 1e-12, "advantages sum to 0");
});

Deno.test("grpo: equal-reward groups give exactly zero advantages and are counted", () => {
  const equal = groupAdvantages([0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], 1e-6);
  assertEquals(Array.from(equal.advantages), [0, 0, 0, 0, 0, 0, 0], "exactly zero");
  assertEquals(equal.zeroAdvantage, true, "flagged");
  const batch = batchAdvantages([1, 1, 1, 1, 0, 0, 0.5, 0.5, 0.5], 3, 1e-6);
  assertEquals([batch.groups, batch.zeroAdvantageGroups], [3, 2], "two of three groups");
  assertEquals(Array.from(batch.advantages.slice(0, 3)), [0, 0, 0], "first group zero");
  assertEquals(countZeroAdvantageGroups([[1, 1], [0, 1], [0, 0], [2]]), 3, "count");
  assertThrows(() => batchAdvantages([1, 2, 3], 2, 1e-6), ["groups of 2"], "ragged");
});

/** The loss written the plain way: per rollout, per token, then the two aggregations. */
function referenceLoss(
  newLp: ArrayLike<number>,
  oldLp: number[],
  refLp: number[],
  adv: number[],
  lengths: number[],
  eps: number,
  beta: number,
  aggregation: Aggregation,
): number {
  const perRollout: number[][] = [];
  let j = 0;
  for (let i = 0; i < lengths.length; i++) {
    const terms: number[] = [];
    for (let k = 0; k < lengths[i]; k++, j++) {
      const rho = Math.exp(newLp[j] - oldLp[j]);
      const clipped = Math.min(Math.max(rho, 1 - eps), 1 + eps);
      const surrogate = Math.min(rho * adv[i], clipped * adv[i]);
      const d = refLp[j] - newLp[j];
      terms.push(-surrogate + beta * (Math.exp(d) - d - 1));
    }
    perRollout.push(terms);
  }
  if (aggregation === "token_mean") {
    const all = perRollout.flat();
    return all.reduce((s, x) => s + x, 0) / all.length;
  }
  const means = perRollout.filter((t) => t.length > 0).map((t) =>
    t.reduce((s, x) => s + x, 0) / t.length
  );
  return means.reduce((s, x) => s + x, 0) / means.length;
}

Deno.test("grpo: surrogate, KL and gradient vs reference and finite differences", () => {
  const rng = new Rng(11);
  const lengths = [3, 1, 0, 5, 2];
  const tokens = lengths.reduce((s, x) => s + x, 0);
  const eps = 0.2;
  const edges = [Math.log(1 - eps), Math.log(1 + eps)];
  // log-ratios in [−0.5, 0.5], kept away from the clip edges (the gradient jumps there).
  const logRatio = Array.from({ length: tokens }, () => {
    let x: number;
    do x = rng.next() - 0.5; while (edges.some((e) => Math.abs(x - e) < 0.01));
    return x;
  });
  const oldLp = Array.from({ length: tokens }, () => -1 - 2 * rng.next());
  const newLp = oldLp.map((o, j) => o + logRatio[j]);
  const refLp = oldLp.map((o) => o + 0.3 * rng.normal());
  const adv = [1.2, -0.7, 0.5, -1.5, 0.9];
  for (const aggregation of ["token_mean", "sequence_mean"] as const) {
    for (const beta of [0, 0.05]) {
      const what = `${aggregation}, β = ${beta}`;
      const result = clippedSurrogate(
        { newLogProbs: newLp, oldLogProbs: oldLp, refLogProbs: refLp, advantages: adv, lengths },
        { clipEpsilon: eps, klBeta: beta, aggregation },
      );
      const f = (x: ArrayLike<number>) =>
        referenceLoss(x, oldLp, refLp, adv, lengths, eps, beta, aggregation);
      assertNear(result.loss, f(newLp), 1e-13, `${what}: loss`);
      assertNear(result.policyLoss + beta * result.kl, result.loss, 1e-13, `${what}: parts`);
      const numeric = finiteDifference(f, newLp, 1e-6);
      assertClose(result.gradient, numeric, { rtol: 1e-6, atol: 1e-8 }, `${what}: gradient`);
    }
  }
});

Deno.test("grpo: clipping zeroes the gradient on the right side only", () => {
  const s = { clipEpsilon: 0.2, klBeta: 0, aggregation: "token_mean" as const };
  const one = (ratio: number, A: number) =>
    clippedSurrogate(
      { newLogProbs: [Math.log(ratio)], oldLogProbs: [0], advantages: [A], lengths: [1] },
      s,
    );
  assertEquals(one(1.5, 1).gradient[0], 0, "A > 0, ρ > 1 + ε: clipped");
  assertNear(one(0.5, 1).gradient[0], -0.5, 1e-15, "A > 0, ρ < 1 − ε: unclipped, −ρA");
  assertEquals(one(0.5, -1).gradient[0], 0, "A < 0, ρ < 1 − ε: clipped");
  assertNear(one(1.5, -1).gradient[0], 1.5, 1e-15, "A < 0, ρ > 1 + ε: unclipped, −ρA");
  assertNear(one(1, 2).gradient[0], -2, 1e-15, "on-policy: −A");
  assertNear(one(1.5, 1).loss, -1.2, 1e-15, "clipped loss −(1 + ε)A");
  assertEquals(one(1.5, 1).clipFraction, 1, "clip fraction");
  // k3 is 0 where π_θ = π_ref, and its gradient 1 − exp(ref − new).
  const kl = clippedSurrogate(
    {
      newLogProbs: [-1, -2],
      oldLogProbs: [-1, -2],
      refLogProbs: [-1, -1.5],
      advantages: [0],
      lengths: [2],
    },
    { ...s, klBeta: 1 },
  );
  const d = 0.5;
  assertNear(kl.kl, (Math.exp(d) - d - 1) / 2, 1e-15, "k3 mean");
  assertClose(kl.gradient, [0, (1 - Math.exp(d)) / 2], { rtol: 1e-14, atol: 1e-16 }, "k3 grad");
  assertThrows(
    () =>
      clippedSurrogate({ newLogProbs: [0], oldLogProbs: [0], advantages: [1], lengths: [1] }, {
        ...s,
        klBeta: 0.1,
      }),
    ["reference"],
    "β > 0 without a reference",
  );
});
