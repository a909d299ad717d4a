// Matmul benchmark: GFLOP/s of square products, the LLM shapes of a linear layer, and the
// transposed-operand products of its backward.
//
//   ./rmtw run -A bench/matmul.ts [--quick] [--variant=auto|registers-vec4|tiled]
//
// Timing: after a warm-up, R repetitions are recorded into one command encoder and timed
// across one submit + sync (so the per-submit overhead is shared); the median of a few
// trials is reported. R is chosen so that a trial takes about 0.3 s.
//
// On a software adapter (lavapipe) the kernels run on this process's CPU threads, so the
// process's CPU time measures the kernel's efficiency even when other programs share the
// cores: `gflopsPerCpuSecond` (≈ gflops / cores on an idle machine). On a GPU it is noise.

import process from "node:process";
import { gpu, type GpuContext } from "../lib/gpu/context.ts";
import type { Tensor } from "../lib/gpu/tensor.ts";
import { matmul, type MatmulOptions, type MatmulVariant } from "../lib/ops/matmul.ts";
import { Rng } from "../lib/ref/random.ts";

export interface MatmulCase {
  name: string;
  M: number;
  K: number;
  N: number;
  transposeA?: boolean;
  transposeB?: boolean;
}

export interface MatmulResult extends MatmulCase {
  variant: MatmulVariant;
  /** Median wall-clock milliseconds per product. */
  ms: number;
  gflops: number;
  /** GFLOP per second of this process's CPU time (software adapters; see the header). */
  gflopsPerCpuSecond: number;
  repetitions: number;
}

const TRIALS = 3;
const TRIAL_SECONDS = 0.3;

function cases(quick: boolean): MatmulCase[] {
  const square = (quick ? [256, 512, 1024] : [256, 512, 1024, 2048]).map((n) => ({
    name: `square ${n}`,
    M: n,
    K: n,
    N: n,
  }));
  return [
    ...square,
    // x [512, 896] · W^T, W [4864, 896] (Hugging Face nn.Linear layout): the MLP up projection.
    { name: "linear x·W^T 512×896·896×4864", M: 512, K: 896, N: 4864, transposeB: true },
    // Its backward: dX = dY · W ([512, 4864] · [4864, 896]) and dW = dY^T · X.
    { name: "linear dX = dY·W", M: 512, K: 4864, N: 896 },
    { name: "linear dW = dY^T·X", M: 4864, K: 512, N: 896, transposeA: true },
  ];
}

/** Stored operand shapes for a case. */
function operandShapes(c: MatmulCase): [number[], number[]] {
  return [c.transposeA ? [c.K, c.M] : [c.M, c.K], c.transposeB ? [c.N, c.K] : [c.K, c.N]];
}

/** Milliseconds of wall-clock and of process CPU time per repetition. */
async function timeRepetitions(
  ctx: GpuContext,
  repetitions: number,
  run: () => Tensor<"f32">,
): Promise<{ ms: number; cpuMs: number }> {
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  // Releasing right after recording lets every repetition write the same pooled buffer.
  for (let r = 0; r < repetitions; r++) run().release();
  await ctx.sync();
  const ms = (performance.now() - start) / repetitions;
  const cpu = process.cpuUsage(cpuStart);
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000 / repetitions };
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

export async function benchCase(
  ctx: GpuContext,
  c: MatmulCase,
  variant: MatmulVariant = "auto",
): Promise<MatmulResult> {
  const rng = new Rng(1);
  const [aShape, bShape] = operandShapes(c);
  const a = ctx.f32(rng.uniforms(c.M * c.K), aShape);
  const b = ctx.f32(rng.uniforms(c.K * c.N), bShape);
  const opts: MatmulOptions = { transposeA: c.transposeA, transposeB: c.transposeB, variant };
  const run = () => matmul(ctx, a, b, opts);
  await timeRepetitions(ctx, 1, run); // warm-up: compiles the pipeline, touches the buffers
  const once = (await timeRepetitions(ctx, 1, run)).ms;
  const repetitions = Math.max(1, Math.min(100, Math.round((TRIAL_SECONDS * 1000) / once)));
  const trials = [];
  for (let t = 0; t < TRIALS; t++) trials.push(await timeRepetitions(ctx, repetitions, run));
  a.release();
  b.release();
  const ms = median(trials.map((t) => t.ms));
  const cpuMs = median(trials.map((t) => t.cpuMs));
  const flop = 2 * c.M * c.N * c.K;
  return {
    ...c,
    variant,
    ms,
    gflops: flop / (ms * 1e6),
    gflopsPerCpuSecond: flop / (cpuMs * 1e6),
    repetitions,
  };
}

/** Runs every case; `quick` skips the 2048² product. */
export async function benchMatmul(
  ctx: GpuContext,
  { quick = false, variant = "auto" }: { quick?: boolean; variant?: MatmulVariant } = {},
): Promise<{ adapter: string; variant: MatmulVariant; results: MatmulResult[] }> {
  const results: MatmulResult[] = [];
  for (const c of cases(quick)) results.push(await benchCase(ctx, c, variant));
  return { adapter: ctx.adapter.name, variant, results };
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const variantArg = Deno.args.find((a) => a.startsWith("--variant="));
  const variant = (variantArg?.slice("--variant=".length) ?? "auto") as MatmulVariant;
  const ctx = await gpu();
  console.log(JSON.stringify(await benchMatmul(ctx, { quick, variant }), null, 2));
}
