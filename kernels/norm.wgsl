// Row normalisations: RMSNorm (Llama, Qwen; also Qwen3's per-head q/k norm) and LayerNorm
// (GPT-2), forward and backward. Every row of x: [rows, dim] is normalised independently.
//
//   RMSNorm:   rstd = 1 / sqrt(mean(x²) + eps)                      rstd: [rows]
//              y    = x · rstd · weight                             y: [rows, dim]
//   backward:  g    = dy · weight,  xhat = x · rstd
//              dx   = rstd · (g − xhat · mean(g · xhat))            dx: [rows, dim]
//              dWeight[c] = Σ_rows dy · xhat                        dWeight: [dim]
//
//   LayerNorm: mean = mean(x),  rstd = 1 / sqrt(mean((x − mean)²) + eps)  (biased variance)
//              xhat = (x − mean) · rstd,  y = xhat · weight + bias
//   backward:  g    = dy · weight
//              dx   = rstd · (g − mean(g) − xhat · mean(g · xhat))
//              dWeight[c] = Σ_rows dy · xhat,   dBias[c] = Σ_rows dy
//
// Row statistics: one workgroup per row; each thread accumulates a strided slice of the row
// in a fixed order, then a workgroup-memory tree reduction (fixed pairing) combines them.
// The row index spans x and y of the grid (GpuContext.groupsFor with one row per group).
//
// Parameter gradients are column sums over rows, done without atomics in two passes:
// `*_partial` gives each thread one column and one chunk of `chunk_rows` rows, summed in
// row order into partial[chunk, column]; `sum_chunks` then adds the chunks in chunk order.
// The chunking depends only on the shape, so reruns are bit-identical.

// Threads per row (a power of two: the tree reduction halves it).
override WORKGROUP_SIZE: u32 = 256u;
// Columns per workgroup in the column-sum passes.
override COLUMN_WORKGROUP_SIZE: u32 = 64u;

struct Params {
  rows: u32,
  dim: u32,
  eps: f32,
  // Column passes only: rows per chunk and number of chunks.
  chunk_rows: u32,
  chunks: u32,
}

@group(0) @binding(0) var<uniform> params: Params;

// ---- row reductions --------------------------------------------------------------------

var<workgroup> scratch: array<f32, WORKGROUP_SIZE>;
var<workgroup> scratch2: array<vec2<f32>, WORKGROUP_SIZE>;

fn row_of(wid: vec3<u32>, groups: vec3<u32>) -> u32 {
  return wid.x + wid.y * groups.x;
}

// Sum of `value` over the workgroup, in a fixed tree order; every thread gets the result.
fn workgroup_sum(value: f32, lid: u32) -> f32 {
  scratch[lid] = value;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) {
      scratch[lid] = scratch[lid] + scratch[lid + stride];
    }
    workgroupBarrier();
  }
  let total = scratch[0];
  workgroupBarrier(); // everyone has read scratch[0] before the next call overwrites it
  return total;
}

// Two sums at once (LayerNorm backward needs Σg and Σg·xhat).
fn workgroup_sum2(value: vec2<f32>, lid: u32) -> vec2<f32> {
  scratch2[lid] = value;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) {
      scratch2[lid] = scratch2[lid] + scratch2[lid + stride];
    }
    workgroupBarrier();
  }
  let total = scratch2[0];
  workgroupBarrier();
  return total;
}

// ---- RMSNorm forward: x (1), weight (2) → y (3), rstd (4) ------------------------------

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> rms_y: array<f32>;
@group(0) @binding(4) var<storage, read_write> rms_rstd: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn rms_norm_forward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = row_of(wid, groups);
  if (row >= params.rows) { return; }
  let dim = params.dim;
  let base = row * dim;
  var sum_sq = 0.0;
  for (var c = lid; c < dim; c += WORKGROUP_SIZE) {
    let v = x[base + c];
    sum_sq += v * v;
  }
  let rstd = inverseSqrt(workgroup_sum(sum_sq, lid) / f32(dim) + params.eps);
  for (var c = lid; c < dim; c += WORKGROUP_SIZE) {
    rms_y[base + c] = x[base + c] * rstd * weight[c];
  }
  if (lid == 0u) { rms_rstd[row] = rstd; }
}

// ---- RMSNorm backward, dx: x (1), weight (2), rstd (3), dy (4) → dx (5) -----------------

