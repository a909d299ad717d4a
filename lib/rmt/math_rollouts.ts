// Responses to math problems, sampled and graded: what GRPO post-training (lib/train/
// math_step.ts) and the math evaluation (lib/eval/math_eval.ts) both do.
//
//   problems   step t of post-training: batch_size problems, drawn without replacement from
//              a per-epoch shuffle of the file (mathBatchIndices: a pure function of
//              (seed, t)); evaluation: the first N problems of the file
//   prompts    math_prompts.ts mathPromptText
//   generate   G responses per problem, at most math.max_new_tokens each, stopping at
//              end-of-text (Philox row ids t·R + i·G + g, as the corpus rollouts use)
//   grade      reward 1 when the extracted answer matches the reference (answersMatch:
//              numbers, fractions, \boxed{}), else 0; unparseable = 0

import { UserError } from "../gpu/errors.ts";
import { answersMatch } from "../data/answers.ts";
import { stepSeed } from "../data/batches.ts";
import type { MathProblem } from "../data/math_set.ts";
import { type TextTokenizer, THINK_END } from "../model/tokenizer.ts";
import { Rng } from "../ref/random.ts";
import { type MathPromptFormat, mathPromptText, parseMathResponse } from "./math_prompts.ts";
import {
  decodeGenerated,
  generateGroups,
  type Generator,
  type GroupSampling,
  stopTokenIds,
} from "./rollouts.ts";

/** How prompts are written and responses read, for one tokenizer. */
export interface MathCodec {
  format: MathPromptFormat;
  encode: (text: string) => number[];
  decode: (ids: readonly number[]) => string;
  /** The </think> id, or null when the vocabulary has none. */
  thinkEnd: number | null;
  /** Ids that end a response. */
  stopTokens: number[];
}

/** The codec of a tokenizer: stop at its end-of-text / eos / end-of-turn ids. */
export function mathCodec(
  tokenizer: TextTokenizer,
  settings: { kind: "compact" | "paper"; template: string; instruction: string; chat: boolean },
): MathCodec {
  const stops = stopTokenIds(tokenizer, "a math response");
  return {
    format: {
      kind: settings.kind,
      template: settings.template,
      instruction: settings.instruction,
      chat: settings.kind === "paper" && settings.chat && tokenizer.hasChatTemplate
        ? tokenizer
        : null,
    },
    encode: (text) => tokenizer.encode(text),
    // The model's vocabulary may be padded past the tokenizer's (Qwen's is; so are rmt init's
    // models): a sampled padding id has no text, and would make decode throw.
    decode: (ids) => decodeGenerated(tokenizer, ids),
    thinkEnd: tokenizer.tokenId(THINK_END) ?? null,
    stopTokens: stops,
  };
}

/**
 * The problem indices of post-training step t: positions t·B .. t·B + B − 1 of the endless
 * sequence of per-epoch shuffles of [0, n) (epoch e shuffled by an RNG seeded with (seed, e)).
 */
