// Checkpoints: written atomically and verified on resume (files, checksums, shapes); a broken
// newest checkpoint falls back to the previous one; a real `rmt train` child stopped by SIGINT
// writes a checkpoint, exits 130, and --resume reaches the uninterrupted run's final state.

import { expectedTensors, parameterCount } from "../../lib/model/config.ts";
import { initModel } from "../../lib/model/init.ts";
import {
  BadCheckpoint,
  checkpointDir,
  listCheckpoints,
  newestGoodCheckpoint,
  OPTIMIZER_FILE,
  readOptimizerState,
  TRAINER_STATE_FILE,
  type TrainerStateFields,
  verifyCheckpoint,
  writeCheckpoint,
} from "../../lib/train/checkpoint.ts";
import type { OptimizerState } from "../../lib/train/optimizer.ts";
import { readMetrics } from "../../lib/train/metrics.ts";
import { ModelWeights } from "../../lib/model/weights.ts";
import { assert, assertBitEqual, assertEquals, Rng, withTempDir } from "../helpers.ts";
import {
  assertSameBytes,
  assertSameMetrics,
  fixtureConfig,
  fixtureYaml,
  makeFixture,
  ROOT,
  trainQuietly,
} from "./train_helpers.ts";

const model = initModel({ arch: "llama", preset: "tiny", seed: 3 });

function stateOf(step: number): TrainerStateFields {
  return {
    step,
    seed: 5,
    method: "ntp",
    config_sha256: "0".repeat(64),
    data: { sampler: "test", seed: 5, next_step: step },
    rng: null,
    optimizer_updates: step - 1,
    metrics_lines: step,
    tokens: 128 * step,
    elapsed_s: 1.5,
    skipped_steps: 1,
    bad_in_a_row: 0,
    step_state: { anything: [1, 2] },
    rmt_version: "test",
  };
}

function optimizerOf(seed: number): OptimizerState {
  const rng = new Rng(seed);
  const state: OptimizerState = { m: new Map(), v: new Map(), updates: seed };
  for (const [name, shape] of expectedTensors(model.modelConfig)) {
    const count = shape.reduce((a, b) => a * b, 1);
    state.m.set(name, new Float32Array(rng.normals(count)));
    state.v.set(name, new Float32Array(rng.uniforms(count, 0, 1)));
  }
  return state;
}

async function writeStep(runDir: string, step: number, keep = 3): Promise<string> {
  return await writeCheckpoint(
    runDir,
    { config: model.modelConfig, weights: model.weights, tokenizerFiles: model.tokenizerFiles },
    optimizerOf(step),
    stateOf(step),
    { keep },
  );
}

Deno.test("checkpoint: round trip of weights, optimizer state and trainer state; keep K", async () => {
  await withTempDir(async (run) => {
    const dir = await writeStep(run, 3);
    assertEquals(dir, checkpointDir(run, 3), "folder name");
    const state = await verifyCheckpoint(dir, model.modelConfig);
    assertEquals(
      [state.step, state.optimizer_updates, state.step_state],
      [3, 2, { anything: [1, 2] }],
      "trainer state",
    );
    assert(state.files["model.safetensors"].sha256.length === 64, "checksums listed");
    assert(!(TRAINER_STATE_FILE in state.files), "the state file does not list itself");

    const weights = await ModelWeights.open(dir);
    for (const [name, data] of model.weights) {
      assertBitEqual(await weights.readF32(name), data, name);
    }
    const optimizer = await readOptimizerState(dir, model.modelConfig);
    const expected = optimizerOf(3);
    assertEquals(optimizer.updates, 3, "updates");
    for (const name of expectedTensors(model.modelConfig).keys()) {
      assertBitEqual(optimizer.m.get(name)!, expected.m.get(name)!, `m ${name}`);
      assertBitEqual(optimizer.v.get(name)!, expected.v.get(name)!, `v ${name}`);
    }
    const bytes = (await Deno.stat(`${dir}/${OPTIMIZER_FILE}`)).size;
    assert(bytes > 2 * 4 * parameterCount(model.modelConfig), "optimizer file holds m and v");

    for (const step of [6, 9, 12]) await writeStep(run, step, 2);
    assertEquals((await listCheckpoints(run)).map((c) => c.step), [12, 9], "newest 2 kept");
    await writeStep(run, 12, 2); // the same step again replaces it
    assertEquals((await listCheckpoints(run)).map((c) => c.step), [12, 9], "replaced");
    const names = [...Deno.readDirSync(`${run}/checkpoints`)].map((e) => e.name).sort();
    assertEquals(names, ["step-12", "step-9"], "no temporary folders left");
  });
});

