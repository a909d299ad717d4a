// The model folders the benchmarks run on: preset models made the way `rmt init` makes them
// (tokenizer trained on the shipped corpus, random weights from seed 0), written in the Hugging
// Face layout so that the PyTorch reference (bench/torch_reference.py) loads the very same
// files. They go in a temporary folder, never in the repository.

import { gpu, type GpuContext } from "../lib/gpu/context.ts";
import { parameterCount } from "../lib/model/config.ts";
import { initModel } from "../lib/model/init.ts";
import { writeModelFolder } from "../lib/model/model_folder.ts";
import type { PresetArchitecture, PresetSize } from "../lib/model/presets.ts";

/** The architecture every benchmark uses: Qwen2 (q/k/v biases, tied embeddings). */
export const BENCH_ARCH: PresetArchitecture = "qwen2";

export interface BenchModel {
  preset: PresetSize;
  /** The model folder (config.json, model.safetensors, tokenizer). */
  dir: string;
  parameters: number;
}

/** Writes one model folder per preset under `parent` (created if needed). */
export async function createBenchModels(
  parent: string,
  presets: readonly PresetSize[],
): Promise<Record<string, BenchModel>> {
  await Deno.mkdir(parent, { recursive: true });
  const models: Record<string, BenchModel> = {};
  for (const preset of presets) {
    const model = initModel({ arch: BENCH_ARCH, preset, seed: 0 });
    const dir = `${parent}/${BENCH_ARCH}-${preset}`;
    await writeModelFolder(dir, {
      config: model.config,
      weights: model.weights,
      tokenizerFiles: model.tokenizerFiles,
      overwrite: true,
    });
    models[preset] = { preset, dir, parameters: parameterCount(model.modelConfig) };
  }
  return models;
}

/** A fresh temporary folder for model folders; the caller removes it. */
export function benchTempDir(): Promise<string> {
  return Deno.makeTempDir({ prefix: "rmt-bench-" });
}

/** Median of a non-empty list (the mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Rounds for the JSON report (a few significant digits are all a timing holds). */
export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Runs `one` on every preset of `models` (preset → model folder), in order. */
export async function overPresets<Options, Result>(
  ctx: GpuContext,
  models: Readonly<Record<string, string>>,
  options: Options,
  one: (ctx: GpuContext, dir: string, preset: string, options: Options) => Promise<Result>,
): Promise<{ adapter: string; results: Result[] }> {
  const results: Result[] = [];
  for (const [preset, dir] of Object.entries(models)) {
    results.push(await one(ctx, dir, preset, options));
  }
  return { adapter: ctx.adapter.name, results };
}

/**
 * A benchmark file run on its own (`deno run -A bench/x.ts [--quick]`): writes the tiny and small
 * model folders to a temporary folder, prints `bench(...)` as JSON, removes the folder.
 */
export async function runAlone(
  bench: (
    ctx: GpuContext,
    models: Record<string, string>,
    options: { quick: boolean },
  ) => Promise<unknown>,
): Promise<void> {
  const quick = Deno.args.includes("--quick");
  const temp = await benchTempDir();
  try {
    const made = await createBenchModels(temp, ["tiny", "small"]);
    const models = Object.fromEntries(Object.values(made).map((m) => [m.preset, m.dir]));
    console.log(JSON.stringify(await bench(await gpu(), models, { quick }), null, 2));
  } finally {
    await Deno.remove(temp, { recursive: true });
  }
}
