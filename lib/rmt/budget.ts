// The reasoning-token budget (spec: "Definitions → Dynamic token budget").
//
//   "B_t = max(B_min, floor(B_0 · γ^(t/T)))"   at step t of T; paper: B_0 = 800, B_min = 1, γ = 0.2
//
// The budget enters three ways: the prompt (paper format: "use exactly B_t tokens of
// reasoning"), a hard cap of 2·B_t generated reasoning tokens, and the length reward
// (rewards.ts). Three modes, so that RMT, RPT and the no-budget ablation share one code path:
//   dynamic   RMT: B_t shrinks as above; cap 2·B_t; length reward and budget sentence on.
//   constant  B_t = B_0 at every step (an ablation variant: a budget that never shrinks);
//             cap 2·B_0; length reward and budget sentence on.
//   fixed     RPT: no budget at all, only a fixed maximum reasoning length
//             (rl.max_reasoning_tokens); no length reward, no budget sentence.
// In every mode the cap is also limited by rl.max_reasoning_tokens (the config loader checks
// that 2·B_0 fits, so with a valid config the min never bites in dynamic/constant mode).

export const BUDGET_MODES = ["dynamic", "constant", "fixed"] as const;
export type BudgetMode = typeof BUDGET_MODES[number];

export interface BudgetSettings {
  mode: BudgetMode;
  /** B_0: the budget at step 0 (tokens). */
  initial: number;
  /** B_min: the budget never goes below this (tokens). */
  min: number;
  /** γ: the budget at t = T is B_0·γ (before flooring and B_min). */
  decay: number;
  /** The absolute cap on generated reasoning tokens (RPT's fixed maximum length). */
  maxReasoningTokens: number;
}

/** What the budget is at one step. */
export interface StepBudget {
  /** B_t in tokens; null in fixed mode (no budget: no length reward, no budget sentence). */
  budget: number | null;
  /** The hard cap on generated reasoning tokens: min(2·B_t, maxReasoningTokens), or the max. */
  cap: number;
}

/**
 * "B_t = max(B_min, floor(B_0 · γ^(t/T)))". t may exceed T (then the budget keeps shrinking,
 * bounded by B_min); T must be ≥ 1.
 */
export function dynamicBudget(
  step: number,
  totalSteps: number,
  { initial, min, decay }: Pick<BudgetSettings, "initial" | "min" | "decay">,
): number {
  if (!(totalSteps >= 1)) {
    throw new Error(`dynamicBudget: total steps must be ≥ 1, got ${totalSteps}`);
  }
  if (!(step >= 0)) throw new Error(`dynamicBudget: step must be ≥ 0, got ${step}`);
  return Math.max(min, Math.floor(initial * Math.pow(decay, step / totalSteps)));
}

/** "a hard cap on generated reasoning length of 2·B_t", limited by the absolute maximum. */
export function reasoningCap(budget: number | null, maxReasoningTokens: number): number {
  return budget === null ? maxReasoningTokens : Math.min(2 * budget, maxReasoningTokens);
}

/** The budget and the reasoning cap at step t of T in the given mode. */
export function budgetAt(step: number, totalSteps: number, settings: BudgetSettings): StepBudget {
  let budget: number | null;
  switch (settings.mode) {
    case "dynamic":
      budget = dynamicBudget(step, totalSteps, settings);
      break;
    case "constant":
      budget = settings.initial;
      break;
    case "fixed":
      budget = null;
      break;
  }
  return { budget, cap: reasoningCap(budget, settings.maxReasoningTokens) };
}
