// rmt report in a real browser: the report of fixture folders (a pipeline with two runs, and one
// more run folder) is loaded in headless Chromium; the DOM it parsed holds every plot with one
// line per run and the legend, and the tables; a screenshot shows each run's colour. Skipped
// (with its reason in the test name) when no Chromium is installed, unless
// RMT_REQUIRE_CHROMIUM=1, where it fails instead (CI installs Debian's `chromium`).

import { reportCommand } from "../../lib/cli/report.ts";
import { seriesStyle } from "../../lib/report/svg_plot.ts";
import { assert, assertEquals, AssertionError, withTempDir } from "../helpers.ts";
import { rmtRecords, writePipelineFolder, writeRunFolder } from "./fixtures.ts";
import { countColor, decodePng } from "./png_pixels.ts";

/** RMT_CHROMIUM, else the usual names of Chromium and Chrome on the PATH. */
const CANDIDATES = [
  Deno.env.get("RMT_CHROMIUM"),
  "chromium",
  "chromium-browser",
  "google-chrome",
  "google-chrome-stable",
].filter((c): c is string => c !== undefined && c !== "");

async function findChromium(): Promise<string | null> {
  for (const name of CANDIDATES) {
    try {
      const r = await new Deno.Command(name, {
        args: ["--version"],
        stdout: "null",
        stderr: "null",
      })
        .output();
      if (r.success) return name;
    } catch {
      // not installed under this name
    }
  }
  return null;
}

const CHROMIUM = await findChromium();
const REQUIRED = Deno.env.get("RMT_REQUIRE_CHROMIUM") === "1";
const WINDOW = { width: 1100, height: 3400 };
if (CHROMIUM === null && !REQUIRED) {
  console.warn(
    "report: no chromium on the PATH, the browser test is skipped (apt-get install chromium)",
  );
}

/** Runs headless Chromium on a local file (60 s at most); returns its stdout. */
async function chromium(profile: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(CHROMIUM!, {
    args: [
      "--headless",
      "--disable-gpu",
      "--no-sandbox", // as root in a container there is no user namespace for the sandbox
      "--no-first-run",
      "--hide-scrollbars",
      `--user-data-dir=${profile}`,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert(
    out.success,
    `${CHROMIUM} ${args.join(" ")}: exit code ${out.code}\n${stderr.slice(-2000)}`,
  );
  return new TextDecoder().decode(out.stdout);
}

function count(text: string, pattern: RegExp): number {
  return [...text.matchAll(pattern)].length;
}

Deno.test({
  name: CHROMIUM !== null || REQUIRED
    ? `report: headless Chromium renders the plots, legends and tables (${CHROMIUM ?? "missing"})`
    : "report: headless Chromium renders the report — IGNORED: no chromium on the PATH " +
      "(apt-get install chromium; RMT_REQUIRE_CHROMIUM=1 makes this a failure)",
  ignore: CHROMIUM === null && !REQUIRED,
  fn: () =>
    withTempDir(async (dir) => {
      if (CHROMIUM === null) {
        throw new AssertionError({
          message: `RMT_REQUIRE_CHROMIUM=1 but none of ${CANDIDATES.join(", ")} runs`,
        });
      }
      await writePipelineFolder(`${dir}/pipe`, 30);
      await writeRunFolder(`${dir}/extra/rmt`, {
        method: "rmt-no-ntp",
        records: rmtRecords(40, 0.1),
        tail: '{"step": 41, "loss_n', // torn by a kill: skipped
      });
      const file = `${dir}/report.html`;
      const log = console.log;
      console.log = () => {};
      try {
        assertEquals(
          await reportCommand([`${dir}/pipe`, `${dir}/extra/rmt`, "--out", file]),
          0,
          "exit code",
        );
      } finally {
        console.log = log;
      }
      const url = `file://${file}`;

      // The DOM as Chromium parsed it. Runs: paper-tiny/rmt and extra/rmt log every plotted
      // metric but `objective`; "ntp baseline" adds a line to loss_ntp and grad_norm only.
      const dom = await chromium(`${dir}/profile`, ["--dump-dom", url]);
      assertEquals(count(dom, /<svg class="plot"/g), 8, "plots (<svg>)");
      assertEquals(count(dom, /<path class="series"/g), 6 * 2 + 2 * 3, "lines (one per run)");
      assertEquals(count(dom, /<g class="legend-entry">/g), 18, "legend entries");
      for (const name of ["paper-tiny/rmt", "ntp baseline", "extra/rmt"]) {
        assert(dom.includes(`>${name}</text>`), `legend text ${name}`);
      }
      for (const plot of ["reward_mean", "match_rate", "reasoning_len", "budget", "loss_ntp"]) {
        assert(dom.includes(`<figure id="plot-${plot}">`), `plot ${plot}`);
      }
      assert(dom.includes('<table id="table-next_token">'), "table next_token");
      assert(dom.includes('<table id="table-perplexity">'), "table perplexity");
      assert(dom.includes("1 unreadable lines skipped"), "the torn line is reported");

      // The pixels: each run's colour is drawn (lines and legend), and so is much else.
      const png = `${dir}/shot.png`;
      await chromium(`${dir}/profile`, [
        `--screenshot=${png}`,
        `--window-size=${WINDOW.width},${WINDOW.height}`,
        url,
      ]);
      const image = await decodePng(await Deno.readFile(png));
      assertEquals([image.width, image.height], [WINDOW.width, WINDOW.height], "screenshot size");
      for (let i = 0; i < 3; i++) {
        const color = seriesStyle(i).color;
        const pixels = countColor(image, color);
        assert(pixels > 300, `run ${i} colour ${color}: ${pixels} pixels`);
      }
      const white = countColor(image, "#ffffff", 8);
      const total = image.width * image.height;
      assert(total - white > total * 0.02, `the page is not blank: ${total - white} non-white`);
    }),
});
