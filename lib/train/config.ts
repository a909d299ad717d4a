// The experiment config: every value an RMT / RPT / NTP run might vary, with its default, in
// one typed schema (spec values where the spec has one, "our default" otherwise; see
// /work/shared/rmt-spec.md and configs/README.md, which lists every key).
//
// A config file is YAML; it may start from another with `extends: other.yaml` (a path relative
// to the file; chains allowed, cycles refused), and the command line may override any key with
// `--set key.path=value` (the value read as a YAML scalar: 0.5, true, null, paper). Layers are
// checked one by one, so an error names the file (or the --set) and the key path, on one line.
// Every run writes the fully resolved config (configToYaml), which loads back to the same
// config.
//
// Paths (model.path, data.*) are kept as written; relative ones are relative to the folder rmt
// runs in (the repository root for the shipped presets), not to the config file.

import { parse, stringify } from "yaml";
import { UserError } from "../gpu/errors.ts";
import { BUDGET_MODE_CHOICES, METHOD_TABLE, methodConflict, METHODS } from "../rmt/methods.ts";
import { NTP_NORMALISE } from "../rmt/dual_loss.ts";
import { AGGREGATIONS, STD_KINDS } from "../rmt/grpo.ts";
import { PAPER_BUDGET_SENTENCE, PAPER_INSTRUCTION, PROMPT_FORMATS } from "../rmt/prompts.ts";
import { LEADING_SPACE } from "../rmt/rewards.ts";
import { MATH_INSTRUCTION, MATH_PROMPT } from "../rmt/math_prompts.ts";
import {
  boolean,
  checkLayer,
  choice,
  ConfigIssue,
  type ConfigOf,
  fillDefaults,
  integer,
  type Layer,
  listFields,
  lookup,
  mergeLayers,
  number,
  path,
  type Schema,
  text,
} from "./config_schema.ts";

const OURS = "our default";

/** A tier mix (easy, medium, hard probabilities; they must sum to 1). */
function tierMix(easy: number, medium: number, hard: number, doc: string, spec: string) {
  const p = (value: number, tier: string) =>
    number({ default: value, min: 0, max: 1, doc: `${doc}: ${tier} tier`, spec });
  return { easy: p(easy, "easy"), medium: p(medium, "medium"), hard: p(hard, "hard") };
}

