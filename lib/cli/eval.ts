// `rmt eval`: next-token accuracy with reasoning by difficulty tier, and the plain measures
// without reasoning, of a model folder on a held-out file (lib/eval/next_token_eval.ts).

import { parseArgs } from "node:util";
import { UserError } from "../gpu/errors.ts";
import { EVAL_DEFAULTS, evaluateNextToken } from "../eval/next_token_eval.ts";
import { evaluateMath, formatMathEval, MATH_EVAL_DEFAULTS } from "../eval/math_eval.ts";
import { DEFAULT_MIN_CONTEXT } from "../eval/eval_positions.ts";
import { formatEvalTable } from "../eval/results_table.ts";
import { integerOption, numberOption } from "./generate.ts";

export const evalHelp = `rmt eval --model DIR --data FILE [options]

--task next-token (default): evaluates a model on held-out positions of a corpus file
(tokenised with the model's tokenizer). The positions are drawn from the token stream with the
seed (no document start, at least --min-context tokens of context), so two checkpoints with
the same tokenizer are scored on identical positions. Reports:
  - next-token accuracy WITH reasoning (compact format: prompt = context + <think>, the token
    right after </think> is the prediction; paper format: RPT's template, the last \\boxed{}
    after </think> must be the next token's text; up to N reasoning tokens; unparseable counts
    as wrong), over all positions and by nested tier of the proxy's top-16 entropy: easy
    H>0.5, medium H>1.0, hard H>1.5, and avg = the mean of the three tiers (as the RMT paper
    reports it);
  - mean reasoning tokens and the parse rate;
  - argmax accuracy without reasoning on the same positions, and the perplexity over every
    token of the file.
Comparing checkpoints: pass the same --proxy (the base model) to every evaluation, so that
each tier holds the same positions. Without --proxy the evaluated model is its own proxy.

--task math: the accuracy of the final answers on a JSONL file of math problems (fields
question / answer; GSM8K's "#### 42" and MATH's problem / solution with \\boxed{} work too):
the first --samples problems, one response each (greedy at temperature 0), prompted as
method grpo-math prompts (compact: "Problem: ...\\n<think>\\n"; paper: the chat template and
"put your final answer within \\boxed{}"); the answer (\\boxed{}, "Answer:" or "####") is
compared after normalisation (numbers, fractions, \\boxed{}: "0.50" = "1/2").

Options:
  --model DIR          the model folder to evaluate (required)
  --data FILE          held-out corpus (.jsonl / .txt file or folder), or math problems (.jsonl) (required)
  --task T             next-token or math (default: next-token)
  --format F           prompt format: compact or paper (default: compact)
  --proxy DIR          next-token: the model whose entropies make the tiers (default: --model)
  --samples N          positions / problems to evaluate (default: ${EVAL_DEFAULTS.samples})
  --seed S             seed of the positions (and of sampling), 0..4294967295 (default: ${EVAL_DEFAULTS.seed})
  --max-reasoning N    next-token: reasoning tokens allowed before </think> (default: ${EVAL_DEFAULTS.maxReasoning})
  --max-answer-tokens N  next-token, paper format: tokens allowed after </think> (default: 16)
  --budget N           next-token, paper format: add the budget sentence with B = N (default: none)
  --max-new-tokens N   math: tokens a response may have (default: ${MATH_EVAL_DEFAULTS.maxNewTokens})
  --temperature T      0 = greedy (default: ${EVAL_DEFAULTS.temperature})
  --min-context N      next-token: least context tokens of a position (default: ${DEFAULT_MIN_CONTEXT})
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
      task: { type: "string", default: "next-token" },
      format: { type: "string", default: "compact" },
      "max-answer-tokens": { type: "string", default: "16" },
      budget: { type: "string" },
      "max-new-tokens": { type: "string", default: String(MATH_EVAL_DEFAULTS.maxNewTokens) },
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
  if (values.task !== "next-token" && values.task !== "math") {
    throw new UserError(`--task: expected next-token or math, got '${values.task}'`);
  }
  const format = values.format;
  if (format !== "compact" && format !== "paper") {
    throw new UserError(`--format: expected compact or paper, got '${format}'`);
  }
  const samples = integerOption("--samples", values.samples, 1, 1_000_000);
  const seed = integerOption("--seed", values.seed, 0, 2 ** 32 - 1);
  const temperature = numberOption("--temperature", values.temperature, 0, 1e6);
  if (values.task === "math") {
    const result = await evaluateMath(undefined, {
      modelDir: values.model,
      dataPath: values.data,
      samples,
      seed,
      maxNewTokens: integerOption("--max-new-tokens", values["max-new-tokens"], 1, 1 << 20),
      temperature,
      format,
      log: values.json ? undefined : (line) => console.error(line),
    });
    console.log(values.json ? JSON.stringify(result) : formatMathEval(result));
    if (!values.json) console.log(`(${result.seconds.toFixed(1)} s)`);
    return 0;
  }
  const result = await evaluateNextToken(undefined, {
    modelDir: values.model,
    proxyDir: values.proxy,
    dataPath: values.data,
    samples,
    seed,
    maxReasoning: integerOption("--max-reasoning", values["max-reasoning"], 0, 1 << 20),
    temperature,
    prompt: {
      format,
      maxAnswerTokens: integerOption("--max-answer-tokens", values["max-answer-tokens"], 1, 4096),
      budget: values.budget === undefined
        ? null
        : integerOption("--budget", values.budget, 1, 1 << 20),
    },
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
