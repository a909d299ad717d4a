// The NTP step: next-token prediction (teacher forcing) on every position of B windows of T + 1
// consecutive corpus tokens (lib/data/batches.ts), the same loss for continued pre-training
// (method ntp) and for pre-training from scratch on a model made by `rmt init`.
//
//   B = training.batch_size sequences per optimizer step, split into
//       training.grad_accumulation micro-batches of B / k sequences each
//   T = model.max_context tokens per sequence
//   L_NTP = (1 / (B·T)) Σ_{b,t} −log p(x_{b,t+1} | x_{b,≤t})     (the mean over the whole step)
//
// Each micro-batch's rows carry the weight 1/(B·T), so the gradients the micro-batches add into
// `grads` sum to ∂L_NTP/∂θ of the whole batch, and the micro-batch losses sum to L_NTP: the
// result does not depend on how the batch is split (up to float summation order).
//
// The windows of step t are a pure function of (seed, t) (ntpBatch), so a resumed run reads
// exactly the batches the uninterrupted run would have. With data.think_blocks > 0 the stream
// first gets empty <think></think> blocks at seeded positions (lib/data/think_blocks.ts).

import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { ntpBatch } from "../data/batches.ts";
import { insertThinkBlocks } from "../data/think_blocks.ts";
import { add } from "../ops/elementwise.ts";
import type { GpuModel } from "../model/gpu_weights.ts";
import { uploadBatch } from "../model/model_batch.ts";
import { backward, forward, ntpLossAndGrad } from "../model/transformer.ts";
import type { StepOutput, StepSetup, TrainStep } from "./train_step.ts";
import { loadTrainingTokens } from "./training_corpus.ts";

export interface NtpStepOptions {
  /** B: sequences per optimizer step. */
  batchSize: number;
  /** k: micro-batches per step (B divisible by k). */
  microBatches: number;
  /** T: tokens per sequence. */
  seqLen: number;
  /** The run's seed (with the step, it picks the windows). */
  seed: number;
}

/** The NTP step over a token stream (the corpus as one array of ids). */
export class NtpStep implements TrainStep {
  readonly #tokens: Uint32Array;
  readonly #options: NtpStepOptions;
  readonly #microSize: number;
  /** [B/k, T] i32 and u32, the same every micro-batch: positions 0..T−1, every key real. */
  readonly #positions: Int32Array<ArrayBuffer>;
  readonly #keyMask: Uint32Array<ArrayBuffer>;
  /** [B/k · T] 1/(B·T) on every row: every row of a window has its next token. */
  readonly #weights: Float32Array<ArrayBuffer>;

  constructor(tokens: Uint32Array, options: NtpStepOptions) {
    const { batchSize, microBatches, seqLen } = options;
    if (!(microBatches >= 1 && batchSize % microBatches === 0)) {
      throw new Error(`NtpStep: batch ${batchSize} does not split into ${microBatches} parts`);
    }
    this.#tokens = tokens;
    this.#options = options;
    this.#microSize = batchSize / microBatches;
    const rows = this.#microSize * seqLen;
    this.#positions = Int32Array.from({ length: rows }, (_, i) => i % seqLen);
    this.#keyMask = new Uint32Array(rows).fill(1);
    this.#weights = new Float32Array(rows).fill(1 / (batchSize * seqLen));
  }

  run(
    ctx: GpuContext,
    model: GpuModel,
    grads: ReadonlyMap<string, Tensor<"f32">>,
    step: number,
  ): Promise<StepOutput> {
    const { batchSize, microBatches, seqLen, seed } = this.#options;
    const batch = ntpBatch(this.#tokens, { batchSize, seqLen, seed }, step); // [B·T] ids, targets
    const micro = this.#microSize;
    const rows = micro * seqLen;
    const weights = ctx.upload(this.#weights, [rows], "f32");
    let loss: Tensor<"f32"> | null = null; // [1]: Σ of the micro-batch losses so far
    for (let k = 0; k < microBatches; k++) {
      const ids = batch.ids.slice(k * rows, (k + 1) * rows); // [B/k · T]
      const uploaded = uploadBatch(ctx, {
        batch: micro,
        time: seqLen,
        lengths: new Array(micro).fill(seqLen),
        offsets: new Array(micro).fill(0),
        ids,
        positions: this.#positions,
        keyMask: this.#keyMask,
      });
      const targets = ctx.upload(batch.targets.slice(k * rows, (k + 1) * rows), [rows], "u32");
      const { logits, activations } = forward(ctx, model, uploaded, { train: true }); // [rows, V]
      const part = ntpLossAndGrad(ctx, logits, targets, weights, { inPlace: true });
      backward(ctx, model, activations!, part.dLogits, grads); // part.dLogits is logits
      logits.release();
      targets.release();
      uploaded.release();
      if (loss === null) {
        loss = part.loss;
      } else {
        const sum = add(ctx, loss, part.loss);
        loss.release();
        part.loss.release();
        loss = sum;
      }
      // Several micro-batches: submit each, so their recorded work (and staging) does not pile
      // up in one command buffer.
      if (microBatches > 1) ctx.submit();
    }
    weights.release();
    return Promise.resolve({
      objective: loss!,
      gpuMetrics: { loss_ntp: loss! },
      hostMetrics: {},
      tokens: batchSize * seqLen,
    });
  }
}

/** The step factory of method ntp: tokenises data.train (cached) with the model's tokenizer. */
export async function createNtpStep(setup: StepSetup): Promise<NtpStep> {
  const { config } = setup;
  const stream = await loadTrainingTokens(setup);
  const seqLen = config.model.max_context;
  let tokens: Uint32Array = stream.tokens;
  if (config.data.think_blocks > 0) {
    const think = setup.folder.tokenizer.thinkTokens();
    tokens = insertThinkBlocks(stream.tokens, {
      rate: config.data.think_blocks,
      seed: config.seed,
      thinkStart: think.thinkStart,
      thinkEnd: think.thinkEnd,
      endOfText: think.endOfText,
    });
    const blocks = (tokens.length - stream.tokens.length) / 2;
    setup.log(
      `data: ${blocks} empty think blocks inserted (data.think_blocks ${config.data.think_blocks})`,
    );
  }
  return new NtpStep(tokens, {
    batchSize: config.training.batch_size,
    microBatches: config.training.grad_accumulation,
    seqLen,
    seed: config.seed,
  });
}
