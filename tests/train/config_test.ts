// The experiment config: spec defaults, one-line errors naming the key path (unknown key with
// a suggestion, wrong type, out of range, mixes that do not sum to 1, cross-key rules),
// --set overrides, extends chains, the resolved YAML round trip, the shipped presets and the
// reference table in configs/README.md.

import { methodSettings } from "../../lib/rmt/methods.ts";
import { PAPER_BUDGET_SENTENCE, PAPER_INSTRUCTION } from "../../lib/rmt/prompts.ts";
import {
  CONFIG_SCHEMA,
  configReferenceTable,
  configToYaml,
  defaultConfig,
  resolveConfig,
  resolveConfigText,
} from "../../lib/train/config.ts";
import { listFields } from "../../lib/train/config_schema.ts";
import { AssertionError, assertUserError } from "../helpers.ts";

function assertEquals<T>(actual: T, expected: T, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new AssertionError({ message: `${what}: got ${a}, expected ${e}` });
}

const REQUIRED = "model: {path: runs/m}\ndata: {train: data/t.jsonl}\n";

function load(yaml: string, overrides: string[] = []) {
  return resolveConfigText(REQUIRED + yaml, "test.yaml", overrides);
}

Deno.test("config: defaults are the spec's values", async () => {
  const { config: c } = await load("");
  assertEquals(c.method, "rmt", "method");
  assertEquals([c.budget.initial, c.budget.min, c.budget.decay], [800, 1, 0.2], "B_0, B_min, γ");
  assertEquals([c.rl.r_max, c.rl.length_weight], [1, 0.2], "r_max, w");
  assertEquals([c.curriculum.t1, c.curriculum.t2], [0.3, 0.7], "t1, t2");
  assertEquals(c.curriculum.p1, { easy: 0.6, medium: 0.3, hard: 0.1 }, "p1");
  assertEquals(c.curriculum.p2, { easy: 0.1, medium: 0.3, hard: 0.6 }, "p2");
  assertEquals([c.rl.group_size, c.rl.temperature], [8, 0.8], "G, temperature");
  assertEquals(
    [c.rl.grpo.clip_epsilon, c.rl.grpo.kl_beta, c.loss.ntp_weight],
    [0.2, 0, 0.1],
    "ε, β, λ",
  );
  assertEquals(
    [c.entropy.top_k, c.entropy.thresholds],
    [16, { easy: 0.5, medium: 1, hard: 1.5 }],
    "entropy",
  );
  assertEquals(
    [c.training.batch_size, c.training.lr, c.training.steps],
    [128, 1e-6, 1000],
    "batch, lr, steps",
  );
  assertEquals(
    [c.training.adam_beta1, c.training.adam_beta2, c.training.weight_decay],
    [0.9, 0.999, 0.01],
    "AdamW",
  );
  assertEquals(
    [c.rl.max_reasoning_tokens, c.eval.samples],
    [2048, 200],
    "max response, eval samples",
  );
  assertEquals(defaultConfig().model.path, null, "model.path has no default");
});

Deno.test("config: unknown keys name the path and suggest the closest", async () => {
  await assertUserError(() => load("rl:\n  grop:\n    size: 3\n"), [
    "test.yaml: unknown key rl.grop (did you mean rl.grpo?)",
  ], "rl.grop.size");
  await assertUserError(
    () => load("methd: rpt\n"),
    ["unknown key methd (did you mean method?)"],
    "top level",
  );
  await assertUserError(
    () => load("rl:\n  zzzzzzzz: 1\n"),
    ["unknown key rl.zzzzzzzz"],
    "no suggestion",
  );
  const m = await assertUserError(() => load("", ["rl.grop.size=3"]), [
    "--set rl.grop.size=3: unknown key rl.grop (did you mean rl.grpo?)",
  ], "--set");
  if (m.includes("did you mean rl.grpo?)?")) throw new Error("doubled");
});

