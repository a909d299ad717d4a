// The GRPO policy loss on the GPU: recompute log π_θ of every generated token under the model
// being trained (a training forward over [prompt + response]), take the clipped surrogate and
// its gradient per token (lib/ops/grpo_surrogate.ts, the elementwise core of
// lib/rmt/grpo.ts clippedSurrogate), and backpropagate it into the caller's gradients:
//
//   sequence i   = prompt_i + response_i[0 .. n_i − 2]       (the last token predicts nothing)
//   row of token j of response i = position |prompt_i| − 1 + j (it predicts response_i[j])
//   new_j        = log softmax(logits_row / T)[response_i[j]]       crossEntropyForward
//   (L, ∂L/∂new) = grpoSurrogate(new, old, A_i, a_j)                 elementwise, on the GPU
//   dLogits      = crossEntropyBackward(∂L/∂new) (rows that are not tokens: g = 0 ⇒ 0)
//   grads       += backward(dLogits)
//
// π_old and π_new are the same distribution: generation samples from softmax(logits / T) and
// records log softmax(logits / T) of the sampled token (lib/model/generate.ts); here new_j is
// log softmax(logits / T) at the same T (settings.temperature must be the rollout temperature).
// top-k / top-p truncate the sampler's support, but both sides use the untruncated tempered
// distribution, so ρ = π_new/π_old compares like with like. With one update per batch of
// rollouts (rl.grpo.updates_per_batch = 1) the parameters have not changed since generation,
// so ρ = 1 up to f32 rounding (the KV-cache decode and the full forward sum in different
// orders: |new − old| ~ 1e-6, far inside any clip range) and the gradient is −a_j·A_i·∇logπ_j,
// the policy gradient; the clipped form matters from the second update on.
//
// No readback: the loss and the clip fraction stay [1] GPU tensors for the caller to read
// with its other scalars. Rollouts with A = 0 (zero-advantage groups) contribute exactly 0 to
// loss and gradient when β = 0, so they are not run at all.

import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { GpuModel } from "../model/gpu_weights.ts";
import { padSequences, uploadBatch } from "../model/model_batch.ts";
import { backward, forward } from "../model/transformer.ts";
import { crossEntropyBackward, crossEntropyForward } from "../ops/cross_entropy.ts";
import { add } from "../ops/elementwise.ts";
import { grpoSurrogate } from "../ops/grpo_surrogate.ts";
import { sum } from "../ops/reduce.ts";

/** One rollout as the policy loss sees it. */
export interface PolicyRollout {
  /** The prompt ids (≥ 1 token). */
  prompt: readonly number[];
  /** The generated ids the loss scores (may be empty: contributes nothing). */
  response: readonly number[];
  /** log π_old of each response token, at the rollout temperature: [|response|]. */
  oldLogprobs: ArrayLike<number>;
  /** A_i, the rollout's advantage. */
  advantage: number;
  /** a: the aggregation weight of each of its tokens (grpo.ts aggregationWeights: constant
   * within a rollout for both token_mean and sequence_mean). */
  tokenWeight: number;
}

export interface PolicyLossSettings {
  /** The rollout temperature (π_old was taken at it). */
  temperature: number;
  /** ε of the clip. */
  clipEpsilon: number;
  /** β of the k3 KL penalty (> 0 needs options.refModel). */
  klBeta: number;
}

export interface PolicyLossOptions {
  /** π_ref for the KL penalty (a frozen copy of the starting weights). */
  refModel?: GpuModel;
  /**
   * At most this many rows (sequences × padded length) per forward; more rollouts are split
   * into chunks run one after another (their gradients accumulate). Default: all at once.
   */
  maxRows?: number;
  /** Keep each chunk's new log-probs (for checks): rows as laid out by policyRows. */
  keepLogprobs?: boolean;
}

