// Cross-entropy over (long) rows of logits, one pass per row (kernels/cross_entropy.wgsl):
//   - logprob[r] = log softmax(logits[r] / T)[target[r]]  (what NTP and GRPO need),
//   - lse[r]     = logsumexp(logits[r] / T)               (kept for the backward),
//   - entropy[r] = the top-k entropy of the RMT spec ("Token entropy"): q = softmax of
//                  the k largest logits / T, renormalised among them; H = −Σ q log q nats
//                  (a second kernel, lib/ops/topk_entropy.ts).
// And the backward: d_logits = g · (onehot(target) − softmax(logits / T)) / T, with g the
// gradient of the loss w.r.t. logprob (for L = −Σ w_r logprob_r, g_r = −w_r).
//
// Targets (or chosen ids) ≥ V cannot raise an error on the GPU: they are clamped to V − 1.
// Validate them on the host.

import type { GpuContext } from "../gpu/context.ts";
import { Params } from "../gpu/params.ts";
import { shapeString, type Tensor } from "../gpu/tensor.ts";
import source from "../../kernels/cross_entropy.wgsl" with { type: "text" };
import { DEFAULT_TOP_K, logitRows, MAX_TOP_K, topKEntropy } from "./topk_entropy.ts";

export { DEFAULT_TOP_K, MAX_TOP_K };

/** Threads per workgroup of the backward (one thread per logit). */
const WORKGROUP_SIZE = 256;
/**
 * Threads per row of the forward. Its reduction tree depends on it: every caller gets the
 * same count, so logprob and lse are bit-identical wherever they are computed (gatherLogprobs
 * at rollout time and the training forward agree exactly).
 */
const FORWARD_WORKGROUP_SIZE = 64;

const kernel = (entry: string, workgroupSize = WORKGROUP_SIZE) => ({
  name: "cross_entropy",
  source,
  entry,
  constants: { WORKGROUP_SIZE: workgroupSize },
});

export interface CrossEntropyOptions {
  /** Logits are divided by it (> 0); default 1. */
  temperature?: number;
  /** Compute the top-k entropy (default true): a second kernel reads the logits again. */
  entropy?: boolean;
  /** k of the top-k entropy, 1..MAX_TOP_K (default 16); k > V uses all V logits. */
  k?: number;
}

export interface CrossEntropyResult {
  /** [...]: log-probability of each row's target. */
  logprob: Tensor<"f32">;
  /** [...]: log-sum-exp of each row of logits / T (an input of the backward). */
  lse: Tensor<"f32">;
  /** [...]: top-k entropy in nats, or null when not asked for. */
  entropy: Tensor<"f32"> | null;
}

function inverseTemperature(op: string, temperature = 1): number {
  if (!(temperature > 0) || !Number.isFinite(temperature)) {
    throw new Error(`${op}: temperature must be a positive number (got ${temperature})`);
  }
  return 1 / temperature;
}

/** Checks logits [..., V] and a per-row u32 tensor; returns the row shape and sizes. */
function rowsOf(
  op: string,
  logits: Tensor<"f32">,
  targets: Tensor<"u32">,
  targetsName: string,
): { rowShape: number[]; rows: number; vocab: number } {
  const { rowShape, rows, vocab } = logitRows(op, logits);
  if (targets.dtype !== "u32" || targets.size !== rows) {
    throw new Error(
      `${op}: ${targetsName} ${targets.dtype} ${shapeString(targets.shape)} must ` +
        `be u32 with one id per row of logits ${shapeString(logits.shape)} (${rows})`,
    );
  }
  return { rowShape, rows, vocab };
}

/**
 * logits: [..., V] f32, targets: [...] u32 (one per row) → { logprob, lse, entropy }: [...].
 * One workgroup per row and a single read of the row, whatever V (up to 151,936 and more);
 * the entropy (topKEntropy) reads it once more.
 */
