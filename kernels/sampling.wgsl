// Sampling the next token of every row from logits [rows, V], on the GPU, with a counter-based
// RNG: no readback, and a row's draw does not depend on the batch it is drawn in.
//
// philox_uniforms (one thread per row r):
//   uniforms[r] = (x >> 8) · 2^-24,   x = Philox4x32-10(counter = (first_row + r, step, 0, 0),
//                                                      key = (seed_lo, seed_hi)).word0
//   a uniform in [0, 1) with 24 random bits (exactly representable in f32).
//
// sample_rows (one workgroup per row), logits [rows, V], uniforms [rows] → ids [rows] u32,
// logprobs [rows] f32. With T the temperature, s_j = x_j / T and w_j = exp(s_j − max s):
//   T == 0:   ids = argmax_j x_j (ties → smallest j), logprobs = 0 (greedy is a point mass).
//   T  > 0:   the kept set K, applied in Hugging Face's order:
//     top-k  (0 < k < V):  keep x_j ≥ τ_k, τ_k the k-th largest logit (ties at τ_k all kept);
//     top-p  (p < 1):      over the top-k-kept tokens, keep j iff the mass of kept tokens with a
//                          strictly larger logit is < p·Σ_kept w (ties all kept; the largest
//                          token always is) — the smallest top set whose mass is ≥ p.
//     draw:  the first index j in index order with Σ_{i ≤ j, i in K} w_i > u · Σ_{i in K} w_i
//            (inverse CDF of the renormalised kept distribution).
//     logprobs = s_id − max s − log Σ_j exp(s_j − max s) = log softmax(x / T)[id]: under the
//                temperature-scaled FULL softmax, before top-k/top-p renormalisation.
//
// How, per row (every sum below is thread-strided then a fixed tree, so reruns are bit-exact):
//   1. argmax sweep (keys, ties → smaller index): the greedy id, and max s.
//   2. sum sweep: Σ_j w_j (for logprobs; also the kept mass when no top-k).
//   3. top-k: radix select of τ_k on order-preserving u32 keys of the logits: 4 passes of 8-bit
//      digits, counting with integer atomics into a 256-bin histogram (counts are exact, so the
//      result does not depend on the order of the atomics); then a sum sweep for Σ_kept w.
//   4. top-p: radix search of the key threshold κ = min{κ : Σ_{kept, key > κ} w < p·Σ_kept w},
//      4 bits per sweep (8 passes); each thread accumulates the mass of its elements per digit
//      into 16 private bins, and the bins are reduced in a fixed order (no float atomics).
//   5. draw: thread t sums kept w over the contiguous chunk [t·C, (t+1)·C); thread 0 walks the
//      chunk sums, then the chosen chunk, in index order.
// Logits must not be NaN; -Inf logits are allowed (never drawn while a finite logit exists).

override WORKGROUP_SIZE: u32 = 256u; // threads per row: a power of two, 8 … 256 (lavapipe: see SWEEPS in lib/ops/sampling.ts)
// top-p's per-digit partial sums: 16 digits × SEGMENTS segments of SEGMENT_THREADS thread values.
override SEGMENTS: u32 = max(WORKGROUP_SIZE / 16u, 1u);
override SEGMENT_THREADS: u32 = WORKGROUP_SIZE / SEGMENTS;

// ---- the counter-based RNG -----------------------------------------------------------------

// The 64-bit product a·b as (high word, low word), from 16-bit halves (WGSL has no u64).
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
  let a_lo = a & 0xffffu;
  let a_hi = a >> 16u;
  let b_lo = b & 0xffffu;
  let b_hi = b >> 16u;
  let lo_lo = a_lo * b_lo;
  let lo_hi = a_lo * b_hi;
  let hi_lo = a_hi * b_lo;
  let carry = (lo_lo >> 16u) + (lo_hi & 0xffffu) + (hi_lo & 0xffffu);
  let hi = a_hi * b_hi + (lo_hi >> 16u) + (hi_lo >> 16u) + (carry >> 16u);
  return vec2<u32>(hi, a * b);
}

// Philox4x32-10 (Salmon et al., SC'11; Random123's philox4x32).
fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = counter;
  var k = key;
  for (var r = 0u; r < 10u; r++) {
    if (r > 0u) {
      k += vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
    }
    let p0 = mulhilo(0xD2511F53u, c.x);
    let p1 = mulhilo(0xCD9E8D57u, c.z);
    c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
  }
  return c;
}

