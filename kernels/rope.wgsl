// Rotary position embedding, Hugging Face "rotate half" layout (Llama/Qwen
// `apply_rotary_pos_emb`). For head dim D, element i < D/2 pairs with i + D/2:
//
//   angle_i      = f32(position) · inv_freq_i          inv_freq_i = 1 / theta^(2i/D), in f32
//   out_i        = x_i · cos(angle_i) − x_{i+D/2} · sin(angle_i)
//   out_{i+D/2}  = x_{i+D/2} · cos(angle_i) + x_i · sin(angle_i)
//
// Backward is the rotation by −angle (the transpose of a rotation): the same kernel with
// `direction` = −1 negates sin.
//
// Shapes: x, out: [B, T, H, D] (D even); positions: [B, T] i32 (explicit per token, so
// left-padded batches and KV-cache decoding work); inv_freq: [D/2] f32.
// One thread per pair (b, t, h, i); the linear index spans x and y of the grid.
//
// Precision. inv_freq comes from the host, rounded to f32 exactly as HF computes it (a
// GPU pow in f32 is off by several ulp, which at position 4096 would already move the angle
// by ~1e-3 rad). The angle is then one f32 product, bit-identical to HF's
// `inv_freq @ position_ids.float()`. Like HF's, it is therefore rounded: its absolute error
// against exact math is up to ulp(angle)/2 ≈ position · 6e-8 rad (2.4e-4 rad at position
// 4096, 8e-3 rad at 131072) — a property of the model's reference implementation, which
// we reproduce rather than "fix". cos/sin of that f32 angle are computed here, not with
// the WGSL builtins: those only promise 2^-11 absolute error on [−π, π] and nothing outside
// (GPU hardware reduces large arguments in f32, losing ~angle · 6e-8). `cos_sin` reduces the
// angle exactly (Cody–Waite) and is accurate to ~1e-7 absolute for |angle| < 2e5, i.e. for
// positions up to ~2e5.

override WORKGROUP_SIZE: u32 = 256u;

struct Params {
  // B · T · H · D/2
  pairs: u32,
  heads: u32,
  half_dim: u32,
  // +1: forward rotation; −1: backward (rotation by −angle).
  direction: f32,
  // rope_qk only (below): k's B · T · Hkv · D/2 and Hkv (0 and 1 for rope)
  k_pairs: u32,
  k_heads: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<i32>;
@group(0) @binding(3) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// Cody–Waite reduction: π/2 split into pieces whose first three have at most 7 significant
// bits, so that j · piece is exact in f32 for |j| < 2^17 (|angle| < 2^17 · π/2 ≈ 205887);
// each subtraction is then exact too, except the last, which rounds once. The pieces sum to
// π/2 within 6e-17. Beyond that range the first products round and accuracy degrades (at
// angle 1e6 the error is ~3e-2) — though by then HF's own f32 angle is off by ~0.06 rad.
const PIO2_1: f32 = 0x1.94p+0;
const PIO2_2: f32 = -0x1.ep-8;
const PIO2_3: f32 = -0x1.2cp-18;
const PIO2_4: f32 = 0x1.110b46p-26;
const TWO_OVER_PI: f32 = 0.63661977236758134;

// (cos(a), sin(a)) for an f32 angle a: a = j·π/2 + r with |r| ≤ π/4, then minimax
// polynomials on r (Cephes sinf/cosf, ~1 ulp) and the quadrant j mod 4.
fn cos_sin(a: f32) -> vec2<f32> {
  let j = round(a * TWO_OVER_PI);
  let r = (((a - j * PIO2_1) - j * PIO2_2) - j * PIO2_3) - j * PIO2_4;
  let z = r * r;
  let s = r + r * z * ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1);
  let c = 1.0 - 0.5 * z + z * z * ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z +
    4.166664568298827e-2);
  switch (i32(j) & 3) {
    case 0: { return vec2<f32>(c, s); }
    case 1: { return vec2<f32>(-s, c); }
    case 2: { return vec2<f32>(-c, -s); }
    default: { return vec2<f32>(s, -c); }
  }
}

// Pair p of a [B, T, H, D] tensor: where its two elements are, and its (cos, ±sin).
struct Pair {
  first: u32, // flat index of element i of its head vector; `second` is i + D/2
  second: u32,
  column: u32, // h·D + i: the first element's column in [N, H·D] (for a bias)
  cos_a: f32,
  sin_a: f32, // sin of the angle, times the direction
}

fn pair_at(p: u32, heads: u32) -> Pair {
  let half_dim = params.half_dim;
  let i = p % half_dim;
  let row = p / half_dim; // (b, t, h) flattened
  let token = row / heads; // (b, t) flattened
  let angle = f32(positions[token]) * inv_freq[i];
  let cs = cos_sin(angle);
  let first = row * 2u * half_dim + i;
  let column = (row % heads) * 2u * half_dim + i;
  return Pair(first, first + half_dim, column, cs.x, params.direction * cs.y);
}

// The rotated pair (a, b) → (a cos − b sin, b cos + a sin).
fn rotated(pair: Pair, a: f32, b: f32) -> vec2<f32> {
  return vec2<f32>(a * pair.cos_a - b * pair.sin_a, b * pair.cos_a + a * pair.sin_a);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn rope(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let p = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  if (p >= params.pairs) { return; }
  let pair = pair_at(p, params.heads);
  let r = rotated(pair, x[pair.first], x[pair.second]);
  out[pair.first] = r.x;
  out[pair.second] = r.y;
}

// ---- rope_qk: a layer's queries and keys in one dispatch -----------------------------------
// q: [B, T, Hq, D] and k: [B, T, Hkv, D] (the same positions), each first plus its projection
// bias [H·D] when HAS_BIAS (Qwen2's q_proj and k_proj biases): out = rope(x + bias), the same
// bits as a bias add, then rope. Threads 0 .. pairs−1 take q's pairs, the next k_pairs k's.

override HAS_BIAS: bool = false;

// bindings 0 .. 4 as above (params; x = q, positions, inv_freq, out = q's output)
@group(0) @binding(5) var<storage, read> k: array<f32>;
@group(0) @binding(6) var<storage, read_write> k_out: array<f32>;
@group(0) @binding(7) var<storage, read> q_bias: array<f32>; // [Hq·D] (without HAS_BIAS: q itself)
@group(0) @binding(8) var<storage, read> k_bias: array<f32>; // [Hkv·D] (without HAS_BIAS: k itself)

// rotated() of (a, b) + (bias_a, bias_b) with HAS_BIAS, of (a, b) without (the bias values
// are then read from the stand-in buffer and dropped).
fn rotated_plus_bias(pair: Pair, ab: vec2<f32>, bias: vec2<f32>) -> vec2<f32> {
  let x = select(ab, ab + bias, HAS_BIAS);
  return rotated(pair, x.x, x.y);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn rope_qk(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let p = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  let half_dim = params.half_dim;
  if (p < params.pairs) {
    let pair = pair_at(p, params.heads);
    let r = rotated_plus_bias(pair, vec2(x[pair.first], x[pair.second]),
      vec2(q_bias[pair.column], q_bias[pair.column + half_dim]));
    out[pair.first] = r.x;
    out[pair.second] = r.y;
  } else if (p < params.pairs + params.k_pairs) {
    let pair = pair_at(p - params.pairs, params.k_heads);
    let r = rotated_plus_bias(pair, vec2(k[pair.first], k[pair.second]),
      vec2(k_bias[pair.column], k_bias[pair.column + half_dim]));
    k_out[pair.first] = r.x;
    k_out[pair.second] = r.y;
  }
}
