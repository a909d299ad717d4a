// The pipeline file (lib/pipeline/pipeline_config.ts): a valid file (config paths beside it,
// defaults filled), every error as one line naming the file and the key, and the shipped
// pipelines, each of whose training configs must resolve.

import {
  loadPipelineConfig,
  parsePipelineConfig,
  type PipelineConfig,
} from "../../lib/pipeline/pipeline_config.ts";
import { resolveConfig } from "../../lib/train/config.ts";
import { assert, assertEquals, assertUserError } from "../helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

const VALID = `
name: demo
base:
  init: {arch: llama, preset: tiny, seed: 5}
  pretrain: pretrain.yaml
midtrain:
  ntp: ntp.yaml
  rmt: sub/rmt.yaml
  rmt-no-budget: /abs/rmt-no-budget.yaml
ablations: [rmt, rmt-no-budget]
eval:
  data: data/math/heldout.jsonl
  samples: 50
  max_reasoning_tokens: 16
  temperature: 0.5
  seed: 3
posttrain: posttrain.yaml
math_eval:
  data: data/math/heldout.jsonl
  samples: 20
  max_new_tokens: 64
  temperature: 0
`;

/** The eval settings this test knows (the section may have grown more keys). */
const evalPart = (config: PipelineConfig) => {
  const { data, samples, max_reasoning_tokens, temperature, seed } = config.eval;
  return { data, samples, max_reasoning_tokens, temperature, seed };
};

Deno.test("pipeline_config: a valid file: config paths beside it, settings read", () => {
  const config = parsePipelineConfig(VALID, "configs/x/pipeline.yaml");
  assertEquals({ ...config, eval: evalPart(config) }, {
    file: "configs/x/pipeline.yaml",
    name: "demo",
    base: {
      init: { arch: "llama", preset: "tiny", seed: 5 },
      model: null,
      pretrain: "configs/x/pretrain.yaml",
    },
    midtrain: [
      ["ntp", "configs/x/ntp.yaml"],
      ["rmt", "configs/x/sub/rmt.yaml"],
      ["rmt-no-budget", "/abs/rmt-no-budget.yaml"],
    ],
    ablations: ["rmt", "rmt-no-budget"],
    // Data paths are relative to the folder rmt runs in, as in training configs: kept.
    eval: {
      data: "data/math/heldout.jsonl",
      samples: 50,
      max_reasoning_tokens: 16,
      temperature: 0.5,
      seed: 3,
    },
    posttrain: "configs/x/posttrain.yaml",
    mathEval: {
      data: "data/math/heldout.jsonl",
      samples: 20,
      max_new_tokens: 64,
      temperature: 0,
      seed: 0,
    },
  }, "parsed");
  // A file in the working folder: paths beside it are ./name.
  const here = parsePipelineConfig(VALID, "pipeline.yaml");
  assertEquals(here.midtrain[0], ["ntp", "./ntp.yaml"], "no folder in the file name");
});

Deno.test("pipeline_config: defaults, and an existing model as the base", () => {
  const minimal = parsePipelineConfig(
    [
      "name: small",
      "base:",
      "  model: models/m",
      "midtrain:",
      "  ntp: ntp.yaml",
      "eval: {data: held.jsonl}",
      "",
    ].join("\n"),
    "p/pipeline.yaml",
  );
  assertEquals(minimal.base, { init: null, model: "models/m", pretrain: null }, "base.model");
  assertEquals(minimal.ablations, [], "no ablations");
  assertEquals(
    evalPart(minimal),
    { data: "held.jsonl", samples: 200, max_reasoning_tokens: 96, temperature: 0, seed: 0 },
    "eval defaults",
  );
  assertEquals(minimal.eval.format, "compact", "eval.format defaults to compact");
  assertEquals([minimal.posttrain, minimal.mathEval], [null, null], "no post-training");
  const init = parsePipelineConfig(
    "name: n\nbase: {init: {}}\nmidtrain: {ntp: a.yaml}\neval: {data: d}\n" +
      "posttrain: post.yaml\nmath_eval: {data: m}\n",
    "pipeline.yaml",
  );
  assertEquals(init.base.init, { arch: "qwen2", preset: "tiny", seed: 1 }, "init defaults");
  assertEquals(
    init.mathEval,
    { data: "m", samples: 200, max_new_tokens: 256, temperature: 0, seed: 0 },
    "math_eval defaults",
  );
});