struct UniformParams {
  rows: u32,
  first_row: u32,
  step: u32,
  seed_lo: u32,
  seed_hi: u32,
}

@group(0) @binding(0) var<uniform> rng: UniformParams;
@group(0) @binding(1) var<storage, read_write> uniforms_out: array<f32>;

@compute @workgroup_size(64)
fn philox_uniforms(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let r = gid.x + gid.y * groups.x * 64u;
  if (r >= rng.rows) { return; }
  let bits = philox4x32_10(vec4<u32>(rng.first_row + r, rng.step, 0u, 0u), vec2<u32>(rng.seed_lo, rng.seed_hi));
  uniforms_out[r] = f32(bits.x >> 8u) * (1.0 / 16777216.0);
}

// ---- sampling ------------------------------------------------------------------------------

struct SampleParams {
  rows: u32,
  vocab: u32,
  temperature: f32, // 0: greedy
  top_k: u32, // 0: off (the host also maps k >= V to 0)
  top_p: f32, // 1: off
}

@group(0) @binding(0) var<uniform> params: SampleParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>; // [rows, vocab]
@group(0) @binding(2) var<storage, read> uniforms: array<f32>; // [rows]
@group(0) @binding(3) var<storage, read_write> ids: array<u32>; // [rows]
@group(0) @binding(4) var<storage, read_write> logprobs: array<f32>; // [rows]

var<workgroup> sum_tree: array<f32, WORKGROUP_SIZE>;
var<workgroup> key_tree: array<u32, WORKGROUP_SIZE>;
var<workgroup> index_tree: array<u32, WORKGROUP_SIZE>;
var<workgroup> histogram: array<atomic<u32>, 256>; // top-k digit counts
var<workgroup> bin_mass: array<f32, 16u * WORKGROUP_SIZE>; // top-p: [digit][thread]
var<workgroup> segment_mass: array<f32, 16u * SEGMENTS>; // top-p: [digit][segment]
var<workgroup> chunk_mass: array<f32, WORKGROUP_SIZE>; // draw: kept mass per thread chunk
var<workgroup> found_prefix: u32; // thread 0 → all: radix search results
var<workgroup> found_rank: u32;
var<workgroup> found_mass: f32;

const NONE: u32 = 0xffffffffu;

// Order-preserving map of a float to u32: a < b ⇔ key(a) < key(b) for non-NaN floats
// (−0 is mapped to +0 first, so equal floats have equal keys).
fn order_key(x: f32) -> u32 {
  var b = bitcast<u32>(x);
  if (b == 0x80000000u) { b = 0u; }
  if ((b & 0x80000000u) != 0u) { return ~b; }
  return b | 0x80000000u;
}

// Unnormalised probability of a logit under temperature T, relative to the row's max.
fn weight(x: f32, max_scaled: f32) -> f32 {
  return exp(x / params.temperature - max_scaled);
}

// Workgroup sum, fixed tree order; every thread gets the total.
fn workgroup_sum(lid: u32, value: f32) -> f32 {
  sum_tree[lid] = value;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { sum_tree[lid] += sum_tree[lid + stride]; }
    workgroupBarrier();
  }
  let total = workgroupUniformLoad(&sum_tree[0]);
  workgroupBarrier(); // sum_tree may be rewritten right after
  return total;
}

// (key, index) a beats (key, index) b: larger key, or equal key and smaller index.
fn beats(key_a: u32, index_a: u32, key_b: u32, index_b: u32) -> bool {
  return key_a > key_b || (key_a == key_b && index_a < index_b);
}

// Index of the largest logit of the row (ties → smallest index); every thread gets it.
fn row_argmax(lid: u32, base: u32, vocab: u32) -> u32 {
  var best_key = 0u;
  var best_index = NONE;
  for (var j = lid; j < vocab; j += WORKGROUP_SIZE) {
    let key = order_key(logits[base + j]);
    if (beats(key, j, best_key, best_index)) {
      best_key = key;
      best_index = j;
    }
  }
  key_tree[lid] = best_key;
  index_tree[lid] = best_index;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      let other_key = key_tree[lid + stride];
      let other_index = index_tree[lid + stride];
      if (beats(other_key, other_index, key_tree[lid], index_tree[lid])) {
        key_tree[lid] = other_key;
        index_tree[lid] = other_index;
      }
    }
    workgroupBarrier();
  }
  let best = workgroupUniformLoad(&index_tree[0]);
  workgroupBarrier();
  return best;
}

