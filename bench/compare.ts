// `deno task bench:compare [--quick] [--out FILE] [--python PYTHON] [--wait-idle S]
// [--torch-device cpu|cuda]`: rmt next to PyTorch in one run, on the same machine, the same
// model folders and the same shapes. With --torch-device cuda (on a GPU machine, where rmt's
// adapter is the GPU) PyTorch runs eager f32 on the card, matmul adds 4096², and the targets
// are the GPU ones of issue #6 (4096² at ≥ 30 % of the card's FP32 peak, the small training
// step at ≥ 0.5× PyTorch); bench/device/run.sh runs it there.
//
//   1. writes the tiny and small Qwen2 model folders once (bench/models.ts, a temp folder)
//   2. rmt: matmul 1024² (and 2048² unless --quick), the training step, batched generation
//      and the entropy pass on both folders (bench/train_step.ts, generation.ts, entropy.ts)
//   3. PyTorch: bench/torch_reference.py on the same folders with the same shapes, plus numpy
//      (its BLAS: the machine's ceiling) and torch matmul
//   4. prints a Markdown table (rmt, PyTorch, ratio, target, met?) and the full JSON document
//      (to FILE with --out; on stdout after the table otherwise)
//
// The targets are those of issue #6; a ratio is rmt / PyTorch (higher is better for rmt).
//
// The machine may be shared: for each side the JSON records how much CPU other processes took
// while it ran (othersCpuShare, from /proc/stat minus the side's own CPU time), and
// --wait-idle S waits up to S seconds, before each side, for a second with the CPUs ≥ 85 % idle.

import process from "node:process";
import { parseArgs } from "node:util";
import { gpu } from "../lib/gpu/context.ts";
import { VERSION } from "../lib/version.ts";
import { benchEntropy, ENTROPY_SHAPE, type EntropyResult } from "./entropy.ts";
import { benchGeneration, GENERATION_SHAPE, type GenerationResult } from "./generation.ts";
import { benchCase } from "./matmul.ts";
import { benchTempDir, createBenchModels } from "./models.ts";
import { benchTrainStep, TRAIN_SHAPE, type TrainStepResult } from "./train_step.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    out: { type: "string" },
    python: { type: "string", default: Deno.env.get("RMT_PYTHON") ?? "python3" },
    "wait-idle": { type: "string", default: "0" },
    "torch-device": { type: "string", default: "cpu" },
    help: { type: "boolean", default: false },
  },
});
if (values.help && import.meta.main) {
  console.log(`deno task bench:compare [options]: rmt next to PyTorch CPU, one run, same shapes

Options:
  --quick          fewer repetitions, no 2048² matmul (default: off)
  --out FILE       write the full JSON document to FILE (default: stdout, after the table)
  --python PY      the Python with torch and transformers (default: $RMT_PYTHON or python3)
  --wait-idle S    wait up to S seconds before each side for an idle second (default: 0)
  --torch-device D cpu, or cuda: PyTorch on the GPU, GPU targets, matmul 4096² (default: cpu)
  --help           this help`);
  Deno.exit(0);
}
const quick = values.quick;
const steps = quick ? 2 : 5;
const runs = quick ? 1 : 2;
const torchDevice = values["torch-device"];
if (torchDevice !== "cpu" && torchDevice !== "cuda") {
  console.error(`bench:compare: --torch-device must be cpu or cuda, got ${torchDevice}`);
  Deno.exit(2);
}
const onGpu = torchDevice === "cuda";
/** The GPU target's size (issue #6: "matmul at least 30% of the card's FP32 peak at 4096²"). */
const GPU_TARGET_SIZE = 4096;
const matmulSizes = [...(quick ? [1024] : [1024, 2048]), ...(onGpu ? [GPU_TARGET_SIZE] : [])];
const waitIdleSeconds = Number(values["wait-idle"]);

