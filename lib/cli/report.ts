// `rmt report`: one self-contained HTML file (inline CSS and SVG, no script, nothing fetched)
// with the training metrics of run folders plotted against step and the tables of pipeline
// folders (lib/report/).

import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { UserError } from "../gpu/errors.ts";
import { metricsWithValues, renderReport } from "../report/html_report.ts";
import { loadReportFolders, RESULTS_FILE } from "../report/load_runs.ts";

const DEFAULT_TITLE = "rmt report";

export const reportHelp = `rmt report DIR... --out FILE [options]

Writes one self-contained HTML file (no network: inline CSS and SVG, no script) that shows:
  - the runs (name, method, logged steps, folder);
  - one line plot against step per training metric that some run logged: reward, match
    accuracy, reasoning length, budget B_t, the NTP and RL losses, objective, parse rate,
    gradient norm; the runs overlaid, each in its own colour, with a legend; a step without a
    value leaves a gap;
  - the tables of each pipeline folder (${RESULTS_FILE}), numbers formatted, missing as "–".

Each DIR is a run folder (metrics.jsonl, from rmt train) or a pipeline folder (${RESULTS_FILE};
its runs are plotted under the names it gives). Runs are named by their folder; a name used
twice is qualified by the parent folder (or pipeline). Unreadable lines of metrics.jsonl (a
run killed mid-write) are skipped and counted. The same inputs give the same file.

Options:
  --out FILE     the HTML file to write (required)
  --title TEXT   the page title (default: "${DEFAULT_TITLE}", or "${DEFAULT_TITLE}: PIPELINE" for one pipeline)
  --help         this help`;

export async function reportCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      out: { type: "string" },
      title: { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    console.log(reportHelp);
    return 0;
  }
  if (values.out === undefined || values.out === "") {
    throw new UserError("--out is required (the HTML file to write, e.g. --out report.html)");
  }
  if (positionals.length === 0) {
    throw new UserError("give at least one run or pipeline folder (rmt report DIR... --out FILE)");
  }
  const { runs, pipelines } = await loadReportFolders(positionals);
  const title = values.title ??
    (pipelines.length === 1 ? `${DEFAULT_TITLE}: ${pipelines[0].name}` : DEFAULT_TITLE);
  const html = renderReport({ title, runs, pipelines });

  const out = values.out;
  try {
    await Deno.mkdir(dirname(out), { recursive: true });
    await Deno.writeTextFile(`${out}.tmp`, html);
    await Deno.rename(`${out}.tmp`, out);
  } catch (e) {
    throw new UserError(`--out ${out}: cannot write: ${(e as Error).message}`);
  }
  const tables = pipelines.reduce((n, p) => n + p.tables.length, 0);
  const skipped = runs.reduce((n, r) => n + r.skippedLines, 0);
  console.log(
    `rmt report: wrote ${out} (${runs.length} runs, ${metricsWithValues(runs).length} plots, ` +
      `${tables} tables${skipped > 0 ? `; ${skipped} unreadable metrics lines skipped` : ""})`,
  );
  return 0;
}
