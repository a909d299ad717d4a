// Causal attention with grouped-query heads and a key padding mask, flash-attention style:
// the Tq×Tk score matrix is never stored; keys are visited in blocks staged in workgroup
// memory and the softmax is computed online.
//
// Shapes (row-major; the layout a linear projection produces, no transposes):
//   q, out, d_out, dq: [B, Tq, Hq, D]     k, v, dk, dv: [B, Tk, Hkv, D]
//   key_mask: [B, Tk] u32 (1 = real token, 0 = padding)
//   lse, row_dot: [B, Hq, Tq]
// Query head h reads kv head h / (Hq / Hkv). Query i sits at position i + (Tk − Tq) (the
// queries are the last Tq positions: Tq = Tk in training, Tq < Tk when decoding with a KV
// cache) and sees key j iff j <= i + (Tk − Tq) and key_mask[b, j] = 1.
//
// Math (s = scores, p = probabilities, rows i, keys j):
//   s_ij = scale · q_i·k_j    lse_i = log Σ_j exp(s_ij)    p_ij = exp(s_ij − lse_i)
//   out_i = Σ_j p_ij v_j
// A row that sees no key outputs zeros and stores lse = 0 (never ±inf or NaN).
//
// Forward (attention_forward): a workgroup per (block of BLOCK_Q query rows, head, batch):
//   m_i = −∞, l_i = 0, acc_i = 0
//   for each block of BLOCK_K keys (up to the last key the block's last row can see):
//     s_ij = scale · q_i·k_j                 (masked entries: −∞)
//     m_new = max(m_i, max_j s_ij)
//     p_ij = exp(s_ij − m_new)               (0 where masked)
//     l_i = l_i · exp(m_i − m_new) + Σ_j p_ij
//     acc_i = acc_i · exp(m_i − m_new) + Σ_j p_ij v_j
//     m_i = m_new
//   out_i = acc_i / l_i,  lse_i = m_i + log l_i
//
// Backward (flash-attention 2), given d_out; p is recomputed from the saved lse:
//   row_dot_i = d_out_i·out_i          (attention_row_dot, a thread per row)
//   dp_ij = d_out_i·v_j    ds_ij = p_ij (dp_ij − row_dot_i)
//   dq_i = scale Σ_j ds_ij k_j         (attention_backward_dq: a workgroup per query block,
//                                       looping over key blocks)
//   dk_j = scale Σ_i ds_ij q_i         (attention_backward_dkv: a workgroup per key block and
//   dv_j = Σ_i p_ij d_out_i             kv head, looping over the query heads of the kv
//                                       head's group, then over query blocks)
// Every sum runs in a fixed order, with no atomics: results are bit-identical between runs,
// and grouped-query gradients are summed inside the dkv kernel.
//
// How the work is laid out (chosen by measurement on lavapipe; sane on GPUs too):
// - A thread owns 4 rows of its side: 4 query rows in forward and dq, 4 keys in dkv. A head
//   row is split into vec4 "chunks" (head dims 4c..4c+3; zero-padded when D is not a multiple
//   of 4), and the 4 rows' chunk c is a mat4x4 with one row per column.
// - The other side (a block of keys, or of query rows) is staged in workgroup memory as vec4
//   chunks, read by every thread at the same address (a broadcast on GPUs).
// - A staged chunk x meets the thread's 4 rows at once: x * m gives 4 dot products (scores)
//   and outer(x, w) adds w_u·x to each row u (accumulators), so each load from workgroup
//   memory feeds 16 multiply-adds. (On lavapipe a memory access costs far more than a
//   multiply-add; this made the kernels about 2x faster than a thread per row.)
// - Loops run over chunks outside, over the block's keys (or rows) inside; the per-block
//   scores live in small private arrays indexed by the inner loop, which the compiler unrolls
//   into registers. Per-thread state that lasts across blocks (the accumulators) lives in the
//   output tensor itself (each thread owns its output rows): keeping it in registers instead
//   made lavapipe's shader compile take several seconds per kernel.

