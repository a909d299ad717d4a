// The methods that share one code path, as data (spec: "Methods that must run on the same code
// path"), and methodSettings(config): everything the trainer needs to know about the method.
//
// | method            | RL set C                 | reward | budget   | NTP loss             |
// |-------------------|--------------------------|--------|----------|----------------------|
// | ntp               | none                     | –      | –        | all positions, ×1    |
// | rpt               | uniform over H > thresh. | prefix | fixed    | none                 |
// | rmt               | curriculum draw          | exact  | dynamic  | positions ∉ C, ×λ    |
// | rmt-no-budget     | curriculum draw          | exact  | fixed    | positions ∉ C, ×λ    |
// | rmt-no-curriculum | ablation.no_curriculum   | exact  | dynamic  | positions ∉ C, ×λ    |
// | rmt-no-ntp        | curriculum draw          | exact  | dynamic  | none                 |
// | grpo-math         | math problems            | math   | –        | none                 |
//
// "exact" with a budget means exact + length reward (rewards.ts); "fixed" means no budget, only
// the maximum reasoning length (budget.ts). Two table entries are config keys with "auto"
// meaning "the table's": rl.reward (spec: "config reward: exact | prefix") and budget.mode
// (e.g. method rmt with budget.mode constant is the never-shrinking-budget ablation). The
// no-curriculum ablation's replacement is ablation.no_curriculum: uniform over every position
// with H > the easy threshold (default), or ablation.fixed_mix at every step.
// grpo-math is the post-training stage (GRPO on math problems, lib/train/math_step.ts) reusing
// the same GRPO code; its budget entry is only the table's (math.max_new_tokens caps a response).

import { BUDGET_MODES, type BudgetMode, type BudgetSettings } from "./budget.ts";
import type { CurriculumSettings, RlSelector, TierMix } from "./curriculum.ts";
import type { NtpNormalise } from "./dual_loss.ts";
import type { Aggregation, StdKind, SurrogateSettings } from "./grpo.ts";
import type { LeadingSpace, RewardSettings } from "./rewards.ts";
import type { TierThresholds } from "./tiers.ts";

export const METHODS = [
  "ntp",
  "rpt",
  "rmt",
  "rmt-no-budget",
  "rmt-no-curriculum",
  "rmt-no-ntp",
  "grpo-math",
] as const;
export type Method = typeof METHODS[number];

export type RlSetKind = "none" | "entropy-threshold" | "curriculum" | "no-curriculum" | "math";
export const REWARD_KINDS = ["exact", "prefix", "math"] as const;
export type RewardKind = typeof REWARD_KINDS[number];
export type NtpKind = "all" | "not-rl" | "none";

/** One row of the method table. */
export interface MethodRow {
  rlSet: RlSetKind;
  /** null: no RL. */
  reward: RewardKind | null;
  /** null: no RL. */
  budget: BudgetMode | null;
  /** all: L = L_NTP on every position; not-rl: λ·L_NTP on positions ∉ C; none: no NTP term. */
  ntp: NtpKind;
  summary: string;
}

export const METHOD_TABLE: Readonly<Record<Method, MethodRow>> = {
  "ntp": {
    rlSet: "none",
    reward: null,
    budget: null,
    ntp: "all",
    summary: "continued pre-training: next-token prediction on every position",
  },
  "rpt": {
    rlSet: "entropy-threshold",
    reward: "prefix",
    budget: "fixed",
    ntp: "none",
    summary: "Reinforcement Pre-Training: RL on positions with H > rpt.entropy_threshold",
  },
  "rmt": {
    rlSet: "curriculum",
    reward: "exact",
    budget: "dynamic",
    ntp: "not-rl",
    summary: "Reinforcement Mid-Training: budget + curriculum + dual loss",
  },
  "rmt-no-budget": {
    rlSet: "curriculum",
    reward: "exact",
    budget: "fixed",
    ntp: "not-rl",
    summary: "RMT without the dynamic budget (no length reward, only the maximum length)",
  },
  "rmt-no-curriculum": {
    rlSet: "no-curriculum",
    reward: "exact",
    budget: "dynamic",
    ntp: "not-rl",
    summary: "RMT without the curriculum (see ablation.no_curriculum)",
  },
  "rmt-no-ntp": {
    rlSet: "curriculum",
    reward: "exact",
    budget: "dynamic",
    ntp: "none",
    summary: "RMT without the NTP term (L = L_RL)",
  },
  "grpo-math": {
    rlSet: "math",
    reward: "math",
    budget: "fixed",
    ntp: "none",
    summary: "post-training: GRPO on math problems with a verifiable answer reward",
  },
};

