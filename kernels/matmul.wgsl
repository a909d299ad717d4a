// Matrix multiplication, batched, with optional transposed operands and accumulation.
//
//   C[z] (+)= Σ_{s < sum_batches} op(A[z·sum_batches + s]) · op(B[z·sum_batches + s])
//
//   op(A): [M, K]   A is stored [M, K], or [K, M] when TRANSPOSE_A
//   op(B): [K, N]   B is stored [K, N], or [N, K] when TRANSPOSE_B
//   C:     [M, N]   row-major; ACCUMULATE adds to what C already holds
//
// Batches: grid z indexes C's batch. A, B and C advance by their batch strides (in elements);
// a stride of 0 shares that operand across the batch (activations × one weight). With
// sum_batches > 1 one C sums the products of several batches (the weight gradient of a
// shared operand); sum_batches = 1 is the plain batched product.
//
// Determinism: every element of C is computed by one thread, in a fixed order over (s, k).
//
// Three variants (lib/ops/matmul.ts picks one per call):
//
// 1. matmul_registers_vec4 — register tiling, vec4 loads and stores, no workgroup memory.
//    Each thread owns a 16×16 block of C held as 4×4 sub-blocks of 4×4 (mat4x4); for every
//    4 steps of k it loads 16 vec4 of A and 16 of B and does 16 mat4x4 products (1024 FMAs).
//    Built for lavapipe (Mesa's CPU Vulkan driver): there every buffer access — workgroup
//    memory too — is a loop over the SIMD lanes with a bounds check per element, so loads,
//    not FMAs, set the speed: a vec4 load costs much less than four scalar ones, and bigger
//    per-thread blocks mean fewer loads per FMA. Workgroup memory would add barriers, which
//    lavapipe runs as coroutine switches.
//    Needs 4-aligned rows: C's (N), A's as stored (K, or M when TRANSPOSE_A) and B's as
//    stored (N, or K when TRANSPOSE_B). K itself may be anything when neither operand is
//    read along k (TRANSPOSE_A && !TRANSPOSE_B): the last partial step of 4 is zero-padded.
//
// 2. matmul_tiled — classic workgroup-memory tiling, any shape. A workgroup of
//    TILE_WG_X × TILE_WG_Y threads computes a (8·TILE_WG_Y) × (8·TILE_WG_X) tile of C; per
//    step of TILE_K it stages op(A)'s [8·TILE_WG_Y, TILE_K] and op(B)'s [TILE_K, 8·TILE_WG_X]
//    slices in workgroup memory (zero-padded at the edges), then each thread accumulates its
//    2×2 sub-blocks of 4×4 from there. The variant for real GPUs, where workgroup-memory
//    reuse is what makes matmul fast, and lavapipe's fallback for unaligned shapes.
//
// 3. matmul_registers_large — variant 1 with 32×32 blocks of C per thread (8×8 sub-blocks):
//    half the loads per FMA. Picked on lavapipe for few-row products (decode steps).
//
// Measured on lavapipe (2 shared cores, 256-bit LLVM), 1024², GFLOP/s per CPU-second
// (wall-clock numbers were noisy on the shared machine; an idle machine gives about twice
// these): vec4 register tiling with per-thread blocks of 2×2 sub-blocks 8.8, 4×2 10, 4×4 12-13
// (kept), 8×4 15 (not kept: 32-row tiles waste work on small M, and compile slower); the
// same with element-wise loads and stores (any shape): 2×2 sub-blocks 5, 4×4 7.3 but 2.8 s
// to compile (dropped: not enough over the tiled variant's 4). A 16-element array of
// sub-blocks updated in loops is not unrolled by lavapipe (3.8), hence the spelled-out
// products and stores below. Cold pipeline builds on lavapipe: registers_vec4 0.8 s,
// tiled 0.4 s (Mesa caches them on disk afterwards).
//
// mat4x4 bookkeeping (WGSL matrices are column-major: m[i] is column i):
//   at = A sub-block transposed: column i = op(A)[m0 + i, k0 .. k0+3]
//   bt = B sub-block transposed: column j = op(B)[k0 + j, n0 .. n0+3]
//   ct += bt * at   (C^T = B^T · A^T), so column i of ct = row m0 + i of C at columns
//   n0 .. n0+3 (variant 1 stores it as one vec4).