export const CONFIG_SCHEMA = {
  method: choice(METHODS, {
    default: "rmt",
    doc: "what to train: NTP, RPT, RMT, an RMT ablation, or GRPO post-training on math",
    spec: "Methods that must run on the same code path",
  }),
  seed: integer({
    default: 0,
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
    doc: "seed of every random draw (positions, rollouts, init); a draw depends on (seed, step)",
    spec: OURS,
  }),
  model: {
    path: path({
      default: null,
      doc: "model folder to start from (config.json, safetensors, tokenizer); required",
      spec: OURS,
    }),
    entropy_model: path({
      default: null,
      doc:
        "proxy model for the token entropies H; null: model.path, evaluated once before training",
      spec: "Token entropy",
    }),
    max_context: integer({
      default: 1024,
      min: 2,
      doc: "tokens per training sequence (and the longest RL context)",
      spec: OURS,
    }),
  },
  data: {
    train: path({
      default: null,
      doc: "mid-training corpus (required by ntp, rpt, rmt*)",
      spec: OURS,
    }),
    eval: path({
      default: null,
      doc: "held-out next-token evaluation set (null: no next-token eval)",
      spec: "What the paper reports",
    }),
    think_blocks: number({
      default: 0,
      min: 0,
      max: 1,
      maxOpen: true,
      doc:
        "method ntp: chance of an empty <think></think> before a token (teaches a model made here the compact format)",
      spec: OURS,
    }),
    math_train: path({
      default: null,
      doc: "math problems for GRPO post-training (required by grpo-math)",
      spec: "What the paper reports",
    }),
    math_eval: path({
      default: null,
      doc: "math problems for the post-training evaluation (null: none)",
      spec: "What the paper reports",
    }),
  },
  training: {
    steps: integer({
      default: 1000,
      min: 1,
      doc: "optimizer steps T",
      spec: "Other paper settings (RPT)",
    }),
    batch_size: integer({
      default: 128,
      min: 1,
      doc: "corpus sequences per optimizer step",
      spec: "Other paper settings",
    }),
    grad_accumulation: integer({
      default: 1,
      min: 1,
      doc: "micro-batches per step (batch_size must divide by it)",
      spec: OURS,
    }),
    lr: number({
      default: 1e-6,
      min: 0,
      minOpen: true,
      doc: "peak learning rate",
      spec: "Other paper settings",
    }),
    schedule: choice(["constant", "cosine"] as const, {
      default: "constant",
      doc: "learning-rate schedule after the warm-up",
      spec: OURS,
    }),
    warmup_steps: integer({
      default: 0,
      min: 0,
      doc: "linear warm-up steps from 0 to lr",
      spec: OURS,
    }),
    min_lr_ratio: number({
      default: 0,
      min: 0,
      max: 1,
      doc: "cosine: the final learning rate as a fraction of lr",
      spec: OURS,
    }),
    grad_clip: number({
      default: 1.0,
      min: 0,
      doc: "clip the global gradient norm to this (0: off)",
      spec: OURS,
    }),
    adam_beta1: number({
      default: 0.9,
      min: 0,
      max: 1,
      maxOpen: true,
      doc: "AdamW β1",
      spec: "Other paper settings (RPT)",
    }),
    adam_beta2: number({
      default: 0.999,
      min: 0,
      max: 1,
      maxOpen: true,
      doc: "AdamW β2",
      spec: "Other paper settings (RPT)",
    }),
    adam_eps: number({ default: 1e-8, min: 0, minOpen: true, doc: "AdamW ε", spec: OURS }),
    weight_decay: number({
      default: 0.01,
      min: 0,
      doc: "AdamW decoupled weight decay",
      spec: "Other paper settings (RPT)",
    }),
    log_interval: integer({ default: 1, min: 1, doc: "steps between metrics lines", spec: OURS }),
    checkpoint_interval: integer({
      default: 100,
      min: 0,
      doc: "steps between checkpoints (0: only at the end)",
      spec: OURS,
    }),
    keep_checkpoints: integer({
      default: 2,
      min: 1,
      doc: "newest checkpoints kept in the run folder (older ones are deleted)",
      spec: OURS,
    }),
    max_bad_steps: integer({
      default: 5,
      min: 1,
      doc: "non-finite loss or gradient norm this many steps in a row stops training",
      spec: OURS,
    }),
  },
  entropy: {
    top_k: integer({
      default: 16,
      min: 1,
      doc: "k of the top-k entropy H = −Σ_{i≤k} q_i log q_i",
      spec: "Token entropy",
    }),
    thresholds: {
      easy: number({
        default: 0.5,
        min: 0,
        doc: "H above this: at least easy (nats)",
        spec: "Token entropy",
      }),
      medium: number({
        default: 1.0,
        min: 0,
        doc: "H above this: at least medium (nats)",
        spec: "Token entropy",
      }),
      hard: number({
        default: 1.5,
        min: 0,
        doc: "H above this: hard (nats)",
        spec: "Token entropy",
      }),
    },
  },
  rl: {
    positions_per_sequence: integer({
      default: 1,
      min: 1,
      doc: "RL positions drawn per corpus sequence (fewer if it has fewer eligible)",
      spec: OURS,
    }),
    min_context_tokens: integer({
      default: 8,
      min: 1,
      doc: "positions with less context than this are never RL positions",
      spec: OURS,
    }),
    group_size: integer({
      default: 8,
      min: 2,
      doc: "G: rollouts per RL position",
      spec: "RL algorithm: GRPO",
    }),
    temperature: number({
      default: 0.8,
      min: 0,
      minOpen: true,
      doc: "rollout sampling temperature",
      spec: "RL algorithm: GRPO",
    }),
    top_k: integer({ default: 0, min: 0, doc: "rollout top-k (0: off)", spec: OURS }),
    top_p: number({
      default: 1.0,
      min: 0,
      max: 1,
      minOpen: true,
      doc: "rollout nucleus sampling (1: off)",
      spec: OURS,
    }),
    max_reasoning_tokens: integer({
      default: 2048,
      min: 1,
      doc: "absolute cap on reasoning tokens; RPT's fixed maximum length",
      spec: "Other paper settings (max response)",
    }),
    generation_batch: integer({
      default: 0,
      min: 0,
      doc:
        "prompts per rollout generation call (× G rows); 0: one micro-batch's (a bigger call is faster, a smaller one needs less memory)",
      spec: OURS,
    }),
    max_answer_tokens: integer({
      default: 16,
      min: 1,
      doc: "paper format: tokens allowed after </think> for the \\boxed{} answer",
      spec: OURS,
    }),
    reward: choice(["auto", "exact", "prefix"] as const, {
      default: "auto",
      doc: "match reward; auto: the method's (RMT exact, RPT prefix)",
      spec: "Match reward",
    }),
    prefix_max_tokens: integer({
      default: 8,
      min: 1,
      doc: "prefix reward: how many true next tokens give the allowed byte lengths",
      spec: OURS,
    }),
    prefix_leading_space: choice(LEADING_SPACE, {
      default: "optional",
      doc: "prefix reward: optional lets an answer omit the true continuation's leading space",
      spec: OURS,
    }),
    length_weight: number({
      default: 0.2,
      min: 0,
      max: 1,
      doc: "w in r = (1 − w)·r_pos + w·r_len",
      spec: "Total reward",
    }),
    r_max: number({
      default: 1,
      min: 0,
      doc: "r_max of the triangular length reward",
      spec: "Length reward",
    }),
    length_reward_requires_answer: boolean({
      default: false,
      doc: "true: an unparseable rollout also gets r_len = 0 (spec: only r_pos = 0)",
      spec: OURS,
    }),
    grpo: {
      clip_epsilon: number({
        default: 0.2,
        min: 0,
        max: 1,
        minOpen: true,
        maxOpen: true,
        doc: "ε: ρ is clipped to [1 − ε, 1 + ε]",
        spec: "RL algorithm: GRPO",
      }),
      kl_beta: number({
        default: 0,
        min: 0,
        doc: "β of the k3 KL(π_θ‖π_ref) penalty",
        spec: "RL algorithm: GRPO",
      }),
      delta: number({
        default: 1e-6,
        min: 0,
        minOpen: true,
        doc: "δ in A = (r − mean)/(std + δ)",
        spec: OURS,
      }),
      std: choice(STD_KINDS, {
        default: "population",
        doc: "std of the group rewards: population (÷G) or sample (÷(G−1), torch.std)",
        spec: OURS,
      }),
      aggregation: choice(AGGREGATIONS, {
        default: "token_mean",
        doc: "average the loss over all generated tokens, or per rollout then over rollouts",
        spec: OURS,
      }),
      updates_per_batch: integer({
        default: 1,
        min: 1,
        doc: "policy updates per batch of rollouts (1: on-policy, ρ = 1 at the update)",
        spec: OURS,
      }),
    },
  },
  budget: {
    mode: choice(BUDGET_MODE_CHOICES, {
      default: "auto",
      doc: "dynamic (B_t shrinks), constant (B_0), fixed (no budget); auto: the method's",
      spec: "Dynamic token budget",
    }),
    initial: integer({
      default: 800,
      min: 1,
      doc: "B_0: budget at step 0 (tokens)",
      spec: "Dynamic token budget",
    }),
    min: integer({
      default: 1,
      min: 1,
      doc: "B_min: the budget's floor (tokens)",
      spec: "Dynamic token budget",
    }),
    decay: number({
      default: 0.2,
      min: 0,
      max: 1,
      minOpen: true,
      doc: "γ in B_t = max(B_min, floor(B_0·γ^(t/T)))",
      spec: "Dynamic token budget",
    }),
  },
  curriculum: {
    t1: number({
      default: 0.3,
      min: 0,
      max: 1,
      doc: "first switch point, as a fraction of T (p_t = p1 before)",
      spec: "Curriculum sampling",
    }),
    t2: number({
      default: 0.7,
      min: 0,
      max: 1,
      doc: "second switch point, as a fraction of T (p_t = p2 from it)",
      spec: "Curriculum sampling",
    }),
    p1: tierMix(0.6, 0.3, 0.1, "p1, the early tier mix", "Curriculum sampling (our default)"),
    p2: tierMix(0.1, 0.3, 0.6, "p2, the late tier mix", "Curriculum sampling (our default)"),
  },
  rpt: {
    entropy_threshold: number({
      default: 0.5,
      min: 0,
      doc: "RPT: RL positions are those with H above this (nats)",
      spec: "Methods (RPT; value ours)",
    }),
  },
  ablation: {
    no_curriculum: choice(["uniform", "fixed_mix"] as const, {
      default: "uniform",
      doc: "rmt-no-curriculum: uniform over all H > easy threshold, or fixed_mix every step",
      spec: OURS,
    }),
    fixed_mix: tierMix(1 / 3, 1 / 3, 1 / 3, "rmt-no-curriculum fixed_mix", OURS),
  },
  loss: {
    ntp_weight: number({
      default: 0.1,
      min: 0,
      doc: "λ in L = L_RL + λ·L_NTP",
      spec: "Dual objective",
    }),
    ntp_normalise: choice(NTP_NORMALISE, {
      default: "mean",
      doc: "L_NTP: mean over the step's unmasked positions, or the plain sum",
      spec: OURS,
    }),
  },
  prompt: {
    format: choice(PROMPT_FORMATS, {
      default: "compact",
      doc: "compact (<think> tokens, small models) or paper (RPT's template, chat models)",
      spec: "Prompt formats",
    }),
    chat_template: boolean({
      default: true,
      doc: "paper format: wrap the prompt in the tokenizer's chat template when it has one",
      spec: OURS,
    }),
    paper_instruction: text({
      default: PAPER_INSTRUCTION,
      doc: "paper format: the instruction before ### Context",
      spec: "Prompt formats (wording ours)",
    }),
    paper_budget_sentence: text({
      default: PAPER_BUDGET_SENTENCE,
      doc: "paper format, with a budget: the sentence added ({budget} becomes B_t)",
      spec: "Prompt formats (wording ours)",
    }),
  },
  eval: {
    samples: integer({
      default: 200,
      min: 1,
      doc: "held-out samples for next-token accuracy with reasoning",
      spec: "What the paper reports",
    }),
    temperature: number({
      default: 0,
      min: 0,
      doc: "evaluation sampling temperature (0: greedy)",
      spec: OURS,
    }),
    max_reasoning_tokens: integer({
      default: 2048,
      min: 1,
      doc: "reasoning cap at evaluation",
      spec: OURS,
    }),
  },
  math: {
    prompt: text({
      default: MATH_PROMPT,
      doc: "grpo-math, compact format: the prompt of a problem ({question} becomes it)",
      spec: OURS,
    }),
    instruction: text({
      default: MATH_INSTRUCTION,
      doc: "grpo-math, paper format: the instruction after the question (chat template)",
      spec: "DeepSeek-R1's math prompt",
    }),
    max_new_tokens: integer({
      default: 2048,
      min: 1,
      doc: "grpo-math: tokens a response may have (reasoning and answer)",
      spec: "Other paper settings (max response 2048)",
    }),
  },
} as const satisfies Schema;