/** What the PyTorch reference prints (the parts read here). */
export interface TorchReport {
  blas: { name: string; version?: string };
  torch: string;
  threads: number;
  /** numpyGflops: null on the GPU (numpy is not timed there). */
  matmul: { n: number; numpyGflops: number | null; torchGflops: number }[];
  device?: "cpu" | "cuda";
  /** With --device cuda: the card and its FP32 peak (null where unknown). */
  gpu?: { name: string; fp32PeakTflops: number | null } | null;
  train_step: TrainStepResult[];
  generation: GenerationResult[];
  entropy: EntropyResult[];
  /** CPU seconds of the reference's process, all threads. */
  cpuSeconds: number;
}

/** One line of the table: numbers are rounded here, absent ones print as "—". */
interface Row {
  what: string;
  rmt: number | string | null;
  torch: number | string | null;
  ratio: number | null;
  target: string;
  met: boolean | null;
}

async function readText(path: string): Promise<string> {
  return await Deno.readTextFile(path).catch(() => "");
}

/** CPU, cores, memory, OS, load: what the numbers depend on. */
async function machineInfo() {
  const cpuinfo = await readText("/proc/cpuinfo");
  const meminfo = await readText("/proc/meminfo");
  const memKb = Number(/MemTotal:\s+(\d+)/.exec(meminfo)?.[1] ?? NaN);
  return {
    cpu: /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    cores: navigator.hardwareConcurrency,
    memoryGiB: Number.isFinite(memKb) ? Math.round(memKb / 1024 / 1024) : null,
    os: `${Deno.build.os} ${(await readText("/proc/sys/kernel/osrelease")).trim()}`.trim(),
    loadAverage: (await readText("/proc/loadavg")).split(" ").slice(0, 3).join(" "),
  };
}

/** Busy and total CPU ticks of the whole machine (/proc/stat), in seconds. */
async function machineCpu(): Promise<{ busy: number; total: number } | null> {
  const line = (await readText("/proc/stat")).split("\n")[0];
  const ticks = line.split(/\s+/).slice(1, 9).map(Number);
  if (ticks.length < 5 || ticks.some((t) => !Number.isFinite(t))) return null;
  const total = ticks.reduce((a, b) => a + b, 0);
  const idle = ticks[3] + ticks[4]; // idle + iowait
  return { busy: (total - idle) / 100, total: total / 100 }; // USER_HZ = 100
}

/** Waits (up to `seconds`) for one second in which the CPUs are ≥ 85 % idle. */
async function waitForIdle(seconds: number): Promise<number | null> {
  const deadline = Date.now() + seconds * 1000;
  let idle: number | null = null;
  while (Date.now() < deadline) {
    const a = await machineCpu();
    await new Promise((r) => setTimeout(r, 1000));
    const b = await machineCpu();
    if (!a || !b) return null;
    idle = 1 - (b.busy - a.busy) / Math.max(1e-9, b.total - a.total);
    if (idle >= 0.85) break;
  }
  return idle;
}

/**
 * Runs one side and measures what the rest of the machine did meanwhile: othersCpuShare is
 * the fraction of all cores' time that other processes used (0: the side had the machine).
 */
async function measured<T>(run: () => Promise<T>, ownCpuSeconds: (result: T) => number) {
  const idleBefore = waitIdleSeconds > 0 ? await waitForIdle(waitIdleSeconds) : null;
  const before = await machineCpu();
  const start = performance.now();
  const result = await run();
  const wallS = (performance.now() - start) / 1000;
  const after = await machineCpu();
  let othersCpuShare: number | null = null;
  if (before && after) {
    const others = after.busy - before.busy - ownCpuSeconds(result);
    othersCpuShare = Math.max(0, others / Math.max(1e-9, after.total - before.total));
  }
  const load = {
    wallS: Math.round(wallS * 10) / 10,
    idleBefore: idleBefore === null ? null : Math.round(idleBefore * 100) / 100,
    othersCpuShare: othersCpuShare === null ? null : Math.round(othersCpuShare * 100) / 100,
  };
  return { result, load };
}

