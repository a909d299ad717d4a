// Reference top-k token entropy of the RMT spec, per row (f64 math): the oracle of
// kernels/topk_entropy.wgsl. The definition of one row is topKEntropy in ./cross_entropy.ts
// (q = softmax of the k largest z = logits / T, ties: the smaller index first; all of them
// when k > V; H = −Σ q log q nats).

import { topKEntropy } from "./cross_entropy.ts";

export { topKEntropy };

/** logits: [rows, V] row-major → entropy: [rows]. */
export function topKEntropyRows(
  logits: ArrayLike<number>,
  rows: number,
  vocab: number,
  { temperature = 1, k = 16 }: { temperature?: number; k?: number } = {},
): Float64Array {
  const entropy = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const z: number[] = [];
    for (let j = 0; j < vocab; j++) z.push(logits[r * vocab + j] / temperature);
    entropy[r] = topKEntropy(z, k);
  }
  return entropy;
}