Deno.test("pipeline_config: every error is one line naming the file and the key", async () => {
  /** VALID with one line replaced (matched by its start) or removed (replacement null). */
  const edit = (start: string, replacement: string | null) => {
    const lines = VALID.split("\n");
    const at = lines.findIndex((l) => l.startsWith(start));
    assert(at >= 0, `no line starting ${JSON.stringify(start)}`);
    if (replacement === null) lines.splice(at, 1);
    else lines[at] = replacement;
    return lines.join("\n");
  };
  const noMathEval = VALID.slice(0, VALID.indexOf("math_eval:"));
  const cases: [string, string[], string][] = [
    [`${VALID}extra: 1\n`, ["extra", "unknown key"], "unknown top-level key"],
    [edit("  pretrain:", "  pretrian: p.yaml"), ["base.pretrian", "unknown key"], "typo in base"],
    [edit("  seed: 3", "  sed: 3"), ["eval.sed", "unknown key"], "unknown eval key"],
    [`${VALID}  top_p: 1\n`, ["math_eval.top_p", "unknown key"], "unknown math_eval key"],
    [
      edit("  init:", "  init: {arch: llama, preset: tiny, seeed: 5}"),
      ["base.init.seeed", "unknown key"],
      "unknown init key",
    ],
    [
      edit("  init:", "  init: {arch: llama, preset: huge}"),
      ["base.init.preset", "tiny"],
      "preset",
    ],
    [edit("  init:", "  init: {arch: gpt2}"), ["base.init.arch", "qwen2"], "arch"],
    [edit("  init:", "  init: {seed: -1}"), ["base.init.seed", "integer"], "seed"],
    [edit("ablations:", "ablations: [rmt, rpt]"), ["ablations", "midtrain labels"], "label"],
    [edit("ablations:", "ablations: rmt"), ["ablations", "a list"], "not a list"],
    [noMathEval, ["math_eval", "posttrain and math_eval go together"], "posttrain alone"],
    [
      edit("posttrain:", "posttrain: null"),
      ["math_eval", "posttrain and math_eval go together"],
      "math_eval alone",
    ],
    [edit("  rmt: sub", "  r m t: sub/rmt.yaml"), ["midtrain.r m t", "a label"], "a bad label"],
    [edit("  rmt: sub", "  base: b.yaml"), ["midtrain.base", "not 'base'"], "label base"],
    [edit("  ntp:", "  ntp: 3"), ["midtrain.ntp", "non-empty string"], "config not a string"],
    [VALID.replace(/midtrain:\n( {2}.*\n)+/, "midtrain: {}\n"), ["midtrain"], "no midtrain"],
    [edit("  samples: 50", "  samples: 0"), ["eval.samples", "integer in [1,"], "samples 0"],
    [edit("  temperature: 0.5", "  temperature: -1"), ["eval.temperature", "≥ 0"], "temperature"],
    [edit("  max_new_tokens", "  max_new_tokens: 1.5"), ["math_eval.max_new_tokens"], "integer"],
    [edit("name:", null), ["name", "non-empty string"], "no name"],
    [edit("eval:", "evaluation:"), ["evaluation", "unknown key"], "eval renamed"],
    [`${edit("  seed: 3", "  format: chat")}`, ["eval.format", "compact or paper"], "format"],
    ["name: [", ["invalid YAML"], "bad YAML"],
    ["- a\n- b\n", ["expected a mapping"], "a list"],
  ];
  for (const [text, fragments, what] of cases) {
    await assertUserError(
      () => parsePipelineConfig(text, "p/pipeline.yaml"),
      ["p/pipeline.yaml", ...fragments],
      what,
    );
  }
  // Both and neither of base.init and base.model.
  const both = VALID.replace("  pretrain:", "  model: models/m\n  pretrain:");
  const neither = VALID.replace(/ {2}init:.*\n/, "");
  for (const [text, what] of [[both, "both"], [neither, "neither"]]) {
    await assertUserError(
      () => parsePipelineConfig(text, "p/pipeline.yaml"),
      ["p/pipeline.yaml", "base.init", "base.model", "exactly one"],
      `${what} of base.init and base.model`,
    );
  }
  await assertUserError(
    () => parsePipelineConfig(VALID.replace(/base:\n( {2}.*\n)+/, "base: models\n"), "p.yaml"),
    ["p.yaml", "base", "expected a mapping"],
    "base not a mapping",
  );
  await assertUserError(
    () => parsePipelineConfig(VALID.replace(/eval:\n( {2}.*\n)+/, ""), "p.yaml"),
    ["p.yaml", "eval", "expected a mapping"],
    "no eval section",
  );
  await assertUserError(
    () => loadPipelineConfig("/nonexistent/pipeline.yaml"),
    ["/nonexistent/pipeline.yaml", "not found"],
    "missing file",
  );
});

