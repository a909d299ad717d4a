// The pipeline file (`rmt pipeline FILE`): which stages of the paper's experiment to run, each
// stage's training config, and the evaluation settings. Example (configs/paper-tiny/):
//
//   name: paper-tiny
//   base:
//     init: {arch: qwen2, preset: tiny, seed: 1}   # or model: DIR (an existing model folder)
//     pretrain: pretrain.yaml                      # optional NTP pre-training of that model
//   midtrain:                                      # label → training config, run from the base
//     ntp: ntp.yaml
//     rmt: rmt.yaml
//   ablations: [rmt, rmt-no-budget, ...]           # labels of the ablation table (optional)
//   eval: {data: ..., samples: 200, max_reasoning_tokens: 16, temperature: 0, seed: 0,
//          format: compact, max_answer_tokens: 16, budget: null}  # the last three: paper format
//   posttrain: posttrain.yaml                      # grpo-math config, run from each model
//   math_eval: {data: ..., samples: 200, max_new_tokens: 96, temperature: 0}
//
// Config files are relative to the pipeline file; the paths inside them (data.*) are relative
// to the folder rmt runs in, as for `rmt train`. The pipeline sets model.path of every stage.
// Errors are one line naming the file and the key.

import { parse } from "yaml";
import { UserError } from "../gpu/errors.ts";
import { PRESET_ARCHITECTURES, PRESET_SIZES } from "../model/presets.ts";

export interface NextTokenEvalSettings {
  data: string;
  /** The prompt format (paper: chat / reasoning models). */
  format: "compact" | "paper";
  /** paper format: tokens after </think>; B of the budget sentence (null: none). */
  max_answer_tokens: number;
  budget: number | null;
  samples: number;
  max_reasoning_tokens: number;
  temperature: number;
  seed: number;
}

export interface MathEvalSettings {
  data: string;
  samples: number;
  max_new_tokens: number;
  temperature: number;
  seed: number;
}

export interface PipelineConfig {
  /** The pipeline file (errors and relative paths). */
  file: string;
  name: string;
  base: {
    /** A new model (rmt init), or null when `model` is given. */
    init: { arch: string; preset: string; seed: number } | null;
    /** An existing model folder, or null. */
    model: string | null;
    /** NTP pre-training config (resolved path), or null. */
    pretrain: string | null;
  };
  /** label → training config path, in file order. */
  midtrain: [string, string][];
  /** Labels of the ablation table (all must be midtrain labels). */
  ablations: string[];
  eval: NextTokenEvalSettings;
  /** grpo-math config path, or null: no post-training stage. */
  posttrain: string | null;
  mathEval: MathEvalSettings | null;
}

type Json = Record<string, unknown>;

class Fields {
  constructor(readonly file: string, readonly where: string, readonly value: Json) {}

  fail(key: string, problem: string): never {
    const path = this.where === "" ? key : `${this.where}.${key}`;
    throw new UserError(`${this.file}: ${path}: ${problem}`);
  }

  has(key: string): boolean {
    return this.value[key] !== undefined && this.value[key] !== null;
  }

