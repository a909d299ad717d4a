// Reference embedding gather and its backward (f64 math; results in f64).
// ids: [N], table: [V, D], out / dOut: [N, D], all row-major.

/** out[n, d] = table[ids[n], d] (ids must be < V: the reference does not clamp). */
export function embedding(
  ids: ArrayLike<number>,
  table: ArrayLike<number>,
  dim: number,
): Float64Array {
  const out = new Float64Array(ids.length * dim);
  for (let n = 0; n < ids.length; n++) {
    for (let d = 0; d < dim; d++) out[n * dim + d] = table[ids[n] * dim + d];
  }
  return out;
}

/** dTable = dTableIn + Σ_n onehot(ids[n]) ⊗ dOut[n]: the scatter-add of dOut rows. */
export function embeddingBackward(
  dOut: ArrayLike<number>,
  ids: ArrayLike<number>,
  dTableIn: ArrayLike<number>,
  dim: number,
): Float64Array {
  const dTable = Float64Array.from(dTableIn);
  for (let n = 0; n < ids.length; n++) {
    for (let d = 0; d < dim; d++) dTable[ids[n] * dim + d] += dOut[n * dim + d];
  }
  return dTable;
}