Deno.test("config: wrong types and ranges name the path", async () => {
  await assertUserError(() => load("rl:\n  group_size: eight\n"), [
    'rl.group_size: expected an integer ≥ 2, got the string "eight"',
  ], "string for int");
  await assertUserError(() => load("rl:\n  group_size: 2.5\n"), [
    "rl.group_size: expected an integer",
  ], "fraction for int");
  await assertUserError(() => load("rl:\n  group_size: 1\n"), [
    "rl.group_size: 1 is out of range (expected an integer ≥ 2)",
  ], "G = 1");
  await assertUserError(() => load("rl:\n  grpo:\n    clip_epsilon: 1.5\n"), [
    "rl.grpo.clip_epsilon: 1.5 is out of range (expected a number in (0, 1))",
  ], "ε");
  await assertUserError(
    () => load("method: rmt2\n"),
    ["method: expected one of ntp | rpt | rmt"],
    "enum",
  );
  await assertUserError(() => load("training:\n  lr: .nan\n"), [
    "training.lr: expected a number > 0",
  ], "NaN");
  await assertUserError(() => load("rl: [1, 2]\n"), [
    "rl: expected a mapping of keys, got a list",
  ], "section as list");
  await assertUserError(() => load("prompt:\n  chat_template: yes\n"), [
    "prompt.chat_template: expected true or false",
  ], "bool");
  await assertUserError(() => load("rl:\n  top_k: 1\n  top_k: 2\n"), [
    "test.yaml: invalid YAML: Map keys must be unique at line",
  ], "duplicate");
});

Deno.test("config: rules across keys", async () => {
  await assertUserError(() => load("curriculum:\n  p1: {easy: 0.5, medium: 0.3, hard: 0.1}\n"), [
    "curriculum.p1: easy + medium + hard must sum to 1, got 0.9",
  ], "p1 sum");
  await assertUserError(() => load("", ["curriculum.p2.hard=0.7"]), [
    "test.yaml (with --set): curriculum.p2: easy + medium + hard must sum to 1",
  ], "p2 via --set");
  await assertUserError(() => load("curriculum: {t1: 0.8}\n"), [
    "curriculum.t1: must be ≤ curriculum.t2",
  ], "t1 > t2");
  await assertUserError(() => load("budget: {initial: 1500}\n"), [
    "budget.initial: the reasoning cap 2·B_0 = 3000 exceeds rl.max_reasoning_tokens",
  ], "cap");
  await load("method: rpt\nbudget: {initial: 1500}\n"); // RPT has no budget: no cap check
  await assertUserError(() => load("entropy:\n  thresholds: {medium: 2}\n"), [
    "entropy.thresholds: must satisfy easy < medium < hard",
  ], "thresholds");
  await assertUserError(() => load("method: rmt-no-budget\nbudget: {mode: dynamic}\n"), [
    "budget.mode: dynamic contradicts method rmt-no-budget",
  ], "conflict");
  await assertUserError(() => resolveConfigText("method: ntp\n", "t.yaml"), [
    "model.path: required",
  ], "model.path");
  await assertUserError(
    () => resolveConfigText("model: {path: m}\nmethod: grpo-math\n", "t.yaml"),
    ["data.math_train: required by method grpo-math"],
    "math data",
  );
  await assertUserError(() => load("training: {batch_size: 10, grad_accumulation: 3}\n"), [
    "training.grad_accumulation",
  ], "accumulation");
  // 1/3 + 1/3 + 1/3 is within the tolerance.
  await load("ablation:\n  fixed_mix: {easy: 0.3333333, medium: 0.3333333, hard: 0.3333334}\n");
});

Deno.test("config: --set overrides, applied in order, values as YAML scalars", async () => {
  const { config } = await load("rl: {group_size: 4}\n", [
    "rl.group_size=16",
    "method=rpt",
    "training.lr=3e-5",
    "model.entropy_model=runs/proxy",
    "prompt.chat_template=false",
    "curriculum.p1={easy: 0.5, medium: 0.5, hard: 0}",
    "rl.group_size=12",
    "model.entropy_model=null",
  ]);
  assertEquals(
    [
      config.rl.group_size,
      config.method,
      config.training.lr,
      config.model.entropy_model,
      config.prompt.chat_template,
    ],
    [12, "rpt", 3e-5, null, false],
    "overridden",
  );
  assertEquals(config.curriculum.p1, { easy: 0.5, medium: 0.5, hard: 0 }, "a mapping value");
  assertEquals(config.rl.temperature, 0.8, "others untouched");
  await assertUserError(() => load("", ["rl.group_size"]), [
    "--set rl.group_size: expected key.path=value",
  ], "no =");
  await assertUserError(() => load("", ["rl.group_size=x"]), [
    "--set rl.group_size=x: rl.group_size: expected an integer",
  ], "type");
});

