// The training loop on the tiny model: NTP learns, runs are deterministic, an interrupted run
// resumes exactly, run folders are protected, non-finite steps are skipped and then stop.

import type { Tensor } from "../../lib/gpu/tensor.ts";
import { readMetrics } from "../../lib/train/metrics.ts";
import { createNtpStep } from "../../lib/train/ntp_step.ts";
import { listCheckpoints, verifyCheckpoint } from "../../lib/train/checkpoint.ts";
import { loadConfig } from "../../lib/model/config.ts";
import { resolveConfig } from "../../lib/train/config.ts";
import type { StepSetup, TrainStep } from "../../lib/train/trainer.ts";
import { TrainingStopped } from "../../lib/train/trainer.ts";
import { assert, assertEquals, assertUserError, withTempDir } from "../helpers.ts";
import {
  assertSameBytes,
  assertSameMetrics,
  fixtureConfig,
  makeFixture,
  trainQuietly,
} from "./train_helpers.ts";

Deno.test("train: NTP loss falls over 20 steps on the tiny model; run folder contents", async () => {
  await withTempDir(async (dir) => {
    const f = await makeFixture(dir);
    const config = await fixtureConfig(f, 20, ["training.schedule=constant"]);
    const run = `${dir}/run`;
    const result = await trainQuietly({ config, runDir: run, cacheDir: f.cacheDir });
    assertEquals([result.exitCode, result.step, result.stoppedBy], [0, 20, "done"], "result");

    const records = await readMetrics(`${run}/metrics.jsonl`);
    assertEquals(records.map((r) => r.step), [...Array(20).keys()].map((i) => i + 1), "steps");
    const loss = records.map((r) => r.loss_ntp as number);
    const first = loss.slice(0, 4).reduce((a, b) => a + b) / 4;
    const last = loss.slice(-4).reduce((a, b) => a + b) / 4;
    assert(last < first - 1, `loss falls: first ${first.toFixed(3)}, last ${last.toFixed(3)}`);
    const r = records[records.length - 1];
    assertEquals(
      Object.keys(r),
      [
        "step",
        "lr",
        "loss_ntp",
        "loss_rl",
        "reward_mean",
        "match_rate",
        "reasoning_len",
        "budget",
        "tier_mix",
        "zero_adv_groups",
        "grad_norm",
        "skipped",
        "skipped_steps",
        "tokens",
        "tokens_per_s",
        "elapsed_s",
      ],
      "metrics fields",
    );
    assertEquals(
      [r.loss_rl, r.reward_mean, r.skipped, r.tokens],
      [null, null, false, 20 * 128],
      "r",
    );
    assert((r.grad_norm as number) > 0 && (r.tokens_per_s as number) > 0, "norm and speed");

    // run.json: the resolved config, versions, adapter; config.yaml loads back to the config.
    const info = JSON.parse(await Deno.readTextFile(`${run}/run.json`));
    assertEquals([info.method, info.seed, info.config.training.steps], ["ntp", 7, 20], "run.json");
    assert(typeof info.rmt_version === "string" && info.adapter.name.length > 0, "versions");
    assert(info.git_commit === null || /^[0-9a-f]{40}/.test(info.git_commit), "git commit");
    assertEquals((await resolveConfig(`${run}/config.yaml`)).config, config, "config.yaml");

    // checkpoints every 4 steps, the newest 2 kept, each a loadable model folder.
    const kept = await listCheckpoints(run);
    assertEquals(kept.map((c) => c.step), [20, 16], "kept checkpoints");
    const state = await verifyCheckpoint(
      kept[0].dir,
      await loadConfig(`${f.modelDir}/config.json`),
    );
    assertEquals([state.step, state.optimizer_updates, state.metrics_lines], [20, 20, 20], "state");
  });
});

