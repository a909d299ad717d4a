// Reading the folders `rmt report` is given: a training run folder (metrics.jsonl, with
// run.json and config.yaml beside it) or a pipeline folder (results.json: tables, and the run
// folders it made, relative to it). Problems the user can fix are one-line UserErrors naming
// the file; a torn or invalid line of metrics.jsonl is skipped and counted.

import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { UserError } from "../gpu/errors.ts";
import type { MetricsRecord } from "../train/metrics.ts";
import { METRICS_FILE, RUN_CONFIG_FILE, RUN_FILE } from "../train/run_dir.ts";
import type { ReportPipeline, ReportRun, ReportTable, TableCell } from "./html_report.ts";

export const RESULTS_FILE = "results.json";

/** The records of a metrics.jsonl with a numeric step, in step order; other lines counted. */
export function parseMetricsLines(text: string): { records: MetricsRecord[]; skipped: number } {
  const records: MetricsRecord[] = [];
  let skipped = 0;
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      const record = JSON.parse(line);
      const ok = typeof record === "object" && record !== null && !Array.isArray(record) &&
        typeof record.step === "number" && Number.isFinite(record.step);
      if (ok) records.push(record);
      else skipped++;
    } catch {
      skipped++; // a line torn by a kill mid-write, or not JSON
    }
  }
  // A stable sort: file order within a step.
  records.sort((a, b) => (a.step as number) - (b.step as number));
  return { records, skipped };
}

