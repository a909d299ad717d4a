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

// Row chunks: tableRows / dTableRows [R, D] hold rows [rowStart, rowStart + R) of the [V, D]
// table (see lib/ops/embedding.ts).

/** outIn with row n replaced by table[ids[n]] for every id in the chunk: [N, D] (new array). */
export function embeddingRows(
  ids: ArrayLike<number>,
  tableRows: ArrayLike<number>,
  rowStart: number,
  dim: number,
  outIn: ArrayLike<number>,
): Float64Array {
  const out = Float64Array.from(outIn);
  const rows = dim === 0 ? 0 : tableRows.length / dim;
  for (let n = 0; n < ids.length; n++) {
    const row = ids[n] - rowStart;
    if (row < 0 || row >= rows) continue;
    for (let d = 0; d < dim; d++) out[n * dim + d] = tableRows[row * dim + d];
  }
  return out;
}

/** dTableRowsIn + the scatter-add of the dOut rows whose id lies in the chunk: [R, D]. */
export function embeddingBackwardRows(
  dOut: ArrayLike<number>,
  ids: ArrayLike<number>,
  dTableRowsIn: ArrayLike<number>,
  rowStart: number,
  dim: number,
): Float64Array {
  const dTable = Float64Array.from(dTableRowsIn);
  const rows = dim === 0 ? 0 : dTable.length / dim;
  for (let n = 0; n < ids.length; n++) {
    const row = ids[n] - rowStart;
    if (row < 0 || row >= rows) continue;
    for (let d = 0; d < dim; d++) dTable[row * dim + d] += dOut[n * dim + d];
  }
  return dTable;
}
