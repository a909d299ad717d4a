// Elementwise kernels on flat f32 arrays: residual add and scale.
//   add:          out[i] = a[i] + b[i]
//   scale:        out[i] = alpha * a[i]
//   add_scaled:   out[i] = a[i] + alpha * b[i]     (axpy; the residual/update helper)
// One thread per element; the linear index spans x and y of the grid (see GpuContext.groupsFor).

override WORKGROUP_SIZE: u32 = 256u;

struct Params {
  count: u32,
  alpha: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn linear_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
  return gid.x + gid.y * groups.x * WORKGROUP_SIZE;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_index(gid, groups);
  if (i >= params.count) { return; }
  out[i] = a[i] + b[i];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn add_scaled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_index(gid, groups);
  if (i >= params.count) { return; }
  out[i] = a[i] + params.alpha * b[i];
}

// scale reads only `a`; its output takes binding 2, which `b` holds in the other entry points.
@group(0) @binding(2) var<storage, read_write> scale_out: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_index(gid, groups);
  if (i >= params.count) { return; }
  scale_out[i] = params.alpha * a[i];
}

// add with vec4 (count a multiple of 4; threads: count / 4): on lavapipe one vec4 load or
// store costs far less than four scalar ones. Same bits.
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out4: array<vec4<f32>>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn add4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_index(gid, groups);
  if (i >= params.count / 4u) { return; }
  out4[i] = a4[i] + b4[i];
}
