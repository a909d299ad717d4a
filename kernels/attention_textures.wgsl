// The attention kernels of kernels/attention.wgsl (same math, same blocks, same order of every
// sum: bit-identical results) reading q, k, v and d_out as texels of rgba32float storage
// textures instead of storage buffers. For software adapters (lib/ops/attention.ts picks them
// on lavapipe): there a storage-buffer or workgroup-memory load is a loop over the 8 SIMD
// lanes with a branch and a bounds check per lane and component, a texel load one vectorised
// gather (see kernels/matmul_textures.wgsl). So nothing is staged in workgroup memory: every
// thread reads the block's keys (or query rows) straight from the textures, and there are no
// barriers. Measured on the small preset's shape (B=8, T=128, Hq=6, Hkv=2, D=64): forward
// 37 → 13 ms; the six layers' attention in a training step 0.89 → 0.26 s.
//
// Texture layout, one per tensor, the tensor's own bytes when its rows are a multiple of 64
// floats (lib/ops/attention.ts copies them; other widths go through a pack kernel):
//
//   texel (h·CHUNKS + c, b·T + t) = x[b, t, h, 4c .. 4c+3]      (D a multiple of 4)
//
// Row indices past the end of a block are clamped to the last real row, so every texel load
// is in bounds and reads finite values; their scores are masked as in the buffer kernels.
// Unlike there, the accumulators live in private arrays of CHUNKS 4 × 4 blocks, written to the
// output once at the end: ~30% faster on lavapipe (forward, dq and dkv together) than a round
// trip through the output tensor per block. A private array needs a constant size, which lib/ops/attention.ts declares in
// front of the source for each head dim (`const ACCUMULATOR_CHUNKS`, = CHUNKS): an array of
// the largest size for every D doubled the pipeline build (to ~4 s forward, ~16 s backward).

@group(0) @binding(1) var<storage, read> key_mask: array<u32>;

/** Whether key j of sequence b is a real token. */
fn key_real(b: u32, j: u32) -> bool {
  return key_mask[b * params.key_len + j] != 0u;
}

// ---- reading the textures -----------------------------------------------------------------
// q_tex and d_out_tex: [B·Tq] rows of Hq·CHUNKS texels; k_tex, v_tex: [B·Tk] rows of
// Hkv·CHUNKS texels. (Declared once for all entry points: an entry binds what it uses.)

fn texel(t: texture_storage_2d<rgba32float, read>, head: u32, row: u32, c: u32) -> vec4<f32> {
  return textureLoad(t, vec2(head * CHUNKS + c, row));
}

/** Chunk c of 4 rows (column u = row rows[u]) of one head. */
fn texel_quad(
  t: texture_storage_2d<rgba32float, read>,
  head: u32,
  rows: vec4<u32>,
  c: u32,
) -> mat4x4<f32> {
  return mat4x4(
    texel(t, head, rows.x, c),
    texel(t, head, rows.y, c),
    texel(t, head, rows.z, c),
    texel(t, head, rows.w, c),
  );
}

// ---- forward ------------------------------------------------------------------------------

@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> lse: array<f32>;
// [B, Hq, Tq]: each row's running (m, l) between the dispatches of a long shape
@group(0) @binding(4) var<storage, read_write> fwd_state: array<vec2<f32>>;
@group(0) @binding(5) var fwd_q: texture_storage_2d<rgba32float, read>;
@group(0) @binding(6) var fwd_k: texture_storage_2d<rgba32float, read>;
@group(0) @binding(7) var fwd_v: texture_storage_2d<rgba32float, read>;

/** Chunk c of the 4 rows of out (zeros for the invalid ones): a previous dispatch's sums. */
fn out_quad(rows: vec4<u32>, valid: vec4<bool>, c: u32) -> mat4x4<f32> {
  var m: mat4x4<f32>;
  for (var u = 0u; u < 4u; u++) {
    if (valid[u]) {
      let at = rows[u] + 4u * c;
      m[u] = vec4(out[at], out[at + 1u], out[at + 2u], out[at + 3u]);
    }
  }
  return m;
}