Deno.test("config: extends chains merge base first, relative to the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rmt-config-test-" });
  try {
    await Deno.mkdir(`${dir}/presets`);
    await Deno.writeTextFile(
      `${dir}/base.yaml`,
      REQUIRED + "seed: 5\nrl:\n  group_size: 4\n  temperature: 0.6\n",
    );
    await Deno.writeTextFile(
      `${dir}/presets/mid.yaml`,
      "extends: ../base.yaml\nrl: {group_size: 6}\n",
    );
    await Deno.writeTextFile(`${dir}/presets/top.yaml`, "extends: mid.yaml\nmethod: rpt\n");
    const { config, files } = await resolveConfig(`${dir}/presets/top.yaml`, ["seed=9"]);
    assertEquals([config.method, config.rl.group_size, config.rl.temperature, config.seed], [
      "rpt",
      6,
      0.6,
      9,
    ], "merged");
    assertEquals(
      files,
      [`${dir}/base.yaml`, `${dir}/presets/mid.yaml`, `${dir}/presets/top.yaml`],
      "files",
    );
    // Errors name the file that has the problem.
    await Deno.writeTextFile(`${dir}/bad.yaml`, "extends: base.yaml\nrl: {temprature: 1}\n");
    await assertUserError(() => resolveConfig(`${dir}/bad.yaml`), [
      `${dir}/bad.yaml: unknown key rl.temprature (did you mean rl.temperature?)`,
    ], "typo in child");
    await Deno.writeTextFile(`${dir}/a.yaml`, "extends: b.yaml\n");
    await Deno.writeTextFile(`${dir}/b.yaml`, "extends: a.yaml\n");
    await assertUserError(() => resolveConfig(`${dir}/a.yaml`), ["extends cycle"], "cycle");
    await assertUserError(() => resolveConfig(`${dir}/missing.yaml`), [
      "missing.yaml: cannot read the config: no such file",
    ], "missing");
    await Deno.writeTextFile(`${dir}/c.yaml`, "extends: nowhere.yaml\n");
    await assertUserError(() => resolveConfig(`${dir}/c.yaml`), [
      "nowhere.yaml: cannot read the config",
    ], "missing base");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config: the resolved YAML loads back to the same config", async () => {
  const { config, yamlText } = await load("method: rmt-no-curriculum\ntraining: {lr: 1.0e-5}\n", [
    "rl.grpo.delta=1e-8",
  ]);
  const again = await resolveConfigText(yamlText, "resolved.yaml");
  assertEquals(again.config, config, "round trip");
  assertEquals(again.yamlText, yamlText, "stable text");
  assertEquals(configToYaml(config), yamlText, "configToYaml");
  for (const { path } of listFields(CONFIG_SCHEMA)) {
    const leaf = path.split(".").pop()!;
    if (!yamlText.includes(`${leaf}:`)) throw new Error(`resolved YAML lacks ${path}`);
  }
});

Deno.test("config: the shipped presets load and differ only in the method", async () => {
  const root = new URL("../../", import.meta.url).pathname;
  const methods: Record<string, string> = {};
  for (const name of ["ntp", "rpt", "rmt"]) {
    const { config, files } = await resolveConfig(`${root}configs/${name}.yaml`);
    methods[name] = config.method;
    assertEquals(files.length, 2, `${name} extends small.yaml`);
    const s = methodSettings(config);
    assertEquals(s.method, name, `${name} settings`);
  }
  assertEquals(methods, { ntp: "ntp", rpt: "rpt", rmt: "rmt" }, "methods");
});

Deno.test("config: configs/README.md lists every key with its default", async () => {
  // Rows compared with runs of spaces collapsed (deno fmt pads the table's cells).
  const squash = (s: string) => s.replace(/ +/g, " ");
  const readme = squash(
    await Deno.readTextFile(new URL("../../configs/README.md", import.meta.url)),
  );
  const rows = configReferenceTable().split("\n").filter((row) => row.startsWith("| `"));
  assertEquals(rows.length, listFields(CONFIG_SCHEMA).length, "one row per key");
  for (const text of [PAPER_INSTRUCTION, PAPER_BUDGET_SENTENCE]) {
    if (!readme.includes(text)) throw new AssertionError({ message: `README lacks ${text}` });
  }
  for (const row of rows) {
    if (!readme.includes(squash(row))) {
      throw new AssertionError({
        message:
          `configs/README.md is out of date (regenerate with configReferenceTable()): ${row}`,
      });
    }
  }
});
