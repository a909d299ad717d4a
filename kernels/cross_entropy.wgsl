// Cross-entropy over long rows of logits: target log-probabilities, log-sum-exp, and the
// backward. (The top-k entropy of the RMT spec is kernels/topk_entropy.wgsl.)
//
// Shapes: logits [rows, V] f32, targets [rows] u32; logprob, lse, d_logprob: [rows].
// z = logits / T with T the temperature (`inv_temperature` = 1/T, T > 0).
//
//   forward:   m_r = max_j logits[r, j],   s_r = Σ_j exp((logits[r, j] − m_r) / T)
//              lse[r]     = m_r / T + log s_r                 (= logsumexp_j z[r, j])
//              logprob[r] = (logits[r, t] − m_r) / T − log s_r   (= z[r, t] − lse[r])
//              with t = min(targets[r], V − 1): the GPU cannot throw on a bad target, so
//              it is clamped; the host validates targets.
//   backward:  d_logits[r, j] = d_logprob[r] · (onehot(t)_j − exp(z[r, j] − lse[r])) / T
//              (d_logprob is the gradient of the loss w.r.t. logprob; 0 gives 0).
//
// Forward: one workgroup per row (rows numbered across x and y of the grid). Each thread
// walks the columns tid, tid + WG, … once, keeping an online (max, sum-exp) pair; the
// workgroup merges the pairs with a fixed binary tree. Everything is in a fixed order:
// reruns are bit-identical. The forward runs with WORKGROUP_SIZE 64.
// Backward: one thread per logit (WORKGROUP_SIZE 256).

override WORKGROUP_SIZE: u32 = 64u; // a power of two (the trees halve it)

const F32_LOWEST: f32 = -3.40282346638528859812e+38f;

struct Params {
  rows: u32,
  vocab: u32,
  inv_temperature: f32,
}

@group(0) @binding(0) var<uniform> params: Params;

// Per-thread online log-sum-exp partials.
var<workgroup> tree_max: array<f32, WORKGROUP_SIZE>;
var<workgroup> tree_sum: array<f32, WORKGROUP_SIZE>;

fn row_of(wid: vec3<u32>, groups: vec3<u32>) -> u32 {
  return wid.x + wid.y * groups.x;
}

// Merges two (max, Σ exp((x − max)/T)) pairs; a pair with sum 0 holds no element.
fn merge_lse(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  if (b.y == 0.0) { return a; }
  if (a.y == 0.0) { return b; }
  let m = max(a.x, b.x);
  let inv_t = params.inv_temperature;
  return vec2(m, a.y * exp((a.x - m) * inv_t) + b.y * exp((b.x - m) * inv_t));
}

// The row's (max, sum-exp) from every thread's pair, by a fixed tree. Uniform control flow.
fn workgroup_lse(tid: u32, local: vec2<f32>) -> vec2<f32> {
  tree_max[tid] = local.x;
  tree_sum[tid] = local.y;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (tid < stride) {
      let merged = merge_lse(
        vec2(tree_max[tid], tree_sum[tid]),
        vec2(tree_max[tid + stride], tree_sum[tid + stride]),
      );
      tree_max[tid] = merged.x;
      tree_sum[tid] = merged.y;
    }
    workgroupBarrier();
  }
  return vec2(tree_max[0], tree_sum[0]);
}

// ---- forward ---------------------------------------------------------------------------

@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> logprob: array<f32>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;

// One step of a thread's online log-sum-exp.
fn add_to_lse(acc: vec2<f32>, x: f32) -> vec2<f32> {
  if (acc.y == 0.0) { return vec2(x, 1.0); }
  if (x > acc.x) { return vec2(x, acc.y * exp((acc.x - x) * params.inv_temperature) + 1.0); }
  return vec2(acc.x, acc.y + exp((x - acc.x) * params.inv_temperature));
}

// Writes lse and logprob for `row` (thread 0) from the row's merged (max, sum-exp) pair.
fn write_logprob(row: u32, tid: u32, row_lse: vec2<f32>) {
  if (tid != 0u) { return; }
  let t = min(targets[row], params.vocab - 1u);
  let log_sum = log(row_lse.y);
  let inv_t = params.inv_temperature;
  lse[row] = row_lse.x * inv_t + log_sum;
  logprob[row] = (logits[row * params.vocab + t] - row_lse.x) * inv_t - log_sum;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn cross_entropy_forward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let row = row_of(wid, groups);
  if (row >= params.rows) { return; } // whole workgroup: uniform
  let base = row * params.vocab;
  var acc = vec2(F32_LOWEST, 0.0);
  for (var j = tid; j < params.vocab; j += WORKGROUP_SIZE) { acc = add_to_lse(acc, logits[base + j]); }
  write_logprob(row, tid, workgroup_lse(tid, acc));
}

// ---- backward --------------------------------------------------------------------------

@group(0) @binding(1) var<storage, read> logits_in: array<f32>;
@group(0) @binding(2) var<storage, read> targets_in: array<u32>;
@group(0) @binding(3) var<storage, read> lse_in: array<f32>;
@group(0) @binding(4) var<storage, read> d_logprob: array<f32>;
@group(0) @binding(5) var<storage, read_write> d_logits: array<f32>;

fn logit_gradient(i: u32, x: f32) -> f32 {
  let row = i / params.vocab;
  let j = i - row * params.vocab;
  let g = d_logprob[row];
  let p = exp(x * params.inv_temperature - lse_in[row]);
  let hit = select(0.0, 1.0, j == min(targets_in[row], params.vocab - 1u));
  return g * (hit - p) * params.inv_temperature;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn cross_entropy_backward(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let i = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  if (i >= params.rows * params.vocab) { return; }
  d_logits[i] = logit_gradient(i, logits_in[i]);
}

// In place: the logits buffer is overwritten with d_logits (saves a [rows, V] buffer).
@group(0) @binding(1) var<storage, read_write> logits_inout: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn cross_entropy_backward_in_place(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let i = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  if (i >= params.rows * params.vocab) { return; }
  logits_inout[i] = logit_gradient(i, logits_inout[i]);
}