/** The experiment config (YAML keys as they are: snake_case). */
export type RmtConfig = ConfigOf<typeof CONFIG_SCHEMA>;

/** Every key at its default (not a valid run config by itself: model.path is required). */
export function defaultConfig(): RmtConfig {
  return fillDefaults(CONFIG_SCHEMA, {});
}

// ---- checks across keys ------------------------------------------------------------------

function mixSum(mix: { easy: number; medium: number; hard: number }): number {
  return mix.easy + mix.medium + mix.hard;
}

/** Problems no single key shows, as ConfigIssue naming the first key involved. */
export function checkConfig(c: RmtConfig): void {
  const fail = (keyPath: string, problem: string): never => {
    throw new ConfigIssue(keyPath, problem);
  };
  for (
    const [key, mix] of [
      ["curriculum.p1", c.curriculum.p1],
      ["curriculum.p2", c.curriculum.p2],
      ["ablation.fixed_mix", c.ablation.fixed_mix],
    ] as const
  ) {
    const sum = mixSum(mix);
    if (Math.abs(sum - 1) > 1e-6) {
      fail(key, `easy + medium + hard must sum to 1, got ${Number(sum.toPrecision(12))}`);
    }
  }
  if (c.curriculum.t1 > c.curriculum.t2) {
    fail("curriculum.t1", `must be ≤ curriculum.t2 (${c.curriculum.t2}), got ${c.curriculum.t1}`);
  }
  const th = c.entropy.thresholds;
  if (!(th.easy < th.medium && th.medium < th.hard)) {
    fail(
      "entropy.thresholds",
      `must satisfy easy < medium < hard, got ${th.easy}, ${th.medium}, ${th.hard}`,
    );
  }
  if (c.budget.min > c.budget.initial) {
    fail("budget.min", `must be ≤ budget.initial (${c.budget.initial}), got ${c.budget.min}`);
  }
  if (c.training.batch_size % c.training.grad_accumulation !== 0) {
    fail(
      "training.grad_accumulation",
      `training.batch_size (${c.training.batch_size}) must divide by it, got ${c.training.grad_accumulation}`,
    );
  }
  if (c.training.warmup_steps > c.training.steps) {
    fail(
      "training.warmup_steps",
      `must be ≤ training.steps (${c.training.steps}), got ${c.training.warmup_steps}`,
    );
  }
  if (!c.prompt.paper_budget_sentence.includes("{budget}")) {
    fail("prompt.paper_budget_sentence", "must contain {budget}");
  }
  const conflict = methodConflict(c);
  if (conflict !== null) {
    const at = conflict.indexOf(": ");
    fail(conflict.slice(0, at), conflict.slice(at + 2));
  }
  const row = METHOD_TABLE[c.method];
  const mode = c.budget.mode === "auto" ? row.budget : c.budget.mode;
  if (row.rlSet !== "none" && (mode === "dynamic" || mode === "constant")) {
    if (2 * c.budget.initial > c.rl.max_reasoning_tokens) {
      fail(
        "budget.initial",
        `the reasoning cap 2·B_0 = ${2 * c.budget.initial} exceeds rl.max_reasoning_tokens ` +
          `(${c.rl.max_reasoning_tokens}); lower B_0 or raise the maximum`,
      );
    }
  }
  if (c.model.path === null) fail("model.path", `required (the model folder ${c.method} trains)`);
  const updates = c.rl.grpo.updates_per_batch;
  if (updates > 1 && c.training.checkpoint_interval % updates !== 0) {
    fail(
      "training.checkpoint_interval",
      `must be a multiple of rl.grpo.updates_per_batch (${updates}), so that a resumed run ` +
        `starts at a group boundary and continues exactly, got ${c.training.checkpoint_interval}`,
    );
  }
  if (c.data.think_blocks > 0 && c.method !== "ntp") {
    fail("data.think_blocks", `only method ntp inserts think blocks (this run is ${c.method})`);
  }
  if (c.method === "grpo-math") {
    if (c.data.math_train === null) fail("data.math_train", "required by method grpo-math");
    if (c.prompt.format === "compact" && !c.math.prompt.includes("{question}")) {
      fail("math.prompt", "must contain {question}");
    }
  } else if (c.data.train === null) {
    fail("data.train", `required by method ${c.method}`);
  }
}

