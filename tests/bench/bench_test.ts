// The benchmark functions of bench/ on the tiny preset at toy shapes: each runs and returns
// its JSON shape with positive, finite numbers (no timing thresholds: the machine may be busy).
// The PyTorch reference (bench/torch_reference.py --smallest) runs when python3 can import
// torch and transformers (ignored with a loud name otherwise, failed when RMT_REQUIRE_HF=1).

import { benchEntropyModel } from "../../bench/entropy.ts";
import { benchGenerationModel, promptIds } from "../../bench/generation.ts";
import { markdownTable, type RmtReport, tableRows, type TorchReport } from "../../bench/compare.ts";
import { createBenchModels } from "../../bench/models.ts";
import { benchTrainStepModel } from "../../bench/train_step.ts";
import { assert, assertEquals, testGpu, withTempDir } from "../helpers.ts";
import { HF_REQUIRED, hfAvailable, PYTHON } from "../python.ts";

/** Every listed field is a finite number > 0 (or ≥ 0 where `zeroOk`). */
function assertPositive(what: string, object: object, fields: string[], zeroOk: string[] = []) {
  const record = object as Record<string, unknown>;
  for (const field of [...fields, ...zeroOk]) {
    const value = record[field];
    const ok = typeof value === "number" && Number.isFinite(value) &&
      (zeroOk.includes(field) ? value >= 0 : value > 0);
    assert(ok, `${what}.${field} should be a positive finite number, got ${value}`);
  }
}

Deno.test("bench: training step, generation and entropy on the tiny preset", () =>
  withTempDir(async (dir) => {
    const ctx = await testGpu();
    const { tiny } = await createBenchModels(dir, ["tiny"]);

    const train = await benchTrainStepModel(ctx, tiny.dir, "tiny", {
      batchSize: 2,
      seqLen: 16,
      steps: 1,
    });
    assertEquals([train.tokensPerStep, train.steps], [32, 1], "training step shape");
    assertEquals(train.readbacksPerStep, 1, "training step readbacks");
    assertPositive("train", train, [
      "parameters",
      "ms",
      "tokensPerSecond",
      "cpuMs",
      "dispatchesPerStep",
      "submitsPerStep",
      "lossFirst",
    ]);

    const generation = await benchGenerationModel(ctx, tiny.dir, "tiny", {
      batch: 2,
      promptLen: 4,
      newTokens: 3,
      runs: 1,
    });
    assertEquals(generation.readbacks, 1, "generation readbacks (one chunk, no stop ids)");
    assertEquals(generation.firstRow.length, 3, "generated tokens of row 0");
    assertPositive(
      "generation",
      generation,
      ["ms", "tokensPerSecond", "prefillMs", "submits", "dispatches"],
      ["decodeStepMs", "cpuMs"],
    );

    const entropy = await benchEntropyModel(ctx, tiny.dir, "tiny", {
      sequences: 2,
      seqLen: 16,
      runs: 1,
    });
    assertEquals([entropy.forwards, entropy.readbacks], [1, 1], "entropy forwards, readbacks");
    assertPositive("entropy", entropy, ["ms", "tokensPerSecond", "dispatches", "meanEntropy"], [
      "cpuMs",
    ]);
    assert(entropy.meanEntropy <= Math.log(entropy.k) + 1e-3, "top-k entropy ≤ ln k");
  }));

Deno.test("bench: promptIds and the comparison table", () => {
  assertEquals(promptIds(2, 3, 100), [[5, 22, 39], [36, 53, 70]], "prompt formula");
  const table = markdownTable([
    { what: "x", rmt: 1.5, torch: 3, ratio: 0.5, target: "≥ 1×", met: false },
    { what: "y", rmt: "1 / 65", torch: null, ratio: null, target: "", met: null },
  ]);
  assertEquals(table.split("\n").length, 4, "header, rule and two rows");
  assert(table.includes("| x | 1.50 | 3.00 | 0.50× | ≥ 1× | **no** |"), table);
  assert(table.includes("| y | 1 / 65 | — |  |  |  |"), table);
});

