// The report as one self-contained HTML page (pure: same model, same bytes): a header with the
// runs, one SVG line plot per training metric that some run logged (the runs overlaid, a
// legend), and the pipelines' result tables. No script, no external resource: the CSS is
// inline and the fonts are the reader's own.

import type { MetricsRecord } from "../train/metrics.ts";
import { VERSION } from "../version.ts";
import { escapeXml, linePlotSvg, type PlotSeries, seriesStyle } from "./svg_plot.ts";

/** One training run folder (metrics.jsonl), as the report shows it. */
export interface ReportRun {
  /** Unique in the report (see load_runs.ts). */
  name: string;
  /** The folder, as the user (or results.json) gave it. */
  dir: string;
  /** From run.json (or config.yaml); null when neither says. */
  method: string | null;
  /** The pipeline that listed this run, or null for a run folder given directly. */
  pipeline: string | null;
  /** The pipeline stage it belongs to (its plots are drawn apart), or null. */
  group: string | null;
  /** The logged steps, in step order. */
  records: MetricsRecord[];
  /** Lines of metrics.jsonl that were not a JSON object with a numeric step (torn, invalid). */
  skippedLines: number;
}

export type TableCell = number | string | boolean | null;

export interface ReportTable {
  id: string;
  title: string;
  columns: string[];
  rows: TableCell[][];
  note: string | null;
}

/** A pipeline folder's results.json. */
export interface ReportPipeline {
  name: string;
  dir: string;
  created: string | null;
  machine: string | null;
  tables: ReportTable[];
}

export interface ReportModel {
  title: string;
  runs: ReportRun[];
  pipelines: ReportPipeline[];
}

export interface PlottedMetric {
  /** The field of metrics.jsonl. */
  key: string;
  title: string;
  yLabel: string;
  yFromZero: boolean;
}

/** The metrics that get a plot (when at least one run has a value), in page order. */
export const PLOTTED_METRICS: readonly PlottedMetric[] = [
  { key: "reward_mean", title: "Reward (mean over rollouts)", yLabel: "reward", yFromZero: true },
  {
    key: "match_rate",
    title: "Match accuracy of the rollouts",
    yLabel: "match rate",
    yFromZero: true,
  },
  { key: "reasoning_len", title: "Reasoning length", yLabel: "tokens", yFromZero: true },
  { key: "budget", title: "Reasoning budget B_t", yLabel: "tokens", yFromZero: true },
  { key: "loss_ntp", title: "Next-token loss", yLabel: "loss (nats/token)", yFromZero: false },
  { key: "loss_rl", title: "RL loss (GRPO)", yLabel: "loss", yFromZero: false },
  { key: "objective", title: "Objective", yLabel: "objective", yFromZero: false },
  { key: "parse_rate", title: "Parse rate of the rollouts", yLabel: "parse rate", yFromZero: true },
  { key: "grad_norm", title: "Gradient norm (before clipping)", yLabel: "‖g‖", yFromZero: true },
];

const CSS = `
body { font: 14px/1.45 system-ui, sans-serif; color: #222; margin: 24px auto; max-width: 1000px;
  padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.meta, .note, footer { color: #666; }
table { border-collapse: collapse; margin: 8px 0 4px; }
caption { text-align: left; font-weight: 600; padding-bottom: 4px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e4e4e4; text-align: left; }
th { background: #f6f6f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: 18px; height: 0; border-top: 3px solid; margin-right: 6px;
  vertical-align: middle; }
figure { margin: 0; }
.plots { display: flex; flex-direction: column; gap: 12px; }
svg.plot { background: #fff; border: 1px solid #e4e4e4; }
svg.plot .title { font-size: 14px; font-weight: 600; fill: #222; }
svg.plot .tick, svg.plot .legend text { font-size: 11px; fill: #444; }
svg.plot .label { font-size: 12px; fill: #444; }
svg.plot .grid line { stroke: #eee; }
svg.plot .axis line { stroke: #888; }
svg.plot .series { fill: none; stroke-width: 1.8; stroke-linejoin: round; stroke-linecap: round; }
svg.plot .legend line { stroke-width: 2.5; }
`;

/** A number as a table shows it: integers whole, others to 4 significant digits. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value) || Number.isInteger(value)) return String(value);
  if (Math.abs(value) >= 1000) return value.toFixed(1);
  return String(Number(value.toPrecision(4)));
}

function cell(value: TableCell): string {
  if (value === null) return `<td class="num">–</td>`;
  if (typeof value === "number") return `<td class="num">${formatNumber(value)}</td>`;
  return `<td>${escapeXml(String(value))}</td>`;
}

function htmlTable(caption: string, columns: string[], rows: string[][], id = ""): string {
  const head = columns.map((c) => `<th>${escapeXml(c)}</th>`).join("");
  const body = rows.map((cells) => `<tr>${cells.join("")}</tr>`).join("\n");
  const idAttr = id === "" ? "" : ` id="${escapeXml(id)}"`;
  return `<table${idAttr}><caption>${escapeXml(caption)}</caption>\n` +
    `<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody></table>`;
}

function stepRange(run: ReportRun): string {
  if (run.records.length === 0) return "none";
  const first = run.records[0].step;
  const last = run.records[run.records.length - 1].step;
  return `${run.records.length} (${first}–${last})`;
}

function runsTable(runs: ReportRun[]): string {
  const rows = runs.map((run, i) => {
    const { color, dash } = seriesStyle(i);
    const style = `border-top-color: ${color}; border-top-style: ${
      dash === "" ? "solid" : "dashed"
    }`;
    const skipped = run.skippedLines === 0 ? "" : ` (${run.skippedLines} unreadable lines skipped)`;
    return [
      `<td><span class="swatch" style="${style}"></span>${escapeXml(run.name)}</td>`,
      cell(run.method),
      `<td class="num">${stepRange(run)}</td>`,
      `<td>${escapeXml(run.dir)}${escapeXml(skipped)}</td>`,
    ];
  });
  return htmlTable("Runs", ["Run", "Method", "Logged steps", "Folder"], rows, "runs");
}

/**
 * One series per run, y null where not logged; `colour[i]` is run i's index in the runs table,
 * so that a run has the same colour in every plot.
 */
