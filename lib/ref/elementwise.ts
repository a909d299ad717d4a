// Reference elementwise ops (plain loops, f64 arithmetic, f32 results).

export function add(a: Float32Array, b: Float32Array): Float32Array {
  return a.map((x, i) => x + b[i]);
}

export function addScaled(a: Float32Array, b: Float32Array, alpha: number): Float32Array {
  return a.map((x, i) => x + alpha * b[i]);
}

export function scale(a: Float32Array, alpha: number): Float32Array {
  return a.map((x) => alpha * x);
}