Deno.test("checkpoint: damage is detected: a flipped byte, truncation, a missing file, bad state", async () => {
  await withTempDir(async (run) => {
    const damages: [string, (dir: string) => Promise<void>, string][] = [
      ["flipped byte", async (dir) => {
        const path = `${dir}/model.safetensors`;
        const bytes = await Deno.readFile(path);
        bytes[bytes.length - 5] ^= 0x40;
        await Deno.writeFile(path, bytes);
      }, "model.safetensors: checksum mismatch"],
      ["truncated", async (dir) => {
        const path = `${dir}/${OPTIMIZER_FILE}`;
        await Deno.truncate(path, (await Deno.stat(path)).size - 100);
      }, `${OPTIMIZER_FILE} has`],
      ["missing", (dir) => Deno.remove(`${dir}/tokenizer.json`), "tokenizer.json is missing"],
      [
        "bad state",
        (dir) => Deno.writeTextFile(`${dir}/${TRAINER_STATE_FILE}`, "{ not json"),
        TRAINER_STATE_FILE,
      ],
    ];
    for (const [i, [what, damage, reason]] of damages.entries()) {
      const dir = await writeStep(run, i + 1, 10);
      await damage(dir);
      let error: unknown;
      try {
        await verifyCheckpoint(dir, model.modelConfig);
      } catch (e) {
        error = e;
      }
      assert(error instanceof BadCheckpoint, `${what}: BadCheckpoint, got ${error}`);
      assert((error as Error).message.includes(reason), `${what}: ${(error as Error).message}`);
    }
    // Another model's config: shapes differ.
    const other = initModel({ arch: "qwen3", preset: "tiny", seed: 3 }).modelConfig;
    const good = await writeStep(run, 20, 10);
    let error: unknown;
    await verifyCheckpoint(good, other).catch((e) => (error = e));
    assert(error instanceof BadCheckpoint, `other model: ${error}`);

    // The newest good one is step-20; break it and the search skips every broken one.
    const warnings: string[] = [];
    const broken = await newestGoodCheckpoint(run, model.modelConfig, (l) => warnings.push(l));
    assertEquals(broken?.step, 20, "newest good");
    await Deno.remove(`${good}/model.safetensors`);
    const none = await newestGoodCheckpoint(run, model.modelConfig, (l) => warnings.push(l));
    assertEquals(none, null, "every checkpoint is broken");
    assertEquals(warnings.length, 5, `one line per broken checkpoint: ${warnings.join(" | ")}`);
    assert(warnings.every((w) => !w.includes("\n") && /moved to step-\d+\.bad/.test(w)), "lines");
  });
});