export function crossEntropyForward(
  ctx: GpuContext,
  logits: Tensor<"f32">,
  targets: Tensor<"u32">,
  { temperature, entropy = true, k = DEFAULT_TOP_K }: CrossEntropyOptions = {},
): CrossEntropyResult {
  const op = "crossEntropyForward";
  const invT = inverseTemperature(op, temperature);
  if (!Number.isInteger(k) || k < 1 || k > MAX_TOP_K) {
    throw new Error(`${op}: k must be an integer in 1..${MAX_TOP_K} (got ${k})`);
  }
  const { rowShape, rows, vocab } = rowsOf(op, logits, targets, "targets");
  // First: it may refuse the shape, and then nothing is allocated yet.
  const entropyOut = entropy ? topKEntropy(ctx, logits, { temperature, k }) : null;
  const logprob = ctx.empty(rowShape, "f32");
  const lse = ctx.empty(rowShape, "f32");
  ctx.dispatch(kernel("cross_entropy_forward", FORWARD_WORKGROUP_SIZE), {
    params: new Params().u32(rows).u32(vocab).f32(invT),
    tensors: [logits, targets, logprob, lse],
    workgroups: ctx.groupsFor(rows, 1),
  });
  return { logprob, lse, entropy: entropyOut };
}

export interface CrossEntropyBackwardOptions {
  /** The forward's temperature; default 1. */
  temperature?: number;
  /**
   * Overwrite `logits` with d_logits and return that same tensor (saves a [rows, V]
   * buffer; the logits are gone afterwards). Default false: a new tensor.
   */
  inPlace?: boolean;
}

/**
 * logits: [..., V], targets: [...] u32, lse: [...] (from the forward, same temperature),
 * dLogprob: [...] (g = ∂loss/∂logprob per row; 0 for rows out of the loss) →
 * dLogits: [..., V] = g · (onehot(target) − softmax(logits / T)) / T.
 * A new tensor, or `logits` itself overwritten when `inPlace`.
 */
export function crossEntropyBackward(
  ctx: GpuContext,
  logits: Tensor<"f32">,
  targets: Tensor<"u32">,
  lse: Tensor<"f32">,
  dLogprob: Tensor<"f32">,
  { temperature, inPlace = false }: CrossEntropyBackwardOptions = {},
): Tensor<"f32"> {
  const op = "crossEntropyBackward";
  const invT = inverseTemperature(op, temperature);
  const { rows, vocab } = rowsOf(op, logits, targets, "targets");
  for (const [name, t] of [["lse", lse], ["dLogprob", dLogprob]] as const) {
    if (t.dtype !== "f32" || t.size !== rows) {
      throw new Error(
        `${op}: ${name} ${t.dtype} ${shapeString(t.shape)} must be f32 with ` +
          `one value per row of logits ${shapeString(logits.shape)} (${rows})`,
      );
    }
  }
  const params = new Params().u32(rows).u32(vocab).f32(invT);
  const workgroups = ctx.groupsFor(rows * vocab, WORKGROUP_SIZE);
  if (inPlace) {
    ctx.dispatch(kernel("cross_entropy_backward_in_place"), {
      params,
      tensors: [logits, targets, lse, dLogprob],
      workgroups,
    });
    return logits;
  }
  const dLogits = ctx.empty(logits.shape, "f32");
  ctx.dispatch(kernel("cross_entropy_backward"), {
    params,
    tensors: [logits, targets, lse, dLogprob, dLogits],
    workgroups,
  });
  return dLogits;
}

export interface GatherLogprobsOptions {
  /** Sampling temperature the log-probabilities are taken at; default 1. */
  temperature?: number;
}

/**
 * logits: [..., V], ids: [...] u32 (e.g. sampled tokens) → { logprob, lse }: [...],
 * logprob = log softmax(logits / T)[id]: log π(token) for GRPO. The cross-entropy forward
 * without the entropy; its backward is `gatherLogprobsBackward`.
 */
export function gatherLogprobs(
  ctx: GpuContext,
  logits: Tensor<"f32">,
  ids: Tensor<"u32">,
  { temperature }: GatherLogprobsOptions = {},
): { logprob: Tensor<"f32">; lse: Tensor<"f32"> } {
  const { logprob, lse } = crossEntropyForward(ctx, logits, ids, { temperature, entropy: false });
  return { logprob, lse };
}

/** The backward of gatherLogprobs: exactly crossEntropyBackward (see there for shapes). */
export const gatherLogprobsBackward = crossEntropyBackward;