override TRANSPOSE_A: bool = false;
override TRANSPOSE_B: bool = false;
override ACCUMULATE: bool = false;

struct Params {
  M: u32,
  N: u32,
  K: u32,
  a_batch_stride: u32,
  b_batch_stride: u32,
  c_batch_stride: u32,
  sum_batches: u32,
}

@group(0) @binding(0) var<uniform> params: Params;

// The operands as vec4 (variant 1: every row 4-aligned, so the bindings hold whole vec4s)...
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c4: array<vec4<f32>>;
// ... or element by element (variant 2: no alignment assumed).
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

// ---- Variant 1: matmul_registers_vec4 ------------------------------------------------------

// Threads per workgroup (x runs along N, y along M). Each thread covers 16×16 of C: that
// block size is fixed by the spelled-out code below (function-scope arrays need constant
// sizes, and lavapipe only keeps them in registers when every index is a constant).
override REG_WG_X: u32 = 16u;
override REG_WG_Y: u32 = 1u;

// A vec4 of a row-major matrix read along its rows, where `row` may run past `rows` (the
// zero-padded last step of k): the padding reads the last row and is zeroed.
fn a4_row(base4: u32, row: u32, rows: u32, row4s: u32, col4: u32) -> vec4<f32> {
  return select(vec4<f32>(), a4[base4 + min(row, rows - 1u) * row4s + col4], row < rows);
}

fn b4_row(base4: u32, row: u32, rows: u32, row4s: u32, col4: u32) -> vec4<f32> {
  return select(vec4<f32>(), b4[base4 + min(row, rows - 1u) * row4s + col4], row < rows);
}

// at for rows m0..m0+3 (m0 % 4 = 0) and k0..k0+3 of one batch (base4 in vec4s). Rows past
// M are clamped (their results are never stored).
fn load_at_vec4(base4: u32, m0: u32, k0: u32) -> mat4x4<f32> {
  let M = params.M;
  let K = params.K;
  if (TRANSPOSE_A) {
    // Stored [K, M]: one vec4 holds 4 rows of op(A) at one k; transpose into columns.
    let M4 = M / 4u;
    let m4 = min(m0 / 4u, M4 - 1u);
    return transpose(mat4x4<f32>(
      a4_row(base4, k0, K, M4, m4),
      a4_row(base4, k0 + 1u, K, M4, m4),
      a4_row(base4, k0 + 2u, K, M4, m4),
      a4_row(base4, k0 + 3u, K, M4, m4),
    ));
  }
  // Stored [M, K]: one vec4 holds 4 steps of k of one row.
  let K4 = K / 4u;
  let k4 = k0 / 4u;
  return mat4x4<f32>(
    a4[base4 + min(m0, M - 1u) * K4 + k4],
    a4[base4 + min(m0 + 1u, M - 1u) * K4 + k4],
    a4[base4 + min(m0 + 2u, M - 1u) * K4 + k4],
    a4[base4 + min(m0 + 3u, M - 1u) * K4 + k4],
  );
}

// bt for k0..k0+3 and columns n0..n0+3 (n0 % 4 = 0). Columns past N are clamped.
fn load_bt_vec4(base4: u32, k0: u32, n0: u32) -> mat4x4<f32> {
  let N = params.N;
  let K = params.K;
  if (TRANSPOSE_B) {
    // Stored [N, K]: one vec4 holds 4 steps of k of one column; transpose.
    let K4 = K / 4u;
    let k4 = k0 / 4u;
    return transpose(mat4x4<f32>(
      b4[base4 + min(n0, N - 1u) * K4 + k4],
      b4[base4 + min(n0 + 1u, N - 1u) * K4 + k4],
      b4[base4 + min(n0 + 2u, N - 1u) * K4 + k4],
      b4[base4 + min(n0 + 3u, N - 1u) * K4 + k4],
    ));
  }
  // Stored [K, N]: one vec4 holds 4 columns at one k.
  let N4 = N / 4u;
  let n4 = min(n0 / 4u, N4 - 1u);
  return mat4x4<f32>(
    b4_row(base4, k0, K, N4, n4),
    b4_row(base4, k0 + 1u, K, N4, n4),
    b4_row(base4, k0 + 2u, K, N4, n4),
    b4_row(base4, k0 + 3u, K, N4, n4),
  );
}

