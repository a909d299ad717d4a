// The GRPO post-training step (method grpo-math): RL with a verifiable reward on math problems,
// the stage after mid-training in which the paper compares NTP, RPT and RMT models.
//
//   1. problems    B = training.batch_size problems of data.math_train for step t (a pure
//                  function of (seed, t); lib/rmt/math_rollouts.ts mathBatchIndices)
//   2. rollouts    G = rl.group_size responses each at rl.temperature, at most
//                  math.max_new_tokens tokens, graded 1 / 0 against the reference answer;
//                  GRPO advantages per group (δ and std kind of rl.grpo)
//   3. policy loss the clipped surrogate (+ β·KL to the starting model when rl.grpo.kl_beta
//                  > 0) over every response token, aggregated over the step
//                  (rl.grpo.aggregation), gradient into grads on the GPU (policy_loss.ts)
//   4. metrics     loss_rl, reward_mean (= match_rate: the fraction of correct responses),
//                  reasoning_len, parse_rate, response_len, zero_adv_groups, ...
//
// No NTP term, no budget: the same GRPO code as the corpus methods, on other data. The
// generation is cut into training.grad_accumulation calls of B/k problems (× G rows), and
// the policy forward into chunks of at most (B/k)·model.max_context rows, the size the NTP
// forward of the same config would have.

import type { GpuContext } from "../gpu/context.ts";
import { UserError } from "../gpu/errors.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { loadMathSet, type MathProblem } from "../data/math_set.ts";
import { generate } from "../model/generate.ts";
import { type GpuModel, loadGpuWeights } from "../model/gpu_weights.ts";
import { batchAdvantages } from "../rmt/grpo.ts";
import {
  fittingMathProblems,
  mathBatchIndices,
  type MathCodec,
  mathCodec,
  type MathResponses,
  mathStats,
  sampleMathResponses,
} from "../rmt/math_rollouts.ts";
import type { MethodSettings } from "../rmt/methods.ts";
import { policyLossBackward } from "../rmt/policy_loss.ts";
import type { Generator } from "../rmt/rollouts.ts";
import type { RmtConfig } from "./config.ts";
import { rolloutTokenWeights } from "./rl_step.ts";
import type { StepOutput, StepSetup, TrainStep } from "./train_step.ts";

export interface MathStepOptions {
  config: RmtConfig;
  method: MethodSettings;
  problems: readonly MathProblem[];
  /** The prompt ids of every problem (each checked to leave room for the response). */
  prompts: readonly number[][];
  codec: MathCodec;
  /** Default: lib/model/generate.ts; tests inject their own. */
  generator?: (ctx: GpuContext, model: GpuModel) => Generator;
  refModel?: GpuModel;
  ownsRefModel?: boolean;
}

/** The rollouts of one batch step, kept for rl.grpo.updates_per_batch > 1. */
interface MathPlan {
  batchStep: number;
  prompts: number[][];
  sampled: MathResponses;
  advantages: Float64Array;
  zeroAdvantageGroups: number;
}

export class MathStep implements TrainStep {
  readonly #o: MathStepOptions;
  readonly #generator: (ctx: GpuContext, model: GpuModel) => Generator;
  #cached: MathPlan | null = null;

  constructor(options: MathStepOptions) {
    const { config, method } = options;
    if (config.training.batch_size % config.training.grad_accumulation !== 0) {
      throw new UserError(
        `training.grad_accumulation: ${config.training.grad_accumulation} does not divide ` +
          `training.batch_size ${config.training.batch_size}`,
      );
    }
    if (method.grpo.klBeta > 0 && !options.refModel) {
      throw new UserError(`rl.grpo.kl_beta: ${method.grpo.klBeta} needs a reference model`);
    }
    this.#o = options;
    this.#generator = options.generator ??
      ((ctx, model) => (prompts, o) => generate(ctx, model, prompts, o));
  }

