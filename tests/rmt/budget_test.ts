// The token budget: B_t = max(B_min, floor(B_0 · γ^(t/T))), its modes and the 2·B_t cap.

import {
  budgetAt,
  type BudgetSettings,
  dynamicBudget,
  reasoningCap,
} from "../../lib/rmt/budget.ts";
import { assertEquals, assertThrows } from "./rmt_helpers.ts";

const PAPER = { initial: 800, min: 1, decay: 0.2 };

Deno.test("budget: the paper's schedule at hand-computed steps", () => {
  // 800·0.2^0 = 800; 800·0.2^0.5 = 357.77…; 800·0.2^0.25 = 534.99…; 800·0.2 = 160
  assertEquals(dynamicBudget(0, 1000, PAPER), 800, "t = 0");
  assertEquals(dynamicBudget(500, 1000, PAPER), 357, "t = T/2");
  assertEquals(dynamicBudget(250, 1000, PAPER), 534, "t = T/4");
  assertEquals(dynamicBudget(1000, 1000, PAPER), 160, "t = T");
});

Deno.test("budget: floors, and never goes below B_min", () => {
  // 10·0.5^(1/2) = 7.07 → 7
  assertEquals(dynamicBudget(1, 2, { initial: 10, min: 1, decay: 0.5 }), 7, "floor");
  // 4·0.01 = 0.04 → floor 0 → B_min
  assertEquals(dynamicBudget(10, 10, { initial: 4, min: 1, decay: 0.01 }), 1, "B_min = 1");
  assertEquals(dynamicBudget(10, 10, { initial: 4, min: 3, decay: 0.01 }), 3, "B_min = 3");
  // Against the formula written out, every step of a short run.
  for (let t = 0; t <= 37; t++) {
    const expected = Math.max(2, Math.floor(50 * Math.pow(0.3, t / 37)));
    assertEquals(dynamicBudget(t, 37, { initial: 50, min: 2, decay: 0.3 }), expected, `t = ${t}`);
  }
  // Monotone non-increasing.
  let previous = Infinity;
  for (let t = 0; t <= 1000; t++) {
    const b = dynamicBudget(t, 1000, PAPER);
    if (b > previous) throw new Error(`budget grew at t = ${t}`);
    previous = b;
  }
  assertThrows(() => dynamicBudget(0, 0, PAPER), ["total steps"], "T = 0");
});

Deno.test("budget: modes and the hard cap 2·B_t", () => {
  const s: BudgetSettings = { mode: "dynamic", ...PAPER, maxReasoningTokens: 2048 };
  assertEquals(budgetAt(0, 1000, s), { budget: 800, cap: 1600 }, "dynamic t = 0");
  assertEquals(budgetAt(1000, 1000, s), { budget: 160, cap: 320 }, "dynamic t = T");
  assertEquals(
    budgetAt(1000, 1000, { ...s, mode: "constant" }),
    { budget: 800, cap: 1600 },
    "constant",
  );
  assertEquals(budgetAt(500, 1000, { ...s, mode: "fixed" }), { budget: null, cap: 2048 }, "fixed");
  assertEquals(reasoningCap(800, 1000), 1000, "cap limited by the absolute maximum");
  assertEquals(reasoningCap(3, 1000), 6, "cap 2·B");
});