// Writes (or adds) ct's rows m0..m0+3 at columns n0..n0+3 (n0 % 4 = 0), one vec4 per row,
// skipping what lies outside C.
fn store_ct_vec4(base4: u32, m0: u32, n0: u32, ct: mat4x4<f32>) {
  let N4 = params.N / 4u;
  if (n0 / 4u >= N4) {
    return;
  }
  for (var i = 0u; i < 4u; i++) {
    if (m0 + i < params.M) {
      let at = base4 + (m0 + i) * N4 + n0 / 4u;
      if (ACCUMULATE) {
        c4[at] += ct[i];
      } else {
        c4[at] = ct[i];
      }
    }
  }
}

// ct[4i + j] += bt[j] · at[i]: a 16×16 block of C as 4×4 sub-blocks. Spelled out:
// lavapipe does not unroll loops this big, and a register array indexed by a loop counter
// would live in memory.
fn multiply_add_4x4(
  ct: ptr<function, array<mat4x4<f32>, 16>>,
  at: array<mat4x4<f32>, 4>,
  bt: array<mat4x4<f32>, 4>,
) {
  (*ct)[0] += bt[0] * at[0];
  (*ct)[1] += bt[1] * at[0];
  (*ct)[2] += bt[2] * at[0];
  (*ct)[3] += bt[3] * at[0];
  (*ct)[4] += bt[0] * at[1];
  (*ct)[5] += bt[1] * at[1];
  (*ct)[6] += bt[2] * at[1];
  (*ct)[7] += bt[3] * at[1];
  (*ct)[8] += bt[0] * at[2];
  (*ct)[9] += bt[1] * at[2];
  (*ct)[10] += bt[2] * at[2];
  (*ct)[11] += bt[3] * at[2];
  (*ct)[12] += bt[0] * at[3];
  (*ct)[13] += bt[1] * at[3];
  (*ct)[14] += bt[2] * at[3];
  (*ct)[15] += bt[3] * at[3];
}

@compute @workgroup_size(REG_WG_X, REG_WG_Y)
fn matmul_registers_vec4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let m0 = gid.y * 16u; // this thread's rows m0 .. m0+15
  let n0 = gid.x * 16u; // and columns n0 .. n0+15
  if (m0 >= params.M || n0 >= params.N) {
    return;
  }
  var ct: array<mat4x4<f32>, 16>;
  for (var s = 0u; s < params.sum_batches; s++) {
    let batch = gid.z * params.sum_batches + s;
    let a_base4 = batch * (params.a_batch_stride / 4u);
    let b_base4 = batch * (params.b_batch_stride / 4u);
    for (var k0 = 0u; k0 < params.K; k0 += 4u) {
      let at = array(
        load_at_vec4(a_base4, m0, k0),
        load_at_vec4(a_base4, m0 + 4u, k0),
        load_at_vec4(a_base4, m0 + 8u, k0),
        load_at_vec4(a_base4, m0 + 12u, k0),
      );
      let bt = array(
        load_bt_vec4(b_base4, k0, n0),
        load_bt_vec4(b_base4, k0, n0 + 4u),
        load_bt_vec4(b_base4, k0, n0 + 8u),
        load_bt_vec4(b_base4, k0, n0 + 12u),
      );
      multiply_add_4x4(&ct, at, bt);
    }
  }
  // Spelled out for the same reason as multiply_add_4x4.
  let c_base4 = gid.z * (params.c_batch_stride / 4u);
  store_ct_vec4(c_base4, m0, n0, ct[0]);
  store_ct_vec4(c_base4, m0, n0 + 4u, ct[1]);
  store_ct_vec4(c_base4, m0, n0 + 8u, ct[2]);
  store_ct_vec4(c_base4, m0, n0 + 12u, ct[3]);
  store_ct_vec4(c_base4, m0 + 4u, n0, ct[4]);
  store_ct_vec4(c_base4, m0 + 4u, n0 + 4u, ct[5]);
  store_ct_vec4(c_base4, m0 + 4u, n0 + 8u, ct[6]);
  store_ct_vec4(c_base4, m0 + 4u, n0 + 12u, ct[7]);
  store_ct_vec4(c_base4, m0 + 8u, n0, ct[8]);
  store_ct_vec4(c_base4, m0 + 8u, n0 + 4u, ct[9]);
  store_ct_vec4(c_base4, m0 + 8u, n0 + 8u, ct[10]);
  store_ct_vec4(c_base4, m0 + 8u, n0 + 12u, ct[11]);
  store_ct_vec4(c_base4, m0 + 12u, n0, ct[12]);
  store_ct_vec4(c_base4, m0 + 12u, n0 + 4u, ct[13]);
  store_ct_vec4(c_base4, m0 + 12u, n0 + 8u, ct[14]);
  store_ct_vec4(c_base4, m0 + 12u, n0 + 12u, ct[15]);
}

