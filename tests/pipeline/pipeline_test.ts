// `rmt pipeline` end to end on a tiny scale: every stage runs and results.json / results.md hold
// the three tables; a pipeline stopped by SIGINT in a training stage and run again finishes
// with exactly the tables of an uninterrupted run; a rerun of a finished pipeline does nothing
// but rewrite the results.

import { assert, assertEquals, withTempDir } from "../helpers.ts";
import { ROOT } from "../train/train_helpers.ts";
import type { PipelineResults } from "../../lib/pipeline/results.ts";

/** A tiny pipeline (its configs and a small corpus) under dir; returns the pipeline file. */
async function writeTinyPipeline(dir: string): Promise<string> {
  const lines = (await Deno.readTextFile(`${ROOT}/data/math/train.jsonl`)).split("\n");
  await Deno.writeTextFile(`${dir}/corpus.jsonl`, lines.slice(0, 150).join("\n") + "\n");
  const heldout = (await Deno.readTextFile(`${ROOT}/data/math/heldout.jsonl`)).split("\n");
  await Deno.writeTextFile(`${dir}/heldout.jsonl`, heldout.slice(0, 40).join("\n") + "\n");
  const files: Record<string, string> = {
    "pipeline.yaml": `name: tiny-test
base:
  init: {arch: qwen2, preset: tiny, seed: 1}
  pretrain: pretrain.yaml
midtrain:
  ntp: ntp.yaml
  rmt: rmt.yaml
  rmt-no-ntp: rmt-no-ntp.yaml
ablations: [rmt, rmt-no-ntp]
eval: {data: ${dir}/heldout.jsonl, samples: 12, max_reasoning_tokens: 4}
posttrain: posttrain.yaml
math_eval: {data: ${dir}/heldout.jsonl, samples: 6, max_new_tokens: 12}
`,
    "pretrain.yaml": `method: ntp
model: {max_context: 32}
data: {train: ${dir}/corpus.jsonl}
training: {steps: 6, batch_size: 4, lr: 3.0e-3, checkpoint_interval: 3}
`,
    "mid.yaml": `seed: 2
model: {max_context: 32}
data: {train: ${dir}/corpus.jsonl}
training: {steps: 6, batch_size: 2, lr: 3.0e-4, checkpoint_interval: 1}
rl: {positions_per_sequence: 1, group_size: 2, min_context_tokens: 4, max_reasoning_tokens: 4,
  temperature: 1.0}
budget: {initial: 2, min: 1}
`,
    "ntp.yaml": "extends: mid.yaml\nmethod: ntp\n",
    "rmt.yaml": "extends: mid.yaml\nmethod: rmt\n",
    "rmt-no-ntp.yaml": "extends: mid.yaml\nmethod: rmt-no-ntp\n",
    "posttrain.yaml": `method: grpo-math
model: {max_context: 96}
data: {math_train: ${dir}/corpus.jsonl}
training: {steps: 3, batch_size: 2, lr: 3.0e-4, checkpoint_interval: 1}
rl: {group_size: 2, temperature: 1.0}
math: {max_new_tokens: 12}
`,
  };
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  return `${dir}/pipeline.yaml`;
}

function rmtPipeline(file: string, out: string): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", "pipeline", file, "--out", out],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  });
}

async function readResults(out: string): Promise<PipelineResults> {
  return JSON.parse(await Deno.readTextFile(`${out}/results.json`));
}

/** Whether a file exists. */
async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