@group(0) @binding(3) var<storage, read> rstd_in: array<f32>;
@group(0) @binding(4) var<storage, read> rms_dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> rms_dx: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn rms_norm_backward_dx(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = row_of(wid, groups);
  if (row >= params.rows) { return; }
  let dim = params.dim;
  let base = row * dim;
  let rstd = rstd_in[row];
  var dot = 0.0; // Σ g · xhat
  for (var c = lid; c < dim; c += WORKGROUP_SIZE) {
    dot += rms_dy[base + c] * weight[c] * (x[base + c] * rstd);
  }
  let mean_dot = workgroup_sum(dot, lid) / f32(dim);
  for (var c = lid; c < dim; c += WORKGROUP_SIZE) {
    let g = rms_dy[base + c] * weight[c];
    let xhat = x[base + c] * rstd;
    rms_dx[base + c] = rstd * (g - xhat * mean_dot);
  }
}

// ---- RMSNorm by rows: a thread per row (software kernels) --------------------------------
// The same forward and dx as above with one thread per row, reading vec4 (dim a multiple of
// 4): no tree and no barrier, which on lavapipe cost more than the row itself. A row's sum
// runs over its vec4 chunks in order into a vec4, then (x + y) + (z + w): other last bits
// than the tree's. The row index spans x and y of the grid like the kernels above, with
// ROWS_WORKGROUP rows per workgroup.

override ROWS_WORKGROUP: u32 = 8u;

@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weight4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> rows_y4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> rows_rstd: array<f32>;

fn row_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
  return gid.x + gid.y * groups.x * ROWS_WORKGROUP;
}

/** The sum of a vec4 accumulator's lanes, in a fixed order. */
fn lanes_sum(v: vec4<f32>) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}

@compute @workgroup_size(ROWS_WORKGROUP)
fn rms_norm_forward_rows(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let row = row_index(gid, groups);
  if (row >= params.rows) { return; }
  let n4 = params.dim / 4u;
  let base = row * n4;
  var sum_sq = vec4(0.0);
  for (var c = 0u; c < n4; c++) {
    let v = x4[base + c];
    sum_sq += v * v;
  }
  let rstd = inverseSqrt(lanes_sum(sum_sq) / f32(params.dim) + params.eps);
  for (var c = 0u; c < n4; c++) {
    rows_y4[base + c] = x4[base + c] * rstd * weight4[c];
  }
  rows_rstd[row] = rstd;
}

@group(0) @binding(4) var<storage, read> rows_dy4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> rows_dx4: array<vec4<f32>>;

@compute @workgroup_size(ROWS_WORKGROUP)
fn rms_norm_backward_dx_rows(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let row = row_index(gid, groups);
  if (row >= params.rows) { return; }
  let n4 = params.dim / 4u;
  let base = row * n4;
  let rstd = rstd_in[row];
  var dot = vec4(0.0); // Σ g · xhat
  for (var c = 0u; c < n4; c++) {
    dot += rows_dy4[base + c] * weight4[c] * (x4[base + c] * rstd);
  }
  let mean_dot = lanes_sum(dot) / f32(params.dim);
  for (var c = 0u; c < n4; c++) {
    let g = rows_dy4[base + c] * weight4[c];
    let xhat = x4[base + c] * rstd;
    rows_dx4[base + c] = rstd * (g - xhat * mean_dot);
  }
}

// ---- RMSNorm backward, dWeight partial sums: x (1), rstd (2), dy (3) → partial (4) -------
// Grid: (ceil(dim / COLUMN_WORKGROUP_SIZE), chunks). partial: [chunks, dim].

@group(0) @binding(2) var<storage, read> col_rstd: array<f32>;
@group(0) @binding(3) var<storage, read> col_dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> rms_partial: array<f32>;

@compute @workgroup_size(COLUMN_WORKGROUP_SIZE)
fn rms_norm_dweight_partial(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  let chunk = gid.y;
  let dim = params.dim;
  if (c >= dim) { return; }
  let first = chunk * params.chunk_rows;
  let last = min(first + params.chunk_rows, params.rows);
  var sum = 0.0;
  for (var r = first; r < last; r++) {
    sum += col_dy[r * dim + c] * (x[r * dim + c] * col_rstd[r]);
  }
  rms_partial[chunk * dim + c] = sum;
}

// ---- Column sums of partials: partial (1) → out (2) ------------------------------------
// partial: [chunks, dim] → out: [dim], chunks added in order.

