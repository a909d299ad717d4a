// The bookkeeping of one decode step (lib/model/generate.ts), done on the GPU so that the
// sampled ids feed the next step without a readback. One thread per row r < B:
//
//   if finished[r] == 0:                    the row is still generating
//     token = sampled[r], logprob = sampled_logprobs[r]
//     finished[r] = 1 if token is one of stop[0 .. stop_count)
//   else:                                   it stopped at an earlier step
//     token = pad_id, logprob = 0
//   tokens[r, column] = token, logprobs[r, column] = logprob     (the generated chunk)
//   next_ids[r] = token                                          (the next step's input)
//   positions[r] += 1                                            (its position)
//
//   sampled, next_ids, finished, positions: [B]     stop: [S] (S ≥ 1 bound; stop_count ≤ S)
//   tokens, logprobs: [B, columns]                  column < columns
//
// Each thread reads and writes only its own row: no races, bit-exact reruns. Integers and
// copies only: nothing here has a gradient.

override WORKGROUP_SIZE: u32 = 64u;

struct Params {
  rows: u32,
  columns: u32,
  column: u32,
  stop_count: u32,
  pad_id: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> sampled: array<u32>; // [B]
@group(0) @binding(2) var<storage, read> sampled_logprobs: array<f32>; // [B]
@group(0) @binding(3) var<storage, read> stop: array<u32>; // [S]
@group(0) @binding(4) var<storage, read_write> finished: array<u32>; // [B] 0/1
@group(0) @binding(5) var<storage, read_write> next_ids: array<u32>; // [B]
@group(0) @binding(6) var<storage, read_write> positions: array<i32>; // [B]
@group(0) @binding(7) var<storage, read_write> tokens: array<u32>; // [B, columns]
@group(0) @binding(8) var<storage, read_write> logprobs: array<f32>; // [B, columns]

fn is_stop(token: u32) -> bool {
  for (var i = 0u; i < params.stop_count; i++) {
    if (stop[i] == token) { return true; }
  }
  return false;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn decode_step(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let r = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  if (r >= params.rows) { return; }
  var token = params.pad_id;
  var logprob = 0.0;
  if (finished[r] == 0u) {
    token = sampled[r];
    logprob = sampled_logprobs[r];
    if (is_stop(token)) { finished[r] = 1u; }
  }
  let at = r * params.columns + params.column;
  tokens[at] = token;
  logprobs[at] = logprob;
  next_ids[r] = token;
  positions[r] = positions[r] + 1;
}
