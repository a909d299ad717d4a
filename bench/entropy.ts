// Benchmark of the entropy scoring pass (lib/data/entropy_cache.ts runs it over the corpus):
// scoreSequences (lib/model/score.ts) over S random sequences of L tokens — one forward
// without a cache over as many windows as fit, the log-prob of each next token and its top-16
// entropy, one readback per forward. Tokens per second counts the S·(L − 1) scored positions.
// A warm-up pass compiles the pipelines; the median of the timed passes is reported. The cache
// file and the model hash around it (disk I/O) are not part of the timing.
//
//   ./rmtw run -A bench/entropy.ts [--quick]

import process from "node:process";
import type { GpuContext } from "../lib/gpu/context.ts";
import { loadGpuWeights, releaseGpuModel } from "../lib/model/gpu_weights.ts";
import { readModelFolder } from "../lib/model/model_folder.ts";
import { scoreSequences } from "../lib/model/score.ts";
import { DEFAULT_TOP_K } from "../lib/ops/cross_entropy.ts";
import { Rng } from "../lib/ref/random.ts";
import { median, overPresets, round, runAlone } from "./models.ts";

/** The shape both rmt and the PyTorch reference score. */
export const ENTROPY_SHAPE = { sequences: 16, seqLen: 128 };

export interface EntropyOptions {
  quick?: boolean;
  sequences?: number;
  seqLen?: number;
  /** Timed passes (default 2, quick 1). */
  runs?: number;
}

export interface EntropyResult {
  preset: string;
  sequences: number;
  seqLen: number;
  k: number;
  runs: number;
  /** Median milliseconds of one pass, and scored positions per second at that median. */
  ms: number;
  tokensPerSecond: number;
  /** Process CPU milliseconds per pass (lavapipe's threads are this process's). */
  cpuMs: number;
  /** Per pass. */
  forwards: number;
  readbacks: number;
  dispatches: number;
  /** Mean top-k entropy of the scored positions (a random model: close to ln k). */
  meanEntropy: number;
}

/** One model folder: load, warm up, time the scoring pass. */
export async function benchEntropyModel(
  ctx: GpuContext,
  dir: string,
  preset: string,
  options: EntropyOptions = {},
): Promise<EntropyResult> {
  const { sequences = ENTROPY_SHAPE.sequences, seqLen = ENTROPY_SHAPE.seqLen } = options;
  const runs = options.runs ?? (options.quick ? 1 : 2);
  const folder = await readModelFolder(dir);
  const model = await loadGpuWeights(ctx, folder.config, folder.weights);
  const rng = new Rng(3);
  const vocab = folder.config.vocabSize;
  const data = Array.from(
    { length: sequences },
    () => Uint32Array.from({ length: seqLen }, () => rng.int(vocab)),
  );
  const pass = () => scoreSequences(ctx, model, data, { k: DEFAULT_TOP_K });
  try {
    await pass(); // warm-up
    const times: number[] = [];
    const before = { ...ctx.counts };
    const cpuStart = process.cpuUsage();
    let last = null;
    for (let r = 0; r < runs; r++) {
      const start = performance.now();
      last = await pass();
      times.push(performance.now() - start);
    }
    const cpu = process.cpuUsage(cpuStart);
    const per = (key: keyof GpuContext["counts"]) => (ctx.counts[key] - before[key]) / runs;
    let sum = 0;
    let count = 0;
    for (const h of last!.entropies) {
      for (const x of h) if (Number.isFinite(x)) (sum += x, count++);
    }
    const ms = median(times);
    return {
      preset,
      sequences,
      seqLen,
      k: DEFAULT_TOP_K,
      runs,
      ms: round(ms, 1),
      tokensPerSecond: round((sequences * (seqLen - 1)) / (ms / 1000), 1),
      cpuMs: round((cpu.user + cpu.system) / 1000 / runs, 1),
      forwards: last!.forwards,
      readbacks: per("readbacks"),
      dispatches: per("dispatches"),
      meanEntropy: round(sum / Math.max(1, count), 4),
    };
  } finally {
    releaseGpuModel(model);
  }
}

/** Every preset of `models` (preset → model folder). */
export function benchEntropy(
  ctx: GpuContext,
  models: Readonly<Record<string, string>>,
  options: EntropyOptions = {},
): Promise<{ adapter: string; results: EntropyResult[] }> {
  return overPresets(ctx, models, options, benchEntropyModel);
}

if (import.meta.main) await runAlone(benchEntropy);