fn set_out_quad(rows: vec4<u32>, valid: vec4<bool>, c: u32, m: mat4x4<f32>) {
  for (var u = 0u; u < 4u; u++) {
    if (valid[u]) {
      let at = rows[u] + 4u * c;
      out[at] = m[u].x;
      out[at + 1u] = m[u].y;
      out[at + 2u] = m[u].z;
      out[at + 3u] = m[u].w;
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
  let mine = quad(tid, q0, rows);
  let last_key = mine.index + vec4(causal_offset());
  let q_rows = vec4(b * params.q_len) + mine.index; // texture rows of this thread's queries
  let key_row0 = b * params.key_len;
  let last_row = key_row0 + params.key_len - 1u;
  var at: vec4<u32>;
  for (var u = 0u; u < 4u; u++) {
    at[u] = q_row(b, mine.index[u], h);
  }

  var acc: array<mat4x4<f32>, ACCUMULATOR_CHUNKS>; // Σ_j exp(s_ij − m_i) v_j, chunk by chunk
  var m = vec4(MASKED);
  var l = vec4(0.0);
  if (params.block_start > 0u) {
    // A previous dispatch left the sums over the key blocks before block_start.
    for (var c = 0u; c < CHUNKS; c++) {
      acc[c] = out_quad(at, mine.valid, c);
    }
    for (var u = 0u; u < 4u; u++) {
      if (mine.valid[u]) {
        let state = fwd_state[stat_index(b, h, mine.index[u])];
        m[u] = state.x;
        l[u] = state.y;
      }
    }
  }
  let key_end = min(params.key_len, q0 + rows + causal_offset());
  let block_end = min(key_end, params.block_end * BLOCK_K);
  for (var k0 = params.block_start * BLOCK_K; k0 < block_end; k0 += BLOCK_K) {
    var s: Scores;
    for (var j = 0u; j < BLOCK_K; j++) {
      s[j] = vec4(0.0);
    }
    for (var c = 0u; c < CHUNKS; c++) {
      let q_c = texel_quad(fwd_q, h, q_rows, c) * params.scale;
      for (var j = 0u; j < BLOCK_K; j++) {
        s[j] += texel(fwd_k, kvh, min(key_row0 + k0 + j, last_row), c) * q_c;
      }
    }
    for (var j = 0u; j < BLOCK_K; j++) {
      let real = k0 + j < params.key_len && key_real(b, k0 + j);
      let ok = mine.valid & vec4(real) & (vec4(k0 + j) <= last_key);
      s[j] = select(vec4(MASKED), s[j], ok);
    }
    let rescale = softmax_block(&s, &m, &l); // s[j] is now p_j
    for (var c = 0u; c < CHUNKS; c++) {
      var acc_c = scale_columns(acc[c], rescale);
      for (var j = 0u; j < BLOCK_K; j++) {
        acc_c += outer(texel(fwd_v, kvh, min(key_row0 + k0 + j, last_row), c), s[j]);
      }
      acc[c] = acc_c;
    }
  }

  if (params.block_end * BLOCK_K < params.key_len) {
    // More dispatches follow: keep the sums as they are.
    for (var c = 0u; c < CHUNKS; c++) {
      set_out_quad(at, mine.valid, c, acc[c]);
    }
    for (var u = 0u; u < 4u; u++) {
      if (mine.valid[u]) {
        fwd_state[stat_index(b, h, mine.index[u])] = vec2(m[u], l[u]);
      }
    }
    return;
  }
  let seen = l > vec4(0.0);
  let inv_l = select(vec4(0.0), 1.0 / l, seen);
  for (var c = 0u; c < CHUNKS; c++) {
    set_out_quad(at, mine.valid, c, scale_columns(acc[c], inv_l));
  }
  let row_lse = select(vec4(0.0), m + log(l), seen);
  for (var u = 0u; u < 4u; u++) {
    if (mine.valid[u]) {
      lse[stat_index(b, h, mine.index[u])] = row_lse[u];
    }
  }
}

// ---- backward: dq -------------------------------------------------------------------------

@group(0) @binding(2) var<storage, read> saved_lse: array<f32>;
@group(0) @binding(3) var<storage, read> row_dot: array<f32>;
@group(0) @binding(4) var<storage, read_write> dq: array<f32>;

/** Chunk c of the 4 rows of dq (zeros for the invalid ones): a previous dispatch's sums. */
fn dq_quad(rows: vec4<u32>, valid: vec4<bool>, c: u32) -> mat4x4<f32> {
  var m: mat4x4<f32>;
  for (var u = 0u; u < 4u; u++) {
    if (valid[u]) {
      let at = rows[u] + 4u * c;
      m[u] = vec4(dq[at], dq[at + 1u], dq[at + 2u], dq[at + 3u]);
    }
  }
  return m;
}

@group(0) @binding(5) var dq_q: texture_storage_2d<rgba32float, read>;
@group(0) @binding(6) var dq_k: texture_storage_2d<rgba32float, read>;
@group(0) @binding(7) var dq_v: texture_storage_2d<rgba32float, read>;
@group(0) @binding(8) var dq_d_out: texture_storage_2d<rgba32float, read>;

fn set_dq_quad(rows: vec4<u32>, valid: vec4<bool>, c: u32, m: mat4x4<f32>) {
  for (var u = 0u; u < 4u; u++) {
    if (valid[u]) {
      let at = rows[u] + 4u * c;
      dq[at] = m[u].x;
      dq[at + 1u] = m[u].y;
      dq[at + 2u] = m[u].z;
      dq[at + 3u] = m[u].w;
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
  let q_rows = vec4(b * params.q_len) + mine.index;
  let key_row0 = b * params.key_len;
  let last_row = key_row0 + params.key_len - 1u;
  var at: vec4<u32>;
  var row_lse: vec4<f32>;
  var row_d: vec4<f32>; // row_dot_i
  for (var u = 0u; u < 4u; u++) {
    at[u] = q_row(b, mine.index[u], h);
    row_lse[u] = saved_lse[stat_index(b, h, mine.index[u])];
    row_d[u] = row_dot[stat_index(b, h, mine.index[u])];
  }
  var acc: array<mat4x4<f32>, ACCUMULATOR_CHUNKS>; // Σ_j scale · ds_ij k_j, chunk by chunk
  if (params.block_start > 0u) {
    for (var c = 0u; c < CHUNKS; c++) {
      acc[c] = dq_quad(at, mine.valid, c); // the key blocks before block_start
    }
  }

  let key_end = min(params.key_len, q0 + rows + causal_offset());
  let block_end = min(key_end, params.block_end * BLOCK_K);
  for (var k0 = params.block_start * BLOCK_K; k0 < block_end; k0 += BLOCK_K) {
    var s: Scores;
    var dp: Scores;
    for (var j = 0u; j < BLOCK_K; j++) {
      s[j] = vec4(0.0);
      dp[j] = vec4(0.0);
    }
    for (var c = 0u; c < CHUNKS; c++) {
      let q_c = texel_quad(dq_q, h, q_rows, c) * params.scale;
      let do_c = texel_quad(dq_d_out, h, q_rows, c);
      for (var j = 0u; j < BLOCK_K; j++) {
        let row = min(key_row0 + k0 + j, last_row);
        s[j] += texel(dq_k, kvh, row, c) * q_c;
        dp[j] += texel(dq_v, kvh, row, c) * do_c;
      }
    }
    for (var j = 0u; j < BLOCK_K; j++) {
      let real = k0 + j < params.key_len && key_real(b, k0 + j);
      let ok = mine.valid & vec4(real) & (vec4(k0 + j) <= last_key);
      let p = exp(select(vec4(MASKED), s[j] - row_lse, ok));
      s[j] = params.scale * p * (dp[j] - row_d);
    }
    for (var c = 0u; c < CHUNKS; c++) {
      var acc_c = acc[c];
      for (var j = 0u; j < BLOCK_K; j++) {
        acc_c += outer(texel(dq_k, kvh, min(key_row0 + k0 + j, last_row), c), s[j]);
      }
      acc[c] = acc_c;
    }
  }
  for (var c = 0u; c < CHUNKS; c++) {
    set_dq_quad(at, mine.valid, c, acc[c]);
  }
}

// ---- backward: dk, dv ---------------------------------------------------------------------

@group(0) @binding(4) var<storage, read_write> dk: array<f32>;
@group(0) @binding(5) var<storage, read_write> dv: array<f32>;
/** Chunk c of the 4 rows of dk and dv (zeros for the invalid ones): a previous dispatch's sums. */
fn dkv_quads(rows: vec4<u32>, valid: vec4<bool>, c: u32) -> array<mat4x4<f32>, 2> {
  var m: array<mat4x4<f32>, 2>;
  for (var u = 0u; u < 4u; u++) {
    if (valid[u]) {
      let at = rows[u] + 4u * c;
      m[0][u] = vec4(dk[at], dk[at + 1u], dk[at + 2u], dk[at + 3u]);
      m[1][u] = vec4(dv[at], dv[at + 1u], dv[at + 2u], dv[at + 3u]);
    }
  }
  return m;
}

@group(0) @binding(6) var dkv_q: texture_storage_2d<rgba32float, read>;
@group(0) @binding(7) var dkv_k: texture_storage_2d<rgba32float, read>;
@group(0) @binding(8) var dkv_v: texture_storage_2d<rgba32float, read>;
@group(0) @binding(9) var dkv_d_out: texture_storage_2d<rgba32float, read>;

fn set_dkv_quads(rows: vec4<u32>, valid: vec4<bool>, c: u32, k_m: mat4x4<f32>, v_m: mat4x4<f32>) {
  for (var u = 0u; u < 4u; u++) {
    if (valid[u]) {
      let at = rows[u] + 4u * c;
      dk[at] = k_m[u].x;
      dk[at + 1u] = k_m[u].y;
      dk[at + 2u] = k_m[u].z;
      dk[at + 3u] = k_m[u].w;
      dv[at] = v_m[u].x;
      dv[at + 1u] = v_m[u].y;
      dv[at + 2u] = v_m[u].z;
      dv[at + 3u] = v_m[u].w;
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
  let mine = quad(tid, k0, keys);
  let k_rows = vec4(b * params.key_len) + mine.index;
  let query_row0 = b * params.q_len;
  let last_query = params.q_len - 1u;
  var real = mine.valid;
  var at: vec4<u32>;
  for (var u = 0u; u < 4u; u++) {
    at[u] = kv_row(b, mine.index[u], kvh);
    real[u] = real[u] && key_real(b, mine.index[u]);
  }
  // Σ_i ds_ij (scale · q_i) and Σ_i p_ij d_out_i, chunk by chunk
  var dk_acc: array<mat4x4<f32>, ACCUMULATOR_CHUNKS>;
  var dv_acc: array<mat4x4<f32>, ACCUMULATOR_CHUNKS>;
  if (params.block_start > 0u) {
    for (var c = 0u; c < CHUNKS; c++) {
      let kv = dkv_quads(at, mine.valid, c); // the pairs before block_start
      dk_acc[c] = kv[0];
      dv_acc[c] = kv[1];
    }
  }

  // The (head g of the group, query block q0) pairs in order, numbered g · blocks + i with
  // q0 = first_query + i · BLOCK_Q; this dispatch runs [block_start, block_end) of them.
  let offset = causal_offset();
  let first_query = select(0u, k0 - offset, k0 > offset);
  let blocks = (params.q_len + BLOCK_Q - 1u) / BLOCK_Q; // i < blocks covers every query
  let pair_end = min(params.block_end, group_size * blocks);
  for (var pair = params.block_start; pair < pair_end; pair++) {
    let h = kvh * group_size + pair / blocks;
    let q0 = first_query + (pair % blocks) * BLOCK_Q;
    if (q0 >= params.q_len) {
      continue;
    }
    {
      var s: Scores;
      var dp: Scores;
      for (var r = 0u; r < BLOCK_Q; r++) {
        s[r] = vec4(0.0);
        dp[r] = vec4(0.0);
      }
      for (var c = 0u; c < CHUNKS; c++) {
        let k_c = texel_quad(dkv_k, kvh, k_rows, c);
        let v_c = texel_quad(dkv_v, kvh, k_rows, c);
        for (var r = 0u; r < BLOCK_Q; r++) {
          let row = query_row0 + min(q0 + r, last_query);
          s[r] += (texel(dkv_q, h, row, c) * params.scale) * k_c;
          dp[r] += texel(dkv_d_out, h, row, c) * v_c;
        }
      }
      for (var r = 0u; r < BLOCK_Q; r++) {
        let i = min(q0 + r, last_query);
        let ok = real & vec4(q0 + r < params.q_len) & (mine.index <= vec4(q0 + r + offset));
        let p = exp(select(vec4(MASKED), s[r] - saved_lse[stat_index(b, h, i)], ok));
        s[r] = p;
        dp[r] = p * (dp[r] - row_dot[stat_index(b, h, i)]);
      }
      for (var c = 0u; c < CHUNKS; c++) {
        var dk_c = dk_acc[c];
        var dv_c = dv_acc[c];
        for (var r = 0u; r < BLOCK_Q; r++) {
          let row = query_row0 + min(q0 + r, last_query);
          dv_c += outer(texel(dkv_d_out, h, row, c), s[r]);
          dk_c += outer(texel(dkv_q, h, row, c) * params.scale, dp[r]);
        }
        dk_acc[c] = dk_c;
        dv_acc[c] = dv_c;
      }
    }
  }
  for (var c = 0u; c < CHUNKS; c++) {
    set_dkv_quads(at, mine.valid, c, dk_acc[c], dv_acc[c]);
  }
}
