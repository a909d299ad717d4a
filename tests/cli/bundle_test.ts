// The single-file build as CI runs it: `deno task bundle` (tools/bundle.ts) writes rmt.js, which
// is copied ALONE into an empty folder and run there, with no access to the source tree:
// --version (the commit is embedded), info, init (the shipped corpus is embedded), a few
// training steps on a corpus written into the folder, and eval of the checkpoint.

import { gitShortCommit, VERSION } from "../../lib/version.ts";
import { assert, assertEquals, withTempDir } from "../helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

async function deno(args: string[], cwd: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

/** The first `n` lines of a shipped data file (the test copies them; rmt.js cannot see them). */
async function shippedLines(name: string, n: number): Promise<string> {
  const text = await Deno.readTextFile(`${ROOT}data/math/${name}`);
  return text.split("\n").slice(0, n).join("\n") + "\n";
}

Deno.test("bundle: rmt.js alone in an empty folder: --version, info, init, train, eval", () =>
  withTempDir(async (dir) => {
    const build = `${dir}/build`;
    const bundled = await deno(["run", "-A", "tools/bundle.ts", `${build}/rmt.js`], ROOT);
    assertEquals(bundled.code, 0, `tools/bundle.ts: ${bundled.stderr}`);

    const work = `${dir}/empty`;
    await Deno.mkdir(work);
    await Deno.copyFile(`${build}/rmt.js`, `${work}/rmt.js`);
    await Deno.remove(build, { recursive: true });
    const rmt = async (...args: string[]) => {
      const r = await deno(["run", "-A", "rmt.js", ...args], work);
      assertEquals(r.code, 0, `rmt ${args.join(" ")}: ${r.stderr}`);
      return r.stdout;
    };

    // The commit of the checkout the bundle was built from, though it runs outside it.
    const commit = (await gitShortCommit(ROOT)) ?? "unknown";
    assertEquals((await rmt("--version")).trim(), `rmt ${VERSION} (commit ${commit})`, "version");

    const info = JSON.parse(await rmt("info", "--json"));
    assert(info.adapter.name.length > 0, "info names the adapter");

    await rmt("init", "--arch", "qwen2", "--preset", "tiny", "--out", "model");

    await Deno.writeTextFile(`${work}/train.jsonl`, await shippedLines("train.jsonl", 200));
    await Deno.writeTextFile(`${work}/heldout.jsonl`, await shippedLines("heldout.jsonl", 40));
    await Deno.writeTextFile(
      `${work}/ntp.yaml`,
      [
        "method: ntp",
        "model:",
        "  path: model",
        "  max_context: 32",
        "data:",
        "  train: train.jsonl",
        "training:",
        "  steps: 3",
        "  batch_size: 2",
        "",
      ].join("\n"),
    );
    await rmt("train", "--config", "ntp.yaml", "--out", "run");
    const metrics = (await Deno.readTextFile(`${work}/run/metrics.jsonl`)).trim().split("\n");
    assertEquals(metrics.length, 3, "three steps logged");
    assert(Number.isFinite(JSON.parse(metrics[2]).loss_ntp), "a finite loss");

    const evaluation = JSON.parse(
      await rmt(
        "eval",
        "--model",
        "run/checkpoints/step-3",
        "--data",
        "heldout.jsonl",
        "--samples",
        "4",
        "--max-reasoning",
        "4",
        "--json",
      ),
    );
    assertEquals(evaluation.positions, 4, "eval scored the positions");
    assert(evaluation.perplexity.perplexity > 1, "a perplexity");
  }));