function metricSeries(runs: ReportRun[], key: string, colour: readonly number[]): PlotSeries[] {
  return runs.map((run, i) => ({
    name: run.name,
    ...seriesStyle(colour[i]),
    points: run.records.map((r) => {
      const y = r[key];
      return [r.step as number, typeof y === "number" && Number.isFinite(y) ? y : null] as const;
    }),
  }));
}

/** The plotted metrics that at least one run has a value of: one plot each. */
export function metricsWithValues(runs: ReportRun[]): typeof PLOTTED_METRICS {
  return PLOTTED_METRICS.filter((metric) =>
    runs.some((run) =>
      run.records.some((r) => typeof r[metric.key] === "number" && Number.isFinite(r[metric.key]))
    )
  );
}

function plots(runs: ReportRun[], colour: readonly number[], idPrefix: string): string[] {
  const out: string[] = [];
  for (const metric of metricsWithValues(runs)) {
    const series = metricSeries(runs, metric.key, colour);
    const svg = linePlotSvg({ ...metric, xLabel: "step", series });
    out.push(`<figure id="plot-${idPrefix}${metric.key}">\n${svg}\n</figure>`);
  }
  return out;
}

/**
 * The plots: one set for all runs, or, when the runs come in groups (a pipeline's stages, whose
 * step counts and rewards differ), one set per group under its name.
 */
function plotSections(runs: ReportRun[]): string[] {
  const groups = [...new Set(runs.map((r) => r.group))];
  if (groups.length <= 1) {
    const figures = plots(runs, runs.map((_, i) => i), "");
    return figures.length === 0 ? [] : [`<div class="plots">\n${figures.join("\n")}\n</div>`];
  }
  return groups.flatMap((group, g) => {
    const members = runs.map((run, i) => ({ run, i })).filter(({ run }) => run.group === group);
    const figures = plots(members.map((m) => m.run), members.map((m) => m.i), `${g}-`);
    if (figures.length === 0) return [];
    return [
      `<h3>${escapeXml(group ?? "other runs")}</h3>`,
      `<div class="plots">\n${figures.join("\n")}\n</div>`,
    ];
  });
}

function pipelineSection(pipeline: ReportPipeline): string {
  const facts = [
    pipeline.created === null ? "" : `created ${pipeline.created}`,
    pipeline.machine === null ? "" : `on ${pipeline.machine}`,
    `folder ${pipeline.dir}`,
  ].filter((f) => f !== "").join(", ");
  const tables = pipeline.tables.map((t) => {
    const rows = t.rows.map((row) => row.map(cell));
    const note = t.note === null ? "" : `\n<p class="note">${escapeXml(t.note)}</p>`;
    return htmlTable(t.title, t.columns, rows, `table-${t.id}`) + note;
  });
  return [
    `<h2>Pipeline ${escapeXml(pipeline.name)}</h2>`,
    `<p class="meta">${escapeXml(facts)}</p>`,
    ...(tables.length === 0 ? [`<p class="note">No tables in results.json.</p>`] : tables),
  ].join("\n");
}

export function renderReport(model: ReportModel): string {
  const plotFigures = plotSections(model.runs);
  const body = [
    `<header>`,
    `<h1>${escapeXml(model.title)}</h1>`,
    `<p class="meta">${model.runs.length} run${model.runs.length === 1 ? "" : "s"}, ` +
    `${model.pipelines.length} pipeline${model.pipelines.length === 1 ? "" : "s"}</p>`,
    model.runs.length === 0 ? "" : runsTable(model.runs),
    `</header>`,
    ...model.pipelines.map(pipelineSection),
    model.runs.length === 0 ? "" : `<h2>Training metrics against step</h2>`,
    plotFigures.length === 0 && model.runs.length > 0
      ? `<p class="note">No run logged any of the plotted metrics.</p>`
      : "",
    ...plotFigures,
    `<footer><p>Made by rmt ${escapeXml(VERSION)} (rmt report).</p></footer>`,
  ].filter((part) => part !== "");
  return [
    `<!DOCTYPE html>`,
    `<html lang="en">`,
    `<head>`,
    `<meta charset="utf-8">`,
    `<meta name="viewport" content="width=device-width, initial-scale=1">`,
    `<title>${escapeXml(model.title)}</title>`,
    `<style>${CSS}</style>`,
    `</head>`,
    `<body>`,
    ...body,
    `</body>`,
    `</html>`,
    ``,
  ].join("\n");
}