// Σ w_j over the tokens whose key is ≥ threshold (threshold 0: all tokens).
fn kept_mass(lid: u32, base: u32, vocab: u32, max_scaled: f32, threshold: u32) -> f32 {
  var acc = 0.0;
  for (var j = lid; j < vocab; j += WORKGROUP_SIZE) {
    let x = logits[base + j];
    if (order_key(x) >= threshold) { acc += weight(x, max_scaled); }
  }
  return workgroup_sum(lid, acc);
}

// The key of the k-th largest logit (1 ≤ k ≤ vocab): radix select, 8 bits per sweep.
fn top_k_threshold(lid: u32, base: u32, vocab: u32, k: u32) -> u32 {
  var prefix = 0u; // the high digits found so far
  var mask = 0u; // which bits of prefix are decided
  var rank = k; // the wanted key is the rank-th largest among keys matching prefix
  for (var sweep = 0u; sweep < 4u; sweep++) {
    let shift = 24u - 8u * sweep;
    for (var b = lid; b < 256u; b += WORKGROUP_SIZE) { atomicStore(&histogram[b], 0u); }
    workgroupBarrier();
    for (var j = lid; j < vocab; j += WORKGROUP_SIZE) {
      let key = order_key(logits[base + j]);
      if ((key & mask) == prefix) { atomicAdd(&histogram[(key >> shift) & 255u], 1u); }
    }
    workgroupBarrier();
    if (lid == 0u) {
      // The largest digit d with (count of matching keys with digit ≥ d) ≥ rank.
      var digit = 255u;
      var above = 0u;
      loop {
        let count = atomicLoad(&histogram[digit]);
        if (above + count >= rank || digit == 0u) { break; }
        above += count;
        digit -= 1u;
      }
      found_prefix = prefix | (digit << shift);
      found_rank = rank - above;
    }
    prefix = workgroupUniformLoad(&found_prefix);
    rank = workgroupUniformLoad(&found_rank);
    mask |= 255u << shift;
  }
  return prefix;
}

// The smallest key κ with Σ_{key_j > κ, key_j ≥ k_threshold} w_j < goal: tokens with key ≥ κ
// form the nucleus. Radix search, 4 bits per sweep; invariant: the mass above the current key
// range (`above`) is < goal, so the top digit of the range always qualifies.
fn top_p_threshold(
  lid: u32, base: u32, vocab: u32, max_scaled: f32, k_threshold: u32, goal: f32,
) -> u32 {
  var prefix = 0u;
  var mask = 0u;
  var above = 0.0;
  for (var sweep = 0u; sweep < 8u; sweep++) {
    let shift = 28u - 4u * sweep;
    var digit_mass = array<f32, 16>();
    for (var j = lid; j < vocab; j += WORKGROUP_SIZE) {
      let x = logits[base + j];
      let key = order_key(x);
      if (key >= k_threshold && (key & mask) == prefix) {
        let digit = (key >> shift) & 15u;
        digit_mass[digit] += weight(x, max_scaled);
      }
    }
    for (var d = 0u; d < 16u; d++) { bin_mass[d * WORKGROUP_SIZE + lid] = digit_mass[d]; }
    workgroupBarrier();
    // Fixed-order reduction: slot (digit d, segment s) sums SEGMENT_THREADS consecutive thread
    // values (16 from 16 threads up, one slot per thread; at 8 threads all 8, two slots each) …
    for (var slot = lid; slot < 16u * SEGMENTS; slot += WORKGROUP_SIZE) {
      let digit_of_slot = slot / SEGMENTS;
      let segment = slot % SEGMENTS;
      var partial = 0.0;
      for (var i = 0u; i < SEGMENT_THREADS; i++) {
        partial += bin_mass[digit_of_slot * WORKGROUP_SIZE + segment * SEGMENT_THREADS + i];
      }
      segment_mass[slot] = partial;
    }
    workgroupBarrier();
    // … and thread 0 adds the segments of each digit, from the top digit down.
    if (lid == 0u) {
      var digit = 15u;
      var mass_above = above;
      loop {
        if (digit == 0u) { break; }
        var bin = 0.0;
        for (var s = 0u; s < SEGMENTS; s++) { bin += segment_mass[digit * SEGMENTS + s]; }
        if (mass_above + bin >= goal) { break; }
        mass_above += bin;
        digit -= 1u;
      }
      found_prefix = prefix | (digit << shift);
      found_mass = mass_above;
    }
    prefix = workgroupUniformLoad(&found_prefix);
    above = workgroupUniformLoad(&found_mass);
    mask |= 15u << shift;
  }
  return prefix;
}

