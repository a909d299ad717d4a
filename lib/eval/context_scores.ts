// A model's next-token distribution right after each of many contexts, summarised per context:
//
//   argmax[i]     the greedy next token (ties → the smallest id)
//   logprobs[i]   log π(targets[i] | contexts[i])
//   entropies[i]  H = −Σ_{j≤k} q_j log q_j, q = softmax(top-k logits)   (k = 16: the tiers' H)
//
// Contexts are LEFT-padded (model_batch.ts), so every one ends at the last column and a single
// column slice [B, V] of the logits holds all the distributions; the cross-entropy (with the
// top-k entropy) and the greedy pick then run on B rows only, not on every row of the forward.
// Contexts are grouped shortest first so that a group pads little, with at most maxRows
// tokens per forward (default: score.ts's 64 MiB activation budget); one readback per group.
// This gives exactly what lib/model/score.ts gives at the last position of (context, target),
// and what generate.ts's greedy first token is, without a pass over every position.

import type { GpuContext } from "../gpu/context.ts";
import type { GpuModel } from "../model/gpu_weights.ts";
import { padSequences, uploadBatch } from "../model/model_batch.ts";
import { scoreLimits } from "../model/score.ts";
import { forward } from "../model/transformer.ts";
import { crossEntropyForward, DEFAULT_TOP_K } from "../ops/cross_entropy.ts";
import { readTimeSlice } from "../ops/kv_cache.ts";
import { sampleWithUniforms } from "../ops/sampling.ts";

export interface ContextScores {
  /** [n] greedy next token after each context. */
  argmax: number[];
  /** [n] log π(target | context). */
  logprobs: Float32Array<ArrayBuffer>;
  /** [n] top-k entropy of the next-token distribution (nats). */
  entropies: Float32Array<ArrayBuffer>;
  /** Forwards (= readbacks) made. */
  forwards: number;
}

/**
 * Scores the next token after each context (see the top of this file). contexts: n non-empty
 * id lists, each at most max_position_embeddings long; targets: [n] ids.
 */
export async function scoreAfterContexts(
  ctx: GpuContext,
  model: GpuModel,
  contexts: readonly (readonly number[])[],
  targets: readonly number[],
  { k = DEFAULT_TOP_K, maxRows }: { k?: number; maxRows?: number } = {},
): Promise<ContextScores> {
  const n = contexts.length;
  if (targets.length !== n) {
    throw new Error(`scoreAfterContexts: ${targets.length} targets for ${n} contexts`);
  }
  const vocab = model.config.vocabSize;
  const limits = scoreLimits(ctx, model.config, { maxRows });
  contexts.forEach((c, i) => {
    if (c.length === 0) throw new Error(`scoreAfterContexts: context ${i} is empty`);
    if (c.length > model.config.maxPositionEmbeddings || c.length > limits.maxRows) {
      throw new Error(
        `scoreAfterContexts: context ${i} has ${c.length} tokens, more than the model's ` +
          `${model.config.maxPositionEmbeddings} positions or ${limits.maxRows} rows per forward`,
      );
    }
  });
  const argmax = new Array<number>(n).fill(0);
  const logprobs = new Float32Array(n);
  const entropies = new Float32Array(n);
  // Shortest first (a stable sort: a fixed order), so that each group pads little.
  const order = contexts.map((_, i) => i).sort((a, b) => contexts[a].length - contexts[b].length);
  let forwards = 0;
  for (let first = 0; first < n;) {
    // The longest context of a group is its last: grow while count · longest fits.
    let count = 1;
    while (
      first + count < n &&
      (count + 1) * contexts[order[first + count]].length <= limits.maxRows
    ) count++;
    const group = order.slice(first, first + count);
    first += count;

    const padded = padSequences(group.map((i) => contexts[i]), { padding: "left" });
    const time = padded.time;
    const batch = uploadBatch(ctx, padded);
    const { logits } = forward(ctx, model, batch, { train: false }); // [B·T, V]
    batch.release();
    const last = readTimeSlice(ctx, logits.reshape([count, time, vocab]), time - 1, 1);
    logits.release();
    const rows = last.reshape([count, vocab]); // [B, V]: the distribution after each context
    const targetIds = ctx.upload(Uint32Array.from(group, (i) => targets[i]), [count], "u32");
    const ce = crossEntropyForward(ctx, rows, targetIds, { k });
    const greedy = sampleWithUniforms(ctx, rows, null, { temperature: 0 });
    const [ids, lp, h] = await ctx.readMany([greedy.ids, ce.logprob, ce.entropy!]);
    for (const t of [last, targetIds, ce.logprob, ce.lse, ce.entropy!, greedy.ids]) t.release();
    greedy.logprobs.release();
    forwards++;
    group.forEach((i, b) => {
      argmax[i] = ids[b];
      logprobs[i] = lp[b];
      entropies[i] = h[b];
    });
  }
  return { argmax, logprobs, entropies, forwards };
}