// ---- Variant 2: matmul_tiled (workgroup memory, any shape) ------------------------------

// Threads per workgroup; the tile of C is (8·TILE_WG_Y) × (8·TILE_WG_X).
override TILE_WG_X: u32 = 16u;
override TILE_WG_Y: u32 = 16u;
// Steps of k staged per barrier (a multiple of 4).
override TILE_K: u32 = 8u;

// op(A) slice, [8·TILE_WG_Y rows][TILE_K / 4 vec4 along k].
var<workgroup> a_tile: array<vec4<f32>, 2u * TILE_WG_Y * TILE_K>;
// op(B) slice, [TILE_K rows][2·TILE_WG_X vec4 along n].
var<workgroup> b_tile: array<vec4<f32>, 2u * TILE_WG_X * TILE_K>;

// op(A)[m, k] of one batch, 0 outside [M, K].
fn op_a(base: u32, m: u32, k: u32) -> f32 {
  if (m >= params.M || k >= params.K) {
    return 0.0;
  }
  return a[base + select(m * params.K + k, k * params.M + m, TRANSPOSE_A)];
}

// op(B)[k, n] of one batch, 0 outside [K, N].
fn op_b(base: u32, k: u32, n: u32) -> f32 {
  if (k >= params.K || n >= params.N) {
    return 0.0;
  }
  return b[base + select(k * params.N + n, n * params.K + k, TRANSPOSE_B)];
}

// Writes (or adds) ct's rows m0..m0+3 at columns n0..n0+3, element by element, skipping
// what lies outside C. The column loop has a runtime bound so that lavapipe compiles one
// store per row instead of four (its stores are loops over the SIMD lanes, slow to compile).
fn store_ct(base: u32, m0: u32, n0: u32, ct: mat4x4<f32>) {
  let columns = min(4u, params.N - min(n0, params.N));
  for (var i = 0u; i < 4u; i++) {
    if (m0 + i < params.M) {
      let row = ct[i];
      for (var j = 0u; j < columns; j++) {
        let at = base + (m0 + i) * params.N + n0 + j;
        if (ACCUMULATE) {
          c[at] += row[j];
        } else {
          c[at] = row[j];
        }
      }
    }
  }
}