// The overrides, the Params uniform (binding 0) and the shared helpers are in
// kernels/attention_common.wgsl, which lib/ops/attention.ts puts in front of this file.

@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> key_mask: array<u32>;

/** Whether key j of sequence b is a real token. */
fn key_real(b: u32, j: u32) -> bool {
  return key_mask[b * params.key_len + j] != 0u;
}

// One reader per tensor (WGSL functions cannot take pointers to storage buffers). Each
// returns chunk c (head dims 4c..4c+3, zero past D) of the row that starts at `row`.

fn q_chunk(row: u32, c: u32) -> vec4<f32> {
  var x = vec4(0.0);
  for (var t = 0u; t < 4u; t++) {
    if (in_head(c, t)) {
      x[t] = q[row + 4u * c + t];
    }
  }
  return x;
}

fn k_chunk(row: u32, c: u32) -> vec4<f32> {
  var x = vec4(0.0);
  for (var t = 0u; t < 4u; t++) {
    if (in_head(c, t)) {
      x[t] = k[row + 4u * c + t];
    }
  }
  return x;
}

fn v_chunk(row: u32, c: u32) -> vec4<f32> {
  var x = vec4(0.0);
  for (var t = 0u; t < 4u; t++) {
    if (in_head(c, t)) {
      x[t] = v[row + 4u * c + t];
    }
  }
  return x;
}
// Reading and writing the 4 rows of a thread, one chunk at a time. `rows` holds where each
// row starts in its tensor; column u of the matrix is row u's chunk c.

fn q_quad(rows: vec4<u32>, c: u32) -> mat4x4<f32> {
  return mat4x4(q_chunk(rows.x, c), q_chunk(rows.y, c), q_chunk(rows.z, c), q_chunk(rows.w, c));
}

fn k_quad(rows: vec4<u32>, c: u32) -> mat4x4<f32> {
  return mat4x4(k_chunk(rows.x, c), k_chunk(rows.y, c), k_chunk(rows.z, c), k_chunk(rows.w, c));
}

fn v_quad(rows: vec4<u32>, c: u32) -> mat4x4<f32> {
  return mat4x4(v_chunk(rows.x, c), v_chunk(rows.y, c), v_chunk(rows.z, c), v_chunk(rows.w, c));
}

// ---- forward -----------------------------------------------------------------------------

@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;

var<workgroup> k_tile: array<vec4<f32>, BLOCK_K * CHUNKS>;   // [j][c]
var<workgroup> v_tile: array<vec4<f32>, BLOCK_K * CHUNKS>;   // [j][c]
var<workgroup> key_ok: array<u32, BLOCK_K>;                  // key k0 + j exists, not padding

/** Stages keys k0.. (of kv head kvh) into k_tile, v_tile and key_ok; zeros past the end. */
fn stage_keys(tid: u32, b: u32, kvh: u32, k0: u32) {
  let keys = min(BLOCK_K, params.key_len - k0);
  for (var e = tid; e < BLOCK_K * CHUNKS; e += QUERY_THREADS) {
    let j = e / CHUNKS;
    let c = e % CHUNKS;
    var kx = vec4(0.0);
    var vx = vec4(0.0);
    if (j < keys) {
      let row = kv_row(b, k0 + j, kvh);
      kx = k_chunk(row, c);
      vx = v_chunk(row, c);
    }
    k_tile[e] = kx;
    v_tile[e] = vx;
  }
  for (var j = tid; j < BLOCK_K; j += QUERY_THREADS) {
    var ok = 0u;
    if (j < keys && key_real(b, k0 + j)) {
      ok = 1u;
    }
    key_ok[j] = ok;
  }
}

/** Reads chunk c of the valid rows of out (zeros for the others: they are copies of a row
 * that another thread may be writing). */
fn out_quad(rows: vec4<u32>, valid: vec4<bool>, c: u32) -> mat4x4<f32> {
  var m: mat4x4<f32>;
  for (var u = 0u; u < 4u; u++) {
    for (var t = 0u; t < 4u; t++) {
      if (valid[u] && in_head(c, t)) {
        m[u][t] = out[rows[u] + 4u * c + t];
      }
    }
  }
  return m;
}

