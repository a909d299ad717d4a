// Faults during a run: the GPU out of memory (a tensor larger than the device allows) or a GPU
// error surfacing at a readback, mid-run or while a checkpoint is being taken. Each ends the
// run with one line that says what failed (and what to lower) and names the last checkpoint,
// which is intact, with no partial checkpoint next to it; --resume then finishes the run. A
// new run that fails in its first step leaves no run folder behind.

import { GpuError } from "../../lib/gpu/errors.ts";
import type { Kernel } from "../../lib/gpu/kernel.ts";
import { loadConfig } from "../../lib/model/config.ts";
import { listCheckpoints, verifyCheckpoint } from "../../lib/train/checkpoint.ts";
import { readMetrics } from "../../lib/train/metrics.ts";
import { createNtpStep } from "../../lib/train/ntp_step.ts";
import type { StepSetup, TrainStep } from "../../lib/train/trainer.ts";
import { assert, assertEquals, testGpu, withTempDir } from "../helpers.ts";
import { fixtureConfig, makeFixture, trainQuietly } from "./train_helpers.ts";

/** A kernel that does not compile: using it is a GPU validation error at the next readback. */
const BROKEN: Kernel = {
  name: "faults-broken",
  source: "@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }",
  entry: "main",
};

type Fault = "oom" | "gpu error";

/** One f32 more than fits a buffer of maxBufferSize bytes. */
const tooManyFloats = (maxBufferSize: number) => Math.floor(maxBufferSize / 4) + 1;

/** The NTP step, with `fault` happening in step `atStep` or in the checkpoint after `atSave`. */
function faultyStep(fault: Fault, when: { atStep?: number; atSave?: number }) {
  return async (setup: StepSetup): Promise<TrainStep> => {
    const inner = await createNtpStep(setup);
    let saves = 0;
    const strike = () => {
      const { ctx } = setup;
      if (fault === "oom") {
        // More f32s than the largest buffer the device allows: ctx.empty refuses it.
        ctx.empty([tooManyFloats(ctx.limits.maxBufferSize)], "f32");
      } else {
        ctx.dispatch(BROKEN, { tensors: [], workgroups: [1] });
      }
    };
    return {
      run(ctx, model, grads, step) {
        if (step === when.atStep) strike();
        return inner.run(ctx, model, grads, step);
      },
      saveState() {
        if (++saves === when.atSave) strike(); // between reading the weights and the moments
        return null;
      },
    };
  };
}

/** Runs training that must fail; returns the error. */
async function failingRun(options: Parameters<typeof trainQuietly>[0]): Promise<Error> {
  try {
    await trainQuietly(options);
  } catch (e) {
    // A GPU error leaves no other error queued for the next test's readbacks.
    await (await testGpu()).sync().catch(() => {});
    return e as Error;
  }
  throw new Error("the run did not fail");
}

async function entries(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

/** The error is one line naming `fragments`, and the run's only checkpoint is step-2, intact. */
async function assertStoppedAfterStep2(
  error: Error,
  run: string,
  modelDir: string,
  fragments: string[],
) {
  assert(error instanceof GpuError, `a GpuError: ${error}`);
  assertEquals(error.exitCode, 2, "exit code");
  assert(!error.message.includes("\n"), `one line: ${error.message}`);
  for (const fragment of [...fragments, `${run}/checkpoints/step-2`, "intact", "--resume"]) {
    assert(error.message.includes(fragment), `"${error.message}" does not mention ${fragment}`);
  }
  assertEquals(await entries(`${run}/checkpoints`), ["step-2"], "no partial checkpoint");
  const state = await verifyCheckpoint(
    `${run}/checkpoints/step-2`,
    await loadConfig(`${modelDir}/config.json`),
  );
  assertEquals(state.step, 2, "the checkpoint verifies");
}

Deno.test("faults: out of GPU memory mid-run: one line with the size and what to lower; --resume finishes", async () => {
  await withTempDir(async (dir) => {
    const f = await makeFixture(dir);
    const config = await fixtureConfig(f, 5, ["training.checkpoint_interval=2"]);
    const run = `${dir}/run`;
    const error = await failingRun({
      config,
      runDir: run,
      cacheDir: f.cacheDir,
      stepFactory: faultyStep("oom", { atStep: 3 }),
    });
    const ctx = await testGpu();
    await assertStoppedAfterStep2(error, run, f.modelDir, [
      `needs ${4 * tooManyFloats(ctx.limits.maxBufferSize)} bytes`,
      "maxBufferSize",
      "lower the batch size",
      "training.batch_size",
    ]);
    assertEquals((await readMetrics(`${run}/metrics.jsonl`)).length, 3, "steps 1-3 logged");

    const resumed = await trainQuietly({
      config,
      runDir: run,
      cacheDir: f.cacheDir,
      resume: true,
    });
    assertEquals([resumed.exitCode, resumed.step], [0, 5], "--resume finishes the run");
    assertEquals((await readMetrics(`${run}/metrics.jsonl`)).map((r) => r.step), [
      1,
      2,
      3,
      4,
      5,
    ], "metrics cut back to step 2, then continued");
  });
});

Deno.test("faults: a GPU error while a checkpoint is taken leaves the previous one, and no partial one", async () => {
  await withTempDir(async (dir) => {
    const f = await makeFixture(dir);
    const config = await fixtureConfig(f, 4, ["training.checkpoint_interval=2"]);
    const run = `${dir}/run`;
    const error = await failingRun({
      config,
      runDir: run,
      cacheDir: f.cacheDir,
      stepFactory: faultyStep("gpu error", { atSave: 2 }),
    });
    await assertStoppedAfterStep2(error, run, f.modelDir, ["GPU error"]);
    assert((await listCheckpoints(run)).length === 1, "only step-2");
  });
});

Deno.test("faults: a new run that fails in its first step leaves no run folder", async () => {
  await withTempDir(async (dir) => {
    const f = await makeFixture(dir);
    const config = await fixtureConfig(f, 4);
    for (const fault of ["gpu error", "oom"] as const) {
      const run = `${dir}/run-${fault.replace(" ", "-")}`;
      const error = await failingRun({
        config,
        runDir: run,
        cacheDir: f.cacheDir,
        stepFactory: faultyStep(fault, { atStep: 0 }),
      });
      assert(error instanceof GpuError && !error.message.includes("\n"), `${fault}: ${error}`);
      const left = await Deno.stat(run).then(() => true, () => false);
      assert(!left, `${fault}: ${run} was left behind`);
    }
    // An --out that existed (empty) before stays, empty.
    await Deno.mkdir(`${dir}/kept`);
    await failingRun({
      config,
      runDir: `${dir}/kept`,
      cacheDir: f.cacheDir,
      stepFactory: faultyStep("oom", { atStep: 0 }),
    });
    assertEquals(await entries(`${dir}/kept`), [], "the existing folder is left empty");
  });
});
