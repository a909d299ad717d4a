// Column blocks of a row-major matrix: the glue of a linear layer whose weight is held as row
// chunks (lib/model/linear.ts). A chunk of W's rows gives a block of y's columns.
//
//   columns_write:  wide[n, start + j] = narrow[n, j]     narrow: [N, c] → wide: [N, C]
//                   (the other columns of wide are left as they are)
//   columns_read:   narrow[n, j] = wide[n, start + j]     wide: [N, C] → narrow: [N, c]
//
// with 0 ≤ start, start + c ≤ C. Pure copies: exact, and each output element has exactly one
// writer. One thread per element of the narrow matrix; the linear index spans x and y of the
// grid (see GpuContext.groupsFor).

override WORKGROUP_SIZE: u32 = 256u;

struct Params {
  count: u32,  // N·c: elements of the narrow matrix
  narrow: u32, // c: its columns
  wide: u32,   // C: the wide matrix's columns
  start: u32,  // the first column of the block in the wide matrix
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

fn linear_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
  return gid.x + gid.y * groups.x * WORKGROUP_SIZE;
}

/** The element of the wide matrix that narrow element i corresponds to. */
fn wide_index(i: u32) -> u32 {
  let n = i / params.narrow;
  let j = i - n * params.narrow;
  return n * params.wide + params.start + j;
}

// src: narrow [N, c], dst: wide [N, C]
@compute @workgroup_size(WORKGROUP_SIZE)
fn columns_write(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let i = linear_index(gid, groups);
  if (i >= params.count) { return; }
  dst[wide_index(i)] = src[i];
}

// src: wide [N, C], dst: narrow [N, c]
@compute @workgroup_size(WORKGROUP_SIZE)
fn columns_read(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let i = linear_index(gid, groups);
  if (i >= params.count) { return; }
  dst[i] = src[wide_index(i)];
}