/** Writes column u of m to row u, for the valid rows. */
fn set_out_quad(rows: vec4<u32>, valid: vec4<bool>, c: u32, m: mat4x4<f32>) {
  for (var u = 0u; u < 4u; u++) {
    for (var t = 0u; t < 4u; t++) {
      if (valid[u] && in_head(c, t)) {
        out[rows[u] + 4u * c + t] = m[u][t];
      }
    }
  }
}

@compute @workgroup_size(QUERY_THREADS)
fn attention_forward(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let q0 = wg.x * BLOCK_Q;
  let h = wg.y;
  let b = wg.z;
  let kvh = h / (params.q_heads / params.kv_heads);
  let rows = min(BLOCK_Q, params.q_len - q0);
  // This thread's query rows i[u], u = 0..3; invalid ones compute on a copy, write nothing.
  let mine = quad(tid, q0, rows);
  let last_key = mine.index + vec4(causal_offset()); // row u sees keys j <= last_key[u]
  var at: vec4<u32>; // where each row starts in q and out
  for (var u = 0u; u < 4u; u++) {
    at[u] = q_row(b, mine.index[u], h);
  }

  // The output rows serve as the accumulators acc_i = Σ_j exp(s_ij − m_i) v_j.
  for (var c = 0u; c < CHUNKS; c++) {
    set_out_quad(at, mine.valid, c, mat4x4<f32>());
  }
  var m = vec4(MASKED); // running max of each row's scores
  var l = vec4(0.0);    // running Σ_j exp(s_ij − m_i)

  // The block's last row sees keys up to (q0 + rows − 1) + offset.
  let key_end = min(params.key_len, q0 + rows + causal_offset());
  for (var k0 = 0u; k0 < key_end; k0 += BLOCK_K) {
    workgroupBarrier(); // everyone is done with the previous key block
    stage_keys(tid, b, kvh, k0);
    workgroupBarrier();

    // Scores: s[j] holds key j's scores against the 4 rows.
    // (Zeroed explicitly: naga zero-initialises a `var` once, not on every loop iteration.)
    var s: Scores;
    for (var j = 0u; j < BLOCK_K; j++) {
      s[j] = vec4(0.0);
    }
    for (var c = 0u; c < CHUNKS; c++) {
      let q_c = q_quad(at, c) * params.scale;
      for (var j = 0u; j < BLOCK_K; j++) {
        s[j] += k_tile[j * CHUNKS + c] * q_c;
      }
    }
    for (var j = 0u; j < BLOCK_K; j++) {
      let ok = mine.valid & vec4(key_ok[j] != 0u) & (vec4(k0 + j) <= last_key);
      s[j] = select(vec4(MASKED), s[j], ok);
    }
    let rescale = softmax_block(&s, &m, &l); // s[j] is now p_j
    for (var c = 0u; c < CHUNKS; c++) {
      var acc = scale_columns(out_quad(at, mine.valid, c), rescale);
      for (var j = 0u; j < BLOCK_K; j++) {
        acc += outer(v_tile[j * CHUNKS + c], s[j]);
      }
      set_out_quad(at, mine.valid, c, acc);
    }
  }

  // out = acc / l and lse = m + log l; zeros for a row that saw no key (l = 0).
  let seen = l > vec4(0.0);
  let inv_l = select(vec4(0.0), 1.0 / l, seen);
  for (var c = 0u; c < CHUNKS; c++) {
    set_out_quad(at, mine.valid, c, scale_columns(out_quad(at, mine.valid, c), inv_l));
  }
  let row_lse = select(vec4(0.0), m + log(l), seen);
  for (var u = 0u; u < 4u; u++) {
    if (mine.valid[u]) {
      lse[stat_index(b, h, mine.index[u])] = row_lse[u];
    }
  }
}

