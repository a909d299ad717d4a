// Broadcast row bias (the bias of HF's nn.Linear, y = x·Wᵀ + b) and its gradient.
//
//   bias_add (in place):  x[r, c] += bias[c]                        x: [rows, cols], bias: [cols]
//   backward:             dbias[c] (+)= Σ_r dy[r, c]                 dy: [rows, cols], dbias: [cols]
//
// The column sum runs without atomics in two passes, like the norm parameter gradients
// (kernels/norm.wgsl): `bias_grad_partial` gives each thread one column and one chunk of
// `chunk_rows` rows, summed in row order into partial[chunk, c]; `bias_grad_finish` adds the
// chunks in chunk order and writes (or, with accumulate = 1, adds to) dbias. The chunking
// depends only on the shape, so reruns are bit-identical.

// Threads per workgroup of bias_add (one thread per element).
override WORKGROUP_SIZE: u32 = 256u;
// Columns per workgroup in the column-sum passes.
override COLUMN_WORKGROUP_SIZE: u32 = 64u;

struct Params {
  rows: u32,
  cols: u32,
  // Column passes only: rows per chunk, number of chunks, and 1 to add into dbias.
  chunk_rows: u32,
  chunks: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<uniform> params: Params;

// ---- bias_add: x (1, in place), bias (2) -----------------------------------------------
// One thread per element; the linear index spans x and y of the grid (GpuContext.groupsFor).

@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn bias_add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  if (i >= params.rows * params.cols) { return; }
  x[i] = x[i] + bias[i % params.cols];
}

// The same with vec4 (cols a multiple of 4; threads: rows · cols / 4): on lavapipe one vec4
// load or store costs far less than four scalar ones. Same bits.
@group(0) @binding(1) var<storage, read_write> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias4: array<vec4<f32>>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn bias_add4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  let cols4 = params.cols / 4u;
  if (i >= params.rows * cols4) { return; }
  x4[i] = x4[i] + bias4[i % cols4];
}

// ---- bias_grad_partial: dy (1) → partial (2) --------------------------------------------
// Grid: x over columns (COLUMN_WORKGROUP_SIZE per group), y over chunks.

@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;

@compute @workgroup_size(COLUMN_WORKGROUP_SIZE)
fn bias_grad_partial(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  let chunk = gid.y;
  let cols = params.cols;
  if (c >= cols) { return; }
  let first = chunk * params.chunk_rows;
  let last = min(first + params.chunk_rows, params.rows);
  var sum = 0.0;
  for (var r = first; r < last; r++) {
    sum += dy[r * cols + c];
  }
  partial[chunk * cols + c] = sum;
}

// ---- bias_grad_finish: partial (1) → dbias (2) -------------------------------------------
// partial: [chunks, cols] → dbias: [cols], chunks added in order.

@group(0) @binding(1) var<storage, read> chunk_partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> dbias: array<f32>;

@compute @workgroup_size(COLUMN_WORKGROUP_SIZE)
fn bias_grad_finish(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  let cols = params.cols;
  if (c >= cols) { return; }
  var sum = 0.0;
  for (var k = 0u; k < params.chunks; k++) {
    sum += chunk_partial[k * cols + c];
  }
  if (params.accumulate != 0u) {
    dbias[c] = dbias[c] + sum;
  } else {
    dbias[c] = sum;
  }
}
