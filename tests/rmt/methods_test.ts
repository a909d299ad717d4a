// The method table and methodSettings: each method's RL set, reward, budget and NTP weight,
// the "auto" overrides, and contradictions.

import { METHOD_TABLE, methodConflict, METHODS, methodSettings } from "../../lib/rmt/methods.ts";
import { defaultConfig, type RmtConfig } from "../../lib/train/config.ts";
import { assertEquals, assertThrows } from "./rmt_helpers.ts";

function configFor(method: RmtConfig["method"], edit: (c: RmtConfig) => void = () => {}) {
  const c = defaultConfig();
  c.method = method;
  edit(c);
  return c;
}

Deno.test("methods: every method resolves as the table says", () => {
  const summary = (method: RmtConfig["method"]) => {
    const s = methodSettings(configFor(method));
    return [
      s.rl,
      s.selector.kind,
      s.reward,
      s.budget?.mode ?? null,
      s.budgetInPrompt,
      s.ntp.kind,
      s.ntp.weight,
    ];
  };
  assertEquals(summary("ntp"), [false, "none", null, null, false, "all", 1], "ntp");
  assertEquals(summary("rpt"), [true, "uniform-above", "prefix", "fixed", false, "none", 0], "rpt");
  assertEquals(
    summary("rmt"),
    [true, "curriculum", "exact", "dynamic", true, "not-rl", 0.1],
    "rmt",
  );
  assertEquals(summary("rmt-no-budget"), [
    true,
    "curriculum",
    "exact",
    "fixed",
    false,
    "not-rl",
    0.1,
  ], "no budget");
  assertEquals(summary("rmt-no-curriculum"), [
    true,
    "uniform-above",
    "exact",
    "dynamic",
    true,
    "not-rl",
    0.1,
  ], "no curriculum");
  assertEquals(
    summary("rmt-no-ntp"),
    [true, "curriculum", "exact", "dynamic", true, "none", 0],
    "no ntp",
  );
  assertEquals(
    summary("grpo-math"),
    [true, "math-problems", "math", "fixed", false, "none", 0],
    "grpo-math",
  );
  assertEquals(Object.keys(METHOD_TABLE), [...METHODS], "table covers every method");
});

Deno.test("methods: selectors carry the config's numbers", () => {
  const rpt = methodSettings(configFor("rpt", (c) => (c.rpt.entropy_threshold = 1.25)));
  assertEquals(
    rpt.selector.kind === "uniform-above" && rpt.selector.threshold,
    1.25,
    "rpt threshold",
  );
  const uniform = methodSettings(configFor("rmt-no-curriculum"));
  assertEquals(
    uniform.selector.kind === "uniform-above" && uniform.selector.threshold,
    0.5,
    "uniform: H > easy",
  );
  const mix = methodSettings(
    configFor("rmt-no-curriculum", (c) => (c.ablation.no_curriculum = "fixed_mix")),
  );
  assertEquals(mix.selector.kind === "fixed-mix" && mix.selector.mix, {
    easy: 1 / 3,
    medium: 1 / 3,
    hard: 1 / 3,
  }, "fixed mix");
  const rmt = methodSettings(configFor("rmt", (c) => (c.curriculum.t1 = 0.2)));
  assertEquals(
    rmt.selector.kind === "curriculum" && rmt.selector.curriculum.t1,
    0.2,
    "curriculum t1",
  );
  assertEquals(
    rmt.budget,
    { mode: "dynamic", initial: 800, min: 1, decay: 0.2, maxReasoningTokens: 2048 },
    "budget settings",
  );
  assertEquals([rmt.grpo.groupSize, rmt.grpo.clipEpsilon, rmt.grpo.klBeta, rmt.grpo.std], [
    8,
    0.2,
    0,
    "population",
  ], "grpo");
});

Deno.test("methods: auto keys and contradictions", () => {
  assertEquals(
    methodSettings(configFor("rmt", (c) => (c.rl.reward = "prefix"))).reward,
    "prefix",
    "reward override",
  );
  assertEquals(
    methodSettings(configFor("rmt", (c) => (c.budget.mode = "constant"))).budget?.mode,
    "constant",
    "constant budget",
  );
  assertEquals(
    methodSettings(configFor("rmt-no-budget", (c) => (c.budget.mode = "constant"))).budgetInPrompt,
    true,
    "no-budget, constant",
  );
  const bad = configFor("rmt-no-budget", (c) => (c.budget.mode = "dynamic"));
  assertEquals(methodConflict(bad)?.startsWith("budget.mode:"), true, "conflict names the key");
  assertThrows(() => methodSettings(bad), ["contradicts"], "methodSettings refuses it");
  assertEquals(
    methodConflict(configFor("grpo-math", (c) => (c.rl.reward = "exact")))?.startsWith(
      "rl.reward:",
    ),
    true,
    "math reward",
  );
});
