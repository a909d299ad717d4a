// `deno task bench [--json] [--quick]`: runs the benchmark suite and prints one JSON document.
// Every number is measured in this run, on the adapter named in the output. The model
// benchmarks (training step, generation, entropy pass) run on the tiny and small Qwen2 presets,
// written to a temporary folder first (bench/models.ts) and removed at the end.
//
// `deno task bench:compare` (bench/compare.ts) runs the same model benchmarks next to the
// PyTorch reference and prints the ratios.

import { parseArgs } from "node:util";
import { gpu } from "../lib/gpu/context.ts";
import { VERSION } from "../lib/version.ts";
import { benchAttention } from "./attention.ts";
import { benchEntropy } from "./entropy.ts";
import { benchGeneration } from "./generation.ts";
import { benchMatmul } from "./matmul.ts";
import { benchTempDir, createBenchModels } from "./models.ts";
import { benchTrainStep } from "./train_step.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    json: { type: "boolean", default: true }, // the output is always JSON; accepted for clarity
  },
});
const quick = values.quick;

const ctx = await gpu();
const started = new Date();
const temp = await benchTempDir();
try {
  const made = await createBenchModels(temp, ["tiny", "small"]);
  const models = Object.fromEntries(Object.values(made).map((m) => [m.preset, m.dir]));
  const report = {
    rmt: VERSION,
    date: started.toISOString(),
    deno: Deno.version.deno,
    adapter: {
      name: ctx.adapter.name,
      backend: ctx.adapter.backend,
      isFallback: ctx.adapter.isFallback,
      kernels: ctx.adapter.kernels,
    },
    quick,
    matmul: await benchMatmul(ctx, { quick }),
    attention: await benchAttention(ctx, { quick }),
    train_step: await benchTrainStep(ctx, models, { quick }),
    generation: await benchGeneration(ctx, models, { quick }),
    entropy: await benchEntropy(ctx, models, { quick }),
    counts: { ...ctx.counts },
    seconds: 0,
  };
  report.seconds = Math.round((Date.now() - started.getTime()) / 100) / 10;
  console.log(JSON.stringify(report, null, 2));
} finally {
  await Deno.remove(temp, { recursive: true });
}
