// The per-step bookkeeping of batched generation, on the GPU (kernels/decode.wgsl): after a
// step's ids are sampled, each row records its token (or, once it has emitted a stop token,
// a pad id), sets its "finished" flag on a stop token, and feeds the token and its position
// to the next step. Nothing is read back: the host reads the recorded tokens once per chunk.
//
//   decodeStep: sampledIds [B] u32, sampledLogprobs [B] f32, stop [S] u32 (or none),
//               state { finished [B] u32, nextIds [B] u32, positions [B] i32,
//                       tokens [B, C] u32, logprobs [B, C] f32 } updated in place at column c

import type { GpuContext } from "../gpu/context.ts";
import { Params } from "../gpu/params.ts";
import { shapeString, type Tensor } from "../gpu/tensor.ts";
import source from "../../kernels/decode.wgsl" with { type: "text" };

const WORKGROUP_SIZE = 64;
const kernel = {
  name: "decode",
  source,
  entry: "decode_step",
  constants: { WORKGROUP_SIZE },
};

/** The GPU state a generation carries from step to step (the caller owns and releases it). */
export interface DecodeState {
  /** [B] u32: 1 once the row has produced a stop token. */
  readonly finished: Tensor<"u32">;
  /** [B] u32: the ids the next forward reads (reshape to [B, 1]). */
  readonly nextIds: Tensor<"u32">;
  /** [B] i32: the position of nextIds in each sequence (incremented by every step). */
  readonly positions: Tensor<"i32">;
  /** [B, C] u32: the generated tokens, column c written by step c. */
  readonly tokens: Tensor<"u32">;
  /** [B, C] f32: their log-probabilities (0 after the row finished). */
  readonly logprobs: Tensor<"f32">;
}

export interface DecodeStepOptions {
  /** c: the column of tokens/logprobs this step writes (< C). */
  column: number;
  /** The id recorded (and fed) for finished rows. */
  padId: number;
}

function expect(name: string, t: Tensor, dtype: string, size: number, shape?: number[]): void {
  const badShape = shape !== undefined &&
    (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]));
  if (t.dtype !== dtype || t.size !== size || badShape) {
    throw new Error(
      `decodeStep: ${name} is ${t.dtype} ${shapeString(t.shape)}, expected ${dtype} ` +
        (shape ? shapeString(shape) : `with ${size} elements`),
    );
  }
}

/**
 * Records one step: sampledIds [B] u32 and sampledLogprobs [B] f32 (from `sample`), stop [S]
 * u32 the stop ids (null: none) → state updated in place (see the top of this file).
 */
export function decodeStep(
  ctx: GpuContext,
  sampledIds: Tensor<"u32">,
  sampledLogprobs: Tensor<"f32">,
  stop: Tensor<"u32"> | null,
  state: DecodeState,
  { column, padId }: DecodeStepOptions,
): void {
  const rows = sampledIds.size;
  const columns = state.tokens.shape[1] ?? 0;
  expect("sampledIds", sampledIds, "u32", rows);
  expect("sampledLogprobs", sampledLogprobs, "f32", rows);
  expect("finished", state.finished, "u32", rows);
  expect("nextIds", state.nextIds, "u32", rows);
  expect("positions", state.positions, "i32", rows);
  expect("tokens", state.tokens, "u32", rows * columns, [rows, columns]);
  expect("logprobs", state.logprobs, "f32", rows * columns, [rows, columns]);
  if (stop !== null && stop.dtype !== "u32") {
    throw new Error(`decodeStep: stop is ${stop.dtype} ${shapeString(stop.shape)}, expected u32`);
  }
  if (!Number.isInteger(column) || column < 0 || column >= columns) {
    throw new Error(
      `decodeStep: column ${column} is outside tokens ${shapeString([rows, columns])}`,
    );
  }
  const stopCount = stop?.size ?? 0;
  ctx.dispatch(kernel, {
    params: new Params().u32(rows).u32(columns).u32(column).u32(stopCount).u32(padId),
    // No stop ids: the sampled ids stand in for the (statically bound, unread) stop buffer.
    tensors: [
      sampledIds,
      sampledLogprobs,
      stop !== null && stopCount > 0 ? stop : sampledIds,
      state.finished,
      state.nextIds,
      state.positions,
      state.tokens,
      state.logprobs,
    ],
    workgroups: ctx.groupsFor(rows, WORKGROUP_SIZE),
  });
}
