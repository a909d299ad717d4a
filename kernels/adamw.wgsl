// AdamW (torch.optim.AdamW semantics) and global-norm gradient clipping, with no readback.
//
// Global gradient norm over a list of gradient tensors g_0 … g_{n-1}:
//   sumsq_partials  (one dispatch per gradient tensor g of `count` elements, G workgroups):
//       partials[offset + w] = Σ_{i in workgroup w's share of g} g[i]²
//     Workgroup w's share is i = w·WG + lid + k·G·WG (k = 0, 1, …); each thread sums its share
//     in index order, then the workgroup adds the WG thread sums with a fixed tree.
//   norm_finalize   (one workgroup):  norm = [S, sqrt(S)],  S = Σ_j partials[j]
//     summed the same way (thread-strided, then a fixed tree). G depends only on `count`, so the
//     whole reduction order depends only on the tensor sizes: reruns are bit-identical.
//   clip_factor     (one thread):     clip = [scale, apply]
//     apply = 1 if sqrt(S) is finite, else 0 (the optimizer step becomes a no-op);
//     scale = min(1, max_norm / (sqrt(S) + 1e-6))  (torch.nn.utils.clip_grad_norm_), 0 if !apply.
//
// AdamW step on one parameter tensor (param, grad, m, v: [count], updated in place), exactly
// PyTorch's single-tensor AdamW with the host-side scalars
//   decay = 1 − lr·wd,  step_size = lr / (1 − β1^t),  bc2_sqrt = sqrt(1 − β2^t):
//   g  = grad · clip.scale              (adamw_step_clipped only; a no-op when clip.apply == 0)
//   p  = p · decay                      (decoupled weight decay)
//   m  = β1·m + (1 − β1)·g
//   v  = β2·v + (1 − β2)·g²
//   p  = p − step_size · m / (sqrt(v) / bc2_sqrt + eps)
// which is p − lr·m̂/(sqrt(v̂) + eps) with m̂ = m/(1 − β1^t), v̂ = v/(1 − β2^t).
// A thread per element (adamw_step*) or per 4 elements as vec4 (adamw_step4*, when the count
// is a multiple of 4); the thread index spans x and y of the grid (GpuContext.groupsFor).

override WORKGROUP_SIZE: u32 = 256u; // a power of two (the tree reductions halve it)

// ---- global gradient norm ---------------------------------------------------------------

struct PartialParams {
  count: u32, // elements of this gradient tensor
  offset: u32, // where its G partial sums go in `partials`
}

@group(0) @binding(0) var<uniform> partial_params: PartialParams;
@group(0) @binding(1) var<storage, read> grad_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

var<workgroup> tree: array<f32, WORKGROUP_SIZE>;

// Sum of `value` over the workgroup, fixed tree order; the result is valid in thread 0.
fn workgroup_sum(lid: u32, value: f32) -> f32 {
  tree[lid] = value;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      tree[lid] += tree[lid + stride];
    }
    workgroupBarrier();
  }
  return tree[0];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn sumsq_partials(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let stride = groups.x * WORKGROUP_SIZE;
  var acc = 0.0;
  for (var i = wid.x * WORKGROUP_SIZE + lid; i < partial_params.count; i += stride) {
    let g = grad_in[i];
    acc += g * g;
  }
  let total = workgroup_sum(lid, acc);
  if (lid == 0u) {
    partials[partial_params.offset + wid.x] = total;
  }
}

struct FinalizeParams {
  partial_count: u32,
}

@group(0) @binding(0) var<uniform> finalize_params: FinalizeParams;
@group(0) @binding(1) var<storage, read> partials_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> norm_out: array<f32>; // [2]: sumsq, norm

@compute @workgroup_size(WORKGROUP_SIZE)
fn norm_finalize(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var i = lid; i < finalize_params.partial_count; i += WORKGROUP_SIZE) {
    acc += partials_in[i];
  }
  let sumsq = workgroup_sum(lid, acc);
  if (lid == 0u) {
    norm_out[0] = sumsq;
    norm_out[1] = sqrt(sumsq);
  }
}

struct ClipParams {
  max_norm: f32,
  enabled: u32, // 0: scale stays 1 (only the finiteness check applies)
}

