// Reference matrix multiplication and its backward (plain loops, f64 arithmetic).
//
//   c = op(a) · op(b);  op(a): [M, K] (a stored [M, K], or [K, M] with transposeA)
//                       op(b): [K, N] (b stored [K, N], or [N, K] with transposeB)
// Batched: a and/or b carry a leading batch dim; a 2-D operand is shared by the batch.
// Shapes are passed next to the data (row-major, like the GPU tensors).

export interface MatmulRefOptions {
  transposeA?: boolean;
  transposeB?: boolean;
}

/** An operand: its data and shape ([rows, cols] or [batch, rows, cols]). */
export interface Operand {
  data: ArrayLike<number>;
  shape: readonly number[];
}

interface Dims {
  batch: number;
  M: number;
  N: number;
  K: number;
  aBatched: boolean;
  bBatched: boolean;
}

function dims(a: Operand, b: Operand, { transposeA = false, transposeB = false }): Dims {
  const rc = (s: readonly number[]) => s.length === 3 ? [s[1], s[2]] : [s[0], s[1]];
  const [ar, ac] = rc(a.shape);
  const [br, bc] = rc(b.shape);
  const [M, K] = transposeA ? [ac, ar] : [ar, ac];
  const [Kb, N] = transposeB ? [bc, br] : [br, bc];
  if (K !== Kb) throw new Error(`ref matmul: inner dimensions ${K} and ${Kb} differ`);
  const aBatched = a.shape.length === 3;
  const bBatched = b.shape.length === 3;
  const batch = aBatched ? a.shape[0] : bBatched ? b.shape[0] : 1;
  return { batch, M, N, K, aBatched, bBatched };
}

/** The shape of op(a) · op(b). */
export function matmulShape(a: Operand, b: Operand, opts: MatmulRefOptions = {}): number[] {
  const { batch, M, N, aBatched, bBatched } = dims(a, b, opts);
  return aBatched || bBatched ? [batch, M, N] : [M, N];
}

/** op(a) · op(b) in f64 (for finite differences). */
export function matmulF64(a: Operand, b: Operand, opts: MatmulRefOptions = {}): Float64Array {
  const { transposeA = false, transposeB = false } = opts;
  const { batch, M, N, K, aBatched, bBatched } = dims(a, b, opts);
  const c = new Float64Array(batch * M * N);
  for (let z = 0; z < batch; z++) {
    const aOff = aBatched ? z * M * K : 0;
    const bOff = bBatched ? z * K * N : 0;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let sum = 0;
        for (let k = 0; k < K; k++) {
          const x = a.data[aOff + (transposeA ? k * M + m : m * K + k)];
          const y = b.data[bOff + (transposeB ? n * K + k : k * N + n)];
          sum += x * y;
        }
        c[z * M * N + m * N + n] = sum;
      }
    }
  }
  return c;
}

/** op(a) · op(b) as f32. */
export function matmul(a: Operand, b: Operand, opts: MatmulRefOptions = {}): Float32Array {
  return Float32Array.from(matmulF64(a, b, opts));
}

/**
 * Gradients of L with c = op(a) · op(b), given dC = ∂L/∂c, written directly from the sums:
 *   ∂L/∂op(a)[m, k] = Σ_n dC[m, n] · op(b)[k, n]
 *   ∂L/∂op(b)[k, n] = Σ_m op(a)[m, k] · dC[m, n]
 * stored back in a's and b's layouts; a shared (2-D) operand sums over the batch.
 */
export function matmulBackwardF64(
  a: Operand,
  b: Operand,
  dC: ArrayLike<number>,
  opts: MatmulRefOptions = {},
): { dA: Float64Array; dB: Float64Array } {
  const { transposeA = false, transposeB = false } = opts;
  const { batch, M, N, K, aBatched, bBatched } = dims(a, b, opts);
  const dA = new Float64Array(a.data.length);
  const dB = new Float64Array(b.data.length);
  for (let z = 0; z < batch; z++) {
    const aOff = aBatched ? z * M * K : 0;
    const bOff = bBatched ? z * K * N : 0;
    const cOff = z * M * N;
    for (let m = 0; m < M; m++) {
      for (let k = 0; k < K; k++) {
        const ai = aOff + (transposeA ? k * M + m : m * K + k);
        for (let n = 0; n < N; n++) {
          const bi = bOff + (transposeB ? n * K + k : k * N + n);
          const g = dC[cOff + m * N + n];
          dA[ai] += g * b.data[bi];
          dB[bi] += g * a.data[ai];
        }
      }
    }
  }
  return { dA, dB };
}

/** matmulBackwardF64 as f32. */
export function matmulBackward(
  a: Operand,
  b: Operand,
  dC: ArrayLike<number>,
  opts: MatmulRefOptions = {},
): { dA: Float32Array; dB: Float32Array } {
  const { dA, dB } = matmulBackwardF64(a, b, dC, opts);
  return { dA: Float32Array.from(dA), dB: Float32Array.from(dB) };
}