@compute @workgroup_size(TILE_WG_X, TILE_WG_Y)
fn matmul_tiled(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(local_invocation_index) thread: u32,
) {
  let tile_m = 8u * TILE_WG_Y;
  let tile_n = 8u * TILE_WG_X;
  let threads = TILE_WG_X * TILE_WG_Y;
  let k4s = TILE_K / 4u; // vec4 per row of a_tile
  let n4s = tile_n / 4u; // vec4 per row of b_tile
  let m_tile0 = wid.y * tile_m;
  let n_tile0 = wid.x * tile_n;
  // This thread's sub-blocks: rows r_i = (lid.y + i·TILE_WG_Y)·4 and columns
  // (lid.x + j·TILE_WG_X)·4 of the tile, i, j ∈ {0, 1}; neighbouring threads read
  // neighbouring vec4s of b_tile.
  let r0 = lid.y * 4u;
  let r1 = (lid.y + TILE_WG_Y) * 4u;
  var ct00 = mat4x4<f32>();
  var ct01 = mat4x4<f32>();
  var ct10 = mat4x4<f32>();
  var ct11 = mat4x4<f32>();
  for (var s = 0u; s < params.sum_batches; s++) {
    let batch = wid.z * params.sum_batches + s;
    let a_base = batch * params.a_batch_stride;
    let b_base = batch * params.b_batch_stride;
    for (var k_tile0 = 0u; k_tile0 < params.K; k_tile0 += TILE_K) {
      // Stage the slices. Consecutive threads take consecutive addresses of the stored
      // layout: along k for A [M, K], along m for A^T, along n for B [K, N], along k for B^T.
      for (var i = thread; i < tile_m * k4s; i += threads) {
        let m_in = select(i / k4s, i % tile_m, TRANSPOSE_A);
        let k4_in = select(i % k4s, i / tile_m, TRANSPOSE_A);
        let m = m_tile0 + m_in;
        let k = k_tile0 + 4u * k4_in;
        a_tile[m_in * k4s + k4_in] = vec4<f32>(
          op_a(a_base, m, k),
          op_a(a_base, m, k + 1u),
          op_a(a_base, m, k + 2u),
          op_a(a_base, m, k + 3u),
        );
      }
      for (var i = thread; i < TILE_K * n4s; i += threads) {
        let k_in = select(i / n4s, i % TILE_K, TRANSPOSE_B);
        let n4_in = select(i % n4s, i / TILE_K, TRANSPOSE_B);
        let k = k_tile0 + k_in;
        let n = n_tile0 + 4u * n4_in;
        b_tile[k_in * n4s + n4_in] = vec4<f32>(
          op_b(b_base, k, n),
          op_b(b_base, k, n + 1u),
          op_b(b_base, k, n + 2u),
          op_b(b_base, k, n + 3u),
        );
      }
      workgroupBarrier();
      for (var k4_in = 0u; k4_in < k4s; k4_in++) {
        let at0 = mat4x4<f32>(
          a_tile[r0 * k4s + k4_in],
          a_tile[(r0 + 1u) * k4s + k4_in],
          a_tile[(r0 + 2u) * k4s + k4_in],
          a_tile[(r0 + 3u) * k4s + k4_in],
        );
        let at1 = mat4x4<f32>(
          a_tile[r1 * k4s + k4_in],
          a_tile[(r1 + 1u) * k4s + k4_in],
          a_tile[(r1 + 2u) * k4s + k4_in],
          a_tile[(r1 + 3u) * k4s + k4_in],
        );
        let row = 4u * k4_in * n4s;
        let bt0 = mat4x4<f32>(
          b_tile[row + lid.x],
          b_tile[row + n4s + lid.x],
          b_tile[row + 2u * n4s + lid.x],
          b_tile[row + 3u * n4s + lid.x],
        );
        let bt1 = mat4x4<f32>(
          b_tile[row + lid.x + TILE_WG_X],
          b_tile[row + n4s + lid.x + TILE_WG_X],
          b_tile[row + 2u * n4s + lid.x + TILE_WG_X],
          b_tile[row + 3u * n4s + lid.x + TILE_WG_X],
        );
        ct00 += bt0 * at0;
        ct01 += bt1 * at0;
        ct10 += bt0 * at1;
        ct11 += bt1 * at1;
      }
      workgroupBarrier();
    }
  }
  let c_base = wid.z * params.c_batch_stride;
  let n_0 = n_tile0 + lid.x * 4u;
  let n_1 = n_tile0 + (lid.x + TILE_WG_X) * 4u;
  store_ct(c_base, m_tile0 + r0, n_0, ct00);
  store_ct(c_base, m_tile0 + r0, n_1, ct01);
  store_ct(c_base, m_tile0 + r1, n_0, ct10);
  store_ct(c_base, m_tile0 + r1, n_1, ct11);
}