Deno.test("train: same seed ⇒ identical metrics and weights; stop at k + --resume ⇒ identical", async () => {
  await withTempDir(async (dir) => {
    const f = await makeFixture(dir);
    // Two micro-batches per step, warm-up and cosine: the resumed run must get every detail.
    const config = await fixtureConfig(f, 10, ["training.grad_accumulation=2"]);
    const common = { config, cacheDir: f.cacheDir };
    await trainQuietly({ ...common, runDir: `${dir}/a` });
    await trainQuietly({ ...common, runDir: `${dir}/b` });
    await assertSameMetrics(`${dir}/a/metrics.jsonl`, `${dir}/b/metrics.jsonl`, "same seed");
    const weights = (run: string) => `${dir}/${run}/checkpoints/step-10/model.safetensors`;
    await assertSameBytes(weights("a"), weights("b"), "same seed weights");

    // Interrupted after step 6 (checkpoints at 4 and 6), then resumed.
    const stop = new AbortController();
    const stopped = await trainQuietly({
      ...common,
      runDir: `${dir}/c`,
      stop: stop.signal,
      onStep: (step) => step === 6 && stop.abort(),
    });
    assertEquals([stopped.stoppedBy, stopped.step], ["stop", 6], "stopped");
    assertEquals((await readMetrics(`${dir}/c/metrics.jsonl`)).length, 6, "metrics at the stop");
    assertEquals((await listCheckpoints(`${dir}/c`)).map((c) => c.step), [6, 4], "checkpoints");
    const lines: string[] = [];
    const resumed = await trainQuietly({ ...common, runDir: `${dir}/c`, resume: true }, lines);
    assertEquals([resumed.stoppedBy, resumed.step], ["done", 10], "resumed");
    assert(lines.some((l) => l.includes("steps 6→10")), `resumed from 6: ${lines.join(" | ")}`);
    await assertSameMetrics(`${dir}/a/metrics.jsonl`, `${dir}/c/metrics.jsonl`, "resumed");
    await assertSameBytes(weights("a"), weights("c"), "resumed weights");
    const optimizer = (run: string) => `${dir}/${run}/checkpoints/step-10/optimizer.safetensors`;
    await assertSameBytes(optimizer("a"), optimizer("c"), "resumed optimizer state");

    // A different seed gives different batches.
    const other = await fixtureConfig(f, 10, ["training.grad_accumulation=2", "seed=8"]);
    await trainQuietly({ config: other, cacheDir: f.cacheDir, runDir: `${dir}/d` });
    const [a, d] = [
      await readMetrics(`${dir}/a/metrics.jsonl`),
      await readMetrics(`${dir}/d/metrics.jsonl`),
    ];
    assert(a[0].loss_ntp !== d[0].loss_ntp, "another seed, other batches");
  });
});

Deno.test("train: a run folder holding a run is refused without --resume / --force", async () => {
  await withTempDir(async (dir) => {
    const f = await makeFixture(dir);
    const config = await fixtureConfig(f, 2);
    const run = `${dir}/run`;
    await trainQuietly({ config, runDir: run, cacheDir: f.cacheDir });
    const other = await fixtureConfig(f, 2, ["training.lr=1e-3"]);
    const go = (c: typeof config, flags: { resume?: boolean; force?: boolean } = {}) => () =>
      trainQuietly({ config: c, runDir: run, cacheDir: f.cacheDir, ...flags });

    await assertUserError(go(other), ["holds a different run", "training.lr", "--force"], "other");
    await assertUserError(go(config), ["already holds this run", "--resume"], "same run again");
    await assertUserError(
      go(other, { resume: true }),
      ["different config", "training.lr: 0.003 there, 0.001 here", "--force"],
      "resume with another config",
    );
    const done = await trainQuietly({ config, runDir: run, cacheDir: f.cacheDir, resume: true });
    assertEquals(done.step, 2, "resuming a finished run does nothing");
    const replaced = await go(other, { force: true })();
    assertEquals(replaced.exitCode, 0, "--force starts over");
    const info = JSON.parse(await Deno.readTextFile(`${run}/run.json`));
    assertEquals(info.config.training.lr, 1e-3, "the new run's config");

    await Deno.mkdir(`${dir}/stuff`);
    await Deno.writeTextFile(`${dir}/stuff/notes.txt`, "mine");
    await assertUserError(
      () => trainQuietly({ config, runDir: `${dir}/stuff`, cacheDir: f.cacheDir }),
      ["not an rmt run folder"],
      "a folder of other things",
    );
    await assertUserError(
      () => trainQuietly({ config, runDir: `${dir}/nothing`, resume: true, cacheDir: f.cacheDir }),
      ["no run to resume"],
      "resume without a run",
    );
    // Post-training whose responses cannot fit the context: refused in setup, in one line.
    const math = await fixtureConfig(f, 2, [
      "method=grpo-math",
      "data.math_train=data/math/train.jsonl",
    ]);
    await assertUserError(
      () => trainQuietly({ config: math, runDir: `${dir}/rl`, cacheDir: f.cacheDir }),
      ["math.max_new_tokens"],
      "grpo-math responses longer than the context",
    );
  });
});

/** The NTP step with the objective replaced by `bad(step)` when it is a number (NaN, ±∞). */
function poisonedStep(bad: (step: number) => number | null, snapshots: Float32Array[]) {
  return async (setup: StepSetup): Promise<TrainStep> => {
    const inner = await createNtpStep(setup);
    return {
      async run(ctx, model, grads, step) {
        // The weights as this step starts (a test-only readback).
        snapshots[step] = await ctx.read(model.params.get("model.norm.weight")!);
        const out = await inner.run(ctx, model, grads, step);
        const value = bad(step);
        if (value === null) return out;
        const objective: Tensor<"f32"> = ctx.f32([value]);
        out.objective.release();
        return { ...out, objective, gpuMetrics: { loss_ntp: objective } };
      },
    };
  };
}

