// rmt report without a browser: the SVG plot (one path per series, legend, gaps at nulls, ticks),
// the folders it reads (tolerant metrics reader, results.json, names, errors), the HTML (no
// external resource, tables, plots only for logged metrics, deterministic) and the command.

import { main } from "../../lib/cli/main.ts";
import { reportCommand } from "../../lib/cli/report.ts";
import { PLOTTED_METRICS, renderReport } from "../../lib/report/html_report.ts";
import {
  loadReportFolders,
  parseMetricsLines,
  parseResults,
  uniqueNames,
} from "../../lib/report/load_runs.ts";
import { linePlotSvg, niceTicks, type PlotSeries, seriesStyle } from "../../lib/report/svg_plot.ts";
import { assert, assertEquals, assertUserError, withTempDir } from "../helpers.ts";
import { ntpRecords, rmtRecords, writePipelineFolder, writeRunFolder } from "./fixtures.ts";

function series(name: string, index: number, ys: (number | null)[]): PlotSeries {
  return { name, ...seriesStyle(index), points: ys.map((y, i) => [i + 1, y] as const) };
}

function plot(list: PlotSeries[]): string {
  return linePlotSvg({
    title: "Reward",
    xLabel: "step",
    yLabel: "reward",
    yFromZero: false,
    series: list,
  });
}

/** The d attributes of the <path class="series"> elements, in order. */
function seriesPaths(svg: string): string[] {
  return [...svg.matchAll(/<path class="series"[^>]* d="([^"]*)"/g)].map((m) => m[1]);
}

function count(text: string, pattern: RegExp): number {
  return [...text.matchAll(pattern)].length;
}

Deno.test("report: niceTicks covers the data with round steps", () => {
  assertEquals(niceTicks(0, 1).values, [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1], "0..1");
  const t = niceTicks(3, 247, 6);
  assertEquals([t.min, t.max, t.decimals], [0, 250, 0], "3..247 → 0..250");
  assertEquals([niceTicks(0, 0).min, niceTicks(0, 0).max], [0, 1], "a constant 0: 0..1");
  const c = niceTicks(8, 8);
  assert(c.min <= 8 && c.max >= 8 && c.min >= 0, `a constant 8: ${c.min}..${c.max}`);
  const n = niceTicks(-0.37, 0.02);
  assert(n.min <= -0.37 && n.max >= 0.02, `negative: ${n.min}..${n.max}`);
});

Deno.test("report: SVG plot has one path per series, a legend entry each, axes with labels", () => {
  const svg = plot([
    series("rmt", 0, [0.1, 0.2, 0.3]),
    series("ntp", 1, [0.3, 0.2, 0.1]),
    series("rpt", 2, [0.2, 0.2, 0.25]),
  ]);
  assertEquals(count(svg, /<svg /g), 1, "one <svg>");
  assert(!svg.includes("xmlns"), "no namespace URL (inline in HTML)");
  assertEquals(seriesPaths(svg).length, 3, "one path per series");
  const legend = [...svg.matchAll(/<g class="legend-entry">.*?<text[^>]*>([^<]*)<\/text>/g)];
  assertEquals(legend.map((m) => m[1]), ["rmt", "ntp", "rpt"], "legend names");
  for (const color of ["#1f77b4", "#ff7f0e", "#2ca02c"]) {
    assertEquals(count(svg, new RegExp(`stroke="${color}"`, "g")), 2, `${color}: line and legend`);
  }
  assert(svg.includes(">step</text>") && svg.includes(">reward</text>"), "axis labels");
  assert(count(svg, /class="tick"/g) >= 6, "tick labels on both axes");
  assert(svg.includes(">Reward</text>"), "title");
});

Deno.test("report: a null lifts the pen; a series with no value is left out", () => {
  const svg = plot([
    series("gappy", 0, [1, 2, null, 4, 5, null, 7]),
    series("empty", 1, [null, null, null]),
  ]);
  const paths = seriesPaths(svg);
  assertEquals(paths.length, 1, "the all-null series has no path");
  assertEquals(count(paths[0], /M/g), 3, "three pieces: [1,2], [4,5], [7]");
  assert(/M[^M]*a1.5[^M]*$/.test(paths[0]), `a lone point is a dot: ${paths[0]}`);
  assert(!svg.includes(">empty<"), "nor a legend entry");
});