// ---- Variant 3: matmul_registers_large (32×32 per thread) --------------------------------
//
// Variant 1 with a bigger block per thread: 32 rows × 32 columns of C (8×8 sub-blocks of
// 4×4), for products with few rows (a decode step's x·Wᵀ: M = the sequences) on lavapipe.
// Per step of 4 in k a thread loads 32 vec4 of A and 32 of B for 4096 FMAs (64 FMAs per
// load; variant 1: 32). There a load costs roughly as much as 50-100 FMAs (fitted to the
// block sizes below), so FMAs per load set the speed; more threads with smaller blocks
// (fewer rows per thread, more threads along N) lose more to loads than they gain.
// Same alignment needs, flags and helpers as variant 1, but lib/ops only runs it for
// x·Wᵀ (TRANSPOSE_B, no TRANSPOSE_A, no ACCUMULATE): each set of flags is another slow
// build (below), so the others are neither built nor tested.
// Measured on lavapipe at M = 64 (x·Wᵀ, K = 384 or 1536, N = 384..1536), GFLOP/s per
// CPU-second, blocks rows × columns: 16×16 (variant 1) 11.5-12.5, 32×32 14-17 (kept),
// 32×16 13.5-14.5, 64×16 14-15, 16×32 11-13, 64×8 9-10, 32×8 6-10, 8×64 7-9, 64×4 5-6,
// 4×64 5-6; one row of C per thread, 16 columns per workgroup (so every thread of a group
// loads the same B: no cheaper on this lavapipe, Mesa 22 / LLVM 15) 2.3. Wall-clock: 32×32 wins at M = 32..128 given enough blocks to share between
// lavapipe's threads (at M = 64, N ≥ 256; N = 64 or 128 lose); at M ≤ 16 most of its rows
// are wasted (slower). lib/ops/matmul.ts picks it accordingly.
// Cold pipeline build ~6 s per set of flags (variant 1: 0.9 s); Mesa caches it on disk.

override LARGE_WG_X: u32 = 8u;

