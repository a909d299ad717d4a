// `rmt eval`: next-token accuracy with reasoning by difficulty tier, and the plain measures
// without reasoning, of a model folder on a held-out file (lib/eval/next_token_eval.ts).

import { parseArgs } from "node:util";
import { UserError } from "../gpu/errors.ts";
import { EVAL_DEFAULTS, evaluateNextToken } from "../eval/next_token_eval.ts";
import { DEFAULT_MIN_CONTEXT } from "../eval/eval_positions.ts";
import { formatEvalTable } from "../eval/results_table.ts";
import { integerOption, numberOption } from "./generate.ts";

export const evalHelp = `rmt eval --model DIR --data FILE [options]

Evaluates a model on held-out positions of a corpus file (tokenised with the model's
tokenizer). The positions are drawn from the token stream with the seed (no document start,
at least --min-context tokens of context), so two checkpoints with the same tokenizer are
scored on identical positions. Reports:
  - next-token accuracy WITH reasoning (prompt = context + <think>; up to N reasoning tokens;
    the token right after </think> is the prediction; unparseable counts as wrong), over all
    positions and by nested tier of the proxy's top-16 entropy: easy H>0.5, medium H>1.0,
    hard H>1.5, and avg = the mean of the three tiers (as the RMT paper reports it);
  - mean reasoning tokens and the parse rate;
  - argmax accuracy without reasoning on the same positions, and the perplexity over every
    token of the file.

Comparing checkpoints: pass the same --proxy (the base model) to every evaluation, so that
each tier holds the same positions. Without --proxy the evaluated model is its own proxy.

Options:
  --model DIR          the model folder to evaluate (required)
  --data FILE          held-out corpus, .jsonl / .txt file or folder (required)
  --proxy DIR          the model whose entropies make the tiers (default: --model)
  --samples N          positions to evaluate (default: ${EVAL_DEFAULTS.samples})
  --seed S             seed of the positions (and of sampling), 0..4294967295 (default: ${EVAL_DEFAULTS.seed})
  --max-reasoning N    reasoning tokens allowed before </think> (default: ${EVAL_DEFAULTS.maxReasoning})
  --temperature T      0 = greedy (default: ${EVAL_DEFAULTS.temperature})
  --min-context N      least context tokens of a position (default: ${DEFAULT_MIN_CONTEXT})
  --json               one JSON object (every field, and each position) instead of the table (default: off)
  --help               this help`;

export async function evalCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: "string" },
      data: { type: "string" },
      proxy: { type: "string" },
      samples: { type: "string", default: String(EVAL_DEFAULTS.samples) },
      seed: { type: "string", default: String(EVAL_DEFAULTS.seed) },
      "max-reasoning": { type: "string", default: String(EVAL_DEFAULTS.maxReasoning) },
      temperature: { type: "string", default: String(EVAL_DEFAULTS.temperature) },
      "min-context": { type: "string", default: String(DEFAULT_MIN_CONTEXT) },
      json: { type: "boolean", default: false },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    console.log(evalHelp);
    return 0;
  }
  if (values.model === undefined || values.model === "") {
    throw new UserError("--model is required (the model folder to evaluate)");
  }
  if (values.data === undefined || values.data === "") {
    throw new UserError(
      "--data is required (a held-out corpus file, e.g. data/math/heldout.jsonl)",
    );
  }
  const result = await evaluateNextToken(undefined, {
    modelDir: values.model,
    proxyDir: values.proxy,
    dataPath: values.data,
    samples: integerOption("--samples", values.samples, 1, 1_000_000),
    seed: integerOption("--seed", values.seed, 0, 2 ** 32 - 1),
    maxReasoning: integerOption("--max-reasoning", values["max-reasoning"], 0, 1 << 20),
    temperature: numberOption("--temperature", values.temperature, 0, 1e6),
    minContext: integerOption("--min-context", values["min-context"], 1, 1 << 20),
    log: values.json ? undefined : (line) => console.error(line),
  });
  if (values.json) {
    console.log(JSON.stringify(result));
  } else {
    console.log(formatEvalTable([{ label: result.model, result }]));
    console.log(`(${result.seconds.toFixed(1)} s)`);
  }
  return 0;
}