@group(0) @binding(1) var<storage, read> chunk_partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> chunk_total: array<f32>;

@compute @workgroup_size(COLUMN_WORKGROUP_SIZE)
fn sum_chunks(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  let dim = params.dim;
  if (c >= dim) { return; }
  var sum = 0.0;
  for (var k = 0u; k < params.chunks; k++) {
    sum += chunk_partial[k * dim + c];
  }
  chunk_total[c] = sum;
}

// ---- LayerNorm forward: x (1), weight (2), bias (3) → y (4), mean (5), rstd (6) ---------

@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> ln_y: array<f32>;
@group(0) @binding(5) var<storage, read_write> ln_mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> ln_rstd: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn layer_norm_forward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = row_of(wid, groups);
  if (row >= params.rows) { return; }
  let dim = params.dim;
  let base = row * dim;
  var sum = 0.0;
  for (var c = lid; c < dim; c += WORKGROUP_SIZE) {
    sum += x[base + c];
  }
  let mean = workgroup_sum(sum, lid) / f32(dim);
  // Two passes (Σ(x − mean)², not Σx² − mean²): no cancellation when |mean| ≫ std.
  var sum_sq = 0.0;
  for (var c = lid; c < dim; c += WORKGROUP_SIZE) {
    let d = x[base + c] - mean;
    sum_sq += d * d;
  }
  let rstd = inverseSqrt(workgroup_sum(sum_sq, lid) / f32(dim) + params.eps);
  for (var c = lid; c < dim; c += WORKGROUP_SIZE) {
    ln_y[base + c] = (x[base + c] - mean) * rstd * weight[c] + bias[c];
  }
  if (lid == 0u) {
    ln_mean[row] = mean;
    ln_rstd[row] = rstd;
  }
}

// ---- LayerNorm backward, dx: x (1), weight (2), mean (3), rstd (4), dy (5) → dx (6) -----

@group(0) @binding(3) var<storage, read> ln_mean_in: array<f32>;
@group(0) @binding(4) var<storage, read> ln_rstd_in: array<f32>;
@group(0) @binding(5) var<storage, read> ln_dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> ln_dx: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn layer_norm_backward_dx(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = row_of(wid, groups);
  if (row >= params.rows) { return; }
  let dim = params.dim;
  let base = row * dim;
  let mean = ln_mean_in[row];
  let rstd = ln_rstd_in[row];
  var sums = vec2<f32>(0.0); // (Σ g, Σ g · xhat)
  for (var c = lid; c < dim; c += WORKGROUP_SIZE) {
    let g = ln_dy[base + c] * weight[c];
    sums += vec2<f32>(g, g * ((x[base + c] - mean) * rstd));
  }
  let means = workgroup_sum2(sums, lid) / f32(dim);
  for (var c = lid; c < dim; c += WORKGROUP_SIZE) {
    let g = ln_dy[base + c] * weight[c];
    let xhat = (x[base + c] - mean) * rstd;
    ln_dx[base + c] = rstd * (g - means.x - xhat * means.y);
  }
}

// ---- LayerNorm backward, parameter partial sums -----------------------------------------
// x (1), mean (2), rstd (3), dy (4) → dWeight partial (5), dBias partial (6); both
// [chunks, dim]. Grid as for rms_norm_dweight_partial.

@group(0) @binding(2) var<storage, read> col_mean: array<f32>;
@group(0) @binding(3) var<storage, read> ln_col_rstd: array<f32>;
@group(0) @binding(4) var<storage, read> ln_col_dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> dweight_partial: array<f32>;
@group(0) @binding(6) var<storage, read_write> dbias_partial: array<f32>;

@compute @workgroup_size(COLUMN_WORKGROUP_SIZE)
fn layer_norm_dparams_partial(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  let chunk = gid.y;
  let dim = params.dim;
  if (c >= dim) { return; }
  let first = chunk * params.chunk_rows;
  let last = min(first + params.chunk_rows, params.rows);
  var sum_w = 0.0;
  var sum_b = 0.0;
  for (var r = first; r < last; r++) {
    let dy = ln_col_dy[r * dim + c];
    sum_w += dy * ((x[r * dim + c] - col_mean[r]) * ln_col_rstd[r]);
    sum_b += dy;
  }
  dweight_partial[chunk * dim + c] = sum_w;
  dbias_partial[chunk * dim + c] = sum_b;
}