Deno.test("report: names are escaped; the 11th series repeats a colour, dashed", () => {
  const many = Array.from({ length: 11 }, (_, i) => series(i === 0 ? "<a&b>" : `r${i}`, i, [i, 1]));
  const svg = plot(many);
  assert(svg.includes("&lt;a&amp;b&gt;") && !svg.includes("<a&b>"), "escaped name");
  assertEquals(seriesStyle(10).color, seriesStyle(0).color, "palette repeats");
  assert(seriesStyle(10).dash !== "" && seriesStyle(0).dash === "", "dashed the second time");
  assertEquals(count(svg, /<path class="series"[^>]*stroke-dasharray/g), 1, "one dashed path");
});

Deno.test("report: a 300k-step series is thinned to a few points per pixel column", () => {
  const ys = Array.from({ length: 300_000 }, (_, i) => Math.sin(i / 5000) + (i % 7) * 0.01);
  const svg = plot([series("long", 0, ys)]);
  const d = seriesPaths(svg)[0];
  const points = count(d, /[ML]/g);
  assert(points < 2500 && points > 400, `kept ${points} points`);
  assert(svg.length < 60_000, `svg ${svg.length} chars`);
});

Deno.test("report: metrics lines: torn and invalid lines are skipped and counted", () => {
  const text = [
    JSON.stringify({ step: 2, reward_mean: 0.2 }),
    JSON.stringify({ step: 1, reward_mean: 0.1 }),
    "[1, 2]",
    JSON.stringify({ reward_mean: 0.3 }),
    "",
    '{"step": 3, "reward_me',
  ].join("\n");
  const { records, skipped } = parseMetricsLines(text);
  assertEquals(records.map((r) => r.step), [1, 2], "valid records in step order");
  assertEquals(skipped, 3, "array, no step, torn");
});

Deno.test("report: duplicate names are qualified by folder, then numbered", () => {
  assertEquals(
    uniqueNames([
      { name: "rmt", qualifier: "a" },
      { name: "rmt", qualifier: "b" },
      { name: "ntp", qualifier: "a" },
      { name: "x", qualifier: "p" },
      { name: "x", qualifier: "p" },
    ]),
    ["a/rmt", "b/rmt", "ntp", "p/x", "p/x (2)"],
    "names",
  );
});

Deno.test("report: loads run and pipeline folders (methods, names, tables)", async () => {
  await withTempDir(async (dir) => {
    await writePipelineFolder(`${dir}/pipe`, 12);
    await writeRunFolder(`${dir}/other/rmt`, {
      method: "rmt-no-budget",
      records: rmtRecords(5),
      tail: '{"step": 6, "loss',
      methodIn: "config.yaml",
    });
    const { runs, pipelines } = await loadReportFolders([`${dir}/pipe/`, `${dir}/other/rmt`]);
    assertEquals(runs.map((r) => r.name), ["paper-tiny/rmt", "ntp baseline", "other/rmt"], "names");
    assertEquals(runs.map((r) => r.method), ["rmt", "ntp", "rmt-no-budget"], "methods");
    assertEquals(runs.map((r) => r.records.length), [12, 12, 5], "records");
    assertEquals(runs.map((r) => r.skippedLines), [0, 0, 1], "the torn line");
    assertEquals(runs[0].dir, `${dir}/pipe/midtrain/rmt`, "a pipeline run's folder");
    assertEquals(pipelines.length, 1, "one pipeline");
    assertEquals(pipelines[0].name, "paper-tiny", "pipeline name");
    assertEquals(pipelines[0].tables.map((t) => t.id), ["next_token", "perplexity"], "tables");
  });
});

