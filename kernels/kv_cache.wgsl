// Copies of row ranges along the time axis, for the KV cache (lib/model/kv_cache.ts):
//
//   dst[b, dst_start + t, w] = src[b, src_start + t, w]    for b < B, t < count, w < W
//   src: [B, src_rows, W]    dst: [B, dst_rows, W]
//
// Writing new keys into the cache is src = new rows [B, T, W] → dst = cache [B, maxLen, W]
// at dst_start = the cache length; reading the filled prefix for attention is src = cache →
// dst = [B, len, W] (attention wants its keys contiguous as [B, Tk, Hkv, D]). The same copy
// serves the key mask (W = 1). Values are moved as u32 bits, so f32 data (and u32 masks)
// arrive bit-exact: no float load/store could flush a denormal or canonicalise a NaN.
// Pure copies: nothing here has a gradient (the cache is for inference only).
//
// One thread per copied element; the linear index spans x and y of the grid
// (GpuContext.groupsFor).

override WORKGROUP_SIZE: u32 = 256u;

struct Params {
  /** B · count · W: the number of elements copied. */
  total: u32,
  count: u32,
  width: u32,
  src_rows: u32,
  src_start: u32,
  dst_rows: u32,
  dst_start: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

// Element i of the copy: (its index in src, its index in dst).
fn copy_indices(i: u32) -> vec2<u32> {
  let w = i % params.width;
  let bt = i / params.width;
  let t = bt % params.count;
  let b = bt / params.count;
  let src_index = (b * params.src_rows + params.src_start + t) * params.width + w;
  let dst_index = (b * params.dst_rows + params.dst_start + t) * params.width + w;
  return vec2<u32>(src_index, dst_index);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn copy_time_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  if (i >= params.total) { return; }
  let at = copy_indices(i);
  dst[at.y] = src[at.x];
}

// Two copies of the same shape in one dispatch (a layer's keys and values): threads
// 0 .. total−1 copy src → dst, the next total src2 → dst2. With ADD_BIAS2 the second copy adds
// bias2[w] to each element as f32 (the values' projection bias, Qwen2's v_proj: the bits of a
// bias add before the copy).
override ADD_BIAS2: bool = false;

@group(0) @binding(3) var<storage, read> src2: array<u32>;
@group(0) @binding(4) var<storage, read_write> dst2: array<u32>;
@group(0) @binding(5) var<storage, read> bias2: array<f32>; // [W] (without ADD_BIAS2: src2)

@compute @workgroup_size(WORKGROUP_SIZE)
fn copy_time_rows_pair(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  if (i < params.total) {
    let at = copy_indices(i);
    dst[at.y] = src[at.x];
  } else if (i < 2u * params.total) {
    let j = i - params.total;
    let at = copy_indices(j);
    if (ADD_BIAS2) {
      dst2[at.y] = bitcast<u32>(bitcast<f32>(src2[at.x]) + bias2[j % params.width]);
    } else {
      dst2[at.y] = src2[at.x];
    }
  }
}