Deno.test("train: a non-finite loss skips the update and is counted; max_bad_steps in a row stop", async () => {
  await withTempDir(async (dir) => {
    const f = await makeFixture(dir);
    const config = await fixtureConfig(f, 12, ["training.lr=1e-2"]);
    (config.training as Record<string, unknown>).max_bad_steps = 3;
    const snapshots: Float32Array[] = [];
    const bad = (t: number) => (t === 1 ? NaN : t === 2 ? Infinity : t >= 5 ? NaN : null);
    const run = `${dir}/run`;
    let error: unknown;
    try {
      await trainQuietly({
        config,
        runDir: run,
        cacheDir: f.cacheDir,
        stepFactory: poisonedStep(bad, snapshots),
      });
    } catch (e) {
      error = e;
    }
    assert(error instanceof TrainingStopped, `stopped with TrainingStopped: ${error}`);
    const message = (error as TrainingStopped).message;
    assert(
      /step 8: 3 steps in a row/.test(message) && /max_bad_steps = 3/.test(message) &&
        /step-4/.test(message) && !message.includes("\n"),
      message,
    );
    assertEquals((error as TrainingStopped).exitCode, 1, "exit code");

    const records = await readMetrics(`${run}/metrics.jsonl`);
    assertEquals(records.map((r) => r.skipped), [
      false,
      true,
      true,
      false,
      false,
      true,
      true,
      true,
    ], "skipped");
    assertEquals(records.map((r) => r.skipped_steps), [0, 1, 2, 2, 2, 3, 4, 5], "counted");
    assertEquals(records[1].loss_ntp, null, "a NaN loss is written as null");
    const same = (a: Float32Array, b: Float32Array) => a.every((x, i) => Object.is(x, b[i]));
    assert(!same(snapshots[0], snapshots[1]), "step 0 updated the weights");
    assert(same(snapshots[1], snapshots[2]) && same(snapshots[2], snapshots[3]), "1, 2 skipped");
    assert(!same(snapshots[3], snapshots[4]), "step 3 updated the weights");
    // The checkpoint of step 4 is intact; nothing was written after it.
    assertEquals((await listCheckpoints(run)).map((c) => c.step), [4], "last good checkpoint");
    const state = await verifyCheckpoint(
      `${run}/checkpoints/step-4`,
      await loadConfig(`${f.modelDir}/config.json`),
    );
    assertEquals([state.optimizer_updates, state.skipped_steps], [2, 2], "updates counted");
  });
});

Deno.test("train: with a KL penalty, a resumed rmt run keeps the base model as π_ref", async () => {
  await withTempDir(async (dir) => {
    const f = await makeFixture(dir);
    const config = await fixtureConfig(f, 3, [
      "method=rmt",
      "rl.grpo.kl_beta=0.05",
      "rl.group_size=2",
      "training.lr=0.01",
      "training.checkpoint_interval=1",
      "model.max_context=64",
      "budget.initial=4",
      "rl.max_reasoning_tokens=8",
      "rl.min_context_tokens=8",
    ]);
    const common = { config, cacheDir: f.cacheDir };
    await trainQuietly({ ...common, runDir: `${dir}/straight` });
    const stop = new AbortController();
    await trainQuietly({
      ...common,
      runDir: `${dir}/resumed`,
      stop: stop.signal,
      onStep: (step) => step === 1 && stop.abort(),
    });
    await trainQuietly({ ...common, runDir: `${dir}/resumed`, resume: true });
    // A π_ref copied from the step-1 checkpoint would change the KL term of steps 2–3.
    await assertSameMetrics(
      `${dir}/straight/metrics.jsonl`,
      `${dir}/resumed/metrics.jsonl`,
      "KL run",
    );
  });
});

Deno.test("train: a stop asked for during setup ends before any step and leaves no new run", async () => {
  await withTempDir(async (dir) => {
    const f = await makeFixture(dir);
    const config = await fixtureConfig(f, 4);
    const stop = new AbortController();
    stop.abort(); // before train() even starts: the same path as Ctrl-C while loading
    const result = await trainQuietly({
      config,
      cacheDir: f.cacheDir,
      runDir: `${dir}/run`,
      stop: stop.signal,
    });
    assertEquals([result.stoppedBy, result.step], ["stop", 0], "stopped before step 1");
    let exists = true;
    await Deno.stat(`${dir}/run`).catch(() => (exists = false));
    assert(!exists, "no run folder left behind");
  });
});