// ---- backward: row_dot_i = d_out_i·out_i --------------------------------------------------
// A thread per row; rows are numbered in [B, Hq, Tq] order. Its bindings (d_out at 1, out at
// 2, row_dot at 3) reuse numbers that the other entry points give to other tensors.

@group(0) @binding(1) var<storage, read> rd_d_out: array<f32>;
@group(0) @binding(2) var<storage, read> rd_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> rd_row_dot: array<f32>;

@compute @workgroup_size(ROW_DOT_WORKGROUP)
fn attention_row_dot(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let n = gid.x + gid.y * groups.x * ROW_DOT_WORKGROUP;
  if (n >= params.batch * params.q_heads * params.q_len) {
    return;
  }
  let t = n % params.q_len;
  let h = (n / params.q_len) % params.q_heads;
  let b = n / (params.q_len * params.q_heads);
  let row = q_row(b, t, h);
  var s = 0.0;
  for (var d = 0u; d < HEAD_DIM; d++) {
    s += rd_d_out[row + d] * rd_out[row + d];
  }
  rd_row_dot[n] = s;
}

// ---- backward: dq -------------------------------------------------------------------------

@group(0) @binding(5) var<storage, read> d_out: array<f32>;
@group(0) @binding(6) var<storage, read> saved_lse: array<f32>;
@group(0) @binding(7) var<storage, read> row_dot: array<f32>;
@group(0) @binding(8) var<storage, read_write> dq: array<f32>;

fn d_out_chunk(row: u32, c: u32) -> vec4<f32> {
  var x = vec4(0.0);
  for (var t = 0u; t < 4u; t++) {
    if (in_head(c, t)) {
      x[t] = d_out[row + 4u * c + t];
    }
  }
  return x;
}

fn d_out_quad(rows: vec4<u32>, c: u32) -> mat4x4<f32> {
  return mat4x4(
    d_out_chunk(rows.x, c),
    d_out_chunk(rows.y, c),
    d_out_chunk(rows.z, c),
    d_out_chunk(rows.w, c),
  );
}

fn dq_quad(rows: vec4<u32>, valid: vec4<bool>, c: u32) -> mat4x4<f32> {
  var m: mat4x4<f32>;
  for (var u = 0u; u < 4u; u++) {
    for (var t = 0u; t < 4u; t++) {
      if (valid[u] && in_head(c, t)) {
        m[u][t] = dq[rows[u] + 4u * c + t];
      }
    }
  }
  return m;
}

fn set_dq_quad(rows: vec4<u32>, valid: vec4<bool>, c: u32, m: mat4x4<f32>) {
  for (var u = 0u; u < 4u; u++) {
    for (var t = 0u; t < 4u; t++) {
      if (valid[u] && in_head(c, t)) {
        dq[rows[u] + 4u * c + t] = m[u][t];
      }
    }
  }
}

