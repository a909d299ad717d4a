// Scoring text with a model: at every position p of a token sequence (the spec's indexing:
// context x_<p, target x_p),
//
//   logprobs[p]  = log π(x_p | x_<p)                       the log-prob of the actual token
//   entropies[p] = H_p = −Σ_{i≤k} q_i log q_i,  q = softmax(top-k logits)   (k = 16)
//                  the top-k entropy of the distribution that predicts x_p
//
// both NaN at p = 0 (no context). They come from one forward without a cache and
// crossEntropyForward with targets = the next ids (lib/ops/cross_entropy.ts).
//
// Long inputs: the context is at most `window` tokens (default: the model's
// max_position_embeddings, capped so one window's logits fit the memory budget). A sequence is
// cut into consecutive, non-overlapping windows [s, s + W); the last row of a window predicts
// the next window's first token, so every p ≥ 1 is scored, with a context of between 1 and W
// tokens (it restarts at each window boundary — the usual non-overlapping evaluation; a
// sliding window would give every position a full context at W times the cost).
//
// Windows of many sequences are batched into one forward (right-padded, longest first) up to
// a row budget; each forward costs one readback.

import type { GpuContext } from "../gpu/context.ts";
import { crossEntropyForward, DEFAULT_TOP_K, MAX_TOP_K } from "../ops/cross_entropy.ts";
import type { ModelConfig } from "./config.ts";
import type { GpuModel } from "./gpu_weights.ts";
import { padSequences, uploadBatch } from "./model_batch.ts";
import { forward } from "./transformer.ts";

/** Bytes one forward's largest activation ([rows, max(V, F, …)] f32) may take. */
const ACTIVATION_BYTES = 64 * 1024 * 1024;

export interface ScoreOptions {
  /** Longest context (tokens per window). Default: max_position_embeddings (capped by memory). */
  window?: number;
  /** k of the top-k entropy, 1..32. Default 16. */
  k?: number;
  /** Rows (tokens) per forward; default from a 64 MiB budget for the largest activation. */
  maxRows?: number;
  /** Called after each forward with the positions scored so far and the total. */
  onProgress?: (done: number, total: number) => void;
}

export interface TokenScores {
  /** [n] the scored ids. */
  ids: Uint32Array<ArrayBuffer>;
  /** [n] log π(ids[p] | ids[<p]); NaN at p = 0. */
  logprobs: Float32Array<ArrayBuffer>;
  /** [n] top-k entropy of the distribution predicting ids[p]; NaN at p = 0. */
  entropies: Float32Array<ArrayBuffer>;
}

export interface SequenceScores {
  /** Per sequence, [len] as in TokenScores. */
  logprobs: Float32Array<ArrayBuffer>[];
  entropies: Float32Array<ArrayBuffer>[];
  /** Forwards (= readbacks) made. */
  forwards: number;
  /** The window used. */
  window: number;
}

/** One window: tokens [start, start + length) of sequence `seq`. */
interface Window {
  seq: number;
  start: number;
  length: number;
}

/** The ids of one window, as a plain array (without copying the whole sequence). */
function windowIds(sequence: ArrayLike<number>, w: Window): number[] {
  const ids = new Array<number>(w.length);
  for (let i = 0; i < w.length; i++) ids[i] = sequence[w.start + i];
  return ids;
}

/**
 * Rows per forward and the window actually used (the asked window, or max_position_embeddings,
 * at most the rows of one forward), from the options, the model's shapes and the device.
 */
export function scoreLimits(
  ctx: GpuContext,
  c: ModelConfig,
  { window, maxRows }: Pick<ScoreOptions, "window" | "maxRows"> = {},
): { window: number; maxRows: number } {
  const widest = Math.max(c.vocabSize, c.intermediateSize, c.numHeads * c.headDim, c.hiddenSize);
  const budget = Math.min(ACTIVATION_BYTES, ctx.limits.maxStorageBufferBindingSize);
  const rows = maxRows ?? Math.max(1, Math.floor(budget / (4 * widest)));
  if (!Number.isInteger(rows) || rows < 1) {
    throw new Error(`score: maxRows must be a positive integer, got ${rows}`);
  }
  const w = window ?? c.maxPositionEmbeddings;
  if (!Number.isInteger(w) || w < 1) {
    throw new Error(`score: window must be a positive integer, got ${w}`);
  }
  return { window: Math.min(w, rows), maxRows: rows };
}