  /** Steps 1 and 2 for the batch of `batchStep`. */
  async plan(ctx: GpuContext, model: GpuModel, batchStep: number): Promise<MathPlan> {
    const { config, method, codec } = this.#o;
    const B = config.training.batch_size;
    const G = method.grpo.groupSize;
    const indices = mathBatchIndices(this.#o.problems.length, B, config.seed, batchStep);
    const problems = indices.map((i) => this.#o.problems[i]);
    const prompts = indices.map((i) => this.#o.prompts[i]);
    const sampled = await sampleMathResponses(
      this.#generator(ctx, model),
      problems,
      prompts,
      codec,
      {
        groupSize: G,
        maxNewTokens: config.math.max_new_tokens,
        temperature: config.rl.temperature,
        topK: config.rl.top_k,
        topP: config.rl.top_p,
        seed: config.seed,
        step: batchStep,
        rowsPerStep: B * G,
        problemsPerCall: config.rl.generation_batch || B / config.training.grad_accumulation,
      },
    );
    const { advantages, zeroAdvantageGroups } = batchAdvantages(
      sampled.responses.map((r) => (r.correct ? 1 : 0)),
      G,
      method.grpo.delta,
      method.grpo.std,
    );
    return { batchStep, prompts, sampled, advantages, zeroAdvantageGroups };
  }

  async run(
    ctx: GpuContext,
    model: GpuModel,
    grads: ReadonlyMap<string, Tensor<"f32">>,
    step: number,
  ): Promise<StepOutput> {
    const { config, method } = this.#o;
    const updates = config.rl.grpo.updates_per_batch;
    const batchStep = step - (step % updates);
    const plan = this.#cached?.batchStep === batchStep
      ? this.#cached
      : await this.plan(ctx, model, batchStep);
    this.#cached = updates > 1 ? plan : null;

    const responses = plan.sampled.responses;
    const weights = rolloutTokenWeights(
      responses.map((r) => r.tokens.length),
      method.grpo.aggregation,
    );
    const rollouts = responses.map((r, i) => ({
      prompt: plan.prompts[r.problem],
      response: r.tokens,
      oldLogprobs: r.logprobs,
      advantage: plan.advantages[i],
      tokenWeight: weights[i],
    }));
    const micro = config.training.batch_size / config.training.grad_accumulation;
    const policy = policyLossBackward(ctx, model, grads, rollouts, {
      temperature: config.rl.temperature,
      clipEpsilon: method.grpo.clipEpsilon,
      klBeta: method.grpo.klBeta,
    }, { refModel: this.#o.refModel, maxRows: micro * config.model.max_context });

    const stats = mathStats(responses);
    return {
      objective: policy.loss,
      gpuMetrics: { loss_rl: policy.loss, clip_fraction: policy.clipFraction },
      hostMetrics: {
        reward_mean: stats.accuracy,
        match_rate: stats.accuracy,
        reasoning_len: stats.reasoningLength,
        zero_adv_groups: plan.zeroAdvantageGroups,
        parse_rate: stats.parseRate,
        response_len: stats.responseLength,
        rl_groups: plan.prompts.length,
        rollout_tokens: stats.generatedTokens,
        generation_readbacks: plan.sampled.readbacks,
      },
      tokens: policy.forwardTokens,
    };
  }

  dispose(): void {
    this.#cached = null;
    if (this.#o.ownsRefModel && this.#o.refModel) {
      for (const t of this.#o.refModel.params.values()) t.release();
    }
  }
}

/** The codec of a config: prompt.format, math.prompt / math.instruction, the chat template. */
export function configMathCodec(config: RmtConfig, setup: Pick<StepSetup, "folder">): MathCodec {
  return mathCodec(setup.folder.tokenizer, {
    kind: config.prompt.format,
    template: config.math.prompt,
    instruction: config.math.instruction,
    chat: config.prompt.chat_template,
  });
}

/** The grpo-math step: data.math_train, the model's tokenizer, π_ref = the starting model. */
export async function createMathStep(setup: StepSetup): Promise<MathStep> {
  const { config, method, folder } = setup;
  if (config.data.math_train === null) {
    throw new UserError("data.math_train: method grpo-math needs a math problem file");
  }
  const maxContext = Math.min(config.model.max_context, folder.config.maxPositionEmbeddings);
  const all = await loadMathSet(config.data.math_train);
  const codec = configMathCodec(config, setup);
  // Every prompt now: problems too long for the context are left out here (counted), and a
  // file where none fits fails here, not in step 1,000.
  const maxNew = config.math.max_new_tokens;
  const { problems, prompts, skipped } = fittingMathProblems(all, codec, maxContext, maxNew);
  const longest = prompts.reduce((m, p) => Math.max(m, p.length), 0);
  setup.log(
    `math: ${problems.length} problems (${config.data.math_train}), prompts ≤ ${longest} tokens` +
      (skipped > 0
        ? `; ${skipped} left out: prompt + ${maxNew} response tokens > ${maxContext} positions`
        : ""),
  );
  const refModel = method.grpo.klBeta > 0
    ? await loadGpuWeights(setup.ctx, folder.config, folder.weights)
    : undefined;
  return new MathStep({
    config,
    method,
    problems,
    prompts,
    codec,
    refModel,
    ownsRefModel: true,
  });
}
