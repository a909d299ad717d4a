// How an RL run's rollouts changed over training, from its metrics.jsonl: the means of the
// logged per-step rollout metrics over the first and the last tenth of the steps (at least one
// step each), so that one noisy step does not stand for a phase.
//
//   reward_mean    mean total reward r = (1 − w)·r_pos + w·r_len of the step's rollouts
//   match_rate     fraction of rollouts whose prediction was the true next token
//   parse_rate     fraction with a parseable answer (</think> then a token, within the cap)
//   reasoning_len  mean reasoning length ℓ
//   budget         B_t

import type { MetricsRecord } from "../train/metrics.ts";

export interface PhaseMeans {
  /** The first and last step (1-based, as metrics.jsonl counts) the means cover. */
  from: number;
  to: number;
  reward: number | null;
  matchRate: number | null;
  parseRate: number | null;
  reasoningLength: number | null;
  budget: number | null;
}

export interface EarlyLate {
  early: PhaseMeans;
  late: PhaseMeans;
  steps: number;
}

function meanOf(records: readonly MetricsRecord[], key: string): number | null {
  const values = records.map((r) => r[key]).filter((v): v is number => typeof v === "number");
  return values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length;
}

function phase(records: readonly MetricsRecord[]): PhaseMeans {
  return {
    from: records[0].step as number,
    to: records[records.length - 1].step as number,
    reward: meanOf(records, "reward_mean"),
    matchRate: meanOf(records, "match_rate"),
    parseRate: meanOf(records, "parse_rate"),
    reasoningLength: meanOf(records, "reasoning_len"),
    budget: meanOf(records, "budget"),
  };
}

/** Means over the first and last `fraction` of the records (≥ 1 each); null without records. */
export function earlyLate(records: readonly MetricsRecord[], fraction = 0.1): EarlyLate | null {
  const rows = records.filter((r) => typeof r.step === "number");
  if (rows.length === 0) return null;
  const k = Math.max(1, Math.round(rows.length * fraction));
  return { early: phase(rows.slice(0, k)), late: phase(rows.slice(-k)), steps: rows.length };
}

const pct = (x: number | null) => (x === null ? "—" : `${(100 * x).toFixed(1)}%`);
const num = (x: number | null, digits: number) => (x === null ? "—" : x.toFixed(digits));

/** One line per phase: "steps 1–4: reward 0.004, match 0.0%, parse 4.7%, ℓ 15.1 (B 8.0)". */
export function formatEarlyLate(summary: EarlyLate): string[] {
  const line = (name: string, p: PhaseMeans) =>
    `${name} (step${p.from === p.to ? ` ${p.from}` : `s ${p.from}–${p.to}`}): ` +
    `reward ${num(p.reward, 3)}, match rate ${pct(p.matchRate)}, ` +
    `parse rate ${pct(p.parseRate)}, reasoning ${num(p.reasoningLength, 1)} tokens ` +
    `(budget B_t ${num(p.budget, 1)})`;
  return [line("first", summary.early), line("last ", summary.late)];
}