Deno.test("pipeline: every stage, the three tables, and a SIGINT-stopped run continues to the same results", async () => {
  await withTempDir(async (dir) => {
    const file = await writeTinyPipeline(dir);
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);

    // Uninterrupted.
    const straight = await rmtPipeline(file, `${dir}/straight`).output();
    assertEquals(straight.code, 0, decode(straight.stderr));
    const a = await readResults(`${dir}/straight`);
    assertEquals(a.tables.map((t) => t.id), ["next_token", "ablation", "post_training"], "tables");
    const labels = (id: string) => a.tables.find((t) => t.id === id)!.rows.map((r) => r[0]);
    assertEquals(labels("next_token"), ["base", "ntp", "rmt"], "ablation-only runs left out");
    assertEquals(labels("ablation"), ["rmt", "rmt-no-ntp"], "ablation rows");
    assertEquals(labels("post_training"), ["base", "ntp", "rmt", "rmt-no-ntp"], "post rows");
    for (const table of a.tables) {
      for (const row of table.rows) assertEquals(row.length, table.columns.length, table.id);
    }
    assert(a.runs.map((r) => r.dir).includes("midtrain/rmt"), "the runs to plot");
    const markdown = await Deno.readTextFile(`${dir}/straight/results.md`);
    assert(markdown.includes("| Method | Easy | Medium | Hard | Avg |"), markdown);
    assert(markdown.includes("Post-training: math accuracy before → after GRPO"), markdown);

    // rmt report on the pipeline folder: its tables and its runs' plots.
    const report = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "main.ts", "report", `${dir}/straight`, "--out", `${dir}/report.html`],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(report.code, 0, decode(report.stderr));
    const html = await Deno.readTextFile(`${dir}/report.html`);
    for (const table of a.tables) assert(html.includes(table.title), `report: ${table.title}`);
    assert(html.includes("post rmt-no-ntp") && html.includes("<svg"), "report: runs plotted");

    // Stopped by SIGINT once the RMT mid-training has written a metrics line, then run again.
    const out = `${dir}/stopped`;
    const child = rmtPipeline(file, out).spawn();
    const metrics = `${out}/midtrain/rmt/metrics.jsonl`;
    while (!(await exists(metrics)) || (await Deno.readTextFile(metrics)).trim() === "") {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    child.kill("SIGINT");
    const stopped = await child.output();
    assertEquals(stopped.code, 130, decode(stopped.stderr));
    assert(decode(stopped.stdout).includes("run the same command again"), decode(stopped.stdout));
    assert(!(await exists(`${out}/results.json`)), "no results from a stopped pipeline");

    const again = await rmtPipeline(file, out).output();
    const log = decode(again.stdout);
    assertEquals(again.code, 0, decode(again.stderr));
    assert(log.includes("[done] pretrain"), "finished stages are skipped");
    assert(log.includes("continuing"), "the stopped training run continues");
    const b = await readResults(out);
    assertEquals(b.tables, a.tables, "same tables");

    // A finished pipeline run again: every stage skipped.
    const third = await rmtPipeline(file, out).output();
    assertEquals(third.code, 0, "third run");
    const ran = decode(third.stdout).split("\n").filter((l) => /^\[(?!done\])/.test(l));
    assertEquals(ran, [], "no stage ran again");

    // A config changed after its stage ran: refused in one line, not mixed into the tables.
    const mid = await Deno.readTextFile(`${dir}/mid.yaml`);
    await Deno.writeTextFile(`${dir}/mid.yaml`, mid.replace("lr: 3.0e-4", "lr: 1.0e-4"));
    const changed = await rmtPipeline(file, out).output();
    const why = decode(changed.stderr);
    assertEquals(changed.code, 2, why);
    assert(why.includes("stage midtrain/ntp") && why.includes("other settings"), why);
    assertEquals(why.trim().split("\n").length, 1, "one line");
    await Deno.writeTextFile(`${dir}/mid.yaml`, mid);

    // A stage begun (its run folder there, not finished) and then changed: the same refusal.
    const state = JSON.parse(await Deno.readTextFile(`${out}/pipeline.json`));
    delete state.done["posttrain/base"];
    await Deno.writeTextFile(`${out}/pipeline.json`, JSON.stringify(state));
    const post = await Deno.readTextFile(`${dir}/posttrain.yaml`);
    await Deno.writeTextFile(`${dir}/posttrain.yaml`, post.replace("lr: 3.0e-4", "lr: 2.0e-4"));
    const begun = await rmtPipeline(file, out).output();
    const begunWhy = decode(begun.stderr);
    assertEquals(begun.code, 2, begunWhy);
    assert(begunWhy.includes("stage posttrain/base") && begunWhy.includes("started"), begunWhy);
    assert(begunWhy.includes(`remove ${out}/posttrain/base`), begunWhy);
    await Deno.writeTextFile(`${dir}/posttrain.yaml`, post);

    // A torn state file: one line too.
    await Deno.writeTextFile(`${out}/pipeline.json`, '{"pipeline": "tiny-te');
    const torn = await rmtPipeline(file, out).output();
    const tornWhy = decode(torn.stderr);
    assert(torn.code === 2 && tornWhy.includes("not a pipeline state file"), tornWhy);
  });
});

