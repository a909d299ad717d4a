// Activation functions, forward and backward, elementwise on flat f32 arrays.
//
//   silu:        y = x · σ(x)                      dy/dx = σ(x) · (1 + x · σ(−x))
//   swiglu:      y = silu(gate) · up               (Llama/Qwen MLP: down(silu(gate_proj x) · up_proj x))
//                dGate = dy · up · silu'(gate),    dUp = dy · silu(gate)
//   gelu_tanh:   y = 0.5 · x · (1 + tanh(u)),  u = √(2/π) · (x + 0.044715 · x³)
//                  = x · σ(2u)                     ("gelu_pytorch_tanh", GPT-2's "gelu_new")
//                dy/dx = σ(2u) + x · σ(2u) · σ(−2u) · 2u',  u' = √(2/π) · (1 + 3 · 0.044715 · x²)
//   gelu_erf:    y = x · Φ(x),  Φ(x) = 0.5 · erfc(−x/√2)            (exact GELU, "gelu")
//                dy/dx = Φ(x) + x · φ(x),  φ(x) = exp(−x²/2) / √(2π)
//
// Numerically safe for any finite x: σ is computed from exp(−|x|) (never overflows), tanh is
// written as a sigmoid (a naive (e^2u − 1)/(e^2u + 1) is inf/inf = NaN for large u), and
// gelu_tanh's cubic is evaluated on x clamped to ±20, where σ(±2u) is already 0 or 1 in f32
// (so x³ cannot overflow and 0 · inf cannot occur).
//
// Shapes: every tensor has `count` elements (gate, up, dy, dGate, dUp equal). One thread per
// element; the linear index spans x and y of the grid (see GpuContext.groupsFor). swiglu also
// has entries with four elements per thread as vec4 (`*4`, count a multiple of 4): on lavapipe
// one vec4 load or store costs far less than four scalar ones. Same math per element, same bits.

override WORKGROUP_SIZE: u32 = 256u;

struct Params {
  count: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// x for the unary ops, gate for swiglu.
@group(0) @binding(1) var<storage, read> x: array<f32>;

fn linear_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
  return gid.x + gid.y * groups.x * WORKGROUP_SIZE;
}

// ---- scalar math -----------------------------------------------------------------------

// (σ(v), σ(−v)) = (σ(v), 1 − σ(v)), both to full relative precision, from exp(−|v|) ∈ (0, 1].
fn sigmoid_pair(v: f32) -> vec2<f32> {
  let e = exp(-abs(v));
  let big = 1.0 / (1.0 + e); // σ(|v|)
  let small = e * big; // σ(−|v|)
  return select(vec2<f32>(small, big), vec2<f32>(big, small), v >= 0.0);
}

fn silu(v: f32) -> f32 {
  return v * sigmoid_pair(v).x;
}

fn silu_grad(v: f32) -> f32 {
  let s = sigmoid_pair(v);
  return s.x * (1.0 + v * s.y);
}

const SQRT_2_OVER_PI: f32 = 0.79788456080286536;
const GELU_COEFF: f32 = 0.044715;

// 2u for gelu_tanh, on x clamped to ±20 (|2u| > 1000 there: σ is exactly 0 or 1 beyond).
fn gelu_two_u(v: f32) -> f32 {
  let c = clamp(v, -20.0, 20.0);
  return 2.0 * SQRT_2_OVER_PI * (c + GELU_COEFF * c * c * c);
}

fn gelu_tanh(v: f32) -> f32 {
  return v * sigmoid_pair(gelu_two_u(v)).x;
}

fn gelu_tanh_grad(v: f32) -> f32 {
  let s = sigmoid_pair(gelu_two_u(v));
  let c = clamp(v, -20.0, 20.0);
  let two_du = 2.0 * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_COEFF * c * c);
  return s.x + v * s.x * s.y * two_du;
}

// erf(z) for |z| < 0.75 from its Taylor series, (2/√π) Σ (−1)ⁿ z^(2n+1) / (n! (2n + 1)),
// n ≤ 9: truncation error < 3e-11, so only f32 rounding remains (< 1e-7 absolute).
fn erf_small(z: f32) -> f32 {
  let w = z * z;
  let series = 1.0 + w * (-1.0 / 3.0 + w * (1.0 / 10.0 + w * (-1.0 / 42.0 + w * (1.0 / 216.0 +
    w * (-1.0 / 1320.0 + w * (1.0 / 9360.0 + w * (-1.0 / 75600.0 + w * (1.0 / 685440.0 +
    w * (-1.0 / 6894720.0)))))))));
  return 1.1283791670955126 * z * series;
}

