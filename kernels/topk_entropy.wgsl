// The token entropy of the RMT spec ("Token entropy"): per row of logits, the entropy of the
// softmax over its k largest logits only.
//
// Shapes: logits [rows, V] f32 → entropy [rows] f32. z = logits / T (`inv_temperature` = 1/T).
//   the k largest logits of the row (ties: the smaller index first; all V when k > V),
//   q = softmax(z over those k), entropy[r] = −Σ q log q (nats).
//   A row whose largest logit is ±inf gives NaN; NaN logits give an unspecified value.
//
// Only the VALUES of the k largest logits enter H. A tie at the k-th place puts the same
// value in the list whichever column wins, so the kernel keeps values, no columns, and the
// result is a function of the row's sorted top-k values alone: whatever the thread layout
// below, the same row gives the same bits.
//
// Layout: C = 2^threads_per_row_log2 threads per row (1..WORKGROUP_SIZE, chosen by the host
// from the rows and V), WORKGROUP_SIZE / C rows per workgroup; workgroups numbered across x
// and y of the grid.
//   1. Each thread walks its columns part, part + C, … (C threads per row) once and keeps its
//      TOP_K_SLOTS largest values in registers, sorted descending. Four columns at a time:
//      sorted by a 5-exchange network, then merged into the list (a bitonic merge), which
//      costs about half as much as four insertions. No branches, no memory traffic.
//   2. The row's C lists are merged by a fixed binary tree through workgroup memory (none
//      when C = 1): each merge keeps the TOP_K_SLOTS largest of two lists (a bitonic merge).
//   3. The row's first thread sums H over the first min(k, V) values in rank order
//      (descending), from the row's largest.
// No atomics, a fixed order everywhere: reruns are bit-identical. The host picks C so that a
// thread's columns outnumber the merge work (CPU drivers run a workgroup's threads as SIMD
// lanes, where workgroup-memory traffic costs more than arithmetic).

override WORKGROUP_SIZE: u32 = 64u; // a power of two
// Slots of a thread's list: a power of two ≥ k (the bitonic merge needs one), ≤ MAX_K. The
// k largest of a row are among the union of its threads' TOP_K_SLOTS largest. Loops over
// TOP_K_SLOTS have a constant trip count: the compiler unrolls them, and the lists stay in
// registers (every index a constant).
override TOP_K_SLOTS: u32 = 16u;

const MAX_K: u32 = 32u;

