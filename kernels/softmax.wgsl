// Row softmax with temperature, forward and backward.
//
//   forward:   y[r, j]  = exp((x[r, j] − m_r) / T) / Σ_i exp((x[r, i] − m_r) / T),
//              m_r = max_i x[r, i]   (subtracting the max keeps exp ≤ 1: no overflow)
//   backward:  dx[r, j] = y[r, j] · (dy[r, j] − Σ_i dy[r, i] · y[r, i]) / T
//
// Shapes: x, y, dy, dx: [rows, n]. `inv_temperature` is 1/T (T > 0).
// One workgroup per row (rows numbered across x and y of the grid, see
// GpuContext.groupsFor). Each thread walks the columns tid, tid + WG, … in order; the
// workgroup combines the per-thread values with a fixed binary tree, so reruns are
// bit-identical.

override WORKGROUP_SIZE: u32 = 256u; // a power of two (the tree halves it)

const F32_LOWEST: f32 = -3.40282346638528859812e+38f;

struct Params {
  rows: u32,
  n: u32,
  inv_temperature: f32,
}

@group(0) @binding(0) var<uniform> params: Params;

var<workgroup> scratch: array<f32, WORKGROUP_SIZE>;

fn row_of(wid: vec3<u32>, groups: vec3<u32>) -> u32 {
  return wid.x + wid.y * groups.x;
}

// The workgroup's sum (or max) of one value per thread, by a fixed tree. Call from uniform
// control flow; `scratch` is free again when it returns.
fn tree_sum(tid: u32, value: f32) -> f32 {
  scratch[tid] = value;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (tid < stride) { scratch[tid] += scratch[tid + stride]; }
    workgroupBarrier();
  }
  let total = scratch[0];
  workgroupBarrier();
  return total;
}

fn tree_max(tid: u32, value: f32) -> f32 {
  scratch[tid] = value;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (tid < stride) { scratch[tid] = max(scratch[tid], scratch[tid + stride]); }
    workgroupBarrier();
  }
  let total = scratch[0];
  workgroupBarrier();
  return total;
}

// ---- forward: x → y ----------------------------------------------------------------

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_forward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let row = row_of(wid, groups);
  if (row >= params.rows) { return; } // whole workgroup: uniform
  let base = row * params.n;
  let inv_t = params.inv_temperature;

  var local_max = F32_LOWEST;
  for (var j = tid; j < params.n; j += WORKGROUP_SIZE) { local_max = max(local_max, x[base + j]); }
  let row_max = tree_max(tid, local_max);

  var local_sum = 0.0;
  for (var j = tid; j < params.n; j += WORKGROUP_SIZE) {
    local_sum += exp((x[base + j] - row_max) * inv_t);
  }
  let total = tree_sum(tid, local_sum);

  for (var j = tid; j < params.n; j += WORKGROUP_SIZE) {
    y[base + j] = exp((x[base + j] - row_max) * inv_t) / total;
  }
}

// ---- backward: (y, dy) → dx ----------------------------------------------------------

@group(0) @binding(1) var<storage, read> y_in: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_backward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let row = row_of(wid, groups);
  if (row >= params.rows) { return; } // whole workgroup: uniform
  let base = row * params.n;

  var local_dot = 0.0;
  for (var j = tid; j < params.n; j += WORKGROUP_SIZE) { local_dot += dy[base + j] * y_in[base + j]; }
  let dot = tree_sum(tid, local_dot);

  for (var j = tid; j < params.n; j += WORKGROUP_SIZE) {
    dx[base + j] = y_in[base + j] * (dy[base + j] - dot) * params.inv_temperature;
  }
}