@group(0) @binding(0) var<uniform> clip_params: ClipParams;
@group(0) @binding(1) var<storage, read> norm_in: array<f32>; // [2]: sumsq, norm
@group(0) @binding(2) var<storage, read_write> clip_out: array<f32>; // [2]: scale, apply

// Finite test on the bits: NaN and ±Inf have an all-ones exponent. (WGSL has no isNan, and
// compilers may assume float comparisons never see NaN.)
fn is_finite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

@compute @workgroup_size(1)
fn clip_factor() {
  let norm = norm_in[1];
  if (!is_finite(norm)) {
    clip_out[0] = 0.0;
    clip_out[1] = 0.0;
    return;
  }
  var scale = 1.0;
  if (clip_params.enabled != 0u) {
    scale = min(1.0, clip_params.max_norm / (norm + 1e-6));
  }
  clip_out[0] = scale;
  clip_out[1] = 1.0;
}

// ---- AdamW step ---------------------------------------------------------------------------

struct AdamParams {
  count: u32,
  decay: f32, // 1 − lr·weight_decay
  beta1: f32,
  beta2: f32,
  one_minus_beta1: f32,
  one_minus_beta2: f32,
  step_size: f32, // lr / (1 − β1^t)
  bc2_sqrt: f32, // sqrt(1 − β2^t)
  eps: f32,
}

@group(0) @binding(0) var<uniform> adam: AdamParams;
@group(0) @binding(5) var<storage, read> clip: array<f32>; // [2]: scale, apply

fn linear_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
  return gid.x + gid.y * groups.x * WORKGROUP_SIZE;
}

/** The new param, m and v. */
struct Updated {
  p: vec4<f32>,
  m: vec4<f32>,
  v: vec4<f32>,
}

/** The update of up to four elements, each on its own (the same math for both entry pairs). */
fn adamw_update(p: vec4<f32>, g: vec4<f32>, m: vec4<f32>, v: vec4<f32>) -> Updated {
  let decayed = p * adam.decay;
  let m_new = adam.beta1 * m + adam.one_minus_beta1 * g;
  let v_new = adam.beta2 * v + adam.one_minus_beta2 * g * g;
  let p_new = decayed - adam.step_size * m_new / (sqrt(v_new) / adam.bc2_sqrt + adam.eps);
  return Updated(p_new, m_new, v_new);
}

/** Whether adamw_step*_clipped applies the step (a non-finite norm skips it entirely). */
fn clip_applies() -> bool {
  return clip[1] != 0.0;
}

// One element per thread (any count).
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> exp_avg: array<f32>; // m
@group(0) @binding(4) var<storage, read_write> exp_avg_sq: array<f32>; // v

fn step_one(i: u32, scale: f32) {
  let u = adamw_update(vec4(param[i]), vec4(grad[i] * scale), vec4(exp_avg[i]), vec4(exp_avg_sq[i]));
  param[i] = u.p.x;
  exp_avg[i] = u.m.x;
  exp_avg_sq[i] = u.v.x;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn adamw_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_index(gid, groups);
  if (i >= adam.count) { return; }
  step_one(i, 1.0);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn adamw_step_clipped(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let i = linear_index(gid, groups);
  if (i >= adam.count || !clip_applies()) { return; }
  step_one(i, clip[0]);
}

// Four elements per thread, as vec4 (count a multiple of 4): on lavapipe one vec4 load or store
// costs far less than four scalar ones (a storage access is a loop over the SIMD lanes), which
// made the step ~2× faster. Same math, same bits.
@group(0) @binding(1) var<storage, read_write> param4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> grad4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> exp_avg4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> exp_avg_sq4: array<vec4<f32>>;

fn step_four(i: u32, scale: f32) {
  let u = adamw_update(param4[i], grad4[i] * scale, exp_avg4[i], exp_avg_sq4[i]);
  param4[i] = u.p;
  exp_avg4[i] = u.m;
  exp_avg_sq4[i] = u.v;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn adamw_step4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_index(gid, groups);
  if (i >= adam.count / 4u) { return; }
  step_four(i, 1.0);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn adamw_step4_clipped(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let i = linear_index(gid, groups);
  if (i >= adam.count / 4u || !clip_applies()) { return; }
  step_four(i, clip[0]);
}
