// Reference time-axis row copies (lib/ops/kv_cache.ts): plain loops. Arrays are row-major
// [B, S, W] (W = the product of the trailing dims). Pure copies: no backward.

type Numbers = ArrayLike<number>;

/** dst[:, start : start + T] = src: src [B, T, W], dst [B, S, W] (a copy is returned). */
export function writeTimeSlice(
  src: Numbers,
  dst: Numbers,
  batch: number,
  srcRows: number,
  dstRows: number,
  width: number,
  start: number,
): Float64Array {
  const out = Float64Array.from(dst);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < srcRows; t++) {
      for (let w = 0; w < width; w++) {
        out[(b * dstRows + start + t) * width + w] = src[(b * srcRows + t) * width + w];
      }
    }
  }
  return out;
}

/** src[:, start : start + length]: src [B, S, W] → [B, length, W]. */
export function readTimeSlice(
  src: Numbers,
  batch: number,
  srcRows: number,
  width: number,
  start: number,
  length: number,
): Float64Array {
  const out = new Float64Array(batch * length * width);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < length; t++) {
      for (let w = 0; w < width; w++) {
        out[(b * length + t) * width + w] = src[(b * srcRows + start + t) * width + w];
      }
    }
  }
  return out;
}
