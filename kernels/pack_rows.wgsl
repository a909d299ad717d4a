// pack_rows: one matrix → a staging texture "by rows along k" (lib/ops/texture_staging.ts),
// for the operands whose bytes are not already a texture layout (rows not a multiple of 64
// floats, see kernels/matmul_textures.wgsl):
//
//   texel (kt, r) = x[r, 4·kt .. 4·kt+3]   (zero past K)        a thread per texel
//
// (~2.5 ms per 1024 × 384 operand on lavapipe, mostly its texel stores; a 4 × 4-block version
// was no faster.)

// Stored layout of the source: false = [rows, K] (k contiguous), true = [K, rows].
override STORED_K_MAJOR: bool = false;

struct PackParams {
  rows: u32,
  K: u32,
}

@group(0) @binding(0) var<uniform> pack: PackParams;
@group(0) @binding(1) var<storage, read> source: array<f32>;
@group(0) @binding(2) var packed: texture_storage_2d<rgba32float, write>;

/** Element (r, k) of the source, 0 past K. */
fn source_at(r: u32, k: u32) -> f32 {
  if (k >= pack.K) {
    return 0.0;
  }
  if (STORED_K_MAJOR) {
    return source[k * pack.rows + r];
  }
  return source[r * pack.K + k];
}

@compute @workgroup_size(8, 8)
fn pack_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
  let kt = gid.x; // texel column: k = 4·kt ..
  let r = gid.y;
  if (r >= pack.rows || kt * 4u >= pack.K) {
    return;
  }
  let k = kt * 4u;
  let texel = vec4<f32>(source_at(r, k), source_at(r, k + 1u), source_at(r, k + 2u),
    source_at(r, k + 3u));
  textureStore(packed, vec2<u32>(kt, r), texel);
}
