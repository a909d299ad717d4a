// The pipeline's results in the paper's form (spec: "What the paper reports"): results.json
// (tables as data, read by `rmt report`) and results.md (the same tables in Markdown).
//
//   next_token     method | easy | medium | hard | avg | reasoning tokens   (+ what a small
//                  run needs to be read: all positions, parse rate, argmax avg, perplexity)
//   ablation       the ablation labels | easy | medium | hard | avg
//   post_training  method | before | after | change    (math accuracy, GRPO on math)
//
// Accuracies in percent with two decimals, as the paper prints them; null where a tier had no
// positions.

import type { MathEvalResult } from "../eval/math_eval.ts";
import type { EvalResult } from "../eval/next_token_eval.ts";

export type Cell = string | number | null;

export interface ResultTable {
  id: string;
  title: string;
  columns: string[];
  rows: Cell[][];
  note?: string;
}

export interface PipelineResults {
  pipeline: string;
  created: string;
  machine: string;
  tables: ResultTable[];
  /** Training runs, for the report's plots: dirs relative to the pipeline folder; plotted by
   * group (the stage). */
  runs: { name: string; dir: string; group: string }[];
  /** Wall time of each stage, seconds (the first time it ran; resumed stages add up). */
  stage_seconds: Record<string, number>;
}

const pct = (x: number | null | undefined): number | null =>
  x === null || x === undefined ? null : Math.round(10000 * x) / 100;
const round = (x: number | null, digits: number): number | null =>
  x === null ? null : Math.round(x * 10 ** digits) / 10 ** digits;

/** The paper's columns of one evaluation: easy, medium, hard, avg (%), reasoning tokens. */
function paperColumns(r: EvalResult): Cell[] {
  const w = r.withReasoning;
  return [
    pct(w.easy.accuracy),
    pct(w.medium.accuracy),
    pct(w.hard.accuracy),
    pct(w.average),
    round(w.reasoningTokens, 1),
  ];
}

/** The next-token table over the given labelled evaluations. */
export function nextTokenTable(rows: readonly [string, EvalResult][]): ResultTable {
  const first = rows[0]?.[1];
  const s = first?.settings;
  return {
    id: "next_token",
    title: "Next-token accuracy with reasoning by entropy tier (%)",
    columns: [
      "Method",
      "Easy",
      "Medium",
      "Hard",
      "Avg",
      "Reasoning tokens",
      "All",
      "Parse rate",
      "Argmax avg",
      "Perplexity",
    ],
    rows: rows.map(([label, r]) => [
      label,
      ...paperColumns(r),
      pct(r.withReasoning.all.accuracy),
      pct(r.withReasoning.parseRate),
      pct(r.plain.average),
      round(r.perplexity.perplexity, 3),
    ]),
    note: first === undefined || s === undefined ? undefined : `${first.positions} held-out ` +
      `positions of ${first.data} (seed ${s.seed}); tiers by the base model's top-` +
      `${s.entropyTopK} entropy: easy H>${s.thresholds.easy} (${first.withReasoning.easy.count}), ` +
      `medium H>${s.thresholds.medium} (${first.withReasoning.medium.count}), hard ` +
      `H>${s.thresholds.hard} (${first.withReasoning.hard.count}); ≤ ${s.maxReasoning} reasoning ` +
      `tokens, ${s.temperature === 0 ? "greedy" : `temperature ${s.temperature}`}; avg = mean ` +
      "of the three tiers; argmax = accuracy without reasoning.",
  };
}

/** The ablation table: the average and the tiers of the ablation runs. */
export function ablationTable(rows: readonly [string, EvalResult][]): ResultTable {
  return {
    id: "ablation",
    title: "Ablation: next-token accuracy with reasoning (%)",
    columns: ["Method", "Easy", "Medium", "Hard", "Avg", "Reasoning tokens"],
    rows: rows.map(([label, r]) => [label, ...paperColumns(r)]),
  };
}

/** The post-training table: math accuracy before → after GRPO on math. */
export function postTrainingTable(
  rows: readonly [string, MathEvalResult, MathEvalResult][],
): ResultTable {
  const first = rows[0]?.[1];
  return {
    id: "post_training",
    title: "Post-training: math accuracy before → after GRPO (%)",
    columns: ["Method", "Before", "After", "Change", "Parse before", "Parse after"],
    rows: rows.map(([label, before, after]) => [
      label,
      pct(before.accuracy),
      pct(after.accuracy),
      round(pct(after.accuracy)! - pct(before.accuracy)!, 2),
      pct(before.parse_rate),
      pct(after.parse_rate),
    ]),
    note: first === undefined
      ? undefined
      : `${first.samples} problems of ${first.data}, one response each (` +
        `${(first.temperature ?? 0) === 0 ? "greedy" : `temperature ${first.temperature}`}), ` +
        "answers normalised (numbers, fractions, \\boxed{}).",
  };
}

function cellText(cell: Cell): string {
  if (cell === null) return "–";
  if (typeof cell === "number") return cell.toFixed(2);
  return cell;
}

/** The tables as Markdown. */
export function resultsMarkdown(results: PipelineResults): string {
  const out = [
    `# Results: ${results.pipeline}`,
    "",
    `Created ${results.created} on ${results.machine}.`,
    "",
  ];
  for (const table of results.tables) {
    out.push(`## ${table.title}`, "");
    out.push(`| ${table.columns.join(" | ")} |`);
    out.push(`|${table.columns.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`);
    for (const row of table.rows) out.push(`| ${row.map(cellText).join(" | ")} |`);
    if (table.note) out.push("", table.note);
    out.push("");
  }
  const stages = Object.entries(results.stage_seconds);
  if (stages.length > 0) {
    const total = stages.reduce((a, [, s]) => a + s, 0);
    out.push("## Stage times", "");
    out.push(`| Stage | Seconds |`, `|---|---:|`);
    for (const [name, s] of stages) out.push(`| ${name} | ${s.toFixed(0)} |`);
    out.push(`| total | ${total.toFixed(0)} |`, "");
  }
  return out.join("\n");
}