Deno.test("pipeline: a folder that is not a pipeline's, or holds another pipeline, is refused", async () => {
  await withTempDir(async (dir) => {
    const file = await writeTinyPipeline(dir);
    await Deno.mkdir(`${dir}/other`);
    await Deno.writeTextFile(`${dir}/other/notes.txt`, "mine");
    const r = await rmtPipeline(file, `${dir}/other`).output();
    const stderr = new TextDecoder().decode(r.stderr);
    assertEquals(r.code, 2, stderr);
    assert(stderr.includes("is not a pipeline folder"), stderr);
    assertEquals(stderr.trim().split("\n").length, 1, "one line");
    await Deno.mkdir(`${dir}/taken`);
    await Deno.writeTextFile(
      `${dir}/taken/pipeline.json`,
      JSON.stringify({
        pipeline: "else",
        done: {},
        seconds: {},
        steps_scale: 1,
        samples: { next_token: 12, math: 6 },
      }),
    );
    const t = await rmtPipeline(file, `${dir}/taken`).output();
    const other = new TextDecoder().decode(t.stderr);
    assert(other.includes("holds pipeline 'else'"), other);
  });
});

Deno.test("pipeline: the paper prompt format end to end (RPT's template, \\boxed{} answers, the math instruction)", async () => {
  await withTempDir(async (dir) => {
    await writeTinyPipeline(dir);
    // The configs/paper layout at toy size: an existing model folder, paper format everywhere.
    await Deno.writeTextFile(
      `${dir}/paper.yaml`,
      `name: paper-format
base:
  init: {arch: qwen2, preset: tiny, seed: 1}
midtrain:
  rmt: paper-rmt.yaml
eval: {data: ${dir}/heldout.jsonl, format: paper, max_answer_tokens: 4, samples: 6,
  max_reasoning_tokens: 4}
posttrain: paper-post.yaml
math_eval: {data: ${dir}/heldout.jsonl, samples: 4, max_new_tokens: 12}
`,
    );
    await Deno.writeTextFile(
      `${dir}/paper-rmt.yaml`,
      "extends: rmt.yaml\nmodel: {max_context: 160}\nprompt: {format: paper}\n" +
        "rl: {max_answer_tokens: 4}\ntraining: {steps: 2}\n",
    );
    await Deno.writeTextFile(
      `${dir}/paper-post.yaml`,
      "extends: posttrain.yaml\nprompt: {format: paper}\ntraining: {steps: 2}\n" +
        "model: {max_context: 128}\n",
    );
    const out = `${dir}/out`;
    const run = await rmtPipeline(`${dir}/paper.yaml`, out).output();
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);
    assertEquals(run.code, 0, decode(run.stderr) + decode(run.stdout));
    const evals = JSON.parse(await Deno.readTextFile(`${out}/eval/next_token/rmt.json`));
    assertEquals(evals.settings.format, "paper", "next-token evaluation in the paper format");
    const math = JSON.parse(await Deno.readTextFile(`${out}/eval/math/rmt-after.json`));
    assertEquals(math.per_sample.length, 4, "math evaluation ran");
    const config = await Deno.readTextFile(`${out}/posttrain/rmt/config.yaml`);
    assert(config.includes("format: paper"), "post-training in the paper format");
    const results = await readResults(out);
    assertEquals(results.tables.map((t) => t.id), ["next_token", "post_training"], "tables");
  });
});