/** The shipped pipeline files (configs/paper only when it exists). */
async function shippedPipelines(): Promise<string[]> {
  const files = [`${ROOT}configs/paper-tiny/pipeline.yaml`];
  try {
    await Deno.stat(`${ROOT}configs/paper/pipeline.yaml`);
    files.push(`${ROOT}configs/paper/pipeline.yaml`);
  } catch {
    // not shipped
  }
  return files;
}

Deno.test("pipeline_config: the shipped pipelines and every training config they name", async () => {
  for (const file of await shippedPipelines()) {
    const pipeline = await loadPipelineConfig(file);
    assert(pipeline.midtrain.length > 0, `${file}: midtrain stages`);
    const stages: [string, string, string[]][] = pipeline.midtrain.map(([label, path]) => [
      label,
      path,
      ["ntp", "rpt", "rmt", "rmt-no-budget", "rmt-no-curriculum", "rmt-no-ntp"],
    ]);
    if (pipeline.base.pretrain) stages.push(["pretrain", pipeline.base.pretrain, ["ntp"]]);
    if (pipeline.posttrain) stages.push(["posttrain", pipeline.posttrain, ["grpo-math"]]);
    for (const [label, path, methods] of stages) {
      const { config } = await resolveConfig(path, ["model.path=some/model"]);
      assert(methods.includes(config.method), `${file}: ${label}: method ${config.method}`);
      assertEquals(config.model.path, "some/model", `${file}: ${label}: model.path`);
    }
    // The labels name the methods in the shipped files (the results table reads them so).
    for (const [label, path] of pipeline.midtrain) {
      const { config } = await resolveConfig(path, ["model.path=m"]);
      assertEquals(config.method, label, `${file}: midtrain label ${label} is its method`);
    }
    if (pipeline.posttrain) {
      assert(pipeline.mathEval !== null, `${file}: math_eval with posttrain`);
      const { config } = await resolveConfig(pipeline.posttrain, ["model.path=m"]);
      assert(config.data.math_train !== null, `${file}: posttrain has data.math_train`);
      // The evaluation's responses are as long as the post-training's.
      assertEquals(
        pipeline.mathEval.max_new_tokens,
        config.math.max_new_tokens,
        `${file}: math_eval.max_new_tokens`,
      );
    }
  }
  // paper-tiny runs on what the repository ships (data paths relative to its root).
  const tiny = await loadPipelineConfig(`${ROOT}configs/paper-tiny/pipeline.yaml`);
  for (const data of [tiny.eval.data, tiny.mathEval?.data]) await Deno.stat(`${ROOT}${data}`);
});
