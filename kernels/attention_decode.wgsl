// Decode attention: one new query per sequence against a KV cache read in place.
//
// Shapes (row-major):
//   q, out: [B, 1, Hq, D]
//   k_cache, v_cache: [B, max_len, Hkv, D]   (the cache buffers; rows [0, length) are read)
//   key_mask: [B, mask_len] u32, mask_len >= length (1 = real token, 0 = padding)
// D is a multiple of 4: every tensor is bound as vec4 chunks (head dims 4c..4c+3).
// Query head h reads kv head h / (Hq / Hkv). The query sits at position length − 1, so it sees
// every key j < length with key_mask[b, j] = 1: the same result as kernels/attention.wgsl
// with Tq = 1 and Tk = length, without copying the cache's filled prefix out first.
//
// Math (s = scores over the visible keys j):
//   s_j = scale · q·k_j    out = Σ_j exp(s_j − lse) v_j,   lse = log Σ_j exp(s_j)
// A query that sees no key outputs zeros (never NaN). Rows at or past length are never read,
// and masked rows never reach a sum: they may hold anything, even NaN.
//
// Layout, a workgroup per (head slice, kv head, sequence):
// - The workgroup handles HEADS query heads of one kv head's group (the whole group unless it
//   is bigger than MAX_HEADS), so each cached key and value row is loaded once for all of them.
// - The keys are split across the THREADS threads in contiguous ranges of whole 4-key blocks.
//   Each thread keeps an online-softmax partial per head over its keys: running max m, running
//   sum l = Σ exp(s_j − m), accumulator acc = Σ exp(s_j − m) v_j. A 4-key block is one step:
//   the 4 keys' chunk c is a mat4x4 (one key per column), so q_c * K_c gives 4 partial scores
//   and V_c * p adds Σ_u p_u v_u to the accumulator; one rescale per block, not per key.
// - Merge, in a fixed order: the partials go to workgroup memory (the accumulators live there
//   all along); output chunk (g, c) is then computed by one thread as
//     M = max_t m_t,  L = Σ_t l_t exp(m_t − M),  out = Σ_t acc_t exp(m_t − M) / L
//   summing t = 0, 1, …, THREADS − 1 in order. No atomics: reruns are bit-identical.
// Chosen by measurement on lavapipe (which runs a workgroup's invocations as SIMD lanes and
// for which memory accesses cost far more than arithmetic): 8 threads (4 were as fast, 16 and
// more slower), contiguous key ranges, 4-key blocks, accumulators in workgroup memory, and the
// whole head group in one workgroup (lib/ops/attention_decode.ts has the numbers). On a GPU the
// same kernel runs with more threads per workgroup.
//
// attention_decode_rows (the "rows" variant; by default on the software kernels for many
// short rows): a thread per (head slice, kv head, sequence) runs the same block steps over
// all of its keys, its partials in private memory: no workgroup memory, barrier or merge.
// Its sums run over the keys in one order, the split's over THREADS ranges then merged: the
// two differ in the last bits, each is deterministic.

/** Head width D (a multiple of 4). */
override HEAD_DIM: u32 = 64u;
/** Query heads per workgroup: a divisor of Hq / Hkv, at most MAX_HEADS. */
override HEADS: u32 = 1u;
/** Threads per workgroup: each owns a contiguous range of keys. */
override THREADS: u32 = 8u;

// Derived sizes. (naga needs an override declared before the overrides that use it.)
/** vec4 chunks per head row. */
override CHUNKS: u32 = HEAD_DIM / 4u;
/** One (m, l) pair per thread and head. */
override PARTIALS: u32 = THREADS * HEADS;
/** One accumulator row of CHUNKS vec4 per thread and head. */
override PARTIAL_CHUNKS: u32 = THREADS * HEADS * CHUNKS;

/** Size of the private per-head arrays (a constant: private arrays cannot use overrides). */
const MAX_HEADS: u32 = 8u;

// Score of a masked (or out-of-range) key. A finite stand-in for −∞ (WGSL does not promise
// infinities): real scores are far above it, and exp(MASKED − m) underflows to 0 for any real m.
const MASKED: f32 = -3.0e38;

