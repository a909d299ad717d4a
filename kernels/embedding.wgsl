// Token embedding: a row gather, and its backward as a deterministic scatter-add.
//
//   forward:   out[n, d] = table[min(ids[n], V − 1), d]
//              ids: [N] u32, table: [V, D] f32, out: [N, D] f32.
//              An id ≥ V cannot raise an error from the GPU: it is clamped to V − 1. The
//              model validates ids on the host before they reach the GPU.
//
//   backward:  dTable[v, d] += Σ_{n : ids[n] = v} dOut[n, d]
//              dOut: [N, D], dTable: [V, D] (accumulated in place).
//              No float atomics: the host builds an inverse index of the ids (CSR form),
//                unique_ids: [U]    the distinct ids, ascending
//                offsets:    [U + 1] positions of unique_ids[u] are
//                positions:  [N]    positions[offsets[u] .. offsets[u + 1]), ascending
//              and one workgroup per distinct id sums its dOut rows in that fixed order,
//              then adds the sum to dTable's row once. Each dTable element has exactly one
//              writer, so reruns are bit-identical; the cost is O(N·D), independent of V.
//
// Row chunks: a table too big for one storage binding is held as row chunks, rows
// [row_start, row_end) of the [V, D] table in a tensor of row_end − row_start rows. The
// forward over one chunk writes only the out rows whose id lies in it (the chunks together
// write each row once); the backward over one chunk adds only its ids, into the chunk's
// gradient. A whole table is the one chunk [0, V).

override WORKGROUP_SIZE: u32 = 256u; // forward: threads per workgroup; backward: threads across D

struct Params {
  count: u32,        // forward: N·D elements; backward: distinct ids in this chunk
  dim: u32,          // D
  vocab: u32,        // V: rows of the whole table
  row_start: u32,    // the chunk holds table rows [row_start, row_end)
  row_end: u32,
  first_unique: u32, // backward: index u of the chunk's first distinct id
  // backward: this dispatch adds positions [window_start, window_start + window_size) of each
  // id's list (all of them, in one dispatch, unless llvmpipe's loop limit asks for several:
  // lib/ops/embedding.ts)
  window_start: u32,
  window_size: u32,
}

@group(0) @binding(0) var<uniform> params: Params;

// ---- forward: one thread per output element -----------------------------------------

@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn embedding_forward(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let i = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  if (i >= params.count) { return; }
  let n = i / params.dim;
  let d = i - n * params.dim;
  let id = min(ids[n], params.vocab - 1u);
  if (id < params.row_start || id >= params.row_end) { return; } // another chunk's row
  out[i] = table[(id - params.row_start) * params.dim + d];
}

// ---- backward: one workgroup per distinct id of the chunk, threads across D -----------

@group(0) @binding(1) var<storage, read> d_out: array<f32>;
@group(0) @binding(2) var<storage, read> unique_ids: array<u32>;
@group(0) @binding(3) var<storage, read> offsets: array<u32>;
@group(0) @binding(4) var<storage, read> positions: array<u32>;
@group(0) @binding(5) var<storage, read_write> d_table: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn embedding_backward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let k = wid.x + wid.y * groups.x;
  if (k >= params.count) { return; }
  let u = params.first_unique + k;
  let row = (unique_ids[u] - params.row_start) * params.dim;
  let first = offsets[u] + params.window_start;
  let end = offsets[u + 1u];
  if (first >= end) { return; } // this id has no positions in the window
  let last = first + min(end - first, params.window_size);
  for (var d = tid; d < params.dim; d += WORKGROUP_SIZE) {
    var acc = 0.0;
    for (var p = first; p < last; p++) { acc += d_out[positions[p] * params.dim + d]; }
    d_table[row + d] += acc;
  }
}
