// `rmt demo` end to end, shortened: every stage runs (self-check, init, pre-training, RMT, the
// NTP baseline, evaluation, summary) with a few steps each, as a child process in an empty
// temporary folder (so the shipped data comes from the copies bundled into rmt).

import { assert } from "../helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

async function rmt(args: string[], cwd: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${ROOT}deno.json`, `${ROOT}main.ts`, ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

Deno.test("demo: a shortened run goes through every stage and prints the summary", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rmt-demo-" });
  try {
    const quick = ["demo", "--out", "run", "--steps-scale", "0.02", "--samples", "12"];
    const r = await rmt(quick, dir);
    assert(r.code === 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    for (const stage of ["[1/6]", "[2/6]", "[3/6]", "[4/6]", "[5/6]", "[6/6]"]) {
      assert(r.stdout.includes(stage), `stage ${stage} missing:\n${r.stdout}`);
    }
    const summary = r.stdout.slice(r.stdout.indexOf("== summary =="));
    assert(summary.length > 0, `no summary:\n${r.stdout}`);
    for (const part of ["easy", "medium", "hard", "avg", "argmax", "ppl", "think", "parse"]) {
      assert(summary.includes(part), `table column ${part}:\n${summary}`);
    }
    for (const row of ["base (pre-trained)", "NTP baseline", "RMT"]) {
      const isRow = (l: string) => l.startsWith(row) && /^\s+(\d|—)/.test(l.slice(row.length));
      assert(summary.split("\n").some(isRow), `table row ${row}:\n${summary}`);
    }
    assert(/first \(step/.test(summary) && /last +\(step/.test(summary), "RMT early vs late");
    assert(/total time: /.test(summary) && /run folder: run/.test(summary), "time and folder");
    // The run folder holds the models, the runs, the evaluations and the summary.
    for (
      const path of [
        "base/config.json",
        "pretrain/metrics.jsonl",
        "rmt/metrics.jsonl",
        "ntp/metrics.jsonl",
        "eval.json",
        "summary.txt",
      ]
    ) {
      await Deno.stat(`${dir}/run/${path}`);
    }
    const evals = JSON.parse(await Deno.readTextFile(`${dir}/run/eval.json`));
    const positions = (k: string) =>
      JSON.stringify(evals[k].samples.map((s: { position: number }) => s.position));
    assert(
      positions("base") === positions("rmt") && positions("base") === positions("ntp"),
      "same positions",
    );
    assert(evals.rmt.proxy === evals.base.model, "the base model is the proxy");

    // An existing run folder is refused without --force.
    const again = await rmt(quick, dir);
    assert(again.code === 2 && /already exists/.test(again.stderr), `refused: ${again.stderr}`);
    // --force replaces a demo run folder only, never another folder.
    await Deno.mkdir(`${dir}/other`);
    await Deno.writeTextFile(`${dir}/other/keep.txt`, "mine");
    const other = await rmt(["demo", "--out", "other", "--force"], dir);
    assert(other.code === 2 && /not an rmt demo run folder/.test(other.stderr), other.stderr);
    assert((await Deno.readTextFile(`${dir}/other/keep.txt`)) === "mine", "kept");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