/** Runs bench/torch_reference.py; its JSON, or the reason it gave none. */
async function runTorch(models: Record<string, string>): Promise<TorchReport | string> {
  const script = new URL("./torch_reference.py", import.meta.url).pathname;
  const args = [
    script,
    ...Object.entries(models).map(([preset, dir]) => `--model=${preset}=${dir}`),
    `--train-shape=${TRAIN_SHAPE.batchSize},${TRAIN_SHAPE.seqLen}`,
    `--gen-shape=${GENERATION_SHAPE.batch},${GENERATION_SHAPE.promptLen},` +
    `${GENERATION_SHAPE.newTokens}`,
    `--entropy-shape=${ENTROPY_SHAPE.sequences},${ENTROPY_SHAPE.seqLen}`,
    `--matmul-sizes=${matmulSizes.join(",")}`,
    `--steps=${steps}`,
    `--runs=${runs}`,
    `--device=${torchDevice}`,
    ...(quick ? ["--quick"] : []),
  ];
  try {
    const out = await new Deno.Command(values.python, { args, stdout: "piped", stderr: "piped" })
      .output();
    const stderr = new TextDecoder().decode(out.stderr).trim();
    if (!out.success) return `${values.python} ${script} failed: ${stderr.slice(-2000)}`;
    return JSON.parse(new TextDecoder().decode(out.stdout)) as TorchReport;
  } catch (e) {
    return `${values.python}: ${(e as Error).message}`;
  }
}

const ratioOf = (a: number | null | undefined, b: number | null | undefined) =>
  a != null && b != null && b > 0 ? a / b : null;

/** Tokens of two lists that agree, "k/n". */
function agreement(a: readonly number[] | undefined, b: readonly number[] | undefined): string {
  if (!a || !b) return "—";
  return `${a.filter((x, i) => x === b[i]).length}/${Math.max(a.length, b.length)}`;
}

/**
 * The table's rows: each rmt number next to PyTorch's, with issue #6's targets (the CPU ones,
 * or with `gpu` the GPU ones: PyTorch on the card, 4096² against the card's FP32 peak).
 */