Deno.test("checkpoint: a corrupted newest checkpoint ⇒ resume falls back to the previous one", async () => {
  await withTempDir(async (dir) => {
    const f = await makeFixture(dir);
    const config = await fixtureConfig(f, 8);
    const run = `${dir}/run`;
    await trainQuietly({ config, runDir: run, cacheDir: f.cacheDir });
    await Deno.copyFile(`${run}/metrics.jsonl`, `${dir}/straight.jsonl`);
    await Deno.copyFile(`${run}/checkpoints/step-8/model.safetensors`, `${dir}/straight.st`);

    const path = `${run}/checkpoints/step-8/model.safetensors`;
    const bytes = await Deno.readFile(path);
    bytes[bytes.length - 1] ^= 1;
    await Deno.writeFile(path, bytes);
    const lines: string[] = [];
    const result = await trainQuietly(
      { config, runDir: run, cacheDir: f.cacheDir, resume: true },
      lines,
    );
    const warning = lines.find((l) => l.includes("step-8 is unusable"));
    assert(warning !== undefined && warning.includes("checksum"), lines.join(" | "));
    assert(lines.some((l) => l.includes("steps 4→8")), `resumed from step 4: ${lines.join(" | ")}`);
    assertEquals(result.step, 8, "done");
    await assertSameMetrics(`${dir}/straight.jsonl`, `${run}/metrics.jsonl`, "metrics");
    await assertSameBytes(`${dir}/straight.st`, path, "weights");
    assert((await Deno.stat(`${run}/checkpoints/step-8.bad`)).isDirectory, "set aside");
  });
});

/** Lines in a file (0 when it does not exist yet). */
async function lineCount(path: string): Promise<number> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.split("\n").filter((l) => l.trim() !== "").length;
}

Deno.test("checkpoint: rmt train stopped by SIGINT exits 130 with a checkpoint; --resume finishes the same", async () => {
  await withTempDir(async (dir) => {
    const f = await makeFixture(dir);
    const steps = 60;
    const configPath = `${dir}/run.yaml`;
    await Deno.writeTextFile(configPath, fixtureYaml(f, steps));
    const run = `${dir}/run`;
    const args = ["run", "-A", "main.ts", "train", "--config", configPath, "--out", run];
    const child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    while ((await lineCount(`${run}/metrics.jsonl`)) < 3) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    child.kill("SIGINT");
    const out = await child.output();
    const stdout = new TextDecoder().decode(out.stdout);
    assertEquals(out.code, 130, `exit code (${new TextDecoder().decode(out.stderr)})`);
    const stoppedAt = (await readMetrics(`${run}/metrics.jsonl`)).length;
    assert(stoppedAt >= 3 && stoppedAt < steps, `stopped mid-run at ${stoppedAt}`);
    assert(stdout.includes(`stopped by SIGINT after step ${stoppedAt}`), stdout);
    const newest = (await listCheckpoints(run))[0];
    assertEquals(newest.step, stoppedAt, "a checkpoint of the step it stopped at");

    const resumed = await new Deno.Command(Deno.execPath(), {
      args: [...args, "--resume"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(resumed.code, 0, new TextDecoder().decode(resumed.stderr));

    const config = await fixtureConfig(f, steps);
    await trainQuietly({ config, runDir: `${dir}/straight`, cacheDir: f.cacheDir });
    await assertSameMetrics(`${dir}/straight/metrics.jsonl`, `${run}/metrics.jsonl`, "metrics");
    const weights = (r: string) => `${r}/checkpoints/step-${steps}/model.safetensors`;
    await assertSameBytes(weights(`${dir}/straight`), weights(run), "final weights");
  });
});

Deno.test("checkpoint: rmt train stopped by SIGTERM exits 143 with a checkpoint of that step", async () => {
  await withTempDir(async (dir) => {
    const f = await makeFixture(dir);
    const configPath = `${dir}/run.yaml`;
    await Deno.writeTextFile(configPath, fixtureYaml(f, 60));
    const run = `${dir}/run`;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "main.ts", "train", "--config", configPath, "--out", run],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    while ((await lineCount(`${run}/metrics.jsonl`)) < 2) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    child.kill("SIGTERM");
    const out = await child.output();
    assertEquals(out.code, 143, `exit code (${new TextDecoder().decode(out.stderr)})`);
    const stoppedAt = (await readMetrics(`${run}/metrics.jsonl`)).length;
    assert(stoppedAt >= 2 && stoppedAt < 60, `stopped mid-run at ${stoppedAt}`);
    assertEquals((await listCheckpoints(run))[0].step, stoppedAt, "checkpoint of the last step");
  });
});