// ---- loading -----------------------------------------------------------------------------

/** First line of a YAML parser message ("Map keys must be unique at line 2, column 1"). */
function firstLine(message: string): string {
  return message.split("\n")[0].replace(/:$/, "");
}

function parseYaml(source: string, yamlText: string): unknown {
  try {
    return parse(yamlText);
  } catch (e) {
    throw new UserError(`${source}: invalid YAML: ${firstLine((e as Error).message)}`);
  }
}

/** Runs a check, turning a ConfigIssue into a one-line UserError prefixed with the source. */
function attributed<T>(source: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ConfigIssue) throw new UserError(`${source}: ${e.message}`);
    throw e;
  }
}

function dirname(file: string): string {
  const at = file.lastIndexOf("/");
  return at < 0 ? "." : at === 0 ? "/" : file.slice(0, at);
}

function joinPath(dir: string, relative: string): string {
  if (relative.startsWith("/")) return relative;
  const parts = `${dir}/${relative}`.split("/");
  const out: string[] = [];
  for (const part of parts) {
    if (part === "." || (part === "" && out.length > 0)) continue;
    if (part === ".." && out.length > 0 && out[out.length - 1] !== "..") out.pop();
    else out.push(part);
  }
  return out.join("/") || ".";
}

/** Reads a text file (injected in tests). */
export type ReadText = (file: string) => Promise<string>;

