// `rmt train`: trains a model as a config says (lib/train/trainer.ts), writing the run folder
// (run.json, config.yaml, metrics.jsonl, checkpoints/).

import { parseArgs } from "node:util";
import { UserError } from "../gpu/errors.ts";
import { resolveConfig } from "../train/config.ts";
import { train } from "../train/trainer.ts";

export const trainHelp = `rmt train --config FILE --out RUN_DIR [options]

Trains the model of the config's model.path by its method (ntp, rpt, rmt, ...) and writes the
run folder: run.json (resolved config, versions, adapter), config.yaml, metrics.jsonl (one line
per step) and checkpoints/step-N/ (a Hugging Face model folder plus optimizer.safetensors and
trainer_state.json). Ctrl-C (SIGINT) or SIGTERM finishes the current step, writes a checkpoint
and exits with 130 / 143; --resume then continues exactly where it stopped.

Options:
  --config FILE      the experiment config (required; YAML, configs/README.md lists every key)
  --out RUN_DIR      the run folder (required)
  --set KEY=VALUE    override a config key (repeatable), e.g. --set training.steps=50
                     (default: none)
  --resume           continue the run in RUN_DIR from its newest good checkpoint (default: off)
  --force            start over in RUN_DIR even if it holds a run (with --resume: continue
                     even though the config differs) (default: off)
  --help             this help`;

export async function trainCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: "string" },
      out: { type: "string" },
      set: { type: "string", multiple: true, default: [] },
      resume: { type: "boolean", default: false },
      force: { type: "boolean", default: false },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    console.log(trainHelp);
    return 0;
  }
  if (values.config === undefined || values.config === "") {
    throw new UserError("--config is required (the experiment config, e.g. configs/ntp.yaml)");
  }
  if (values.out === undefined || values.out === "") {
    throw new UserError("--out is required (the run folder)");
  }
  const { config } = await resolveConfig(values.config, values.set);
  const result = await train({
    config,
    runDir: values.out,
    resume: values.resume,
    force: values.force,
  });
  return result.exitCode;
}