/** The part of the experiment config (lib/train/config.ts) that methodSettings reads. */
export interface MethodConfig {
  method: Method;
  entropy: { thresholds: TierThresholds };
  rl: {
    group_size: number;
    max_reasoning_tokens: number;
    reward: "auto" | "exact" | "prefix";
    prefix_leading_space: LeadingSpace;
    length_weight: number;
    r_max: number;
    length_reward_requires_answer: boolean;
    grpo: {
      clip_epsilon: number;
      kl_beta: number;
      delta: number;
      std: StdKind;
      aggregation: Aggregation;
    };
  };
  budget: { mode: "auto" | BudgetMode; initial: number; min: number; decay: number };
  curriculum: { t1: number; t2: number; p1: TierMix; p2: TierMix };
  rpt: { entropy_threshold: number };
  ablation: { no_curriculum: "uniform" | "fixed_mix"; fixed_mix: TierMix };
  loss: { ntp_weight: number; ntp_normalise: NtpNormalise };
}

export const BUDGET_MODE_CHOICES = ["auto", ...BUDGET_MODES] as const;

/** Everything the trainer needs to know about the method, resolved from the config. */
export interface MethodSettings {
  method: Method;
  row: MethodRow;
  /** Whether the method runs RL at all. */
  rl: boolean;
  selector: RlSelector;
  /** The match reward (null without RL). */
  reward: RewardKind | null;
  prefixLeadingSpace: LeadingSpace;
  /** The budget (null without RL). */
  budget: BudgetSettings | null;
  /** Whether the paper-format prompt carries the budget sentence (a budget exists). */
  budgetInPrompt: boolean;
  rewards: RewardSettings;
  grpo: SurrogateSettings & { groupSize: number; delta: number; std: StdKind };
  ntp: { kind: NtpKind; weight: number; normalise: NtpNormalise };
}

/**
 * A contradiction between the method and an explicit setting, as "key.path: message", or null.
 * (The config loader reports it; methodSettings throws it.)
 */
export function methodConflict(config: MethodConfig): string | null {
  const row = METHOD_TABLE[config.method];
  if (config.method === "rmt-no-budget" && config.budget.mode === "dynamic") {
    return "budget.mode: dynamic contradicts method rmt-no-budget (use method rmt, or fixed/constant)";
  }
  if (row.reward === "math" && config.rl.reward !== "auto") {
    return `rl.reward: method ${config.method} uses the math answer reward; leave rl.reward: auto`;
  }
  return null;
}

function curriculumOf(config: MethodConfig): CurriculumSettings {
  const { t1, t2, p1, p2 } = config.curriculum;
  return { t1, t2, p1, p2 };
}

function selectorOf(config: MethodConfig, row: MethodRow): RlSelector {
  const thresholds = config.entropy.thresholds;
  switch (row.rlSet) {
    case "none":
      return { kind: "none" };
    case "math":
      return { kind: "math-problems" };
    case "entropy-threshold":
      return { kind: "uniform-above", threshold: config.rpt.entropy_threshold, thresholds };
    case "curriculum":
      return { kind: "curriculum", curriculum: curriculumOf(config), thresholds };
    case "no-curriculum":
      return config.ablation.no_curriculum === "uniform"
        ? { kind: "uniform-above", threshold: thresholds.easy, thresholds }
        : { kind: "fixed-mix", mix: { ...config.ablation.fixed_mix }, thresholds };
  }
}

/** The resolved method settings of a (validated) config. */
export function methodSettings(config: MethodConfig): MethodSettings {
  const conflict = methodConflict(config);
  if (conflict !== null) throw new Error(conflict);
  const row = METHOD_TABLE[config.method];
  const rl = row.rlSet !== "none";
  const mode = config.budget.mode === "auto" ? row.budget : config.budget.mode;
  const budget: BudgetSettings | null = rl && mode !== null
    ? {
      mode,
      initial: config.budget.initial,
      min: config.budget.min,
      decay: config.budget.decay,
      maxReasoningTokens: config.rl.max_reasoning_tokens,
    }
    : null;
  const reward = !rl ? null : config.rl.reward === "auto" ? row.reward : config.rl.reward;
  const ntpWeight = row.ntp === "all" ? 1 : row.ntp === "not-rl" ? config.loss.ntp_weight : 0;
  const g = config.rl.grpo;
  return {
    method: config.method,
    row,
    rl,
    selector: selectorOf(config, row),
    reward,
    prefixLeadingSpace: config.rl.prefix_leading_space,
    budget,
    budgetInPrompt: budget !== null && budget.mode !== "fixed",
    rewards: {
      lengthWeight: config.rl.length_weight,
      rMax: config.rl.r_max,
      lengthRewardRequiresAnswer: config.rl.length_reward_requires_answer,
    },
    grpo: {
      clipEpsilon: g.clip_epsilon,
      klBeta: g.kl_beta,
      aggregation: g.aggregation,
      groupSize: config.rl.group_size,
      delta: g.delta,
      std: g.std,
    },
    ntp: { kind: row.ntp, weight: ntpWeight, normalise: config.loss.ntp_normalise },
  };
}
