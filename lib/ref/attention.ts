// Reference causal attention (plain loops, f64 arithmetic), forward and analytic backward.
// The GPU kernels in kernels/attention.wgsl must agree with these.
//
// Shapes (row-major, the layout a linear projection produces):
//   q: [B, Tq, Hq, D]   k, v: [B, Tk, Hkv, D]   keyMask: [B, Tk] (1 = real token, 0 = padding)
//   out: [B, Tq, Hq, D]  lse: [B, Hq, Tq]
// Query head h reads kv head floor(h / (Hq / Hkv)) (grouped-query attention).
// Query i sits at position i + (Tk - Tq) and sees key j iff j <= i + (Tk - Tq) and
// keyMask[b, j] = 1. A row that sees no key outputs zeros, its lse is 0 and its gradient is 0.
//
//   s_ij = scale · q_i·k_j     p_ij = exp(s_ij − lse_i)     lse_i = log Σ_j exp(s_ij)
//   out_i = Σ_j p_ij v_j
// Backward, given dOut:
//   dV_j += Σ_i p_ij dOut_i           dP_ij = dOut_i·v_j
//   D_i = Σ_j p_ij dP_ij = dOut_i·out_i
//   dS_ij = p_ij (dP_ij − D_i)
//   dQ_i = scale Σ_j dS_ij k_j         dK_j += scale Σ_i dS_ij q_i

/** Sizes of one attention call. */
export interface AttentionDims {
  batch: number;
  queryLen: number;
  keyLen: number;
  queryHeads: number;
  kvHeads: number;
  headDim: number;
}

export interface AttentionOptions {
  /** Multiplies q·k; 1/sqrt(headDim) by default. */
  scale?: number;
}

/** The index helpers and the visibility rule shared by forward and backward. */
function layout(dims: AttentionDims) {
  const { queryLen: tq, keyLen: tk, queryHeads: hq, kvHeads: hkv, headDim: d } = dims;
  const group = hq / hkv;
  return {
    offset: tk - tq,
    /** Start of q/out/dOut row (b, i, h). */
    qRow: (b: number, i: number, h: number) => ((b * tq + i) * hq + h) * d,
    /** Start of k/v row (b, j, the kv head that query head h reads). */
    kvRow: (b: number, j: number, h: number) => ((b * tk + j) * hkv + Math.floor(h / group)) * d,
    /** Index of lse (b, h, i). */
    stat: (b: number, h: number, i: number) => (b * hq + h) * tq + i,
  };
}

function dot(
  a: ArrayLike<number>,
  aStart: number,
  b: ArrayLike<number>,
  bStart: number,
  n: number,
) {
  let s = 0;
  for (let t = 0; t < n; t++) s += a[aStart + t] * b[bStart + t];
  return s;
}

/**
 * The softmax probabilities of one query row (b, i, h) over all keys: zero where masked,
 * all zero when the row sees no key. Returns the row's lse too (0 for an empty row).
 */
function rowProbabilities(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  keyMask: ArrayLike<number>,
  dims: AttentionDims,
  scale: number,
  b: number,
  i: number,
  h: number,
): { p: Float64Array; lse: number } {
  const { keyLen: tk, headDim: d } = dims;
  const { offset, qRow, kvRow } = layout(dims);
  const s = new Float64Array(tk).fill(-Infinity);
  let max = -Infinity;
  for (let j = 0; j < tk && j <= i + offset; j++) {
    if (keyMask[b * tk + j] === 0) continue;
    s[j] = scale * dot(q, qRow(b, i, h), k, kvRow(b, j, h), d);
    max = Math.max(max, s[j]);
  }
  const p = new Float64Array(tk);
  if (max === -Infinity) return { p, lse: 0 };
  let sum = 0;
  for (let j = 0; j < tk; j++) sum += Math.exp(s[j] - max);
  const lse = max + Math.log(sum);
  for (let j = 0; j < tk; j++) p[j] = Math.exp(s[j] - lse);
  return { p, lse };
}

