// Next-token evaluation of a model on held-out text (spec: "What the paper reports"): the
// accuracy of predicting the next token WITH reasoning, by difficulty tier, and the plain
// measures without reasoning.
//
// For each of `samples` held-out positions p (eval_positions.ts: fixed by the seed, the same
// for every checkpoint of one tokenizer), with context c = the document's tokens before p (the
// last L of them, so that the prompt and the whole generation fit the model's positions):
//
//   with reasoning   compact format: prompt = c, <think>; generate up to maxReasoning + 2
//                    tokens (greedy at temperature 0, else sampled with the seed), stopping at
//                    <|endoftext|>; the prediction is the token right after the first </think>.
//                    paper format (chat / reasoning models): RPT's template around the text of
//                    c (prompts.ts; a budget sentence only when a budget is given), up to
//                    maxReasoning + 1 + max answer tokens, the prediction is the last \boxed{}
//                    after </think> and must be the target token's text (exact match, as the
//                    RL reward). Either way: no </think>, no answer, or more than maxReasoning
//                    reasoning tokens: unparseable, counted wrong. Reasoning length ℓ = tokens
//                    before </think> (every generated token but a final stop token without it).
//   tiers            H_p = top-16 entropy of the PROXY model's next-token distribution after c
//                    (context_scores.ts); nested tiers easy H > 0.5 / medium > 1.0 /
//                    hard > 1.5 (tier_accuracy.ts). The proxy defaults to the evaluated model
//                    itself; to compare checkpoints, pass the same proxy (the base model) to
//                    every evaluation, so that the tiers hold the same positions.
//   plain            argmax of the model's next-token distribution after c (no <think>):
//                    next-token accuracy without reasoning, on the same positions and tiers.
//   perplexity       exp(mean −log π(x_p | x_<p)) over EVERY predicted token of the file, not
//                    only the sampled positions: each document scored on its own with its
//                    trailing <|endoftext|> (the first token of a document has no context and
//                    is not counted), contexts restarting at max_position_embeddings.
//
// Nothing is written to disk: the file is tokenised in memory.

import { loadCorpus } from "../data/corpus.ts";
import { documentSequences } from "../data/entropy_cache.ts";
import { joinDocuments, type TokenStream } from "../data/token_cache.ts";
import { gpu, type GpuContext } from "../gpu/context.ts";
import { UserError } from "../gpu/errors.ts";
import { generate } from "../model/generate.ts";
import { type GpuModel, loadGpuWeights, releaseGpuModel } from "../model/gpu_weights.ts";
import { type ModelFolder, readModelFolder } from "../model/model_folder.ts";
import { scoreSequences } from "../model/score.ts";
import { DEFAULT_TOP_K } from "../ops/cross_entropy.ts";
import { PAPER_BUDGET_SENTENCE, PAPER_INSTRUCTION } from "../rmt/prompts.ts";
import {
  buildProblems,
  byteDecoder,
  contextLimit as promptContextLimit,
  type Generator,
  matchReward,
  maxNewTokens,
  paperFormat,
  parseRollout,
  promptOverhead,
  type RolloutFormat,
} from "../rmt/rollouts.ts";
import { DEFAULT_THRESHOLDS, type TierThresholds } from "../rmt/tiers.ts";
import {
  DEFAULT_MIN_CONTEXT,
  type EvalPosition,
  evalPositions,
  positionContext,
} from "./eval_positions.ts";
import { scoreAfterContexts } from "./context_scores.ts";
import { type TierAccuracy, tierAccuracy } from "./tier_accuracy.ts";

/** Defaults of `rmt eval` (max reasoning: configs/small.yaml's eval.max_reasoning_tokens). */
export const EVAL_DEFAULTS = {
  samples: 200,
  seed: 0,
  maxReasoning: 96,
  temperature: 0,
  /** Prompts per generation call. */
  batchSize: 100,
} as const;

