// C and its stores for kernels/matmul_textures.wgsl, scalar: any N (lib/ops/matmul.ts appends
// this file, or matmul_textures_store4.wgsl, to that one).

@group(0) @binding(1) var<storage, read_write> c: array<f32>;

/** Stores (or adds) C[row, n .. n+3] = v, the parts inside M × N. */
fn store_row(v: vec4<f32>, row: u32, n: u32) {
  if (row >= params.M) {
    return;
  }
  for (var j = 0u; j < 4u; j++) {
    if (n + j < params.N) {
      let at = row * params.N + n + j;
      if (ACCUMULATE) {
        c[at] += v[j];
      } else {
        c[at] = v[j];
      }
    }
  }
}