function checkDims(dims: AttentionDims): void {
  if (dims.queryHeads % dims.kvHeads !== 0) {
    throw new Error(`attention: ${dims.queryHeads} query heads not a multiple of ${dims.kvHeads}`);
  }
  if (dims.keyLen < dims.queryLen) {
    throw new Error(`attention: keyLen ${dims.keyLen} < queryLen ${dims.queryLen}`);
  }
}

/** Forward in f64 (for finite differences): out [B, Tq, Hq, D], lse [B, Hq, Tq]. */
export function attentionForwardF64(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  keyMask: ArrayLike<number>,
  dims: AttentionDims,
  { scale = 1 / Math.sqrt(dims.headDim) }: AttentionOptions = {},
): { out: Float64Array; lse: Float64Array } {
  checkDims(dims);
  const { batch, queryLen: tq, keyLen: tk, queryHeads: hq, headDim: d } = dims;
  const { qRow, kvRow, stat } = layout(dims);
  const out = new Float64Array(batch * tq * hq * d);
  const lse = new Float64Array(batch * hq * tq);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < tq; i++) {
      for (let h = 0; h < hq; h++) {
        const row = rowProbabilities(q, k, keyMask, dims, scale, b, i, h);
        lse[stat(b, h, i)] = row.lse;
        const o = qRow(b, i, h);
        for (let j = 0; j < tk; j++) {
          if (row.p[j] === 0) continue;
          const vj = kvRow(b, j, h);
          for (let t = 0; t < d; t++) out[o + t] += row.p[j] * v[vj + t];
        }
      }
    }
  }
  return { out, lse };
}

/** Forward: out [B, Tq, Hq, D] and lse [B, Hq, Tq], rounded to f32. */
export function attentionForward(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  keyMask: ArrayLike<number>,
  dims: AttentionDims,
  options: AttentionOptions = {},
): { out: Float32Array; lse: Float32Array } {
  const { out, lse } = attentionForwardF64(q, k, v, keyMask, dims, options);
  return { out: Float32Array.from(out), lse: Float32Array.from(lse) };
}

/**
 * Analytic backward (recomputes the probabilities): dOut [B, Tq, Hq, D] →
 * dQ [B, Tq, Hq, D], dK and dV [B, Tk, Hkv, D], rounded to f32.
 */
export function attentionBackward(
  dOut: ArrayLike<number>,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  keyMask: ArrayLike<number>,
  dims: AttentionDims,
  { scale = 1 / Math.sqrt(dims.headDim) }: AttentionOptions = {},
): { dQ: Float32Array; dK: Float32Array; dV: Float32Array } {
  checkDims(dims);
  const { batch, queryLen: tq, keyLen: tk, queryHeads: hq, kvHeads: hkv, headDim: d } = dims;
  const { qRow, kvRow } = layout(dims);
  const dQ = new Float64Array(batch * tq * hq * d);
  const dK = new Float64Array(batch * tk * hkv * d);
  const dV = new Float64Array(batch * tk * hkv * d);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < tq; i++) {
      for (let h = 0; h < hq; h++) {
        const { p } = rowProbabilities(q, k, keyMask, dims, scale, b, i, h);
        const qi = qRow(b, i, h);
        const dP = new Float64Array(tk);
        let rowDot = 0; // D_i = Σ_j p_ij dP_ij
        for (let j = 0; j < tk; j++) {
          if (p[j] === 0) continue;
          dP[j] = dot(dOut, qi, v, kvRow(b, j, h), d);
          rowDot += p[j] * dP[j];
        }
        for (let j = 0; j < tk; j++) {
          if (p[j] === 0) continue;
          const kj = kvRow(b, j, h);
          const dS = p[j] * (dP[j] - rowDot);
          for (let t = 0; t < d; t++) {
            dV[kj + t] += p[j] * dOut[qi + t];
            dQ[qi + t] += scale * dS * k[kj + t];
            dK[kj + t] += scale * dS * q[qi + t];
          }
        }
      }
    }
  }
  return { dQ: Float32Array.from(dQ), dK: Float32Array.from(dK), dV: Float32Array.from(dV) };
}