@compute @workgroup_size(QUERY_THREADS)
fn attention_backward_dq(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let q0 = wg.x * BLOCK_Q;
  let h = wg.y;
  let b = wg.z;
  let kvh = h / (params.q_heads / params.kv_heads);
  let rows = min(BLOCK_Q, params.q_len - q0);
  let mine = quad(tid, q0, rows);
  let last_key = mine.index + vec4(causal_offset());
  var at: vec4<u32>;
  var row_lse: vec4<f32>;
  var row_d: vec4<f32>; // row_dot_i
  for (var u = 0u; u < 4u; u++) {
    at[u] = q_row(b, mine.index[u], h);
    row_lse[u] = saved_lse[stat_index(b, h, mine.index[u])];
    row_d[u] = row_dot[stat_index(b, h, mine.index[u])];
  }
  // The dq rows serve as accumulators of Σ_j scale · ds_ij k_j.
  for (var c = 0u; c < CHUNKS; c++) {
    set_dq_quad(at, mine.valid, c, mat4x4<f32>());
  }

  let key_end = min(params.key_len, q0 + rows + causal_offset());
  for (var k0 = 0u; k0 < key_end; k0 += BLOCK_K) {
    workgroupBarrier();
    stage_keys(tid, b, kvh, k0);
    workgroupBarrier();

    // s[j] = scores of key j, dp[j] = d_out·v_j, for the 4 rows.
    var s: Scores;
    var dp: Scores;
    for (var j = 0u; j < BLOCK_K; j++) {
      s[j] = vec4(0.0);
      dp[j] = vec4(0.0);
    }
    for (var c = 0u; c < CHUNKS; c++) {
      let q_c = q_quad(at, c) * params.scale;
      let do_c = d_out_quad(at, c);
      for (var j = 0u; j < BLOCK_K; j++) {
        s[j] += k_tile[j * CHUNKS + c] * q_c;
        dp[j] += v_tile[j * CHUNKS + c] * do_c;
      }
    }
    // ds = p (dp − row_dot), p = exp(s − lse); masked entries take exp(MASKED) = 0 (and never
    // overflow). Kept in s, times scale (the factor dq needs).
    for (var j = 0u; j < BLOCK_K; j++) {
      let ok = mine.valid & vec4(key_ok[j] != 0u) & (vec4(k0 + j) <= last_key);
      let p = exp(select(vec4(MASKED), s[j] - row_lse, ok));
      s[j] = params.scale * p * (dp[j] - row_d);
    }
    for (var c = 0u; c < CHUNKS; c++) {
      var acc = dq_quad(at, mine.valid, c);
      for (var j = 0u; j < BLOCK_K; j++) {
        acc += outer(k_tile[j * CHUNKS + c], s[j]);
      }
      set_dq_quad(at, mine.valid, c, acc);
    }
  }
}

// ---- backward: dk, dv ---------------------------------------------------------------------

@group(0) @binding(8) var<storage, read_write> dk: array<f32>;
@group(0) @binding(9) var<storage, read_write> dv: array<f32>;

var<workgroup> q_tile: array<vec4<f32>, BLOCK_Q * CHUNKS>;    // [r][c], scale · q
var<workgroup> do_tile: array<vec4<f32>, BLOCK_Q * CHUNKS>;   // [r][c], d_out
var<workgroup> lse_tile: array<f32, BLOCK_Q>;
var<workgroup> row_dot_tile: array<f32, BLOCK_Q>;
var<workgroup> query_ok: array<u32, BLOCK_Q>;                 // query q0 + r exists

/** Stages query rows q0.. of head h (scaled q, d_out, lse, row_dot); zeros past the end. */
fn stage_queries(tid: u32, b: u32, h: u32, q0: u32) {
  let rows = min(BLOCK_Q, params.q_len - q0);
  for (var e = tid; e < BLOCK_Q * CHUNKS; e += KEY_THREADS) {
    let r = e / CHUNKS;
    let c = e % CHUNKS;
    var qx = vec4(0.0);
    var dox = vec4(0.0);
    if (r < rows) {
      let row = q_row(b, q0 + r, h);
      qx = q_chunk(row, c) * params.scale;
      dox = d_out_chunk(row, c);
    }
    q_tile[e] = qx;
    do_tile[e] = dox;
  }
  for (var r = tid; r < BLOCK_Q; r += KEY_THREADS) {
    var lse_r = 0.0;
    var row_dot_r = 0.0;
    if (r < rows) {
      lse_r = saved_lse[stat_index(b, h, q0 + r)];
      row_dot_r = row_dot[stat_index(b, h, q0 + r)];
    }
    lse_tile[r] = lse_r;
    row_dot_tile[r] = row_dot_r;
    query_ok[r] = u32(r < rows);
  }
}

fn dk_quad(rows: vec4<u32>, valid: vec4<bool>, c: u32) -> mat4x4<f32> {
  var m: mat4x4<f32>;
  for (var u = 0u; u < 4u; u++) {
    for (var t = 0u; t < 4u; t++) {
      if (valid[u] && in_head(c, t)) {
        m[u][t] = dk[rows[u] + 4u * c + t];
      }
    }
  }
  return m;
}

