// Matrix multiplication through textures (variant 4 of lib/ops/matmul.ts, for software
// adapters): C (+)= op(A) · op(B), each operand first copied into an rgba32float storage
// texture that holds it "by rows along k":
//
//   texel (kt, r) of A's texture = op(A)[r, 4·kt .. 4·kt+3]   r < M   (zero past K)
//   texel (kt, r) of B's texture = op(B)[4·kt .. 4·kt+3, r]   r < N   (zero past K)
//
// Why: on lavapipe (Mesa's CPU Vulkan driver) a storage-buffer load is a loop over the 8
// SIMD lanes with a branch and a bounds check per lane and per component, while a texel
// load is one vectorised gather of 8 × 16 bytes. Measured at M=1024, K=384, N=1536: 33–37
// GFLOP/s from storage textures against 13 for the buffer kernel with the same vec4 loads
// (sampled textures: 25–27). The copies cost O(M·K + N·K) against the product's O(M·N·K).
//
// or, when the operand is stored [K, rows] (A_K_MAJOR, B_K_MAJOR), "k-major":
//
//   texel (q, k) = op(X)[4q .. 4q+3, k]        (K a multiple of 4: no padding needed)
//
// Either layout is the operand's own bytes when its stored rows are a multiple of 64 floats
// (WebGPU's 256-byte row alignment for copies): lib/ops/matmul.ts then copies it with
// copyBufferToTexture, the cheap case; otherwise kernels/pack_rows.wgsl builds the first
// layout (lib/ops/texture_staging.ts).
//
// matmul_textures: a thread per 16 × 8 block of C; k ascends one texel (4 values) at a time,
// so each C element is one thread's fixed-order sum (deterministic). Per texel step: 24 texel
// loads for 128 dot products of 4. (Written with mat4x4 products instead, the same work ran
// 1.7× slower on lavapipe.) C and its store_row come from one of two small files that
// lib/ops/matmul.ts puts after this one: kernels/matmul_textures_store.wgsl (any N) or
// kernels/matmul_textures_store4.wgsl (N a multiple of 4: vec4 stores, the same values;
// on lavapipe a scalar store is a loop over the SIMD lanes, and C's stores and accumulating
// loads took ~8% of a training step).
//
// Textures are at least as tall as the dispatch covers (the caller rounds M up to 16·TEX_WG_Y
// rows and N up to 8·TEX_WG_X), so every texel load is in bounds and only the stores check
// M and N; rows past M or N hold whatever an earlier product left there and only feed
// accumulators that are never stored.

// ---- matmul_textures --------------------------------------------------------------------

override ACCUMULATE: bool = false;
override A_K_MAJOR: bool = false;
override B_K_MAJOR: bool = false;
// Threads per workgroup: x along N (8 columns each), y along M (16 rows each).
override TEX_WG_X: u32 = 8u;
override TEX_WG_Y: u32 = 8u;