Deno.test("bench: the comparison's targets, on a CPU and on a GPU", () => {
  // Only the fields tableRows reads.
  const rmt = {
    matmul: [{ M: 1024, gflops: 50 }, { M: 4096, gflops: 24000 }],
    train_step: { results: [{ preset: "small", batchSize: 8, seqLen: 128, tokensPerSecond: 400 }] },
    generation: { results: [] },
    entropy: { results: [] },
  } as unknown as RmtReport;
  const torch = {
    blas: { name: "openblas" },
    matmul: [
      { n: 1024, numpyGflops: 200, torchGflops: 180 },
      { n: 4096, numpyGflops: null, torchGflops: 50000 },
    ],
    gpu: { name: "H100", fp32PeakTflops: 60 },
    train_step: [{ preset: "small", tokensPerSecond: 1000 }],
    generation: [],
    entropy: [],
  } as unknown as TorchReport;
  const target = (rows: ReturnType<typeof tableRows>, what: string) =>
    rows.find((r) => r.what.startsWith(what));

  const cpu = tableRows(rmt, torch, false);
  assertEquals(target(cpu, "matmul 1024² GFLOP/s (PyTorch column: numpy")?.met, true, "15 GFLOP/s");
  assertEquals(target(cpu, "training step small")?.target, "≥ 0.25×", "CPU step target");
  assertEquals(target(cpu, "training step small")?.met, true, "0.4 ≥ 0.25");
  assert(!target(cpu, "matmul 4096²: share"), "no FP32-peak row on a CPU");

  const gpu = tableRows(rmt, torch, true);
  const share = target(gpu, "matmul 4096²: share of the card's FP32 peak (60 TFLOP/s, H100)");
  assertEquals([share?.rmt, share?.torch, share?.met], ["40.0 %", "83.3 %", true], "peak row");
  assertEquals(target(gpu, "training step small")?.target, "≥ 0.5×", "GPU step target");
  assertEquals(target(gpu, "training step small")?.met, false, "0.4 < 0.5");
  assert(!target(gpu, "matmul 1024² GFLOP/s (PyTorch column: numpy"), "no numpy row on a GPU");
});

const HF_AVAILABLE = await hfAvailable();

Deno.test({
  name: HF_AVAILABLE || HF_REQUIRED
    ? "bench: torch_reference.py --smallest prints its JSON"
    : `bench: torch_reference.py — IGNORED: ${PYTHON} cannot import torch, transformers`,
  ignore: !HF_AVAILABLE && !HF_REQUIRED,
  fn: () =>
    withTempDir(async (dir) => {
      assert(HF_AVAILABLE, `RMT_REQUIRE_HF=1 but ${PYTHON} cannot import torch, transformers`);
      const { tiny } = await createBenchModels(dir, ["tiny"]);
      const script = new URL("../../bench/torch_reference.py", import.meta.url).pathname;
      const out = await new Deno.Command(PYTHON, {
        args: [script, `--model=tiny=${tiny.dir}`, "--smallest"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert(out.success, `torch_reference.py failed:\n${stderr}`);
      const report = JSON.parse(new TextDecoder().decode(out.stdout));
      for (
        const key of ["torch", "blas", "threads", "matmul", "train_step", "generation", "entropy"]
      ) {
        assert(key in report, `torch_reference.py JSON lacks "${key}"`);
      }
      assertPositive("torch matmul", report.matmul[0], ["numpyGflops", "torchGflops"]);
      assertPositive("torch train_step", report.train_step[0], ["ms", "tokensPerSecond"]);
      assertEquals(report.train_step[0].parameters, tiny.parameters, "the same model");
      assertPositive("torch generation", report.generation[0], ["ms", "tokensPerSecond"]);
      assertEquals(report.generation[0].firstRow.length, 3, "generated tokens of row 0");
      assertPositive("torch entropy", report.entropy[0], ["ms", "tokensPerSecond"]);
    }),
});
