// C and its stores for kernels/matmul_textures.wgsl, as vec4: N a multiple of 4 (then every
// 4-column group of a thread, n = n0 or n0 + 4, lies inside N or wholly past it). The same
// values as matmul_textures_store.wgsl, in a quarter of the stores.

@group(0) @binding(1) var<storage, read_write> c: array<vec4<f32>>;

/** Stores (or adds) C[row, n .. n+3] = v when the row and the columns are inside M × N. */
fn store_row(v: vec4<f32>, row: u32, n: u32) {
  if (row >= params.M || n >= params.N) {
    return;
  }
  let at = (row * params.N + n) / 4u;
  if (ACCUMULATE) {
    c[at] += v;
  } else {
    c[at] = v;
  }
}