fn dv_quad(rows: vec4<u32>, valid: vec4<bool>, c: u32) -> mat4x4<f32> {
  var m: mat4x4<f32>;
  for (var u = 0u; u < 4u; u++) {
    for (var t = 0u; t < 4u; t++) {
      if (valid[u] && in_head(c, t)) {
        m[u][t] = dv[rows[u] + 4u * c + t];
      }
    }
  }
  return m;
}

fn set_dkv_quads(rows: vec4<u32>, valid: vec4<bool>, c: u32, k_m: mat4x4<f32>, v_m: mat4x4<f32>) {
  for (var u = 0u; u < 4u; u++) {
    for (var t = 0u; t < 4u; t++) {
      if (valid[u] && in_head(c, t)) {
        dk[rows[u] + 4u * c + t] = k_m[u][t];
        dv[rows[u] + 4u * c + t] = v_m[u][t];
      }
    }
  }
}

@compute @workgroup_size(KEY_THREADS)
fn attention_backward_dkv(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let k0 = wg.x * BLOCK_K;
  let kvh = wg.y;
  let b = wg.z;
  let group_size = params.q_heads / params.kv_heads;
  let keys = min(BLOCK_K, params.key_len - k0);
  // This thread's keys j[u], u = 0..3; invalid ones compute on a copy and write nothing.
  // Padding keys get zero gradients (they see no query).
  let mine = quad(tid, k0, keys);
  var real = mine.valid;
  var at: vec4<u32>; // where each key's row starts in k, v, dk, dv
  for (var u = 0u; u < 4u; u++) {
    at[u] = kv_row(b, mine.index[u], kvh);
    real[u] = real[u] && key_real(b, mine.index[u]);
  }
  // The dk and dv rows serve as accumulators of Σ_i ds_ij (scale · q_i) and Σ_i p_ij d_out_i.
  for (var c = 0u; c < CHUNKS; c++) {
    set_dkv_quads(at, mine.valid, c, mat4x4<f32>(), mat4x4<f32>());
  }

  // The first query that sees key k0 is k0 − offset (or 0).
  let offset = causal_offset();
  let first_query = select(0u, k0 - offset, k0 > offset);
  for (var g = 0u; g < group_size; g++) {
    let h = kvh * group_size + g;
    for (var q0 = first_query; q0 < params.q_len; q0 += BLOCK_Q) {
      workgroupBarrier(); // everyone is done with the previous query block
      stage_queries(tid, b, h, q0);
      workgroupBarrier();

      // s[r] = scores of query row r, dp[r] = d_out_r·v, against the 4 keys.
      var s: Scores;
      var dp: Scores;
      for (var r = 0u; r < BLOCK_Q; r++) {
        s[r] = vec4(0.0);
        dp[r] = vec4(0.0);
      }
      for (var c = 0u; c < CHUNKS; c++) {
        let k_c = k_quad(at, c);
        let v_c = v_quad(at, c);
        for (var r = 0u; r < BLOCK_Q; r++) {
          s[r] += q_tile[r * CHUNKS + c] * k_c;
          dp[r] += do_tile[r * CHUNKS + c] * v_c;
        }
      }
      // p into s, ds into dp.
      for (var r = 0u; r < BLOCK_Q; r++) {
        let ok = real & vec4(query_ok[r] != 0u) & (mine.index <= vec4(q0 + r + offset));
        let p = exp(select(vec4(MASKED), s[r] - lse_tile[r], ok));
        s[r] = p;
        dp[r] = p * (dp[r] - row_dot_tile[r]);
      }
      for (var c = 0u; c < CHUNKS; c++) {
        var dk_c = dk_quad(at, mine.valid, c);
        var dv_c = dv_quad(at, mine.valid, c);
        for (var r = 0u; r < BLOCK_Q; r++) {
          dv_c += outer(do_tile[r * CHUNKS + c], s[r]);
          dk_c += outer(q_tile[r * CHUNKS + c], dp[r]);
        }
        set_dkv_quads(at, mine.valid, c, dk_c, dv_c);
      }
    }
  }
}