// Inverse-CDF draw in index order over the tokens with key ≥ threshold; every thread gets the id.
fn draw(lid: u32, base: u32, vocab: u32, max_scaled: f32, threshold: u32, u: f32) -> u32 {
  let chunk = (vocab + WORKGROUP_SIZE - 1u) / WORKGROUP_SIZE;
  let start = min(lid * chunk, vocab);
  let end = min(start + chunk, vocab);
  var acc = 0.0;
  for (var j = start; j < end; j++) {
    let x = logits[base + j];
    if (order_key(x) >= threshold) { acc += weight(x, max_scaled); }
  }
  chunk_mass[lid] = acc;
  workgroupBarrier();
  if (lid == 0u) {
    var total = 0.0;
    for (var c = 0u; c < WORKGROUP_SIZE; c++) { total += chunk_mass[c]; }
    let goal = u * total;
    // The first chunk whose cumulative mass passes the goal (else the last non-empty one).
    var chosen_chunk = NONE;
    var last_nonempty = 0u;
    var before = 0.0;
    for (var c = 0u; c < WORKGROUP_SIZE; c++) {
      let mass = chunk_mass[c];
      if (mass > 0.0) { last_nonempty = c; }
      if (before + mass > goal) {
        chosen_chunk = c;
        break;
      }
      before += mass;
    }
    if (chosen_chunk == NONE) { chosen_chunk = last_nonempty; }
    // Within the chunk: the first kept token whose running mass passes the rest of the goal
    // (else the chunk's last token of positive weight, which exists as the chunk's mass is > 0).
    let rest = goal - before;
    var running = 0.0;
    var chosen = NONE;
    var last_positive = NONE;
    let chunk_end = min(chosen_chunk * chunk + chunk, vocab);
    for (var j = chosen_chunk * chunk; j < chunk_end; j++) {
      let x = logits[base + j];
      if (order_key(x) >= threshold) {
        let w = weight(x, max_scaled);
        if (w > 0.0) {
          last_positive = j;
          running += w;
          if (running > rest) {
            chosen = j;
            break;
          }
        }
      }
    }
    if (chosen == NONE) { chosen = last_positive; }
    found_prefix = chosen;
  }
  let id = workgroupUniformLoad(&found_prefix);
  workgroupBarrier();
  return id;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn sample_rows(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let row = wid.x + wid.y * groups.x;
  if (row >= params.rows) { return; }
  let vocab = params.vocab;
  let base = row * vocab;

  let greedy = row_argmax(lid, base, vocab);
  if (params.temperature == 0.0) {
    if (lid == 0u) {
      ids[row] = greedy;
      logprobs[row] = 0.0;
    }
    return;
  }

  let max_scaled = logits[base + greedy] / params.temperature;
  let full_mass = kept_mass(lid, base, vocab, max_scaled, 0u);
  var threshold = 0u; // keys ≥ threshold are kept
  var kept = full_mass;
  if (params.top_k != 0u) {
    threshold = top_k_threshold(lid, base, vocab, params.top_k);
    kept = kept_mass(lid, base, vocab, max_scaled, threshold);
  }
  if (params.top_p < 1.0) {
    // (κ ≥ τ_k already, as all the top-k mass lies above τ_k − 1; max() guards rounding.)
    let nucleus = top_p_threshold(lid, base, vocab, max_scaled, threshold, params.top_p * kept);
    threshold = max(threshold, nucleus);
  }
  let id = draw(lid, base, vocab, max_scaled, threshold, uniforms[row]);
  if (lid == 0u) {
    ids[row] = id;
    logprobs[row] = logits[base + id] / params.temperature - max_scaled - log(full_mass);
  }
}
