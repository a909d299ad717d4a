// Reference column-block copies (see lib/ops/columns.ts). Row-major: narrow [N, c],
// wide [N, C], block = columns [start, start + c) of wide.

/** wide with columns [start, start + c) replaced by narrow: [N, C] (a new array). */
export function writeColumns(
  narrow: ArrayLike<number>,
  wideIn: ArrayLike<number>,
  rows: number,
  start: number,
): Float64Array {
  const wide = Float64Array.from(wideIn);
  const c = rows === 0 ? 0 : narrow.length / rows;
  const C = rows === 0 ? 0 : wide.length / rows;
  for (let n = 0; n < rows; n++) {
    for (let j = 0; j < c; j++) wide[n * C + start + j] = narrow[n * c + j];
  }
  return wide;
}

/** Columns [start, start + columns) of wide: [N, columns]. */
export function readColumns(
  wide: ArrayLike<number>,
  rows: number,
  start: number,
  columns: number,
): Float64Array {
  const C = rows === 0 ? 0 : wide.length / rows;
  const narrow = new Float64Array(rows * columns);
  for (let n = 0; n < rows; n++) {
    for (let j = 0; j < columns; j++) narrow[n * columns + j] = wide[n * C + start + j];
  }
  return narrow;
}