export function mathBatchIndices(n: number, batchSize: number, seed: number, step: number) {
  const shuffles = new Map<number, Uint32Array>();
  const shuffle = (epoch: number): Uint32Array => {
    let order = shuffles.get(epoch);
    if (order) return order;
    order = Uint32Array.from({ length: n }, (_, i) => i);
    const rng = new Rng(stepSeed(seed ^ 0x6d617468, epoch)); // "math": not the corpus stream
    for (let i = n - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    shuffles.set(epoch, order);
    return order;
  };
  const indices: number[] = [];
  for (let b = 0; b < batchSize; b++) {
    const k = step * batchSize + b;
    indices.push(shuffle(Math.floor(k / n))[k % n]);
  }
  return indices;
}

/** One graded response. */
export interface MathResponseResult {
  /** Index of its problem in the given list. */
  problem: number;
  /** The generated ids (a final stop id included). */
  tokens: number[];
  /** log π_old of each id at the sampling temperature (0 when greedy). */
  logprobs: number[];
  /** The extracted answer (null: unparseable). */
  answer: string | null;
  correct: boolean;
  reasoningLength: number;
}

/** How math responses are sampled: the groups' settings; the codec gives the stop tokens. */
export type MathSampling = Omit<GroupSampling, "stopTokens">;

export interface MathResponses {
  /** problems × G results, problem-major. */
  responses: MathResponseResult[];
  readbacks: number;
  calls: number;
}

/** The prompt ids of each problem; a prompt that leaves no room for the response is refused. */
export function mathPrompts(
  problems: readonly MathProblem[],
  codec: MathCodec,
  maxContext: number,
  maxNewTokens: number,
): number[][] {
  return problems.map((p, i) => {
    const prompt = codec.encode(mathPromptText(p.question, codec.format));
    if (prompt.length + maxNewTokens - 1 > maxContext) {
      // One line: a question may hold newlines (MATH problems do).
      const start = p.question.slice(0, 40).replace(/\s+/g, " ");
      throw new UserError(
        `math problem ${i + 1} ("${start}"): its prompt (${prompt.length} tokens) and ` +
          `${maxNewTokens} response tokens do not fit ${maxContext} positions; lower ` +
          "math.max_new_tokens or use a model with a longer context",
      );
    }
    return prompt;
  });
}

/**
 * The problems whose prompt leaves room for the response, with their prompts; the others are
 * counted, not trained on (a long MATH problem must not stop a run). None fitting: the first
 * one's one-line error.
 */
export function fittingMathProblems(
  problems: readonly MathProblem[],
  codec: MathCodec,
  maxContext: number,
  maxNewTokens: number,
): { problems: MathProblem[]; prompts: number[][]; skipped: number } {
  const kept: MathProblem[] = [];
  const prompts: number[][] = [];
  for (const p of problems) {
    const prompt = codec.encode(mathPromptText(p.question, codec.format));
    if (prompt.length + maxNewTokens - 1 <= maxContext) {
      kept.push(p);
      prompts.push(prompt);
    }
  }
  if (kept.length === 0) mathPrompts(problems.slice(0, 1), codec, maxContext, maxNewTokens);
  return { problems: kept, prompts, skipped: problems.length - kept.length };
}

/** Samples G responses per problem and grades them (see the top of this file). */
export async function sampleMathResponses(
  generator: Generator,
  problems: readonly MathProblem[],
  prompts: readonly (readonly number[])[],
  codec: MathCodec,
  s: MathSampling,
): Promise<MathResponses> {
  const { rows, readbacks, calls } = await generateGroups(generator, prompts, {
    ...s,
    stopTokens: codec.stopTokens,
  });
  const responses = rows.map(({ problem, tokens, logprobs }): MathResponseResult => {
    const parsed = parseMathResponse(tokens, codec.thinkEnd, codec.stopTokens, codec.decode);
    return {
      problem,
      tokens,
      logprobs,
      answer: parsed.answer,
      correct: parsed.answer !== null && answersMatch(parsed.answer, problems[problem].answer),
      reasoningLength: parsed.reasoningLength,
    };
  });
  return { responses, readbacks, calls };
}

/** Means over responses: accuracy, parse rate, reasoning and response length. */
export function mathStats(responses: readonly MathResponseResult[]) {
  const n = responses.length;
  const mean = (f: (r: MathResponseResult) => number) =>
    n === 0 ? 0 : responses.reduce((a, r) => a + f(r), 0) / n;
  return {
    accuracy: mean((r) => (r.correct ? 1 : 0)),
    parseRate: mean((r) => (r.answer !== null ? 1 : 0)),
    reasoningLength: mean((r) => r.reasoningLength),
    responseLength: mean((r) => r.tokens.length),
    generatedTokens: responses.reduce((a, r) => a + r.tokens.length, 0),
  };
}