const readText: ReadText = async (file) => {
  try {
    return await Deno.readTextFile(file);
  } catch (e) {
    const reason = e instanceof Deno.errors.NotFound ? "no such file" : (e as Error).message;
    throw new UserError(`${file}: cannot read the config: ${reason}`);
  }
};

/** One config file and the files it extends, merged base first; returns the layer and files. */
async function loadLayers(
  file: string,
  read: ReadText,
  chain: string[],
): Promise<{ layer: Layer; files: string[] }> {
  if (chain.includes(file)) {
    throw new UserError(`${file}: extends cycle: ${[...chain, file].join(" → ")}`);
  }
  const raw = parseYaml(file, await read(file));
  if (raw !== null && (typeof raw !== "object" || Array.isArray(raw))) {
    throw new UserError(`${file}: a config must be a mapping of keys`);
  }
  const { extends: base, ...rest } = (raw ?? {}) as Record<string, unknown>;
  const layer = attributed(file, () => checkLayer(CONFIG_SCHEMA, rest));
  if (base === undefined || base === null) return { layer, files: [file] };
  if (typeof base !== "string" || base.length === 0) {
    throw new UserError(`${file}: extends: expected a path to another config file`);
  }
  const below = await loadLayers(joinPath(dirname(file), base), read, [...chain, file]);
  return { layer: mergeLayers(below.layer, layer), files: [...below.files, file] };
}