export interface EvalOptions {
  /** The model folder to evaluate. */
  modelDir: string;
  /** The model folder whose top-16 entropies make the tiers; default modelDir. */
  proxyDir?: string;
  /** The held-out corpus (.jsonl / .txt file or folder, as loadCorpus reads it). */
  dataPath: string;
  samples: number;
  /** Seeds the positions (and the sampling when temperature > 0); an integer in [0, 2^32). */
  seed: number;
  /** Reasoning tokens allowed before </think>. */
  maxReasoning: number;
  /** 0: greedy. */
  temperature: number;
  /** Least context of a position, tokens (default 8). */
  minContext?: number;
  thresholds?: TierThresholds;
  /** Prompts per generation call (default 100). */
  batchSize?: number;
  /** The prompt format (default compact). */
  prompt?: EvalPrompt;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/** The paper prompt format's settings for evaluation (the config's prompt.* and rl.*). */
export interface EvalPrompt {
  format: "compact" | "paper";
  /** paper: the instruction, the budget sentence, the chat template (default on). */
  instruction?: string;
  budgetSentence?: string;
  chatTemplate?: boolean;
  /** paper: tokens allowed after </think> (default 16). */
  maxAnswerTokens?: number;
  /** paper: B in the budget sentence (default none: no budget sentence). */
  budget?: number | null;
}

/** The rollout format an evaluation uses. */
export function evalFormat(folder: ModelFolder, prompt: EvalPrompt | undefined): RolloutFormat {
  if (prompt === undefined || prompt.format === "compact") {
    return {
      kind: "compact",
      ...folder.tokenizer.thinkTokens(),
      decodeBytes: byteDecoder(folder.tokenizer),
    };
  }
  return paperFormat(folder.tokenizer, {
    chatTemplate: prompt.chatTemplate ?? true,
    instruction: prompt.instruction ?? PAPER_INSTRUCTION,
    budgetSentence: prompt.budgetSentence ?? PAPER_BUDGET_SENTENCE,
    maxAnswerTokens: prompt.maxAnswerTokens ?? 16,
    budgetInPrompt: (prompt.budget ?? null) !== null,
  });
}

/** One evaluated position. */
export interface EvalSample {
  /** Index into the file's token stream, its document, and the context tokens used. */
  position: number;
  document: number;
  contextLength: number;
  /** x_p. */
  target: number;
  /** The proxy's top-16 entropy H_p (nats). */
  entropy: number;
  /** With reasoning: the predicted id (null when unparseable or paper format), the paper
   * format's \boxed{} text, ℓ, and the verdict. */
  prediction: number | null;
  answerText: string | null;
  parseable: boolean;
  reasoningLength: number;
  correct: boolean;
  /** Without reasoning: the argmax id and the verdict. */
  argmax: number;
  argmaxCorrect: boolean;
}

export interface EvalResult {
  model: string;
  proxy: string;
  data: string;
  settings: {
    samples: number;
    seed: number;
    minContext: number;
    maxReasoning: number;
    temperature: number;
    /** k of the top-k entropy. */
    entropyTopK: number;
    thresholds: TierThresholds;
    /** Most context tokens a prompt holds. */
    contextLimit: number;
    /** The prompt format, and the budget sentence's B (null: none). */
    format: "compact" | "paper";
    budget: number | null;
  };
  /** Positions evaluated (samples, or fewer when the file has fewer eligible positions). */
  positions: number;
  withReasoning: TierAccuracy & {
    /** Fraction of positions with a parseable answer. */
    parseRate: number;
    /** Mean reasoning length ℓ (tokens between <think> and </think>) over all positions. */
    reasoningTokens: number;
  };
  /** Argmax accuracy without reasoning. */
  plain: TierAccuracy;
  perplexity: {
    scope: "file";
    /** Predicted tokens counted. */
    tokens: number;
    meanNll: number | null;
    perplexity: number | null;
  };
  samples: EvalSample[];
  /** Wall time of the evaluation. */
  seconds: number;
}

/** A prediction read back from a reasoning rollout. */
export interface ReasoningPrediction {
  /** compact: the predicted id (null when unparseable or in paper format). */
  prediction: number | null;
  /** paper: the \boxed{} text (null otherwise). */
  answerText: string | null;
  parseable: boolean;
  reasoningLength: number;
  correct: boolean;
}

/**
 * Runs `prompts` through the generator in calls of at most `batchSize` prompts, shortest first
 * (a call left-pads its prompts to the longest: similar lengths waste little), and returns the
 * generations in the prompts' order. Prompt i samples with Philox row id i, so its tokens do
 * not depend on the batching.
 */
async function generateInBatches(
  generator: Generator,
  prompts: readonly (readonly number[])[],
  batchSize: number,
  options: { maxNewTokens: number; temperature: number; seed: number; stopTokens: number[] },
): Promise<number[][]> {
  const out: number[][] = new Array(prompts.length);
  const order = prompts.map((_, i) => i).sort((a, b) => prompts[a].length - prompts[b].length);
  for (let first = 0; first < order.length; first += batchSize) {
    const rows = order.slice(first, first + batchSize);
    const result = await generator(rows.map((i) => prompts[i]), {
      ...options,
      topK: 0,
      topP: 1,
      rowIds: rows,
      rngStep: 0,
    });
    if (result.tokens.length !== rows.length) {
      throw new Error(`eval: ${result.tokens.length} generations for ${rows.length} prompts`);
    }
    rows.forEach((i, r) => (out[i] = result.tokens[r]));
  }
  return out;
}

/**
 * The prediction with reasoning after each context (see the top of this file), in either
 * prompt format: the prompts, generation lengths, parsing and matching of the RL rollouts
 * (rollouts.ts), so that evaluation measures what training rewards (exact match; the paper
 * format's \boxed{} text must be the target token's text).
 */
export async function predictWithReasoning(
  generator: Generator,
  contexts: readonly (readonly number[])[],
  targets: readonly number[],
  format: RolloutFormat,
  options: {
    maxReasoning: number;
    temperature: number;
    seed: number;
    batchSize: number;
    /** Most context tokens of a prompt (contextLimit). */
    contextLimit: number;
    /** B in the paper prompt's budget sentence (null: none). */
    budget?: number | null;
  },
): Promise<ReasoningPrediction[]> {
  const windows = contexts.map((c, i) => [...c, targets[i]]);
  const problems = buildProblems(
    windows,
    contexts.map((c) => [{ position: c.length, tier: null }]),
    format,
    { contextLimit: options.contextLimit, prefixMaxTokens: 1, budget: options.budget ?? null },
  );
  const generated = await generateInBatches(
    generator,
    problems.map((p) => p.prompt),
    options.batchSize,
    {
      maxNewTokens: maxNewTokens(options.maxReasoning, format),
      temperature: options.temperature,
      seed: options.seed,
      stopTokens: format.kind === "compact" ? [format.endOfText] : [...format.stopTokens],
    },
  );
  return generated.map((tokens, i) => {
    const { parsed } = parseRollout(tokens, format, options.maxReasoning);
    return {
      prediction: parsed.parseable ? parsed.predictionId : null,
      answerText: parsed.answerText,
      parseable: parsed.parseable,
      reasoningLength: parsed.reasoningLength,
      correct: matchReward(parsed, problems[i], format, "exact", "optional") > 0,
    };
  });
}

/** Sorted-key JSON, to compare two tokenizer files whatever their key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const keys = Object.keys(value).sort();
    const obj = value as Record<string, unknown>;
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(obj[k])}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/** The proxy must read the same ids as the evaluated model: the same tokenizer. */
function checkSameTokenizer(model: ModelFolder, proxy: ModelFolder): void {
  if (canonical(model.tokenizer.tokenizerJson) !== canonical(proxy.tokenizer.tokenizerJson)) {
    throw new UserError(
      `--proxy ${proxy.dir}: its tokenizer differs from ${model.dir}'s (the proxy must use the ` +
        "evaluated model's tokenizer)",
    );
  }
}

/** The held-out file as one token stream (documents joined by <|endoftext|>), in memory. */
export async function tokenizeEvalData(path: string, folder: ModelFolder): Promise<TokenStream> {
  const corpus = await loadCorpus(path);
  const endOfText = folder.tokenizer.documentSeparator("joining held-out documents");
  return joinDocuments(corpus.documents.map((d) => folder.tokenizer.encode(d)), endOfText);
}

function checkOptions(o: EvalOptions): void {
  const integer = (name: string, v: number, min: number, max: number) => {
    if (!Number.isInteger(v) || v < min || v > max) {
      throw new UserError(`eval: ${name} must be an integer in [${min}, ${max}], got ${v}`);
    }
  };
  integer("samples", o.samples, 1, 1_000_000);
  integer("seed", o.seed, 0, 2 ** 32 - 1);
  integer("maxReasoning", o.maxReasoning, 0, 1 << 20);
  integer("minContext", o.minContext ?? DEFAULT_MIN_CONTEXT, 1, 1 << 20);
  integer("batchSize", o.batchSize ?? EVAL_DEFAULTS.batchSize, 1, 1 << 16);
  if (!(o.temperature >= 0 && Number.isFinite(o.temperature))) {
    throw new UserError(`eval: temperature must be a finite number ≥ 0, got ${o.temperature}`);
  }
}

/** Evaluates a model folder on a held-out file (see the top of this file). */
export async function evaluateNextToken(
  ctx: GpuContext | undefined,
  options: EvalOptions,
): Promise<EvalResult> {
  checkOptions(options);
  const started = performance.now();
  const log = options.log ?? (() => {});
  const thresholds = options.thresholds ?? DEFAULT_THRESHOLDS;
  const minContext = options.minContext ?? DEFAULT_MIN_CONTEXT;
  const batchSize = options.batchSize ?? EVAL_DEFAULTS.batchSize;
  const { maxReasoning, temperature, seed } = options;

  const folder = await readModelFolder(options.modelDir);
  const sameProxy = options.proxyDir === undefined ||
    options.proxyDir.replace(/\/+$/, "") === options.modelDir.replace(/\/+$/, "");
  const proxyFolder = sameProxy ? folder : await readModelFolder(options.proxyDir!);
  if (!sameProxy) checkSameTokenizer(folder, proxyFolder);
  const format = evalFormat(folder, options.prompt);
  const budget = options.prompt?.budget ?? null;

  const stream = await tokenizeEvalData(options.dataPath, folder);
  // The prompt and the whole generation must fit the model's positions.
  const contextLimit = promptContextLimit(
    folder.config.maxPositionEmbeddings,
    promptOverhead(format, budget),
    maxNewTokens(maxReasoning, format),
  );
  if (contextLimit < minContext) {
    throw new UserError(
      `eval: max reasoning ${maxReasoning} leaves ${contextLimit} context tokens in the ` +
        `model's ${folder.config.maxPositionEmbeddings} positions (at least ${minContext} needed)`,
    );
  }
  const positions: EvalPosition[] = evalPositions(stream, {
    samples: options.samples,
    seed,
    minContext,
  });
  if (positions.length === 0) {
    throw new UserError(
      `${options.dataPath}: no document has more than ${minContext} tokens: nothing to evaluate`,
    );
  }
  const contexts = positions.map((at) => positionContext(stream, at, contextLimit));
  const targets = positions.map((at) => stream.tokens[at.position]);

  const gpuCtx = ctx ?? await gpu();
  const owned: GpuModel[] = [];
  try {
    const model = await loadGpuWeights(gpuCtx, folder.config, folder.weights);
    owned.push(model);
    const generator: Generator = (prompts, o) => generate(gpuCtx, model, prompts, o);

    // The model's own next-token distribution after each context: argmax and (when it is its
    // own proxy) the entropies; the proxy's entropies make the tiers.
    const own = await scoreAfterContexts(gpuCtx, model, contexts, targets);
    let entropies = own.entropies;
    if (!sameProxy) {
      const proxyModel = await loadGpuWeights(gpuCtx, proxyFolder.config, proxyFolder.weights);
      owned.push(proxyModel);
      entropies = (await scoreAfterContexts(gpuCtx, proxyModel, contexts, targets)).entropies;
      releaseGpuModel(owned.pop()!);
    }
    const argmax = own.argmax;

    log(
      `  ${positions.length} positions: reasoning (≤ ${maxReasoning} tokens, ` +
        `${temperature === 0 ? "greedy" : `T ${temperature}`})…`,
    );
    const reasoning = await predictWithReasoning(generator, contexts, targets, format, {
      maxReasoning,
      temperature,
      seed,
      batchSize,
      contextLimit,
      budget,
    });
    log(`  perplexity over ${stream.tokens.length} tokens…`);
    // k = 1: the entropy is not needed here, and the top-1 pass costs least.
    const fileScores = await scoreSequences(gpuCtx, model, documentSequences(stream), { k: 1 });

    const samples: EvalSample[] = positions.map((at, i) => ({
      position: at.position,
      document: at.document,
      contextLength: contexts[i].length,
      target: targets[i],
      entropy: entropies[i],
      prediction: reasoning[i].prediction,
      answerText: reasoning[i].answerText,
      parseable: reasoning[i].parseable,
      reasoningLength: reasoning[i].reasoningLength,
      correct: reasoning[i].correct,
      argmax: argmax[i],
      argmaxCorrect: argmax[i] === targets[i],
    }));
    return {
      model: folder.dir,
      proxy: proxyFolder.dir,
      data: options.dataPath,
      settings: {
        samples: options.samples,
        seed,
        minContext,
        maxReasoning,
        temperature,
        entropyTopK: DEFAULT_TOP_K,
        thresholds,
        contextLimit,
        format: format.kind,
        budget,
      },
      positions: samples.length,
      ...summarise(samples, thresholds),
      perplexity: { scope: "file", ...fileNll(fileScores.logprobs) },
      samples,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    for (const m of owned) releaseGpuModel(m);
  }
}

/** The accuracies, parse rate and mean reasoning length of evaluated positions. */
export function summarise(
  samples: readonly EvalSample[],
  thresholds: TierThresholds,
): Pick<EvalResult, "withReasoning" | "plain"> {
  const n = samples.length;
  const mean = (f: (s: EvalSample) => number) =>
    n === 0 ? 0 : samples.reduce((a, s) => a + f(s), 0) / n;
  return {
    withReasoning: {
      ...tierAccuracy(samples, thresholds),
      parseRate: mean((s) => (s.parseable ? 1 : 0)),
      reasoningTokens: mean((s) => s.reasoningLength),
    },
    plain: tierAccuracy(
      samples.map((s) => ({ entropy: s.entropy, correct: s.argmaxCorrect })),
      thresholds,
    ),
  };
}

/** Mean NLL and perplexity over every scored (non-NaN) log-prob of the documents. */
function fileNll(logprobs: readonly Float32Array[]): {
  tokens: number;
  meanNll: number | null;
  perplexity: number | null;
} {
  let sum = 0;
  let tokens = 0;
  for (const doc of logprobs) {
    for (const lp of doc) {
      if (Number.isNaN(lp)) continue;
      sum -= lp;
      tokens++;
    }
  }
  if (tokens === 0) return { tokens, meanNll: null, perplexity: null };
  return { tokens, meanNll: sum / tokens, perplexity: Math.exp(sum / tokens) };
}
