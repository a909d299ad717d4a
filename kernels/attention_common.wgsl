// What the attention kernels share (kernels/attention.wgsl, the buffer kernels, and
// kernels/attention_textures.wgsl, the same kernels reading q, k, v and d_out as texels):
// sizes, the uniform, indexing and the 4-row helpers. lib/ops/attention.ts puts this file in
// front of either one; the math is written out at the top of kernels/attention.wgsl.

override HEAD_DIM: u32 = 64u;
/** Query rows per workgroup (forward, dq; a multiple of 4) or staged per step (dkv; at most
 * MAX_BLOCK). */
override BLOCK_Q: u32 = 32u;
/** Keys staged per step (forward, dq; at most MAX_BLOCK) or per workgroup (dkv; a multiple of
 * 4). */
override BLOCK_K: u32 = 32u;
/** Threads per workgroup of attention_row_dot. */
override ROW_DOT_WORKGROUP: u32 = 64u;

// Derived sizes. (naga needs an override declared before the overrides that use it.)
/** vec4 chunks per head row: ceil(D / 4). */
override CHUNKS: u32 = (HEAD_DIM + 3u) / 4u;
/** Threads of forward and dq workgroups: one per 4 query rows. */
override QUERY_THREADS: u32 = BLOCK_Q / 4u;
/** Threads of dkv workgroups: one per 4 keys. */
override KEY_THREADS: u32 = BLOCK_K / 4u;

// Size of the private score arrays (a constant, not an override): BLOCK_K in forward and
// dq, BLOCK_Q in dkv must not exceed it.
const MAX_BLOCK: u32 = 32u;

// Score of a masked (or out-of-range) entry. A finite stand-in for −∞: WGSL does not promise
// infinities. Real scores are far above it, and exp(MASKED − m) underflows to 0 for any real m.
const MASKED: f32 = -3.0e38;

struct Params {
  batch: u32,
  q_len: u32,
  key_len: u32,
  q_heads: u32,
  kv_heads: u32,
  scale: f32,
  // The blocks this dispatch runs: key blocks [block_start, block_end) in the forward and dq,
  // (head of the group, query block) pairs in dkv. All of them in one dispatch, except for the
  // texture kernels on a software adapter, where a long shape runs as several dispatches that
  // continue each other's sums (lib/ops/attention.ts: llvmpipe's loop limit).
  block_start: u32,
  block_end: u32,
}

@group(0) @binding(0) var<uniform> params: Params;

// ---- indexing and small helpers -----------------------------------------------------------

/** Start of row (b, t, h) of a [B, Tq, Hq, D] tensor. */
fn q_row(b: u32, t: u32, h: u32) -> u32 {
  return ((b * params.q_len + t) * params.q_heads + h) * HEAD_DIM;
}

/** Start of row (b, t, kvh) of a [B, Tk, Hkv, D] tensor. */
fn kv_row(b: u32, t: u32, kvh: u32) -> u32 {
  return ((b * params.key_len + t) * params.kv_heads + kvh) * HEAD_DIM;
}

/** Index of (b, h, t) in a [B, Hq, Tq] row statistic. */
fn stat_index(b: u32, h: u32, t: u32) -> u32 {
  return (b * params.q_heads + h) * params.q_len + t;
}

/** Query i sees keys j <= i + (Tk − Tq): the queries are the last Tq positions. */
fn causal_offset() -> u32 {
  return params.key_len - params.q_len;
}

/** Whether head dim 4c + t exists (the last chunk may be padding). */
fn in_head(c: u32, t: u32) -> bool {
  return 4u * c + t < HEAD_DIM;
}

/** The matrix whose column u is x · w[u]: adds x·w_u to each of 4 rows. */
fn outer(x: vec4<f32>, w: vec4<f32>) -> mat4x4<f32> {
  return mat4x4(x * w.x, x * w.y, x * w.z, x * w.w);
}

/** m with column u multiplied by w[u]. */
fn scale_columns(m: mat4x4<f32>, w: vec4<f32>) -> mat4x4<f32> {
  return mat4x4(m[0] * w.x, m[1] * w.y, m[2] * w.z, m[3] * w.w);
}

/** The 4 rows a thread owns: indices base + 4·tid + u clamped to count − 1 (so that loads
 * stay in range) and whether each is real (< count). */
struct Quad {
  index: vec4<u32>,
  valid: vec4<bool>,
}

fn quad(tid: u32, base: u32, count: u32) -> Quad {
  let r = vec4(4u * tid) + vec4(0u, 1u, 2u, 3u);
  return Quad(vec4(base) + min(r, vec4(count - 1u)), r < vec4(count));
}

/** Per-block scores of a thread's 4 rows: entry j is block key j (or query row j in dkv). */
alias Scores = array<vec4<f32>, MAX_BLOCK>;

/**
 * The forward's online-softmax step over one key block. s[j] holds the block's scores of the 4
 * rows, MASKED where a key is not seen; they become p_j = exp(s_j − m_new) (0 where masked), the
 * running max m and sum l are updated, and the factor exp(m_old − m_new) by which the
 * accumulators are rescaled is returned. While a row has seen no key, m_new = MASKED: its
 * rescale is 1 and its p are 0.
 */
fn softmax_block(
  s: ptr<function, Scores>,
  m: ptr<function, vec4<f32>>,
  l: ptr<function, vec4<f32>>,
) -> vec4<f32> {
  var m_new = *m;
  for (var j = 0u; j < BLOCK_K; j++) {
    m_new = max(m_new, (*s)[j]);
  }
  let rescale = exp(*m - m_new);
  var block_sum = vec4(0.0);
  for (var j = 0u; j < BLOCK_K; j++) {
    (*s)[j] = select(vec4(0.0), exp((*s)[j] - m_new), (*s)[j] > vec4(MASKED));
    block_sum += (*s)[j];
  }
  *l = *l * rescale + block_sum;
  *m = m_new;
  return rescale;
}