@compute @workgroup_size(LARGE_WG_X)
fn matmul_registers_large(@builtin(global_invocation_id) gid: vec3<u32>) {
  let m0 = gid.y * 32u; // this thread's rows m0 .. m0+31
  let n0 = gid.x * 32u; // and columns n0 .. n0+31
  if (m0 >= params.M || n0 >= params.N) {
    return;
  }
  var ct: array<mat4x4<f32>, 64>; // ct[8·i + j]: rows m0 + 4i.., columns n0 + 4j..
  for (var s = 0u; s < params.sum_batches; s++) {
    let batch = gid.z * params.sum_batches + s;
    let a_base4 = batch * (params.a_batch_stride / 4u);
    let b_base4 = batch * (params.b_batch_stride / 4u);
    for (var k0 = 0u; k0 < params.K; k0 += 4u) {
      // Spelled out, as in variant 1 (constant indices keep ct in registers).
      let at0 = load_at_vec4(a_base4, m0 + 0u, k0);
      let at1 = load_at_vec4(a_base4, m0 + 4u, k0);
      let at2 = load_at_vec4(a_base4, m0 + 8u, k0);
      let at3 = load_at_vec4(a_base4, m0 + 12u, k0);
      let at4 = load_at_vec4(a_base4, m0 + 16u, k0);
      let at5 = load_at_vec4(a_base4, m0 + 20u, k0);
      let at6 = load_at_vec4(a_base4, m0 + 24u, k0);
      let at7 = load_at_vec4(a_base4, m0 + 28u, k0);
      let bt0 = load_bt_vec4(b_base4, k0, n0 + 0u);
      let bt1 = load_bt_vec4(b_base4, k0, n0 + 4u);
      let bt2 = load_bt_vec4(b_base4, k0, n0 + 8u);
      let bt3 = load_bt_vec4(b_base4, k0, n0 + 12u);
      let bt4 = load_bt_vec4(b_base4, k0, n0 + 16u);
      let bt5 = load_bt_vec4(b_base4, k0, n0 + 20u);
      let bt6 = load_bt_vec4(b_base4, k0, n0 + 24u);
      let bt7 = load_bt_vec4(b_base4, k0, n0 + 28u);
      ct[0] += bt0 * at0;
      ct[1] += bt1 * at0;
      ct[2] += bt2 * at0;
      ct[3] += bt3 * at0;
      ct[4] += bt4 * at0;
      ct[5] += bt5 * at0;
      ct[6] += bt6 * at0;
      ct[7] += bt7 * at0;
      ct[8] += bt0 * at1;
      ct[9] += bt1 * at1;
      ct[10] += bt2 * at1;
      ct[11] += bt3 * at1;
      ct[12] += bt4 * at1;
      ct[13] += bt5 * at1;
      ct[14] += bt6 * at1;
      ct[15] += bt7 * at1;
      ct[16] += bt0 * at2;
      ct[17] += bt1 * at2;
      ct[18] += bt2 * at2;
      ct[19] += bt3 * at2;
      ct[20] += bt4 * at2;
      ct[21] += bt5 * at2;
      ct[22] += bt6 * at2;
      ct[23] += bt7 * at2;
      ct[24] += bt0 * at3;
      ct[25] += bt1 * at3;
      ct[26] += bt2 * at3;
      ct[27] += bt3 * at3;
      ct[28] += bt4 * at3;
      ct[29] += bt5 * at3;
      ct[30] += bt6 * at3;
      ct[31] += bt7 * at3;
      ct[32] += bt0 * at4;
      ct[33] += bt1 * at4;
      ct[34] += bt2 * at4;
      ct[35] += bt3 * at4;
      ct[36] += bt4 * at4;
      ct[37] += bt5 * at4;
      ct[38] += bt6 * at4;
      ct[39] += bt7 * at4;
      ct[40] += bt0 * at5;
      ct[41] += bt1 * at5;
      ct[42] += bt2 * at5;
      ct[43] += bt3 * at5;
      ct[44] += bt4 * at5;
      ct[45] += bt5 * at5;
      ct[46] += bt6 * at5;
      ct[47] += bt7 * at5;
      ct[48] += bt0 * at6;
      ct[49] += bt1 * at6;
      ct[50] += bt2 * at6;
      ct[51] += bt3 * at6;
      ct[52] += bt4 * at6;
      ct[53] += bt5 * at6;
      ct[54] += bt6 * at6;
      ct[55] += bt7 * at6;
      ct[56] += bt0 * at7;
      ct[57] += bt1 * at7;
      ct[58] += bt2 * at7;
      ct[59] += bt3 * at7;
      ct[60] += bt4 * at7;
      ct[61] += bt5 * at7;
      ct[62] += bt6 * at7;
      ct[63] += bt7 * at7;
    }
  }
  let c_base4 = gid.z * (params.c_batch_stride / 4u);
  store_ct_vec4(c_base4, m0 + 0u, n0 + 0u, ct[0]);
  store_ct_vec4(c_base4, m0 + 0u, n0 + 4u, ct[1]);
  store_ct_vec4(c_base4, m0 + 0u, n0 + 8u, ct[2]);
  store_ct_vec4(c_base4, m0 + 0u, n0 + 12u, ct[3]);
  store_ct_vec4(c_base4, m0 + 0u, n0 + 16u, ct[4]);
  store_ct_vec4(c_base4, m0 + 0u, n0 + 20u, ct[5]);
  store_ct_vec4(c_base4, m0 + 0u, n0 + 24u, ct[6]);
  store_ct_vec4(c_base4, m0 + 0u, n0 + 28u, ct[7]);
  store_ct_vec4(c_base4, m0 + 4u, n0 + 0u, ct[8]);
  store_ct_vec4(c_base4, m0 + 4u, n0 + 4u, ct[9]);
  store_ct_vec4(c_base4, m0 + 4u, n0 + 8u, ct[10]);
  store_ct_vec4(c_base4, m0 + 4u, n0 + 12u, ct[11]);
  store_ct_vec4(c_base4, m0 + 4u, n0 + 16u, ct[12]);
  store_ct_vec4(c_base4, m0 + 4u, n0 + 20u, ct[13]);
  store_ct_vec4(c_base4, m0 + 4u, n0 + 24u, ct[14]);
  store_ct_vec4(c_base4, m0 + 4u, n0 + 28u, ct[15]);
  store_ct_vec4(c_base4, m0 + 8u, n0 + 0u, ct[16]);
  store_ct_vec4(c_base4, m0 + 8u, n0 + 4u, ct[17]);
  store_ct_vec4(c_base4, m0 + 8u, n0 + 8u, ct[18]);
  store_ct_vec4(c_base4, m0 + 8u, n0 + 12u, ct[19]);
  store_ct_vec4(c_base4, m0 + 8u, n0 + 16u, ct[20]);
  store_ct_vec4(c_base4, m0 + 8u, n0 + 20u, ct[21]);
  store_ct_vec4(c_base4, m0 + 8u, n0 + 24u, ct[22]);
  store_ct_vec4(c_base4, m0 + 8u, n0 + 28u, ct[23]);
  store_ct_vec4(c_base4, m0 + 12u, n0 + 0u, ct[24]);
  store_ct_vec4(c_base4, m0 + 12u, n0 + 4u, ct[25]);
  store_ct_vec4(c_base4, m0 + 12u, n0 + 8u, ct[26]);
  store_ct_vec4(c_base4, m0 + 12u, n0 + 12u, ct[27]);
  store_ct_vec4(c_base4, m0 + 12u, n0 + 16u, ct[28]);
  store_ct_vec4(c_base4, m0 + 12u, n0 + 20u, ct[29]);
  store_ct_vec4(c_base4, m0 + 12u, n0 + 24u, ct[30]);
  store_ct_vec4(c_base4, m0 + 12u, n0 + 28u, ct[31]);
  store_ct_vec4(c_base4, m0 + 16u, n0 + 0u, ct[32]);
  store_ct_vec4(c_base4, m0 + 16u, n0 + 4u, ct[33]);
  store_ct_vec4(c_base4, m0 + 16u, n0 + 8u, ct[34]);
  store_ct_vec4(c_base4, m0 + 16u, n0 + 12u, ct[35]);
  store_ct_vec4(c_base4, m0 + 16u, n0 + 16u, ct[36]);
  store_ct_vec4(c_base4, m0 + 16u, n0 + 20u, ct[37]);
  store_ct_vec4(c_base4, m0 + 16u, n0 + 24u, ct[38]);
  store_ct_vec4(c_base4, m0 + 16u, n0 + 28u, ct[39]);
  store_ct_vec4(c_base4, m0 + 20u, n0 + 0u, ct[40]);
  store_ct_vec4(c_base4, m0 + 20u, n0 + 4u, ct[41]);
  store_ct_vec4(c_base4, m0 + 20u, n0 + 8u, ct[42]);
  store_ct_vec4(c_base4, m0 + 20u, n0 + 12u, ct[43]);
  store_ct_vec4(c_base4, m0 + 20u, n0 + 16u, ct[44]);
  store_ct_vec4(c_base4, m0 + 20u, n0 + 20u, ct[45]);
  store_ct_vec4(c_base4, m0 + 20u, n0 + 24u, ct[46]);
  store_ct_vec4(c_base4, m0 + 20u, n0 + 28u, ct[47]);
  store_ct_vec4(c_base4, m0 + 24u, n0 + 0u, ct[48]);
  store_ct_vec4(c_base4, m0 + 24u, n0 + 4u, ct[49]);
  store_ct_vec4(c_base4, m0 + 24u, n0 + 8u, ct[50]);
  store_ct_vec4(c_base4, m0 + 24u, n0 + 12u, ct[51]);
  store_ct_vec4(c_base4, m0 + 24u, n0 + 16u, ct[52]);
  store_ct_vec4(c_base4, m0 + 24u, n0 + 20u, ct[53]);
  store_ct_vec4(c_base4, m0 + 24u, n0 + 24u, ct[54]);
  store_ct_vec4(c_base4, m0 + 24u, n0 + 28u, ct[55]);
  store_ct_vec4(c_base4, m0 + 28u, n0 + 0u, ct[56]);
  store_ct_vec4(c_base4, m0 + 28u, n0 + 4u, ct[57]);
  store_ct_vec4(c_base4, m0 + 28u, n0 + 8u, ct[58]);
  store_ct_vec4(c_base4, m0 + 28u, n0 + 12u, ct[59]);
  store_ct_vec4(c_base4, m0 + 28u, n0 + 16u, ct[60]);
  store_ct_vec4(c_base4, m0 + 28u, n0 + 20u, ct[61]);
  store_ct_vec4(c_base4, m0 + 28u, n0 + 24u, ct[62]);
  store_ct_vec4(c_base4, m0 + 28u, n0 + 28u, ct[63]);
}