// erfc(z) for z ≥ 0: Numerical Recipes' Chebyshev fit `erfcc` (Press et al., 2nd ed., §6.2),
// relative error < 1.2e-7 for every z ≥ 0, so also in the far tail, where 1 − erf(z) would
// cancel (Abramowitz–Stegun 7.1.26, by contrast, has absolute error 1.5e-7: useless in the
// tail). Evaluated in f32: absolute error < 1.3e-7 for z ≥ 0.75 (< 4e-7 near 0, hence
// erf_small there); relative error grows with z² rounding to ~8e-6 at z = 8 (erfc ≈ 1e-29);
// underflows to 0 beyond z ≈ 9.2.
fn erfc_nonnegative(z: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.5 * z);
  let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
    t * (-0.82215223 + t * 0.17087277))))))));
  return t * exp(-z * z + poly);
}

const FRAC_1_SQRT_2: f32 = 0.70710678118654752;
const FRAC_1_SQRT_2PI: f32 = 0.39894228040143268;

// Standard normal CDF Φ(v) = 0.5 · erfc(−v/√2): near 0 as 0.5 + 0.5 · erf; otherwise from
// the tail, used directly for v < 0 (full relative precision) and as 1 − tail for v > 0.
// Absolute error < 1e-7 everywhere.
fn normal_cdf(v: f32) -> f32 {
  let z = v * FRAC_1_SQRT_2;
  if (abs(z) < 0.75) {
    return 0.5 + 0.5 * erf_small(z);
  }
  let tail = 0.5 * erfc_nonnegative(abs(z));
  return select(1.0 - tail, tail, v < 0.0);
}

fn gelu_erf(v: f32) -> f32 {
  return v * normal_cdf(v);
}

fn gelu_erf_grad(v: f32) -> f32 {
  // exp(−v²/2) underflows to 0 for |v| > 14; v² may be inf for |v| > 1.8e19, exp(−inf) = 0.
  return normal_cdf(v) + v * FRAC_1_SQRT_2PI * exp(-0.5 * v * v);
}

// ---- forward, unary: x (1) → y (2) -------------------------------------------------------

@group(0) @binding(2) var<storage, read_write> unary_y: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn silu_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_index(gid, groups);
  if (i >= params.count) { return; }
  unary_y[i] = silu(x[i]);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn gelu_tanh_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_index(gid, groups);
  if (i >= params.count) { return; }
  unary_y[i] = gelu_tanh(x[i]);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn gelu_erf_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_index(gid, groups);
  if (i >= params.count) { return; }
  unary_y[i] = gelu_erf(x[i]);
}

// ---- backward, unary: x (1), dy (2) → dx (3) ---------------------------------------------
// ---- swiglu forward: gate (1), up (2) → y (3) --------------------------------------------

@group(0) @binding(2) var<storage, read> second: array<f32>;
@group(0) @binding(3) var<storage, read_write> binary_out: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn silu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_index(gid, groups);
  if (i >= params.count) { return; }
  binary_out[i] = second[i] * silu_grad(x[i]);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn gelu_tanh_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_index(gid, groups);
  if (i >= params.count) { return; }
  binary_out[i] = second[i] * gelu_tanh_grad(x[i]);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn gelu_erf_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_index(gid, groups);
  if (i >= params.count) { return; }
  binary_out[i] = second[i] * gelu_erf_grad(x[i]);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn swiglu_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_index(gid, groups);
  if (i >= params.count) { return; }
  binary_out[i] = silu(x[i]) * second[i];
}

// ---- swiglu backward: gate (1), up (2), dy (3) → dGate (4), dUp (5) ----------------------

@group(0) @binding(3) var<storage, read> swiglu_dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> d_gate: array<f32>;
@group(0) @binding(5) var<storage, read_write> d_up: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn swiglu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_index(gid, groups);
  if (i >= params.count) { return; }
  let gate = x[i];
  let dy = swiglu_dy[i];
  d_gate[i] = dy * second[i] * silu_grad(gate);
  d_up[i] = dy * silu(gate);
}

// ---- swiglu with vec4 (count a multiple of 4; threads: count / 4) ------------------------

@group(0) @binding(1) var<storage, read> gate4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> up4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y4: array<vec4<f32>>;

fn silu4(v: vec4<f32>) -> vec4<f32> {
  return vec4(silu(v.x), silu(v.y), silu(v.z), silu(v.w));
}

fn silu_grad4(v: vec4<f32>) -> vec4<f32> {
  return vec4(silu_grad(v.x), silu_grad(v.y), silu_grad(v.z), silu_grad(v.w));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn swiglu_forward4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_index(gid, groups);
  if (i >= params.count / 4u) { return; }
  y4[i] = silu4(gate4[i]) * up4[i];
}

@group(0) @binding(3) var<storage, read> dy4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> d_gate4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> d_up4: array<vec4<f32>>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn swiglu_backward4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_index(gid, groups);
  if (i >= params.count / 4u) { return; }
  let gate = gate4[i];
  let dy = dy4[i];
  d_gate4[i] = dy * up4[i] * silu_grad4(gate);
  d_up4[i] = dy * silu4(gate);
}
