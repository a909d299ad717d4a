// Reference cross-entropy: target log-probabilities, log-sum-exp, the top-k token entropy
// of the RMT spec, and the backward (f64 math; results in f64).
// logits: [rows, V] row-major; targets, dLogprob: [rows]. z = logits / T.

export interface CrossEntropyReference {
  logprob: Float64Array;
  lse: Float64Array;
  entropy: Float64Array;
}

/** log Σ_j exp(z_j) of one row, stable (max subtracted). */
function logSumExp(z: readonly number[]): number {
  let max = -Infinity;
  for (const v of z) max = Math.max(max, v);
  let total = 0;
  for (const v of z) total += Math.exp(v - max);
  return max + Math.log(total);
}

function rowOf(x: ArrayLike<number>, r: number, n: number, temperature: number): number[] {
  const row: number[] = [];
  for (let j = 0; j < n; j++) row.push(x[r * n + j] / temperature);
  return row;
}

/** Targets ≥ V are clamped to V − 1, as on the GPU. */
function clampTarget(t: number, vocab: number): number {
  return Math.min(t, vocab - 1);
}

/**
 * The spec's token entropy of one row: q = softmax of the k largest z (ties: smaller index
 * first; all of them when k > V), H = −Σ q log q in nats.
 */
export function topKEntropy(z: readonly number[], k: number): number {
  const order = z.map((_, j) => j).sort((a, b) => z[b] - z[a] || a - b);
  const top = order.slice(0, Math.min(k, z.length)).map((j) => z[j]);
  const lse = logSumExp(top);
  let entropy = 0;
  for (const v of top) {
    const q = Math.exp(v - lse);
    if (q > 0) entropy -= q * (v - lse);
  }
  return entropy;
}

/** Per row: logprob = z[t] − lse, lse = logsumexp(z), entropy = topKEntropy(z, k). */
export function crossEntropy(
  logits: ArrayLike<number>,
  targets: ArrayLike<number>,
  rows: number,
  vocab: number,
  { temperature = 1, k = 16 }: { temperature?: number; k?: number } = {},
): CrossEntropyReference {
  const logprob = new Float64Array(rows);
  const lse = new Float64Array(rows);
  const entropy = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const z = rowOf(logits, r, vocab, temperature);
    lse[r] = logSumExp(z);
    logprob[r] = z[clampTarget(targets[r], vocab)] - lse[r];
    entropy[r] = topKEntropy(z, k);
  }
  return { logprob, lse, entropy };
}

/**
 * dLogits[r, j] = g_r · (onehot(t_r)_j − softmax(z_r)_j) / T: the gradient of
 * Σ_r g_r · logprob_r w.r.t. the logits.
 */
export function crossEntropyBackward(
  logits: ArrayLike<number>,
  targets: ArrayLike<number>,
  dLogprob: ArrayLike<number>,
  rows: number,
  vocab: number,
  temperature = 1,
): Float64Array {
  const dLogits = new Float64Array(rows * vocab);
  for (let r = 0; r < rows; r++) {
    const z = rowOf(logits, r, vocab, temperature);
    const lse = logSumExp(z);
    const t = clampTarget(targets[r], vocab);
    for (let j = 0; j < vocab; j++) {
      const p = Math.exp(z[j] - lse);
      dLogits[r * vocab + j] = dLogprob[r] * ((j === t ? 1 : 0) - p) / temperature;
    }
  }
  return dLogits;
}