struct Params {
  batch: u32,
  /** Rows of the cache (its dim 1): the row stride of k_cache and v_cache. */
  max_len: u32,
  /** Columns of key_mask: its row stride. */
  mask_len: u32,
  /** Keys attended: 0..length − 1 (at least 1). */
  length: u32,
  q_heads: u32,
  kv_heads: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k_cache: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v_cache: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> key_mask: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;

/** Each thread's accumulators [THREADS][HEADS][CHUNKS], and its m and l [THREADS][HEADS]. */
var<workgroup> part_acc: array<vec4<f32>, PARTIAL_CHUNKS>;
var<workgroup> part_m: array<f32, PARTIALS>;
var<workgroup> part_l: array<f32, PARTIALS>;

/** Chunk c of head h of sequence b in q or out ([B, 1, Hq, D]). */
fn q_index(b: u32, h: u32, c: u32) -> u32 {
  return (b * params.q_heads + h) * CHUNKS + c;
}

/** Chunk 0 of cached row (b, j, kvh) ([B, max_len, Hkv, D]). */
fn kv_index(b: u32, j: u32, kvh: u32) -> u32 {
  return ((b * params.max_len + j) * params.kv_heads + kvh) * CHUNKS;
}

/** Index of thread t's accumulator chunk c for head g in part_acc. */
fn acc_index(t: u32, g: u32, c: u32) -> u32 {
  return (t * HEADS + g) * CHUNKS + c;
}

/** Keys j0 .. j0+3 of a 4-key block: their cache rows and whether each is attended. */
struct KeyBlock {
  /** kv_index of each key; past the end a copy of the last key's (loads stay in range). */
  rows: vec4<u32>,
  /** Key j0 + u is below length and a real token. Masked keys never reach a sum. */
  ok: vec4<bool>,
}

fn key_block(b: u32, kvh: u32, block: u32) -> KeyBlock {
  let j0 = 4u * block;
  var kb: KeyBlock;
  for (var u = 0u; u < 4u; u++) {
    let j = min(j0 + u, params.length - 1u);
    kb.rows[u] = kv_index(b, j, kvh);
    kb.ok[u] = j0 + u < params.length && key_mask[b * params.mask_len + j] != 0u;
  }
  return kb;
}

/** s[g]: query head h0 + g's scores (before the scale) of the block's 4 keys. */
fn block_scores(kb: KeyBlock, b: u32, h0: u32) -> array<vec4<f32>, MAX_HEADS> {
  // (Zeroed explicitly: naga zero-initialises a `var` once, not on every loop iteration.)
  var s: array<vec4<f32>, MAX_HEADS>;
  for (var g = 0u; g < HEADS; g++) {
    s[g] = vec4(0.0);
  }
  for (var c = 0u; c < CHUNKS; c++) {
    let keys = mat4x4(
      k_cache[kb.rows.x + c],
      k_cache[kb.rows.y + c],
      k_cache[kb.rows.z + c],
      k_cache[kb.rows.w + c],
    );
    for (var g = 0u; g < HEADS; g++) {
      s[g] += q[q_index(b, h0 + g, c)] * keys; // the 4 keys' dot products with chunk c
    }
  }
  return s;
}

/** One online-softmax step per head: each partial's rescale and the block's 4 weights. */
struct SoftmaxStep {
  rescale: array<f32, MAX_HEADS>,
  p: array<vec4<f32>, MAX_HEADS>,
}

/**
 * Folds a block's scores into the running max m and sum l of each head. While a head has seen
 * no key, m_new = MASKED: its rescale is 1 and its p are 0.
 */
fn softmax_step(
  s: array<vec4<f32>, MAX_HEADS>,
  ok: vec4<bool>,
  m: ptr<function, array<f32, MAX_HEADS>>,
  l: ptr<function, array<f32, MAX_HEADS>>,
) -> SoftmaxStep {
  var step: SoftmaxStep;
  for (var g = 0u; g < HEADS; g++) {
    let scores = select(vec4(MASKED), s[g] * params.scale, ok);
    let m_new = max((*m)[g], max(max(scores.x, scores.y), max(scores.z, scores.w)));
    step.rescale[g] = exp((*m)[g] - m_new);
    step.p[g] = select(vec4(0.0), exp(scores - m_new), ok);
    (*l)[g] = (*l)[g] * step.rescale[g] + ((step.p[g].x + step.p[g].y) + (step.p[g].z + step.p[g].w));
    (*m)[g] = m_new;
  }
  return step;
}

/** Chunk c of the block's 4 value rows, one key per column; zeros for masked keys. */
fn block_values(kb: KeyBlock, c: u32) -> mat4x4<f32> {
  // A masked key has p = 0, but its row may hold anything (even NaN): zeroed, not read.
  let zero = vec4(0.0);
  return mat4x4(
    select(zero, v_cache[kb.rows.x + c], kb.ok.x),
    select(zero, v_cache[kb.rows.y + c], kb.ok.y),
    select(zero, v_cache[kb.rows.z + c], kb.ok.z),
    select(zero, v_cache[kb.rows.w + c], kb.ok.w),
  );
}

// ---- attention_decode: a workgroup per (head slice, kv head, sequence), keys split ------------

@compute @workgroup_size(THREADS)
fn attention_decode(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let b = wg.z;
  let kvh = wg.y;
  let h0 = kvh * (params.q_heads / params.kv_heads) + wg.x * HEADS; // first query head
  // This thread's keys: blocks [first_block, end_block) of 4 keys (the last may be partial).
  let blocks = (params.length + 3u) / 4u;
  let blocks_per_thread = (blocks + THREADS - 1u) / THREADS;
  let first_block = min(tid * blocks_per_thread, blocks);
  let end_block = min(first_block + blocks_per_thread, blocks);

  var m: array<f32, MAX_HEADS>; // running max of each head's scores
  var l: array<f32, MAX_HEADS>; // running Σ exp(s_j − m)
  for (var g = 0u; g < HEADS; g++) {
    m[g] = MASKED;
    l[g] = 0.0;
    for (var c = 0u; c < CHUNKS; c++) {
      part_acc[acc_index(tid, g, c)] = vec4(0.0);
    }
  }

  for (var block = first_block; block < end_block; block++) {
    let kb = key_block(b, kvh, block);
    let step = softmax_step(block_scores(kb, b, h0), kb.ok, &m, &l);
    for (var c = 0u; c < CHUNKS; c++) {
      let values = block_values(kb, c);
      for (var g = 0u; g < HEADS; g++) {
        let i = acc_index(tid, g, c);
        part_acc[i] = part_acc[i] * step.rescale[g] + values * step.p[g]; // Σ_u p_u v_u
      }
    }
  }
  for (var g = 0u; g < HEADS; g++) {
    part_m[tid * HEADS + g] = m[g];
    part_l[tid * HEADS + g] = l[g];
  }
  workgroupBarrier();

  // Merge the THREADS partials of each head in thread order; a thread per output chunk.
  for (var e = tid; e < HEADS * CHUNKS; e += THREADS) {
    let g = e / CHUNKS;
    let c = e % CHUNKS;
    var m_all = MASKED;
    for (var t = 0u; t < THREADS; t++) {
      m_all = max(m_all, part_m[t * HEADS + g]);
    }
    var l_all = 0.0;
    var acc = vec4(0.0);
    for (var t = 0u; t < THREADS; t++) {
      let w = exp(part_m[t * HEADS + g] - m_all); // 0 for a partial that saw no key
      l_all += part_l[t * HEADS + g] * w;
      acc += part_acc[acc_index(t, g, c)] * w;
    }
    // A query that saw no key has l_all = 0: zeros.
    out[q_index(b, h0 + g, c)] = select(vec4(0.0), acc / l_all, l_all > 0.0);
  }
}

// ---- attention_decode_rows: a thread per (head slice, kv head, sequence), all keys -----------

/** Accumulators of one thread in attention_decode_rows: HEADS × CHUNKS vec4 (D ≤ 128). */
const MAX_ROW_CHUNKS: u32 = MAX_HEADS * 32u;

@compute @workgroup_size(THREADS)
fn attention_decode_rows(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let slices = params.q_heads / params.kv_heads / HEADS;
  // (sequence, kv head, head slice), the slice fastest; the grid spills into y past 65,535
  // workgroups (GpuContext.groupsFor).
  let item = gid.x + gid.y * groups.x * THREADS;
  if (item >= params.batch * params.kv_heads * slices) {
    return;
  }
  let b = item / (slices * params.kv_heads);
  let kvh = (item / slices) % params.kv_heads;
  let h0 = kvh * (params.q_heads / params.kv_heads) + (item % slices) * HEADS;

  var m: array<f32, MAX_HEADS>;
  var l: array<f32, MAX_HEADS>;
  var acc: array<vec4<f32>, MAX_ROW_CHUNKS>; // acc[g * CHUNKS + c]
  for (var g = 0u; g < HEADS; g++) {
    m[g] = MASKED;
    l[g] = 0.0;
    for (var c = 0u; c < CHUNKS; c++) {
      acc[g * CHUNKS + c] = vec4(0.0);
    }
  }
  let blocks = (params.length + 3u) / 4u;
  for (var block = 0u; block < blocks; block++) {
    let kb = key_block(b, kvh, block);
    let step = softmax_step(block_scores(kb, b, h0), kb.ok, &m, &l);
    for (var c = 0u; c < CHUNKS; c++) {
      let values = block_values(kb, c);
      for (var g = 0u; g < HEADS; g++) {
        let i = g * CHUNKS + c;
        acc[i] = acc[i] * step.rescale[g] + values * step.p[g];
      }
    }
  }
  // A query that saw no key has l = 0: zeros.
  for (var g = 0u; g < HEADS; g++) {
    for (var c = 0u; c < CHUNKS; c++) {
      out[q_index(b, h0 + g, c)] = select(vec4(0.0), acc[g * CHUNKS + c] / l[g], l[g] > 0.0);
    }
  }
}