export interface PolicyLossResult {
  /** [1] L_RL = Σ −a·s (+ β·a·k3) over the given rollouts' tokens. */
  loss: Tensor<"f32">;
  /** [1] Σ a over tokens whose clipped term was the min (the clip fraction when Σa = 1). */
  clipFraction: Tensor<"f32">;
  /** Response tokens scored. */
  tokens: number;
  /** Real tokens that went through the forward (prompts and responses). */
  forwardTokens: number;
  /** Forward passes run. */
  chunks: number;
  /** With keepLogprobs: per chunk, the rollouts' indices and the [rows] new log-probs. */
  logprobs?: { rollouts: number[]; layout: PolicyRows; newLogprob: Tensor<"f32"> }[];
}

/** The host arrays of one policy forward. */
export interface PolicyRows {
  /** The sequences fed to the model: prompt + response without its last token. */
  sequences: number[][];
  /** T: the padded length. */
  time: number;
  /** [B·T] the response token each row predicts (0 on other rows). */
  targets: Uint32Array<ArrayBuffer>;
  /** [B·T] log π_old of that token (0 on other rows). */
  oldLogprobs: Float32Array<ArrayBuffer>;
  /** [B·T, 2] (A, a) per row; a = 0 on rows that are not response tokens. */
  coefficients: Float32Array<ArrayBuffer>;
  /** [B][n_b] the row of each response token. */
  tokenRows: number[][];
  tokens: number;
}

/** Lays out rollouts (each with a non-empty response) for one forward, right-padded. */
export function policyRows(rollouts: readonly PolicyRollout[]): PolicyRows {
  const sequences = rollouts.map((r, i) => {
    if (r.prompt.length === 0) throw new Error(`policyRows: rollout ${i} has an empty prompt`);
    if (r.response.length === 0) throw new Error(`policyRows: rollout ${i} has no response`);
    if (r.oldLogprobs.length !== r.response.length) {
      throw new Error(
        `policyRows: rollout ${i} has ${r.response.length} response tokens but ` +
          `${r.oldLogprobs.length} old log-probs`,
      );
    }
    if (!(r.tokenWeight >= 0) || !Number.isFinite(r.advantage)) {
      throw new Error(
        `policyRows: rollout ${i}: token weight ${r.tokenWeight} must be ≥ 0 and the ` +
          `advantage ${r.advantage} finite`,
      );
    }
    return [...r.prompt, ...r.response.slice(0, -1)];
  });
  const time = Math.max(...sequences.map((s) => s.length));
  const rows = rollouts.length * time;
  const targets = new Uint32Array(rows);
  const oldLogprobs = new Float32Array(rows);
  const coefficients = new Float32Array(2 * rows);
  const tokenRows: number[][] = [];
  let tokens = 0;
  rollouts.forEach((r, b) => {
    const at: number[] = [];
    for (let j = 0; j < r.response.length; j++) {
      const row = b * time + r.prompt.length - 1 + j;
      targets[row] = r.response[j];
      oldLogprobs[row] = r.oldLogprobs[j];
      coefficients[2 * row] = r.advantage;
      coefficients[2 * row + 1] = r.tokenWeight;
      at.push(row);
    }
    tokenRows.push(at);
    tokens += r.response.length;
  });
  return { sequences, time, targets, oldLogprobs, coefficients, tokenRows, tokens };
}

