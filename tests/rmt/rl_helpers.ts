// Reference computations shared by the RL step tests (policy_loss_test.ts, rl_step_test.ts):
// log-probabilities of chosen tokens at a temperature, and the gradient of a weighted
// cross-entropy at a temperature, both from the f64 reference transformer (lib/ref).
//
// The reference loss has no temperature, and takes only weights ≥ 0. Both are worked around
// exactly: logits / T = normed·(Wlm / T)ᵀ, so the model with lm_head scaled by 1/T computes the
// tempered logits (∂L/∂Wlm = ∂L/∂(Wlm/T) / T; needs untied embeddings), and a loss linear in
// its weights is the positive part minus the negative part.

import type { ModelConfig } from "../../lib/model/config.ts";
import { lmHeadName } from "../../lib/model/gpu_weights.ts";
import { referenceBackward, referenceForward, type Weights } from "../../lib/ref/transformer.ts";

/** One scored row: sequence b, position t predicts `target` with loss weight w. */
export interface ScoredRow {
  b: number;
  t: number;
  target: number;
  weight: number;
}

/** Weights with lm_head divided by T (the model whose logits are the tempered ones). */
export function temperedWeights(
  config: ModelConfig,
  weights: Weights,
  temperature: number,
): Map<string, ArrayLike<number>> {
  if (temperature !== 1 && config.tieWordEmbeddings) {
    throw new Error("temperedWeights: needs untied embeddings");
  }
  const out = new Map<string, ArrayLike<number>>(weights);
  if (temperature !== 1) {
    const head = lmHeadName(config);
    out.set(head, Float64Array.from(weights.get(head)!, (v) => v / temperature));
  }
  return out;
}

/** log softmax(logits[b, t] / T)[target] for each row, in f64. */
export function referenceLogprobs(
  config: ModelConfig,
  weights: Weights,
  sequences: readonly (readonly number[])[],
  rows: readonly { b: number; t: number; target: number }[],
  temperature: number,
): Float64Array {
  const V = config.vocabSize;
  const { logits, time } = referenceForward(
    config,
    temperedWeights(config, weights, temperature),
    sequences,
  );
  return Float64Array.from(rows, ({ b, t, target }) => {
    const at = (b * time + t) * V;
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[at + v]);
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[at + v] - max);
    return logits[at + target] - max - Math.log(sum);
  });
}

/** Σ_rows w·(−log softmax(logits/T)[target]) and its gradient, by HF name (f64). */
export function referenceWeightedCe(
  config: ModelConfig,
  weights: Weights,
  sequences: readonly (readonly number[])[],
  rows: readonly ScoredRow[],
  temperature: number,
): { loss: number; grads: Map<string, Float64Array> } {
  const tempered = temperedWeights(config, weights, temperature);
  const grads = new Map<string, Float64Array>();
  let loss = 0;
  for (const sign of [1, -1]) {
    const part = rows.filter((r) => sign * r.weight > 0);
    if (part.length === 0) continue;
    const targets = sequences.map((s) => new Array<number>(s.length).fill(0));
    const lossWeights = sequences.map((s) => new Array<number>(s.length).fill(0));
    for (const { b, t, target, weight } of part) {
      targets[b][t] = target;
      lossWeights[b][t] += sign * weight;
    }
    const result = referenceBackward(config, tempered, sequences, {
      targets,
      lossWeights,
      reduction: "sum",
    });
    loss += sign * result.loss;
    for (const [name, g] of result.grads) {
      const into = grads.get(name) ?? new Float64Array(g.length);
      for (let i = 0; i < g.length; i++) into[i] += sign * g[i];
      grads.set(name, into);
    }
  }
  if (temperature !== 1) {
    const head = grads.get(lmHeadName(config));
    if (head) { for (let i = 0; i < head.length; i++) head[i] /= temperature; }
  }
  return { loss, grads };
}

/** a + b by name (missing names count as 0). */
export function addGrads(
  a: ReadonlyMap<string, Float64Array>,
  b: ReadonlyMap<string, Float64Array>,
): Map<string, Float64Array> {
  const out = new Map<string, Float64Array>();
  for (const name of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(name);
    const y = b.get(name);
    const n = (x ?? y)!.length;
    out.set(name, Float64Array.from({ length: n }, (_, i) => (x?.[i] ?? 0) + (y?.[i] ?? 0)));
  }
  return out;
}
