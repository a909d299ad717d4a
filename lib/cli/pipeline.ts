// `rmt pipeline FILE`: the paper's experiment in one resumable command (lib/pipeline/).

import { parseArgs } from "node:util";
import { UserError } from "../gpu/errors.ts";
import { integerOption, numberOption } from "./generate.ts";
import { runPipeline } from "../pipeline/pipeline.ts";
import { loadPipelineConfig } from "../pipeline/pipeline_config.ts";

export const pipelineHelp = `rmt pipeline FILE [options]

Runs the paper's experiment as the pipeline file says (configs/paper-tiny/pipeline.yaml for a
CPU in about an hour, configs/paper/pipeline.yaml for a GPU server and a Qwen model):
  1. the base model: rmt init of a preset, or an existing model folder
  2. pre-training with NTP (optional)
  3. mid-training from the base with every method (NTP, RPT, RMT, the RMT ablations), the
     same data and steps
  4. next-token evaluation of the base and each method on the same held-out positions, tiers
     by the base model's entropy
  5. post-training of each model with GRPO on math (method grpo-math)
  6. math accuracy before and after post-training
  7. results.md and results.json: the next-token, ablation and post-training tables
Run the same command again to continue a stopped pipeline: finished stages are skipped and
a training run continues from its newest checkpoint. \`rmt report OUT\` plots it.

Options:
  --out DIR          the pipeline folder (default: runs/<name of the pipeline>)
  --steps-scale F    multiply every training stage's steps by F in (0, 10], e.g. 0.05 for a
                     quick check of every stage (default: 1)
  --samples N        evaluate N positions and N math problems instead of the file's numbers
                     (default: the pipeline file's)
  --help             this help`;

/** The CPU (where Linux says), its threads, the OS: what results.md says it ran on. */
function machineDescription(): string {
  let cpu = `${Deno.build.arch} CPU`;
  try {
    const line = Deno.readTextFileSync("/proc/cpuinfo").split("\n")
      .find((l) => l.startsWith("model name"));
    if (line) cpu = line.slice(line.indexOf(":") + 1).trim();
  } catch {
    // not Linux: the architecture is all we say
  }
  return `${cpu}, ${navigator.hardwareConcurrency} threads, ${Deno.build.os}`;
}

export async function pipelineCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      out: { type: "string" },
      "steps-scale": { type: "string", default: "1" },
      samples: { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    console.log(pipelineHelp);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new UserError("expected one pipeline file, e.g. configs/paper-tiny/pipeline.yaml");
  }
  const config = await loadPipelineConfig(positionals[0]);
  const stepsScale = numberOption("--steps-scale", values["steps-scale"], 0, 10, true);
  if (values.samples !== undefined) {
    const samples = integerOption("--samples", values.samples, 1, 1_000_000);
    config.eval.samples = samples;
    if (config.mathEval !== null) config.mathEval.samples = samples;
  }
  const { exitCode } = await runPipeline({
    config,
    out: values.out ?? `runs/${config.name}`,
    machine: machineDescription(),
    stepsScale,
  });
  return exitCode;
}