/** Consecutive chunks of rollout indices whose count × longest sequence stays ≤ maxRows. */
export function chunkRollouts(lengths: readonly number[], maxRows: number): number[][] {
  const chunks: number[][] = [];
  let current: number[] = [];
  let longest = 0;
  lengths.forEach((n, i) => {
    const wider = Math.max(longest, n);
    if (current.length > 0 && (current.length + 1) * wider > maxRows) {
      chunks.push(current);
      current = [];
      longest = 0;
    }
    current.push(i);
    longest = Math.max(longest, n);
  });
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * Adds ∂L_RL/∂θ of the rollouts into `grads` (see the top of this file) and returns L_RL and
 * the clip fraction as GPU scalars (nothing is read back). The vocabulary check on the ids is
 * the forward's.
 */
export function policyLossBackward(
  ctx: GpuContext,
  model: GpuModel,
  grads: ReadonlyMap<string, Tensor<"f32">>,
  rollouts: readonly PolicyRollout[],
  settings: PolicyLossSettings,
  options: PolicyLossOptions = {},
): PolicyLossResult {
  const { temperature, clipEpsilon, klBeta } = settings;
  if (klBeta > 0 && !options.refModel) {
    throw new Error(`policyLossBackward: β = ${klBeta} needs a reference model (refModel)`);
  }
  // Rollouts that contribute: tokens, a > 0, and (without KL) A ≠ 0.
  const active: number[] = [];
  rollouts.forEach((r, i) => {
    if (r.response.length > 0 && r.tokenWeight > 0 && (klBeta > 0 || r.advantage !== 0)) {
      active.push(i);
    }
  });
  const lengths = active.map((i) => rollouts[i].prompt.length + rollouts[i].response.length - 1);
  const chunks = chunkRollouts(lengths, options.maxRows ?? Infinity).map((c) =>
    c.map((k) => active[k])
  );

  let loss = ctx.zeros([1], "f32");
  let clipFraction = ctx.zeros([1], "f32");
  // Σ over a chunk's rows (a fixed-order reduction), added to the running total.
  const accumulate = (into: Tensor<"f32">, terms: Tensor<"f32">): Tensor<"f32"> => {
    const total = sum(ctx, terms);
    const next = add(ctx, into, total);
    into.release();
    total.release();
    return next;
  };
  const kept: NonNullable<PolicyLossResult["logprobs"]> = [];
  let tokens = 0;
  let forwardTokens = 0;
  for (const chunk of chunks) {
    const layout = policyRows(chunk.map((i) => rollouts[i]));
    tokens += layout.tokens;
    for (const s of layout.sequences) forwardTokens += s.length;
    const padded = padSequences(layout.sequences, { time: layout.time });
    const batch = uploadBatch(ctx, padded);
    const rows = padded.batch * padded.time;
    const targets = ctx.upload(layout.targets, [rows], "u32");
    const oldLogprob = ctx.upload(layout.oldLogprobs, [rows], "f32");
    const coefficients = ctx.upload(layout.coefficients, [rows, 2], "f32");

    let refLogprob: Tensor<"f32"> | undefined;
    if (klBeta > 0) {
      const ref = forward(ctx, options.refModel!, batch, { train: false });
      const out = crossEntropyForward(ctx, ref.logits, targets, { temperature, entropy: false });
      ref.logits.release();
      out.lse.release();
      refLogprob = out.logprob;
    }

    const { logits, activations } = forward(ctx, model, batch, { train: true });
    const { logprob, lse } = crossEntropyForward(ctx, logits, targets, {
      temperature,
      entropy: false,
    });
    const surrogate = grpoSurrogate(ctx, {
      newLogprob: logprob,
      oldLogprob,
      refLogprob,
      coefficients,
    }, { clipEpsilon, klBeta });
    const dLogits = crossEntropyBackward(ctx, logits, targets, lse, surrogate.dLogprob, {
      temperature,
      inPlace: true,
    });
    backward(ctx, model, activations!, dLogits, grads);
    loss = accumulate(loss, surrogate.lossTerms);
    clipFraction = accumulate(clipFraction, surrogate.clipTerms);

    if (options.keepLogprobs) kept.push({ rollouts: chunk, layout, newLogprob: logprob });
    else logprob.release();
    for (
      const t of [
        dLogits, // = logits (in place)
        lse,
        targets,
        oldLogprob,
        coefficients,
        surrogate.dLogprob,
        surrogate.lossTerms,
        surrogate.clipTerms,
      ]
    ) t.release();
    refLogprob?.release();
    batch.release();
  }
  return {
    loss,
    clipFraction,
    tokens,
    forwardTokens,
    chunks: chunks.length,
    ...(options.keepLogprobs ? { logprobs: kept } : {}),
  };
}
