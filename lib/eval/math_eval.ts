// Math evaluation (`rmt eval --task math`): the accuracy of a model's final answers on math
// problems with reference answers (the post-training table of the paper: accuracy before →
// after GRPO).
//
// The first `samples` problems of the file (the same ones for every checkpoint), one response
// each, greedy at temperature 0 (else sampled with the seed: Philox row = problem index), at
// most maxNewTokens tokens, prompts as grpo-math writes them (math_prompts.ts). The answer is
// extracted (\boxed{}, "Answer:", "####") and compared after normalisation (answers.ts:
// "0.50" = "1/2" = "\boxed{1/2}"). Unparseable counts as wrong.

import { gpu, type GpuContext } from "../gpu/context.ts";
import { loadMathSet } from "../data/math_set.ts";
import { generate } from "../model/generate.ts";
import { loadGpuWeights, releaseGpuModel } from "../model/gpu_weights.ts";
import { readModelFolder } from "../model/model_folder.ts";
import { MATH_INSTRUCTION, MATH_PROMPT } from "../rmt/math_prompts.ts";
import { mathCodec, mathPrompts, mathStats, sampleMathResponses } from "../rmt/math_rollouts.ts";

export const MATH_EVAL_DEFAULTS = {
  samples: 200,
  seed: 0,
  maxNewTokens: 256,
  temperature: 0,
  /** Problems per generation call. */
  batchSize: 64,
};

export interface MathEvalOptions {
  modelDir: string;
  dataPath: string;
  samples: number;
  seed: number;
  maxNewTokens: number;
  temperature: number;
  /** Prompt format (default compact) and its texts (defaults: the config's). */
  format?: "compact" | "paper";
  template?: string;
  instruction?: string;
  chatTemplate?: boolean;
  batchSize?: number;
  log?: (line: string) => void;
}

export interface MathEvalSample {
  question: string;
  reference: string;
  answer: string | null;
  correct: boolean;
  /** Generated tokens (a final stop token included). */
  tokens: number;
  text: string;
}

export interface MathEvalResult {
  model: string;
  data: string;
  samples: number;
  /** 0: greedy. */
  temperature: number;
  /** Fraction of problems answered correctly. */
  accuracy: number;
  /** Fraction with an extractable answer. */
  parse_rate: number;
  /** Mean tokens before </think> (all tokens without one). */
  reasoning_tokens: number;
  /** Mean generated tokens. */
  response_tokens: number;
  seconds: number;
  per_sample: MathEvalSample[];
}

/** Evaluates a model folder on a math problem file (see the top of this file). */
export async function evaluateMath(
  ctx: GpuContext | undefined,
  options: MathEvalOptions,
): Promise<MathEvalResult> {
  const started = performance.now();
  const folder = await readModelFolder(options.modelDir);
  const all = await loadMathSet(options.dataPath);
  const problems = all.slice(0, options.samples);
  const codec = mathCodec(folder.tokenizer, {
    kind: options.format ?? "compact",
    template: options.template ?? MATH_PROMPT,
    instruction: options.instruction ?? MATH_INSTRUCTION,
    chat: options.chatTemplate ?? true,
  });
  const prompts = mathPrompts(
    problems,
    codec,
    folder.config.maxPositionEmbeddings,
    options.maxNewTokens,
  );
  const gpuCtx = ctx ?? await gpu();
  const model = await loadGpuWeights(gpuCtx, folder.config, folder.weights);
  try {
    options.log?.(`math eval: ${problems.length} problems of ${options.dataPath}`);
    const sampled = await sampleMathResponses(
      (p, o) => generate(gpuCtx, model, p, o),
      problems,
      prompts,
      codec,
      {
        groupSize: 1,
        maxNewTokens: options.maxNewTokens,
        temperature: options.temperature,
        topK: 0,
        topP: 1,
        seed: options.seed,
        step: 0,
        problemsPerCall: options.batchSize ?? MATH_EVAL_DEFAULTS.batchSize,
      },
    );
    const stats = mathStats(sampled.responses);
    return {
      model: options.modelDir,
      data: options.dataPath,
      samples: problems.length,
      temperature: options.temperature,
      accuracy: stats.accuracy,
      parse_rate: stats.parseRate,
      reasoning_tokens: stats.reasoningLength,
      response_tokens: stats.responseLength,
      seconds: (performance.now() - started) / 1000,
      per_sample: sampled.responses.map((r) => ({
        question: problems[r.problem].question,
        reference: problems[r.problem].answer,
        answer: r.answer,
        correct: r.correct,
        tokens: r.tokens.length,
        text: codec.decode(r.tokens),
      })),
    };
  } finally {
    releaseGpuModel(model);
  }
}

/** The result as a few lines for the terminal. */
export function formatMathEval(result: MathEvalResult): string {
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  return [
    `math accuracy  ${pct(result.accuracy)}  (${result.samples} problems of ${result.data})`,
    `parse rate     ${pct(result.parse_rate)}`,
    `reasoning      ${result.reasoning_tokens.toFixed(1)} tokens (response ${
      result.response_tokens.toFixed(1)
    })`,
  ].join("\n");
}