struct Params {
  M: u32,
  N: u32,
  /** ceil(K / 4): texels per row */
  K4: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// binding 1: c, in the store file (see the top)
@group(0) @binding(2) var a_rows: texture_storage_2d<rgba32float, read>;
@group(0) @binding(3) var b_rows: texture_storage_2d<rgba32float, read>;

/**
 * Rows r .. r+3 of an operand at k = 4kt .. 4kt+3, as the columns of a matrix (column j =
 * row r + j over those four k), from either texture layout.
 */
fn four_rows(t: texture_storage_2d<rgba32float, read>, k_major: bool, kt: u32, r: u32)
    -> mat4x4<f32> {
  if (k_major) {
    // Texel (r/4, k) holds rows r .. r+3 at one k: four of them, transposed.
    let q = r / 4u;
    let k = kt * 4u;
    return transpose(mat4x4<f32>(textureLoad(t, vec2<u32>(q, k)),
      textureLoad(t, vec2<u32>(q, k + 1u)), textureLoad(t, vec2<u32>(q, k + 2u)),
      textureLoad(t, vec2<u32>(q, k + 3u))));
  }
  return mat4x4<f32>(textureLoad(t, vec2<u32>(kt, r)), textureLoad(t, vec2<u32>(kt, r + 1u)),
    textureLoad(t, vec2<u32>(kt, r + 2u)), textureLoad(t, vec2<u32>(kt, r + 3u)));
}

/** The dot products of `a` with four texels: C[row, n .. n+3]'s share of one k step. */
fn dots(a: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(dot(a, b0), dot(a, b1), dot(a, b2), dot(a, b3));
}

@compute @workgroup_size(TEX_WG_X, TEX_WG_Y)
fn matmul_textures(@builtin(global_invocation_id) gid: vec3<u32>) {
  let m0 = gid.y * 16u; // this thread's rows m0 .. m0+15
  let n0 = gid.x * 8u; // and columns n0 .. n0+7
  // rI_L = C[m0 + I, n0 .. n0+3], rI_H = C[m0 + I, n0+4 .. n0+7]. Spelled out: lavapipe keeps
  // them in registers only as separate variables (an array indexed in a loop is memory).
  var r0_L = vec4<f32>();
  var r0_H = vec4<f32>();
  var r1_L = vec4<f32>();
  var r1_H = vec4<f32>();
  var r2_L = vec4<f32>();
  var r2_H = vec4<f32>();
  var r3_L = vec4<f32>();
  var r3_H = vec4<f32>();
  var r4_L = vec4<f32>();
  var r4_H = vec4<f32>();
  var r5_L = vec4<f32>();
  var r5_H = vec4<f32>();
  var r6_L = vec4<f32>();
  var r6_H = vec4<f32>();
  var r7_L = vec4<f32>();
  var r7_H = vec4<f32>();
  var r8_L = vec4<f32>();
  var r8_H = vec4<f32>();
  var r9_L = vec4<f32>();
  var r9_H = vec4<f32>();
  var r10_L = vec4<f32>();
  var r10_H = vec4<f32>();
  var r11_L = vec4<f32>();
  var r11_H = vec4<f32>();
  var r12_L = vec4<f32>();
  var r12_H = vec4<f32>();
  var r13_L = vec4<f32>();
  var r13_H = vec4<f32>();
  var r14_L = vec4<f32>();
  var r14_H = vec4<f32>();
  var r15_L = vec4<f32>();
  var r15_H = vec4<f32>();
  for (var kt = 0u; kt < params.K4; kt++) {
    // op(B)[4kt .. 4kt+3, n] for n = n0 .. n0+7, and op(A)[m, 4kt .. 4kt+3] for m0 .. m0+15
    // (in SoA form the transposes of the k-major layout are free: they only rename lanes).
    let bl = four_rows(b_rows, B_K_MAJOR, kt, n0);
    let bh = four_rows(b_rows, B_K_MAJOR, kt, n0 + 4u);
    let b0 = bl[0];
    let b1 = bl[1];
    let b2 = bl[2];
    let b3 = bl[3];
    let b4 = bh[0];
    let b5 = bh[1];
    let b6 = bh[2];
    let b7 = bh[3];
    let a_0 = four_rows(a_rows, A_K_MAJOR, kt, m0 + 0u);
    let a0 = a_0[0];
    r0_L += dots(a0, b0, b1, b2, b3);
    r0_H += dots(a0, b4, b5, b6, b7);
    let a1 = a_0[1];
    r1_L += dots(a1, b0, b1, b2, b3);
    r1_H += dots(a1, b4, b5, b6, b7);
    let a2 = a_0[2];
    r2_L += dots(a2, b0, b1, b2, b3);
    r2_H += dots(a2, b4, b5, b6, b7);
    let a3 = a_0[3];
    r3_L += dots(a3, b0, b1, b2, b3);
    r3_H += dots(a3, b4, b5, b6, b7);
    let a_1 = four_rows(a_rows, A_K_MAJOR, kt, m0 + 4u);
    let a4 = a_1[0];
    r4_L += dots(a4, b0, b1, b2, b3);
    r4_H += dots(a4, b4, b5, b6, b7);
    let a5 = a_1[1];
    r5_L += dots(a5, b0, b1, b2, b3);
    r5_H += dots(a5, b4, b5, b6, b7);
    let a6 = a_1[2];
    r6_L += dots(a6, b0, b1, b2, b3);
    r6_H += dots(a6, b4, b5, b6, b7);
    let a7 = a_1[3];
    r7_L += dots(a7, b0, b1, b2, b3);
    r7_H += dots(a7, b4, b5, b6, b7);
    let a_2 = four_rows(a_rows, A_K_MAJOR, kt, m0 + 8u);
    let a8 = a_2[0];
    r8_L += dots(a8, b0, b1, b2, b3);
    r8_H += dots(a8, b4, b5, b6, b7);
    let a9 = a_2[1];
    r9_L += dots(a9, b0, b1, b2, b3);
    r9_H += dots(a9, b4, b5, b6, b7);
    let a10 = a_2[2];
    r10_L += dots(a10, b0, b1, b2, b3);
    r10_H += dots(a10, b4, b5, b6, b7);
    let a11 = a_2[3];
    r11_L += dots(a11, b0, b1, b2, b3);
    r11_H += dots(a11, b4, b5, b6, b7);
    let a_3 = four_rows(a_rows, A_K_MAJOR, kt, m0 + 12u);
    let a12 = a_3[0];
    r12_L += dots(a12, b0, b1, b2, b3);
    r12_H += dots(a12, b4, b5, b6, b7);
    let a13 = a_3[1];
    r13_L += dots(a13, b0, b1, b2, b3);
    r13_H += dots(a13, b4, b5, b6, b7);
    let a14 = a_3[2];
    r14_L += dots(a14, b0, b1, b2, b3);
    r14_H += dots(a14, b4, b5, b6, b7);
    let a15 = a_3[3];
    r15_L += dots(a15, b0, b1, b2, b3);
    r15_H += dots(a15, b4, b5, b6, b7);
  }
  store_row(r0_L, m0 + 0u, n0);
  store_row(r0_H, m0 + 0u, n0 + 4u);
  store_row(r1_L, m0 + 1u, n0);
  store_row(r1_H, m0 + 1u, n0 + 4u);
  store_row(r2_L, m0 + 2u, n0);
  store_row(r2_H, m0 + 2u, n0 + 4u);
  store_row(r3_L, m0 + 3u, n0);
  store_row(r3_H, m0 + 3u, n0 + 4u);
  store_row(r4_L, m0 + 4u, n0);
  store_row(r4_H, m0 + 4u, n0 + 4u);
  store_row(r5_L, m0 + 5u, n0);
  store_row(r5_H, m0 + 5u, n0 + 4u);
  store_row(r6_L, m0 + 6u, n0);
  store_row(r6_H, m0 + 6u, n0 + 4u);
  store_row(r7_L, m0 + 7u, n0);
  store_row(r7_H, m0 + 7u, n0 + 4u);
  store_row(r8_L, m0 + 8u, n0);
  store_row(r8_H, m0 + 8u, n0 + 4u);
  store_row(r9_L, m0 + 9u, n0);
  store_row(r9_H, m0 + 9u, n0 + 4u);
  store_row(r10_L, m0 + 10u, n0);
  store_row(r10_H, m0 + 10u, n0 + 4u);
  store_row(r11_L, m0 + 11u, n0);
  store_row(r11_H, m0 + 11u, n0 + 4u);
  store_row(r12_L, m0 + 12u, n0);
  store_row(r12_H, m0 + 12u, n0 + 4u);
  store_row(r13_L, m0 + 13u, n0);
  store_row(r13_H, m0 + 13u, n0 + 4u);
  store_row(r14_L, m0 + 14u, n0);
  store_row(r14_H, m0 + 14u, n0 + 4u);
  store_row(r15_L, m0 + 15u, n0);
  store_row(r15_H, m0 + 15u, n0 + 4u);
}