Deno.test("report: one-line errors name the folder and what was expected", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/empty`);
    await assertUserError(
      () => loadReportFolders([`${dir}/empty`]),
      [`${dir}/empty`, "metrics.jsonl", "results.json"],
      "a folder with neither file",
    );
    await assertUserError(
      () => loadReportFolders([`${dir}/missing`]),
      [`${dir}/missing`, "no such folder"],
      "a missing folder",
    );
    await Deno.writeTextFile(`${dir}/file.txt`, "x");
    await assertUserError(() => loadReportFolders([`${dir}/file.txt`]), ["not a folder"], "a file");
    await Deno.mkdir(`${dir}/bad`);
    await Deno.writeTextFile(`${dir}/bad/results.json`, "{ not json");
    await assertUserError(
      () => loadReportFolders([`${dir}/bad`]),
      [`${dir}/bad/results.json`, "not valid JSON"],
      "invalid results.json",
    );
    await Deno.writeTextFile(
      `${dir}/bad/results.json`,
      JSON.stringify({ runs: [{ name: "gone", dir: "midtrain/gone" }] }),
    );
    await assertUserError(
      () => loadReportFolders([`${dir}/bad`]),
      [`${dir}/bad/midtrain/gone`, "metrics.jsonl"],
      "a listed run folder without metrics",
    );
  });
  const table = { columns: ["a", "b"], rows: [[1]] };
  await assertUserError(
    () => parseResults(JSON.stringify({ tables: [table] }), "r.json"),
    ["r.json", "tables[0].rows[0]", "2 cells"],
    "a short row",
  );
  await assertUserError(
    () => parseResults(JSON.stringify({ tables: [{ columns: ["a"], rows: [[{}]] }] }), "r.json"),
    ["tables[0].rows[0][0]"],
    "an object cell",
  );
});

Deno.test("report: HTML is self-contained, with the tables and one plot per logged metric", async () => {
  await withTempDir(async (dir) => {
    await writePipelineFolder(`${dir}/pipe`, 20);
    const loaded = await loadReportFolders([`${dir}/pipe`]);
    const html = renderReport({ title: "Report <test>", ...loaded });
    for (const banned of ["http://", "https://", "<script", "src=", "<link", "url(", "@import"]) {
      assert(!html.includes(banned), `no ${banned} in the HTML`);
    }
    assert(html.startsWith("<!DOCTYPE html>") && html.includes('<meta charset="utf-8">'), "head");
    assert(html.includes("<title>Report &lt;test&gt;</title>"), "escaped title");
    // rmt logs every plotted metric but `objective`; ntp adds nothing new.
    const expected = PLOTTED_METRICS.filter((m) => m.key !== "objective").map((m) => m.key);
    const plotted = [...html.matchAll(/<figure id="plot-(\w+)">/g)].map((m) => m[1]);
    assertEquals(plotted, expected, "plots");
    assertEquals(count(html, /<svg /g), expected.length, "one svg per plot");
    // loss_ntp and grad_norm have both runs; the RL plots only rmt.
    const lossPlot = html.slice(
      html.indexOf('id="plot-loss_ntp"'),
      html.indexOf('id="plot-loss_rl"'),
    );
    assertEquals(count(lossPlot, /<path class="series"/g), 2, "loss_ntp: two runs");
    const rewardPlot = html.slice(
      html.indexOf('id="plot-reward_mean"'),
      html.indexOf('id="plot-match_rate"'),
    );
    assertEquals(count(rewardPlot, /<path class="series"/g), 1, "reward: rmt only");
    // Tables: numbers formatted, null as "–", notes, header of runs.
    assert(html.includes('<table id="table-next_token">'), "table next_token");
    assert(
      html.includes("<caption>Next-token accuracy with reasoning by tier</caption>"),
      "caption",
    );
    assert(html.includes('<td class="num">–</td>'), "null cell");
    assert(html.includes('<td class="num">0.1235</td>'), "0.123456 to 4 digits");
    assert(html.includes('<td class="num">12345</td>'), "integer as is");
    assert(html.includes("tiers by the base model&#39;s entropy"), "note");
    assert(html.includes("created 2026-11-25T12:00:00.000Z, on test machine (lavapipe)"), "facts");
    assert(html.includes('<table id="runs">') && html.includes("ntp baseline"), "runs table");
    assertEquals(renderReport({ title: "Report <test>", ...loaded }), html, "deterministic");
  });
});

Deno.test("report: the command writes the file, the same bytes twice; its errors", async () => {
  await withTempDir(async (dir) => {
    await writeRunFolder(`${dir}/a/rmt`, { method: "rmt", records: rmtRecords(10) });
    await writeRunFolder(`${dir}/b/ntp`, { method: "ntp", records: ntpRecords(10) });
    const log = console.log;
    const printed: string[] = [];
    console.log = (...args: unknown[]) => printed.push(args.join(" "));
    try {
      const args = [`${dir}/a/rmt`, `${dir}/b/ntp`, "--out", `${dir}/out/report.html`];
      assertEquals(await reportCommand(args), 0, "exit code");
      const first = await Deno.readTextFile(`${dir}/out/report.html`);
      assertEquals(await reportCommand(args), 0, "exit code, again");
      assertEquals(await Deno.readTextFile(`${dir}/out/report.html`), first, "same bytes");
      assert(first.includes("<title>rmt report</title>"), "default title");
      assert(printed[0].includes("2 runs, 8 plots, 0 tables"), printed[0]);
    } finally {
      console.log = log;
    }
    await assertUserError(() => reportCommand([`${dir}/a/rmt`]), ["--out is required"], "no --out");
    await assertUserError(
      () => reportCommand(["--out", `${dir}/r.html`]),
      ["at least one run or pipeline folder"],
      "no folder",
    );
    const errors: string[] = [];
    const error = console.error;
    console.error = (...args: unknown[]) => errors.push(args.join(" "));
    try {
      assertEquals(await main(["report", dir, "--out", `${dir}/r.html`]), 2, "main: exit code 2");
    } finally {
      console.error = error;
    }
    assertEquals(errors.length, 1, "one line on stderr");
    assert(errors[0].startsWith(`rmt report: ${dir}:`), errors[0]);
  });
});

Deno.test("report: runs in groups (a pipeline's stages) get a set of plots each, colours kept", () => {
  const run = (name: string, group: string | null, records: ReturnType<typeof rmtRecords>) => ({
    name,
    dir: `runs/${name}`,
    method: "rmt",
    pipeline: "p",
    group,
    records,
    skippedLines: 0,
  });
  const html = renderReport({
    title: "groups",
    runs: [
      run("pretrain", "pre-training", ntpRecords(30)),
      run("rmt", "mid-training", rmtRecords(6)),
      run("post rmt", "post-training", rmtRecords(4)),
    ],
    pipelines: [],
  });
  for (const group of ["pre-training", "mid-training", "post-training"]) {
    assert(html.includes(`<h3>${group}</h3>`), `a section for ${group}`);
  }
  // The reward plot exists for the two RL groups, not for pre-training (NTP logs no reward).
  assert(html.includes('id="plot-1-reward_mean"') && html.includes('id="plot-2-reward_mean"'), "");
  assert(!html.includes('id="plot-0-reward_mean"'), "no reward plot for pre-training");
  assert(html.includes('id="plot-0-loss_ntp"'), "pre-training's loss");
  // The third run keeps the third colour in its own section.
  const third = html.slice(html.indexOf("<h3>post-training</h3>"));
  const style2 = renderReport({
    title: "flat",
    runs: [
      run("a", null, rmtRecords(2)),
      run("b", null, rmtRecords(2)),
      run("c", null, rmtRecords(2)),
    ],
    pipelines: [],
  });
  const colour =
    /stroke="(#[0-9a-f]{6})"[^>]*class="series"|class="series"[^>]*stroke="(#[0-9a-f]{6})"/;
  const lastColour = [...style2.matchAll(new RegExp(colour, "g"))].map((m) => m[1] ?? m[2]).at(-1);
  assert(lastColour !== undefined && third.includes(lastColour), `colour ${lastColour} kept`);
});