  section(key: string): Fields {
    const v = this.value[key];
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      this.fail(key, "expected a mapping");
    }
    return new Fields(this.file, this.where === "" ? key : `${this.where}.${key}`, v as Json);
  }

  string(key: string, fallback?: string): string {
    const v = this.value[key] ?? fallback;
    if (typeof v !== "string" || v === "") this.fail(key, "expected a non-empty string");
    return v;
  }

  integer(key: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.value[key] ?? fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      this.fail(key, `expected an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
    }
    return v;
  }

  number(key: string, fallback: number, min: number): number {
    const v = this.value[key] ?? fallback;
    if (typeof v !== "number" || !Number.isFinite(v) || v < min) {
      this.fail(key, `expected a number ≥ ${min}, got ${JSON.stringify(v)}`);
    }
    return v;
  }

  only(keys: readonly string[]): void {
    for (const key of Object.keys(this.value)) {
      if (!keys.includes(key)) this.fail(key, `unknown key (expected one of ${keys.join(", ")})`);
    }
  }
}

/** A path relative to the pipeline file's folder (absolute paths kept). */
function besideFile(file: string, path: string): string {
  if (path.startsWith("/")) return path;
  const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/")) : ".";
  return `${dir}/${path}`;
}

/** Parses a pipeline file's text (see the top of this file). */
export function parsePipelineConfig(text: string, file: string): PipelineConfig {
  let json: unknown;
  try {
    json = parse(text);
  } catch (e) {
    throw new UserError(`${file}: invalid YAML: ${(e as Error).message.split("\n")[0]}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new UserError(`${file}: expected a mapping of pipeline keys`);
  }
  const top = new Fields(file, "", json as Json);
  top.only(["name", "base", "midtrain", "ablations", "eval", "posttrain", "math_eval"]);

  const base = top.section("base");
  base.only(["init", "model", "pretrain"]);
  if (base.has("init") === base.has("model")) {
    base.fail("init", "give exactly one of base.init (a new model) and base.model (a folder)");
  }
  let init: PipelineConfig["base"]["init"] = null;
  if (base.has("init")) {
    const i = base.section("init");
    i.only(["arch", "preset", "seed"]);
    const arch = i.string("arch", "qwen2");
    const preset = i.string("preset", "tiny");
    if (!(PRESET_ARCHITECTURES as readonly string[]).includes(arch)) {
      i.fail("arch", `expected one of ${PRESET_ARCHITECTURES.join(", ")}`);
    }
    if (!(PRESET_SIZES as readonly string[]).includes(preset)) {
      i.fail("preset", `expected one of ${PRESET_SIZES.join(", ")}`);
    }
    init = { arch, preset, seed: i.integer("seed", 1, 0, 2 ** 32 - 1) };
  }

  const mid = top.section("midtrain");
  const midtrain: [string, string][] = Object.keys(mid.value).map((label) => {
    if (!/^[A-Za-z0-9._-]+$/.test(label) || label === "base") {
      mid.fail(label, "a label is letters, digits, . _ - (and not 'base')");
    }
    return [label, besideFile(file, mid.string(label))];
  });
  if (midtrain.length === 0) top.fail("midtrain", "expected at least one method");

  const labels = midtrain.map(([l]) => l);
  const ablations = top.value.ablations ?? [];
  if (!Array.isArray(ablations) || ablations.some((a) => !labels.includes(a))) {
    top.fail("ablations", `expected a list of midtrain labels (${labels.join(", ")})`);
  }

  const ev = top.section("eval");
  ev.only([
    "data",
    "format",
    "max_answer_tokens",
    "budget",
    "samples",
    "max_reasoning_tokens",
    "temperature",
    "seed",
  ]);
  const format = ev.string("format", "compact");
  if (format !== "compact" && format !== "paper") {
    return ev.fail("format", "expected compact or paper");
  }
  const mathEval = top.has("math_eval") ? top.section("math_eval") : null;
  mathEval?.only(["data", "samples", "max_new_tokens", "temperature", "seed"]);
  if (top.has("posttrain") !== (mathEval !== null)) {
    top.fail("math_eval", "posttrain and math_eval go together (the post-training table)");
  }
  return {
    file,
    name: top.string("name"),
    base: {
      init,
      model: base.has("model") ? base.string("model") : null,
      pretrain: base.has("pretrain") ? besideFile(file, base.string("pretrain")) : null,
    },
    midtrain,
    ablations: ablations as string[],
    eval: {
      data: ev.string("data"),
      format,
      max_answer_tokens: ev.integer("max_answer_tokens", 16, 1),
      budget: ev.has("budget") ? ev.integer("budget", 0, 1) : null,
      samples: ev.integer("samples", 200, 1),
      max_reasoning_tokens: ev.integer("max_reasoning_tokens", 96, 0),
      temperature: ev.number("temperature", 0, 0),
      seed: ev.integer("seed", 0, 0, 2 ** 32 - 1),
    },
    posttrain: top.has("posttrain") ? besideFile(file, top.string("posttrain")) : null,
    mathEval: mathEval === null ? null : {
      data: mathEval.string("data"),
      samples: mathEval.integer("samples", 200, 1),
      max_new_tokens: mathEval.integer("max_new_tokens", 256, 1),
      temperature: mathEval.number("temperature", 0, 0),
      seed: mathEval.integer("seed", 0, 0, 2 ** 32 - 1),
    },
  };
}

/** Reads and parses a pipeline file. */
export async function loadPipelineConfig(file: string): Promise<PipelineConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new UserError(`${file}: pipeline file not found`);
    throw new UserError(`${file}: cannot read: ${(e as Error).message}`);
  }
  return parsePipelineConfig(text, file);
}