async function readTextOrNull(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new UserError(`${path}: cannot read: ${(e as Error).message}`);
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/** The method of a run: run.json's `method`, else config.yaml's top-level `method:`. */
async function runMethod(dir: string): Promise<string | null> {
  const runJson = await readTextOrNull(join(dir, RUN_FILE));
  if (runJson !== null) {
    try {
      const method = JSON.parse(runJson)?.method;
      if (typeof method === "string") return method;
    } catch {
      // unreadable run.json: try config.yaml
    }
  }
  const yaml = await readTextOrNull(join(dir, RUN_CONFIG_FILE));
  const match = yaml === null ? null : /^method:\s*["']?([\w.-]+)/m.exec(yaml);
  return match ? match[1] : null;
}

/** A run as loaded, before names are made unique; `qualifier` tells duplicates apart. */
interface LoadedRun extends ReportRun {
  qualifier: string;
}

async function loadRun(
  dir: string,
  name: string,
  qualifier: string,
  pipeline: string | null,
  group: string | null = null,
): Promise<LoadedRun> {
  const text = await readTextOrNull(join(dir, METRICS_FILE));
  if (text === null) {
    const from = pipeline === null ? "" : ` (listed in pipeline ${pipeline}'s ${RESULTS_FILE})`;
    throw new UserError(`${dir}: no ${METRICS_FILE} in this run folder${from}`);
  }
  const { records, skipped } = parseMetricsLines(text);
  const method = await runMethod(dir);
  return { name, dir, method, pipeline, group, records, skippedLines: skipped, qualifier };
}

// ---- results.json -----------------------------------------------------------------------

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function optionalString(value: unknown, where: string, path: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "string") throw new UserError(`${path}: ${where}: expected a string`);
  return value;
}

function parseTable(value: unknown, i: number, path: string): ReportTable {
  const where = `tables[${i}]`;
  if (!isRecord(value)) throw new UserError(`${path}: ${where}: expected an object`);
  const { columns, rows } = value;
  if (!Array.isArray(columns) || !columns.every((c) => typeof c === "string")) {
    throw new UserError(`${path}: ${where}.columns: expected an array of strings`);
  }
  if (!Array.isArray(rows)) throw new UserError(`${path}: ${where}.rows: expected an array`);
  rows.forEach((row, r) => {
    if (!Array.isArray(row) || row.length !== columns.length) {
      throw new UserError(
        `${path}: ${where}.rows[${r}]: expected an array of ${columns.length} cells (one per column)`,
      );
    }
    row.forEach((c: unknown, k) => {
      if (c !== null && !["number", "string", "boolean"].includes(typeof c)) {
        throw new UserError(
          `${path}: ${where}.rows[${r}][${k}]: expected a number, a string or null`,
        );
      }
    });
  });
  return {
    id: optionalString(value.id, `${where}.id`, path) ?? String(i),
    title: optionalString(value.title, `${where}.title`, path) ?? `Table ${i + 1}`,
    columns: columns as string[],
    rows: rows as TableCell[][],
    note: optionalString(value.note, `${where}.note`, path),
  };
}

/** results.json, checked: the pipeline (tables) and the runs it lists (name, folder). */
export function parseResults(
  text: string,
  path: string,
): {
  pipeline: Omit<ReportPipeline, "dir">;
  runs: { name: string | null; dir: string; group: string | null }[];
} {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (!isRecord(json)) throw new UserError(`${path}: expected a JSON object`);
  const tables = json.tables ?? [];
  const runs = json.runs ?? [];
  if (!Array.isArray(tables)) throw new UserError(`${path}: tables: expected an array`);
  if (!Array.isArray(runs)) throw new UserError(`${path}: runs: expected an array`);
  return {
    pipeline: {
      name: optionalString(json.pipeline, "pipeline", path) ??
        basename(resolve(dirname(path))),
      created: optionalString(json.created, "created", path),
      machine: optionalString(json.machine, "machine", path),
      tables: tables.map((t, i) => parseTable(t, i, path)),
    },
    runs: runs.map((run, i) => {
      if (!isRecord(run) || typeof run.dir !== "string" || run.dir === "") {
        throw new UserError(`${path}: runs[${i}]: expected { "name": ..., "dir": "..." }`);
      }
      return {
        name: optionalString(run.name, `runs[${i}].name`, path),
        dir: run.dir,
        group: optionalString(run.group, `runs[${i}].group`, path),
      };
    }),
  };
}

// ---- the folders --------------------------------------------------------------------------

function trimSlashes(dir: string): string {
  return dir.length > 1 ? dir.replace(/\/+$/, "") : dir;
}

function folderName(dir: string): string {
  return basename(resolve(dir));
}

/**
 * Unique names: a name used twice is qualified by its parent folder (or its pipeline), as
 * "parent/name"; one still used twice gets " (2)", " (3)", ... in order.
 */
export function uniqueNames(runs: readonly { name: string; qualifier: string }[]): string[] {
  const count = (names: string[], n: string) => names.filter((x) => x === n).length;
  const plain = runs.map((r) => r.name);
  const qualified = runs.map((r, i) =>
    count(plain, r.name) > 1 && r.qualifier !== "" ? `${r.qualifier}/${r.name}` : plain[i]
  );
  const seen = new Map<string, number>();
  return qualified.map((name) => {
    if (count(qualified, name) === 1) return name;
    const k = (seen.get(name) ?? 0) + 1;
    seen.set(name, k);
    return k === 1 ? name : `${name} (${k})`;
  });
}

/**
 * Loads each folder: a pipeline (results.json: its tables, then its runs) or a run folder
 * (metrics.jsonl). A folder with results.json is read as a pipeline.
 */
export async function loadReportFolders(
  dirs: readonly string[],
): Promise<{ runs: ReportRun[]; pipelines: ReportPipeline[] }> {
  const loaded: LoadedRun[] = [];
  const pipelines: ReportPipeline[] = [];
  for (const given of dirs) {
    const dir = trimSlashes(given);
    let stat: Deno.FileInfo;
    try {
      stat = await Deno.stat(dir);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new UserError(`${dir}: no such folder (expected a run or pipeline folder)`);
      }
      throw new UserError(`${dir}: cannot access: ${(e as Error).message}`);
    }
    if (!stat.isDirectory) {
      throw new UserError(
        `${dir}: not a folder (expected a run folder with ${METRICS_FILE} or a pipeline ` +
          `folder with ${RESULTS_FILE})`,
      );
    }
    const resultsPath = join(dir, RESULTS_FILE);
    const results = await readTextOrNull(resultsPath);
    if (results !== null) {
      const { pipeline, runs } = parseResults(results, resultsPath);
      pipelines.push({ ...pipeline, dir });
      for (const run of runs) {
        const runDir = isAbsolute(run.dir) ? run.dir : join(dir, run.dir);
        const name = run.name ?? folderName(runDir);
        loaded.push(
          await loadRun(trimSlashes(runDir), name, pipeline.name, pipeline.name, run.group),
        );
      }
    } else if (await isFile(join(dir, METRICS_FILE))) {
      loaded.push(await loadRun(dir, folderName(dir), basename(dirname(resolve(dir))), null));
    } else {
      throw new UserError(
        `${dir}: neither ${METRICS_FILE} (a run folder, from rmt train) nor ${RESULTS_FILE} ` +
          "(a pipeline folder) is there",
      );
    }
  }
  const names = uniqueNames(loaded);
  const runs = loaded.map(({ qualifier: _, ...run }, i) => ({ ...run, name: names[i] }));
  return { runs, pipelines };
}
