// The command line: one file per subcommand; this file only dispatches and turns
// user-facing errors into one line on stderr and an exit code.

import { UserError } from "../gpu/errors.ts";
import { VERSION, versionLine } from "../version.ts";
import { demo, demoHelp } from "./demo.ts";
import { evalCommand, evalHelp } from "./eval.ts";
import { generateCommand, generateHelp } from "./generate.ts";
import { info, infoHelp } from "./info.ts";
import { init, initHelp } from "./init.ts";
import { reportCommand, reportHelp } from "./report.ts";
import { pipelineCommand, pipelineHelp } from "./pipeline.ts";
import { scoreCommand, scoreHelp } from "./score.ts";
import { selfcheck, selfcheckHelp } from "./selfcheck.ts";
import { trainCommand, trainHelp } from "./train.ts";

interface Command {
  run: (args: string[]) => Promise<number>;
  help: string;
  summary: string;
}

export const COMMANDS: Record<string, Command> = {
  info: { run: info, help: infoHelp, summary: "show the GPU adapter, backend, limits, features" },
  selfcheck: {
    run: selfcheck,
    help: selfcheckHelp,
    summary: "check every kernel against its TypeScript reference",
  },
  demo: {
    run: demo,
    help: demoHelp,
    summary: "the demo: create, pre-train, RMT mid-train and evaluate a small model",
  },
  init: { run: init, help: initHelp, summary: "create a new model folder from a preset" },
  generate: {
    run: generateCommand,
    help: generateHelp,
    summary: "continue a prompt with a model (sampling, KV cache)",
  },
  score: {
    run: scoreCommand,
    help: scoreHelp,
    summary: "per-token log-probs and entropies of a text, and its perplexity",
  },
  train: { run: trainCommand, help: trainHelp, summary: "train a model (ntp, rpt, rmt, ...)" },
  eval: {
    run: evalCommand,
    help: evalHelp,
    summary: "next-token accuracy with reasoning by entropy tier, argmax accuracy, perplexity",
  },
  pipeline: {
    run: pipelineCommand,
    help: pipelineHelp,
    summary: "the paper's experiment: pre-, mid-, post-training and evaluation, resumable",
  },
  report: {
    run: reportCommand,
    help: reportHelp,
    summary: "one self-contained HTML report (plots and tables) of run or pipeline folders",
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const list = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    `rmt ${VERSION} — Reinforcement Mid-Training on WebGPU`,
    "",
    "usage: rmt COMMAND [options]    (rmt COMMAND --help for its options)",
    "",
    "commands:",
    ...list,
    "",
    "  --version  print the version and the git commit it was built from",
  ].join("\n");
}

export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version") {
    console.log(await versionLine());
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`rmt: unknown command '${name}' (try rmt --help)`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (e) {
    if (e instanceof UserError) {
      console.error(`rmt ${name}: ${e.message}`);
      return e.exitCode;
    }
    // parseArgs reports unknown or malformed options with a code: a user error too.
    if (e instanceof TypeError && "code" in e && String(e.code).startsWith("ERR_PARSE_ARGS")) {
      console.error(`rmt ${name}: ${e.message}`);
      return 2;
    }
    throw e;
  }
}
