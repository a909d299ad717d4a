// The text table of next-token evaluations, one row per model, in the shape of the paper's
// (spec: "What the paper reports"): accuracy with reasoning by nested tier and their average,
// then what the paper does not show but a small run needs to be read: accuracy over all
// positions, mean reasoning tokens, parse rate, argmax accuracy without reasoning, perplexity.

import type { EvalResult } from "./next_token_eval.ts";
import type { TierAccuracy } from "./tier_accuracy.ts";

/** A row: a label for the model and its evaluation. */
export interface TableRow {
  label: string;
  result: EvalResult;
}

const percent = (x: number | null) => (x === null ? "—" : (100 * x).toFixed(2));

/** The header lines: positions, tiers and how each column is measured (from the first row). */
export function describeEvaluation(result: EvalResult): string[] {
  const { settings: s, withReasoning: r } = result;
  const t = s.thresholds;
  const decoding = s.temperature === 0 ? "greedy" : `temperature ${s.temperature}`;
  return [
    `${result.positions} held-out positions of ${result.data} (seed ${s.seed}, ` +
    `≥ ${s.minContext} context tokens); tiers by ${result.proxy}'s top-${s.entropyTopK} ` +
    `entropy: easy (H>${t.easy}) ${r.easy.count}, medium (H>${t.medium}) ${r.medium.count}, ` +
    `hard (H>${t.hard}) ${r.hard.count}`,
    `accuracy in %: with reasoning (prompt = context + <think>, ≤ ${s.maxReasoning} reasoning ` +
    `tokens, ${decoding}; the token after </think> is the prediction, unparseable = wrong); ` +
    `avg = mean of the three tiers; all = every position`,
    `think = mean reasoning tokens; parse = % parseable; argmax = next-token accuracy without ` +
    `reasoning (avg over tiers / all); ppl = perplexity over every token of the file`,
  ];
}

/** The table: header lines, column titles, one row per model. */
export function formatEvalTable(rows: readonly TableRow[]): string {
  if (rows.length === 0) return "(no evaluations)";
  const labelWidth = Math.max(5, ...rows.map((r) => r.label.length));
  const columns = [
    "easy",
    "medium",
    "hard",
    "avg",
    "all",
    "think",
    "parse",
    "argmax avg",
    "argmax all",
    "ppl",
  ];
  const widths = columns.map((c) => Math.max(7, c.length));
  const line = (label: string, cells: string[]) =>
    [label.padEnd(labelWidth), ...cells.map((c, i) => c.padStart(widths[i]))].join("  ");
  const tiers = (a: TierAccuracy) => [a.easy, a.medium, a.hard].map((s) => percent(s.accuracy));
  const body = rows.map(({ label, result }) => {
    const r = result.withReasoning;
    const ppl = result.perplexity.perplexity;
    return line(label, [
      ...tiers(r),
      percent(r.average),
      percent(r.all.accuracy),
      r.reasoningTokens.toFixed(1),
      percent(r.parseRate),
      percent(result.plain.average),
      percent(result.plain.all.accuracy),
      ppl === null ? "—" : ppl.toFixed(3),
    ]);
  });
  const title = line("model", columns);
  return [
    ...describeEvaluation(rows[0].result),
    "",
    title,
    "-".repeat(title.length),
    ...body,
  ].join("\n");
}
