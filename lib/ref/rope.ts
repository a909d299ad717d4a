// Reference rotary position embedding (Hugging Face "rotate half" layout), forward and
// backward, in f64. Results are Float64Array so finite-difference checks see no f32 rounding.
//
// The angle follows Hugging Face's f32 arithmetic exactly (inv_freq and the angle rounded
// to f32), since that is what the models were trained with; only cos/sin and the rotation
// are in f64. Shapes: x, out: [B, T, H, D] row-major; positions: [B, T].

type Numbers = ArrayLike<number>;

export interface RopeShape {
  batch: number;
  time: number;
  heads: number;
  headDim: number;
}

/** HF's angle for pair i at a position: f32(position) · f32(1 / f32(theta^f32(2i/D))), in f32. */
export function ropeAngle(position: number, i: number, headDim: number, theta: number): number {
  const invFreq = Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / headDim)));
  return Math.fround(Math.fround(position) * invFreq);
}

function rotate(
  x: Numbers,
  positions: Numbers,
  { batch, time, heads, headDim }: RopeShape,
  theta: number,
  direction: 1 | -1,
): Float64Array {
  const half = headDim / 2;
  const out = new Float64Array(batch * time * heads * headDim);
  for (let token = 0; token < batch * time; token++) {
    for (let h = 0; h < heads; h++) {
      const base = (token * heads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const angle = ropeAngle(positions[token], i, headDim, theta);
        const cos = Math.cos(angle);
        const sin = direction * Math.sin(angle);
        const a = x[base + i];
        const b = x[base + i + half];
        out[base + i] = a * cos - b * sin;
        out[base + i + half] = b * cos + a * sin;
      }
    }
  }
  return out;
}

/** out_i = x_i cos − x_{i+D/2} sin, out_{i+D/2} = x_{i+D/2} cos + x_i sin. */
export function rope(
  x: Numbers,
  positions: Numbers,
  shape: RopeShape,
  theta: number,
): Float64Array {
  return rotate(x, positions, shape, theta, 1);
}

/** dx = dOut rotated by −angle (a rotation's transpose is its inverse). */
export function ropeBackward(
  dOut: Numbers,
  positions: Numbers,
  shape: RopeShape,
  theta: number,
): Float64Array {
  return rotate(dOut, positions, shape, theta, -1);
}
