// Deterministic sums over contiguous segments of a flat f32 array.
//
//   sum_segments:  output[out_offset + s] = (Σ_{i in segment s} f(input[i])) / divisor
//                  segment s = input[s·segment .. min((s+1)·segment, count)),
//                  f(x_i) = x_i·x_i (mode 1), x_i·y_i (mode 2: a dot product with `other`), or
//                  x_i (mode 0).
//
// One workgroup per segment. Every thread sums the elements tid, tid + WG, tid + 2·WG, …
// of its segment in that order, then the workgroup adds the WG partial sums with a fixed
// binary tree. The result depends only on the data and on (segment, WORKGROUP_SIZE), never
// on scheduling: reruns are bit-identical.
//
// The ops build everything from this one entry point:
//   row sums / means ([rows, n] → [rows])  one dispatch, segment = n, segments = rows;
//   a full sum of any length               several levels: segment = CHUNK elements per
//                                          workgroup, then the partial sums of the level
//                                          below, until one segment is left, which is
//                                          written at output[out_offset].
// Segments are numbered across the x and y of the grid (see GpuContext.groupsFor).

override WORKGROUP_SIZE: u32 = 256u; // a power of two (the tree halves it)

struct Params {
  count: u32,      // elements in `input`
  segment: u32,    // elements per segment
  segments: u32,   // number of segments (workgroups that do work)
  mode: u32,       // 0: add x, 1: add x·x, 2: add x·other
  divisor: f32,    // each segment's sum is divided by it (1 for sums, n for means)
  out_offset: u32, // segment s is written at output[out_offset + s]
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> output: array<f32>;
@group(0) @binding(3) var<storage, read> other: array<f32>; // mode 2 (else input stands in)

var<workgroup> partial: array<f32, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn sum_segments(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let s = wid.x + wid.y * groups.x;
  if (s >= params.segments) { return; } // whole workgroup: uniform
  let start = s * params.segment;
  let end = min(start + params.segment, params.count);
  var acc = 0.0;
  for (var i = start + tid; i < end; i += WORKGROUP_SIZE) {
    let x = input[i];
    if (params.mode == 2u) {
      acc += x * other[i];
    } else {
      acc += select(x, x * x, params.mode == 1u);
    }
  }
  partial[tid] = acc;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (tid < stride) { partial[tid] += partial[tid + stride]; }
    workgroupBarrier();
  }
  if (tid == 0u) { output[params.out_offset + s] = partial[0] / params.divisor; }
}