export function tableRows(rmt: RmtReport, torch: TorchReport | null, gpu: boolean): Row[] {
  const rows: Row[] = [];
  for (const m of rmt.matmul) {
    const ref = torch?.matmul.find((t) => t.n === m.M);
    if (!gpu) {
      rows.push({
        what: `matmul ${m.M}² GFLOP/s (PyTorch column: numpy ${torch?.blas.name ?? "BLAS"})`,
        rmt: m.gflops,
        torch: ref?.numpyGflops ?? null,
        ratio: ratioOf(m.gflops, ref?.numpyGflops),
        target: m.M === 1024 ? "rmt ≥ 15 GFLOP/s" : "",
        met: m.M === 1024 ? m.gflops >= 15 : null,
      });
    }
    const peak = torch?.gpu?.fp32PeakTflops ?? null;
    if (gpu && m.M === GPU_TARGET_SIZE) {
      const share = peak ? m.gflops / (peak * 1000) : null;
      rows.push({
        what: `matmul ${m.M}²: share of the card's FP32 peak (${peak ?? "?"} TFLOP/s, ` +
          `${torch?.gpu?.name ?? "unknown card"})`,
        rmt: share === null ? null : `${(100 * share).toFixed(1)} %`,
        torch: ref && peak ? `${(ref.torchGflops / (peak * 10)).toFixed(1)} %` : null,
        ratio: null,
        target: "rmt ≥ 30 %",
        met: share === null ? null : share >= 0.3,
      });
    }
    if (ref) {
      rows.push({
        what: `matmul ${m.M}² GFLOP/s (PyTorch column: torch)`,
        rmt: m.gflops,
        torch: ref.torchGflops,
        ratio: ratioOf(m.gflops, ref.torchGflops),
        target: "",
        met: null,
      });
    }
  }
  /** A CPU-time row: the ratio is PyTorch's CPU time over rmt's (higher: rmt cheaper). */
  const cpuRow = (what: string, rmtMs: number, torchMs: number | undefined): Row => ({
    what: `${what}: process CPU ms (ratio: PyTorch / rmt)`,
    rmt: rmtMs,
    torch: torchMs ?? null,
    ratio: ratioOf(torchMs, rmtMs),
    target: "",
    met: null,
  });
  for (const r of rmt.train_step.results) {
    const ref = torch?.train_step.find((t) => t.preset === r.preset);
    const ratio = ratioOf(r.tokensPerSecond, ref?.tokensPerSecond);
    const target = r.preset === "small";
    const least = gpu ? 0.5 : 0.25; // issue #6: 0.25× PyTorch CPU, 0.5× PyTorch eager on a GPU
    rows.push({
      what: `training step ${r.preset} (B=${r.batchSize}, T=${r.seqLen}) tokens/s`,
      rmt: r.tokensPerSecond,
      torch: ref?.tokensPerSecond ?? null,
      ratio,
      target: target ? `≥ ${least}×` : "",
      met: target && ratio !== null ? ratio >= least : null,
    });
    rows.push({
      what: `training step ${r.preset} ms`,
      rmt: r.ms,
      torch: ref?.ms ?? null,
      ratio: null,
      target: "",
      met: null,
    });
    rows.push(cpuRow(`training step ${r.preset}`, r.cpuMs, ref?.cpuMs));
  }
  for (const g of rmt.generation.results) {
    const ref = torch?.generation.find((t) => t.preset === g.preset);
    const ratio = ratioOf(g.tokensPerSecond, ref?.tokensPerSecond);
    const shape = `${g.batch}×${g.newTokens} after ${g.promptLen}`;
    rows.push({
      what: `generation ${g.preset} (${shape}, greedy) tokens/s`,
      rmt: g.tokensPerSecond,
      torch: ref?.tokensPerSecond ?? null,
      ratio,
      target: "≥ 1×",
      met: ratio !== null ? ratio >= 1 : null,
    });
    rows.push({
      what: `generation ${g.preset}: ms per decode step (all ${g.batch} rows)`,
      rmt: g.decodeStepMs,
      torch: ref?.decodeStepMs ?? null,
      ratio: null,
      target: "",
      met: null,
    });
    rows.push(cpuRow(`generation ${g.preset}`, g.cpuMs, ref?.cpuMs));
    rows.push({
      what: `generation ${g.preset}: readbacks / submits per call`,
      rmt: `${g.readbacks} / ${g.submits}`,
      torch: "host loop",
      ratio: null,
      target: "O(1) readbacks per chunk",
      met: g.readbacks <= Math.ceil(g.newTokens / 32),
    });
    rows.push({
      what: `generation ${g.preset}: greedy row 0 equal to PyTorch's`,
      rmt: agreement(g.firstRow, ref?.firstRow),
      torch: null,
      ratio: null,
      target: "",
      met: null,
    });
  }
  for (const e of rmt.entropy.results) {
    const ref = torch?.entropy.find((t) => t.preset === e.preset);
    rows.push({
      what: `entropy pass ${e.preset} (${e.sequences}×${e.seqLen}, top-${e.k}) tokens/s`,
      rmt: e.tokensPerSecond,
      torch: ref?.tokensPerSecond ?? null,
      ratio: ratioOf(e.tokensPerSecond, ref?.tokensPerSecond),
      target: "",
      met: null,
    });
  }
  return rows;
}