struct Params {
  rows: u32,
  vocab: u32,
  inv_temperature: f32,
  k: u32, // 1..MAX_K
  threads_per_row_log2: u32, // log2 C, C ≤ WORKGROUP_SIZE
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> entropy: array<f32>;

alias TopList = array<f32, MAX_K>; // the first TOP_K_SLOTS entries are used

// Every thread's list, TOP_K_SLOTS apart, for the merge tree (WORKGROUP_SIZE · MAX_K · 4 bytes).
var<workgroup> top_pool: array<f32, WORKGROUP_SIZE * MAX_K>;

// A list of −inf pads: a pad sorts after every logit and adds exp(−inf) = 0 to the sums,
// exactly as no element would (and the sum stops at min(k, V) values anyway). −inf is made
// from its bits at run time: a constant infinity is not valid WGSL.
fn empty_top_list() -> TopList {
  let negative_infinity = bitcast<f32>(0xff800000u | (params.k & 0u));
  var list: TopList;
  for (var i = 0u; i < TOP_K_SLOTS; i++) { list[i] = negative_infinity; }
  return list;
}

// Inserts x, dropping the smallest value: the value bubbles down the sorted list by one
// compare-exchange per slot (an x not above the last slot changes nothing).
fn insert_top(list: ptr<function, TopList>, value: f32) {
  var x = value;
  for (var i = 0u; i < TOP_K_SLOTS; i++) {
    let held = (*list)[i];
    (*list)[i] = max(held, x);
    x = min(held, x);
  }
}

// The four values sorted descending: 5 compare-exchanges.
fn sort4_descending(v: vec4<f32>) -> vec4<f32> {
  let high_xy = max(v.x, v.y);
  let low_xy = min(v.x, v.y);
  let high_zw = max(v.z, v.w);
  let low_zw = min(v.z, v.w);
  let middle_a = min(high_xy, high_zw);
  let middle_b = max(low_xy, low_zw);
  return vec4(max(high_xy, high_zw), max(middle_a, middle_b), min(middle_a, middle_b),
              min(low_xy, low_zw));
}

// One stage of a bitonic merge: compare-exchange of slots i and i + half, larger first.
fn half_clean(list: ptr<function, TopList>, half: u32) {
  for (var i = 0u; i < TOP_K_SLOTS; i++) {
    if ((i & half) == 0u) {
      let a = (*list)[i];
      let b = (*list)[i + half];
      (*list)[i] = max(a, b);
      (*list)[i + half] = min(a, b);
    }
  }
}

// Sorts a bitonic list (falling, then rising) descending: the stages of a bitonic merge,
// written out one by one so that every index is a constant once inlined and unrolled.
fn bitonic_sort(list: ptr<function, TopList>) {
  if (TOP_K_SLOTS > 16u) { half_clean(list, 16u); }
  if (TOP_K_SLOTS > 8u) { half_clean(list, 8u); }
  if (TOP_K_SLOTS > 4u) { half_clean(list, 4u); }
  if (TOP_K_SLOTS > 2u) { half_clean(list, 2u); }
  if (TOP_K_SLOTS > 1u) { half_clean(list, 1u); }
}

// Both merges below rest on one fact (Batcher): for lists a and b sorted descending, with S
// slots each (b padded with −inf), c_i = max(a_i, b_{S−1−i}) holds exactly the S largest
// values of a ∪ b, as a bitonic sequence; bitonic_sort sorts it.

// Merges four values sorted descending into the list (b = the block: only the last
// min(4, S) slots can change).
fn merge_block(list: ptr<function, TopList>, block: vec4<f32>) {
  for (var m = 0u; m < min(4u, TOP_K_SLOTS); m++) {
    let slot = TOP_K_SLOTS - 1u - m;
    (*list)[slot] = max((*list)[slot], block[m]);
  }
  bitonic_sort(list);
}

// Merges thread `src`'s list in top_pool into `list`.
fn merge_top(list: ptr<function, TopList>, src: u32) {
  let other_last = src * TOP_K_SLOTS + TOP_K_SLOTS - 1u;
  for (var i = 0u; i < TOP_K_SLOTS; i++) {
    (*list)[i] = max((*list)[i], top_pool[other_last - i]);
  }
  bitonic_sort(list);
}

fn store_top(list: ptr<function, TopList>, tid: u32) {
  for (var i = 0u; i < TOP_K_SLOTS; i++) { top_pool[tid * TOP_K_SLOTS + i] = (*list)[i]; }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn top_k_entropy(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let shift = params.threads_per_row_log2;
  let threads_per_row = 1u << shift;
  let part = tid & (threads_per_row - 1u); // this thread's place among its row's threads
  let row = (wid.x + wid.y * groups.x) * (WORKGROUP_SIZE >> shift) + (tid >> shift);
  let row_exists = row < params.rows; // no early return: the merge below has barriers

  // 1. This thread's columns, in registers.
  var top = empty_top_list();
  if (row_exists) {
    let base = row * params.vocab;
    let step = threads_per_row;
    var j = part;
    for (; j + 3u * step < params.vocab; j += 4u * step) {
      let block = vec4(logits[base + j], logits[base + j + step], logits[base + j + 2u * step],
                       logits[base + j + 3u * step]);
      merge_block(&top, sort4_descending(block));
    }
    for (; j < params.vocab; j += step) { insert_top(&top, logits[base + j]); } // ≤ 3 left
  }

  // 2. The row's lists, by a fixed binary tree. At each level the threads part < stride read
  // the lists of parts [stride, 2·stride) and rewrite their own (parts [0, stride)).
  if (threads_per_row > 1u) { // uniform: from the params
    store_top(&top, tid);
    workgroupBarrier();
    for (var stride = threads_per_row / 2u; stride > 0u; stride >>= 1u) {
      if (part < stride) {
        merge_top(&top, tid + stride);
        store_top(&top, tid);
      }
      workgroupBarrier();
    }
  }

  // 3. H = −Σ q log q with q_i = e_i / S, e_i = exp((x_i − x_max) / T), S = Σ e_i:
  // H = log S − Σ e_i (x_i − x_max) / T / S, summed in rank order over min(k, V) values.
  if (row_exists && part == 0u) {
    let count = min(min(params.k, MAX_K), params.vocab);
    let highest = top[0];
    // A row whose largest logit is ±inf has no distribution: NaN. Said explicitly, since the
    // compiler may fold the first term's top[0] − highest to 0 (inf − inf is NaN).
    if ((bitcast<u32>(highest) & 0x7f800000u) == 0x7f800000u) {
      entropy[row] = bitcast<f32>(0x7fc00000u | (params.k & 0u)); // a NaN, made at run time
      return;
    }
    var total = 0.0;
    var weighted = 0.0;
    for (var i = 0u; i < TOP_K_SLOTS; i++) {
      if (i < count) {
        let shifted = (top[i] - highest) * params.inv_temperature;
        let e = exp(shifted);
        total += e;
        if (e > 0.0) { weighted += e * shifted; }
      }
    }
    entropy[row] = log(total) - weighted / total;
  }
}
