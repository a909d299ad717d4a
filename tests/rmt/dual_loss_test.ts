// The dual objective: the NTP mask m_p = 1[p ∉ C] laid out per logits row, its normalisation,
// and L = L_RL + λ·L_NTP.

import { dualLoss, ntpMask, ntpWeights, weightedNll } from "../../lib/rmt/dual_loss.ts";
import { assertClose, assertEquals, assertNear, assertThrows } from "./rmt_helpers.ts";

Deno.test("dual loss: the mask leaves out RL positions and padding", () => {
  // N = 6: rows 0..4 predict positions 1..5.
  const mask = ntpMask({ sequenceLength: 6, rlPositions: [[2, 4], [], [5]], lengths: [6, 6, 4] });
  assertEquals(Array.from(mask), [1, 0, 1, 0, 1, /**/ 1, 1, 1, 1, 1, /**/ 1, 1, 1, 0, 0], "mask");
  assertThrows(
    () => ntpMask({ sequenceLength: 6, rlPositions: [[0]] }),
    ["RL position 0"],
    "p = 0",
  );
  assertThrows(
    () => ntpMask({ sequenceLength: 6, rlPositions: [[6]] }),
    ["RL position 6"],
    "p = N",
  );
});

Deno.test("dual loss: weights are λ·m_p / Σm (mean) or λ·m_p (sum)", () => {
  const mask = ntpMask({ sequenceLength: 5, rlPositions: [[1], [3, 4]] }); // 3 + 2 unmasked
  const mean = ntpWeights(mask, { normalise: "mean", scale: 0.1 });
  assertClose(mean, [0, 0.02, 0.02, 0.02, 0.02, 0.02, 0, 0], { rtol: 1e-6, atol: 0 }, "mean");
  const sum = ntpWeights(mask, { normalise: "sum", scale: 0.1 });
  assertClose(sum, [0, 0.1, 0.1, 0.1, 0.1, 0.1, 0, 0], { rtol: 1e-6, atol: 0 }, "sum");
  const step = ntpWeights(mask, { normalise: "mean", scale: 1, denominator: 10 });
  assertClose(step, [0, 0.1, 0.1, 0.1, 0.1, 0.1, 0, 0], { rtol: 1e-6, atol: 0 }, "step-wide");
  const none = ntpWeights(new Uint8Array(4), { normalise: "mean", scale: 1 });
  assertEquals(Array.from(none), [0, 0, 0, 0], "nothing unmasked");
});

Deno.test("dual loss: L = L_RL + λ·L_NTP with L_NTP the mean NLL over unmasked positions", () => {
  const logProbs = [-1, -2, -3, -4];
  const mask = Uint8Array.from([1, 0, 1, 1]);
  const unit = ntpWeights(mask, { normalise: "mean", scale: 1 });
  const ntp = weightedNll(logProbs, unit);
  assertNear(ntp, (1 + 3 + 4) / 3, 1e-6, "mean NLL");
  assertNear(dualLoss(0.7, ntp, 0.1), 0.7 + 0.1 * (8 / 3), 1e-6, "dual");
  // Scaling the weights by λ gives the λ·L_NTP term directly.
  const scaled = weightedNll(logProbs, ntpWeights(mask, { normalise: "mean", scale: 0.1 }));
  assertNear(scaled, 0.1 * ntp, 1e-6, "scaled weights");
});