/** One `--set key.path=value` as a layer. */
export function overrideLayer(override: string): Layer {
  const source = `--set ${override}`;
  const eq = override.indexOf("=");
  if (eq <= 0) throw new UserError(`${source}: expected key.path=value`);
  const keyPath = override.slice(0, eq).trim();
  const valueText = override.slice(eq + 1);
  return attributed(source, () => {
    lookup(CONFIG_SCHEMA, keyPath); // unknown key → "unknown key rl.grop (did you mean rl.grpo?)"
    const value = parseYaml(source, valueText === "" ? '""' : valueText);
    let nested: unknown = value;
    for (const part of keyPath.split(".").reverse()) nested = { [part]: nested };
    return checkLayer(CONFIG_SCHEMA, nested);
  });
}

export interface ResolvedConfig {
  config: RmtConfig;
  /** The fully resolved config as YAML (what a run writes next to its outputs). */
  yamlText: string;
  /** The files read, base first. */
  files: string[];
}

/** Resolves a config from YAML text (no file: `extends` is refused unless `read` is given). */
export async function resolveConfigText(
  yamlText: string,
  source: string,
  overrides: readonly string[] = [],
  read: ReadText = () => Promise.reject(new UserError(`${source}: extends needs a file`)),
): Promise<ResolvedConfig> {
  const memory: ReadText = (file) => (file === source ? Promise.resolve(yamlText) : read(file));
  return await resolveWith(source, overrides, memory);
}

/**
 * Loads a config file (with its `extends` chain), applies `--set` overrides in order, fills
 * every default and checks the whole: {config, yamlText}. Errors are one-line UserErrors.
 */
export async function resolveConfig(
  file: string,
  overrides: readonly string[] = [],
): Promise<ResolvedConfig> {
  return await resolveWith(file, overrides, readText);
}

async function resolveWith(
  file: string,
  overrides: readonly string[],
  read: ReadText,
): Promise<ResolvedConfig> {
  let { layer, files } = await loadLayers(file, read, []);
  for (const override of overrides) layer = mergeLayers(layer, overrideLayer(override));
  const config = fillDefaults(CONFIG_SCHEMA, layer);
  const where = overrides.length > 0 ? `${file} (with --set)` : file;
  attributed(where, () => checkConfig(config));
  return { config, yamlText: configToYaml(config), files };
}

/** The fully resolved config as YAML: every key, in schema order; loads back to the same. */
export function configToYaml(config: RmtConfig): string {
  return "# rmt config, fully resolved (every key; configs/README.md documents them)\n" +
    stringify(config, { lineWidth: 0 });
}

// ---- the reference table ------------------------------------------------------------------

function formatDefault(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string" && value.length > 60) return "(see Paper prompt text)";
  if (typeof value === "string" && /[\s"]/.test(value)) return JSON.stringify(value); // \n shown
  if (typeof value === "string") return value;
  if (typeof value === "number" && value !== 0 && Math.abs(value) < 1e-3) {
    return value.toExponential(); // 1e-6, not 0.000001
  }
  if (typeof value === "number" && !Number.isInteger(value) && String(value).length > 8) {
    return value.toPrecision(4);
  }
  return String(value);
}

/** configs/README.md's table: one row per key (key, default, accepted values, meaning, source). */
export function configReferenceTable(): string {
  const escape = (s: string) => s.replaceAll("|", "\\|");
  const rows = listFields(CONFIG_SCHEMA).map(({ path: key, field }) =>
    `| \`${key}\` | ${escape(formatDefault(field.default))} | ${escape(field.type)} | ` +
    `${escape(field.doc)} | ${escape(field.source)} |`
  );
  return ["| key | default | values | meaning | source |", "|---|---|---|---|---|", ...rows]
    .join("\n");
}
