// Cross-entropy over long rows of logits: target log-probabilities, log-sum-exp, the
// top-k entropy of the RMT spec, and the backward.
//
// Shapes: logits [rows, V] f32, targets [rows] u32; logprob, lse, entropy, d_logprob: [rows].
// z = logits / T with T the temperature (`inv_temperature` = 1/T, T > 0).
//
//   forward:   m_r = max_j logits[r, j],   s_r = Σ_j exp((logits[r, j] − m_r) / T)
//              lse[r]     = m_r / T + log s_r                 (= logsumexp_j z[r, j])
//              logprob[r] = (logits[r, t] − m_r) / T − log s_r   (= z[r, t] − lse[r])
//              with t = min(targets[r], V − 1): the GPU cannot throw on a bad target, so
//              it is clamped; the host validates targets.
//   entropy:   the k largest logits of the row (ties: the smaller index first),
//              q = softmax(z over those k only), entropy[r] = −Σ q log q (nats);
//              with k > V all V logits are used.
//   backward:  d_logits[r, j] = d_logprob[r] · (onehot(t)_j − exp(z[r, j] − lse[r])) / T
//              (d_logprob is the gradient of the loss w.r.t. logprob; 0 gives 0).
//
// Forward: one workgroup per row (rows numbered across x and y of the grid). Each thread
// walks the columns tid, tid + WG, … once, keeping an online (max, sum-exp) pair and, for
// the entropy, a sorted list of its k largest logits (in workgroup memory). The workgroup
// merges the pairs with a fixed binary tree, and the sorted lists with a fixed binary tree
// of merges. Everything is in a fixed order: reruns are bit-identical. Both forward entry
// points run with the same WORKGROUP_SIZE (64, or 32 where workgroup memory is short), so
// their logprob and lse are bit-identical too.
// Backward: one thread per logit (WORKGROUP_SIZE 256).

override WORKGROUP_SIZE: u32 = 64u; // a power of two (the trees halve it)

const MAX_K: u32 = 32u;
const F32_LOWEST: f32 = -3.40282346638528859812e+38f;

struct Params {
  rows: u32,
  vocab: u32,
  inv_temperature: f32,
  k: u32, // top-k size for the entropy, 1..MAX_K
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

// The order of the top-k: larger value first, then smaller index.
fn ranks_before(value: f32, index: u32, other_value: f32, other_index: u32) -> bool {
  return value > other_value || (value == other_value && index < other_index);
}

// ---- forward ---------------------------------------------------------------------------

@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> logprob: array<f32>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;
@group(0) @binding(5) var<storage, read_write> entropy: array<f32>;

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

// Each thread's sorted top-k list (value, column), MAX_K slots apart, plus its length.
// Used by the entropy kernel only, which runs with a smaller WORKGROUP_SIZE (64 or 32) so
// that the lists fit: WORKGROUP_SIZE · MAX_K · 8 bytes.
var<workgroup> list_value: array<f32, WORKGROUP_SIZE * MAX_K>;
var<workgroup> list_index: array<u32, WORKGROUP_SIZE * MAX_K>;
var<workgroup> list_length: array<u32, WORKGROUP_SIZE>;

// Merges thread `src`'s list into thread `dst`'s, keeping the first k in rank order.
fn merge_lists(dst: u32, src: u32, k: u32) {
  let a_base = dst * MAX_K;
  let b_base = src * MAX_K;
  let a_length = list_length[dst];
  let b_length = list_length[src];
  let length = min(k, a_length + b_length);
  var merged_value: array<f32, MAX_K>;
  var merged_index: array<u32, MAX_K>;
  var a = 0u;
  var b = 0u;
  for (var i = 0u; i < length; i++) {
    var take_b = a >= a_length;
    if (!take_b && b < b_length) {
      take_b = ranks_before(list_value[b_base + b], list_index[b_base + b],
                            list_value[a_base + a], list_index[a_base + a]);
    }
    if (take_b) {
      merged_value[i] = list_value[b_base + b];
      merged_index[i] = list_index[b_base + b];
      b += 1u;
    } else {
      merged_value[i] = list_value[a_base + a];
      merged_index[i] = list_index[a_base + a];
      a += 1u;
    }
  }
  for (var i = 0u; i < length; i++) {
    list_value[a_base + i] = merged_value[i];
    list_index[a_base + i] = merged_index[i];
  }
  list_length[dst] = length;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn cross_entropy_forward_entropy(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let row = row_of(wid, groups);
  if (row >= params.rows) { return; } // whole workgroup: uniform
  let base = row * params.vocab;
  let k = min(params.k, MAX_K);

  // One pass over this thread's columns: online lse and its own sorted top k. Columns come
  // in ascending order, so an equal value never displaces an earlier one (smaller index wins).
  let mine = tid * MAX_K;
  var acc = vec2(F32_LOWEST, 0.0);
  var held = 0u;
  var threshold = F32_LOWEST; // the list's k-th value once it is full
  for (var j = tid; j < params.vocab; j += WORKGROUP_SIZE) {
    let x = logits[base + j];
    acc = add_to_lse(acc, x);
    if (held < k || x > threshold) {
      var slot = min(held, k - 1u);
      while (slot > 0u && x > list_value[mine + slot - 1u]) {
        list_value[mine + slot] = list_value[mine + slot - 1u];
        list_index[mine + slot] = list_index[mine + slot - 1u];
        slot -= 1u;
      }
      list_value[mine + slot] = x;
      list_index[mine + slot] = j;
      held = min(held + 1u, k);
      threshold = list_value[mine + k - 1u];
    }
  }
  list_length[tid] = held;
  write_logprob(row, tid, workgroup_lse(tid, acc)); // its barriers also publish the lists

  // The row's top k: a fixed binary tree of sorted-list merges (ties: smaller column first).
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (tid < stride) { merge_lists(tid, tid + stride, k); }
    workgroupBarrier();
  }

  // H = −Σ q log q with q_i = e_i / S, e_i = exp((x_i − x_max) / T), S = Σ e_i:
  // H = log S − Σ e_i (x_i − x_max) / T / S. Summed in rank order.
  if (tid == 0u) {
    let top = list_value[0];
    var total = 0.0;
    var weighted = 0.0;
    for (var i = 0u; i < list_length[0]; i++) {
      let shifted = (list_value[i] - top) * params.inv_temperature;
      let e = exp(shifted);
      total += e;
      if (e > 0.0) { weighted += e * shifted; }
    }
    entropy[row] = log(total) - weighted / total;
  }
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