/**
 * Scores every position of several sequences (each ids < V), batching their windows (see the
 * top of this file). Sequences of length 0 or 1 get all-NaN scores.
 */
export async function scoreSequences(
  ctx: GpuContext,
  model: GpuModel,
  sequences: readonly ArrayLike<number>[],
  options: ScoreOptions = {},
): Promise<SequenceScores> {
  const { k = DEFAULT_TOP_K, onProgress } = options;
  if (!Number.isInteger(k) || k < 1 || k > MAX_TOP_K) {
    throw new Error(`score: k must be an integer in 1..${MAX_TOP_K}, got ${k}`);
  }
  const { window, maxRows } = scoreLimits(ctx, model.config, options);
  const vocab = model.config.vocabSize;
  const logprobs = sequences.map((s) => new Float32Array(s.length).fill(NaN));
  const entropies = sequences.map((s) => new Float32Array(s.length).fill(NaN));

  // Windows that predict something: [s, s + W) scores positions s + 1 .. min(s + W, n − 1).
  const windows: Window[] = [];
  let total = 0;
  sequences.forEach((s, seq) => {
    for (let start = 0; start + 1 < s.length; start += window) {
      const length = Math.min(window, s.length - start);
      windows.push({ seq, start, length });
      total += Math.min(start + length, s.length - 1) - start;
    }
  });
  // Longest first, so that each forward pads little (the sort is stable: a fixed order).
  windows.sort((a, b) => b.length - a.length);

  let forwards = 0;
  let done = 0;
  for (let first = 0; first < windows.length;) {
    const time = windows[first].length; // the longest of this group
    const count = Math.max(1, Math.min(windows.length - first, Math.floor(maxRows / time)));
    const group = windows.slice(first, first + count);
    first += count;

    const rows = group.map((w) => windowIds(sequences[w.seq], w));
    const padded = padSequences(rows, { padding: "right", time });
    // Row (b, i) predicts token start + i + 1 of its sequence (0 where there is none).
    const targets = new Uint32Array(group.length * time);
    group.forEach((w, b) => {
      const s = sequences[w.seq];
      for (let i = 0; i < w.length && w.start + i + 1 < s.length; i++) {
        targets[b * time + i] = s[w.start + i + 1];
      }
    });
    const batch = uploadBatch(ctx, padded);
    const targetsGpu = ctx.upload(targets, [targets.length], "u32");
    const { logits } = forward(ctx, model, batch, { train: false }); // [rows, V]
    const ce = crossEntropyForward(ctx, logits.reshape([group.length * time, vocab]), targetsGpu, {
      k,
    });
    logits.release();
    batch.release();
    targetsGpu.release();
    const [lp, h] = await ctx.readMany([ce.logprob, ce.entropy!]);
    for (const t of [ce.logprob, ce.lse, ce.entropy!]) t.release();
    forwards++;
    group.forEach((w, b) => {
      const n = sequences[w.seq].length;
      for (let i = 0; i < w.length && w.start + i + 1 < n; i++) {
        logprobs[w.seq][w.start + i + 1] = lp[b * time + i];
        entropies[w.seq][w.start + i + 1] = h[b * time + i];
        done++;
      }
    });
    onProgress?.(done, total);
  }
  return { logprobs, entropies, forwards, window };
}

/** Scores one sequence of ids (see the top of this file). */
export async function scoreTokens(
  ctx: GpuContext,
  model: GpuModel,
  ids: ArrayLike<number>,
  options: ScoreOptions = {},
): Promise<TokenScores> {
  const { logprobs, entropies } = await scoreSequences(ctx, model, [ids], options);
  return { ids: Uint32Array.from(ids), logprobs: logprobs[0], entropies: entropies[0] };
}
