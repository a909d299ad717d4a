// GRPO's clipped surrogate per generated token, and its gradient with respect to the new
// log-probability: the elementwise part of lib/rmt/grpo.ts clippedSurrogate, on the GPU, so
// that the policy loss needs no readback of log-probabilities (lib/rmt/policy_loss.ts).
//
// Shapes: every array has one entry per logits row, [rows]; coefficients is [rows, 2].
//   new_logprob[r]  log π_θ(token_r)   (the training forward's crossEntropyForward)
//   old_logprob[r]  log π_old(token_r) (from generation)
//   ref_logprob[r]  log π_ref(token_r) (the KL reference; any finite values when β = 0)
//   coefficients[r] = (A, a): the rollout's advantage A and the token's aggregation weight
//                   a ≥ 0 (0 on rows that are not generated tokens: every output is then 0)
//
//   ρ        = exp(new − old)
//   s        = min(ρ·A, clip(ρ, 1 − ε, 1 + ε)·A);  clipped = the clipped term is strictly
//              the smaller one (at a tie the unclipped branch is taken, as on the host)
//   d        = ref − new,  k3 = exp(d) − d − 1
//   loss_term[r]   = −a·s + β·a·k3
//   d_logprob[r]   = a·(clipped ? 0 : −ρ·A) + β·a·(1 − exp(d))     (= ∂loss/∂new_logprob)
//   clip_term[r]   = clipped ? a : 0                                (Σ: the clip fraction)
// One thread per row; the linear index spans x and y of the grid (GpuContext.groupsFor).

override WORKGROUP_SIZE: u32 = 256u;

struct Params {
  rows: u32,
  clip_low: f32,  // 1 − ε
  clip_high: f32, // 1 + ε
  kl_beta: f32,   // β
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> new_logprob: array<f32>;
@group(0) @binding(2) var<storage, read> old_logprob: array<f32>;
@group(0) @binding(3) var<storage, read> ref_logprob: array<f32>;
@group(0) @binding(4) var<storage, read> coefficients: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read_write> d_logprob: array<f32>;
@group(0) @binding(6) var<storage, read_write> loss_term: array<f32>;
@group(0) @binding(7) var<storage, read_write> clip_term: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn grpo_surrogate(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let r = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  if (r >= params.rows) { return; }
  let advantage = coefficients[r].x;
  let weight = coefficients[r].y;
  if (weight == 0.0) {
    d_logprob[r] = 0.0;
    loss_term[r] = 0.0;
    clip_term[r] = 0.0;
    return;
  }
  let new_lp = new_logprob[r];
  let ratio = exp(new_lp - old_logprob[r]);
  let unclipped = ratio * advantage;
  let clipped = clamp(ratio, params.clip_low, params.clip_high) * advantage;
  let clip_active = clipped < unclipped;
  var surrogate = unclipped;
  var d_surrogate = -unclipped;
  var clip = 0.0;
  if (clip_active) {
    surrogate = clipped;
    d_surrogate = 0.0;
    clip = weight;
  }
  var loss = -weight * surrogate;
  var grad = weight * d_surrogate;
  if (params.kl_beta != 0.0) { // β = 0: the reference is not read into the result (no 0·∞)
    let d = ref_logprob[r] - new_lp;
    let exp_d = exp(d);
    loss += params.kl_beta * weight * (exp_d - d - 1.0);
    grad += params.kl_beta * weight * (1.0 - exp_d);
  }
  loss_term[r] = loss;
  d_logprob[r] = grad;
  clip_term[r] = clip;
}