function cell(x: number | string | null): string {
  if (x === null) return "—";
  if (typeof x === "string") return x;
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

export function markdownTable(rows: readonly Row[], torchColumn = "PyTorch CPU"): string {
  const lines = [
    `| benchmark | rmt | ${torchColumn} | ratio | target | met? |`,
    "|---|---:|---:|---:|---|---|",
  ];
  for (const r of rows) {
    const met = r.met === null ? "" : r.met ? "yes" : "**no**";
    const ratio = r.ratio === null ? "" : `${r.ratio.toFixed(2)}×`;
    lines.push(
      `| ${r.what} | ${cell(r.rmt)} | ${cell(r.torch)} | ${ratio} | ${r.target} | ${met} |`,
    );
  }
  return lines.join("\n");
}

export type RmtReport = Awaited<ReturnType<typeof runRmt>>;

async function runRmt(models: Record<string, string>) {
  const ctx = await gpu();
  const cpuStart = process.cpuUsage();
  const matmul = [];
  for (const n of matmulSizes) {
    matmul.push(await benchCase(ctx, { name: `square ${n}`, M: n, K: n, N: n }));
  }
  const options = { quick, steps, runs };
  return {
    adapter: { name: ctx.adapter.name, backend: ctx.adapter.backend, kernels: ctx.adapter.kernels },
    matmul,
    train_step: await benchTrainStep(ctx, models, options),
    generation: await benchGeneration(ctx, models, options),
    entropy: await benchEntropy(ctx, models, options),
    /** CPU seconds of this process (lavapipe's threads included) over the rmt side. */
    cpuSeconds: ((c) => (c.user + c.system) / 1e6)(process.cpuUsage(cpuStart)),
  };
}

if (import.meta.main) {
  const started = new Date();
  const machine = await machineInfo();
  const temp = await benchTempDir();
  try {
    const made = await createBenchModels(temp, ["tiny", "small"]);
    const models = Object.fromEntries(Object.values(made).map((m) => [m.preset, m.dir]));
    const rmtRun = await measured(() => runRmt(models), (r) => r.cpuSeconds);
    const torchRun = await measured(
      () => runTorch(models),
      (r) => (typeof r === "string" ? 0 : r.cpuSeconds),
    );
    const rmt = rmtRun.result;
    const torch = torchRun.result;
    const torchReport = typeof torch === "string" ? null : torch;
    const rows = tableRows(rmt, torchReport, onGpu);
    const report = {
      rmt_version: VERSION,
      date: started.toISOString(),
      command: `deno task bench:compare${quick ? " --quick" : ""}` +
        (onGpu ? " --torch-device cuda" : ""),
      machine: { ...machine, adapter: rmt.adapter.name, loadAverageAfter: "" },
      quick,
      models: Object.values(made),
      load: { rmt: rmtRun.load, torch: torchRun.load },
      table: rows,
      rmt,
      torch: torchReport,
      torchError: typeof torch === "string" ? torch : null,
      seconds: 0,
    };
    report.machine.loadAverageAfter = (await machineInfo()).loadAverage;
    report.seconds = Math.round((Date.now() - started.getTime()) / 100) / 10;
    console.log(
      `rmt ${VERSION} vs PyTorch ${torchReport?.torch ?? "(not run)"}, ${report.date}\n` +
        `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; ` +
        `adapter: ${rmt.adapter.name} (${rmt.adapter.kernels} kernels); load average ${machine.loadAverage} → ` +
        `${report.machine.loadAverageAfter}\n` +
        `CPU share taken by other processes while each side ran: ` +
        `rmt ${rmtRun.load.othersCpuShare}, PyTorch ${torchRun.load.othersCpuShare}\n`,
    );
    console.log(markdownTable(rows, onGpu ? "PyTorch CUDA (f32, no TF32)" : "PyTorch CPU"));
    if (report.torchError) console.log(`\nPyTorch reference not measured: ${report.torchError}`);
    const json = JSON.stringify(report, null, 2);
    if (values.out) {
      await Deno.writeTextFile(values.out, json + "\n");
      console.log(`\nfull JSON: ${values.out} (${report.seconds} s)`);
    } else {
      console.log(`\n${json}`);
    }
  } finally {
    await Deno.remove(temp, { recursive: true });
  }
}
