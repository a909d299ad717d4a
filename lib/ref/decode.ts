// Reference of one decode step's bookkeeping (lib/ops/decode.ts, kernels/decode.wgsl): plain
// loops on host arrays. Integer bookkeeping and copies: no backward.

export interface HostDecodeState {
  /** [B] 0/1 */
  finished: Uint32Array;
  /** [B] */
  nextIds: Uint32Array;
  /** [B] */
  positions: Int32Array;
  /** [B, C] */
  tokens: Uint32Array;
  /** [B, C] */
  logprobs: Float32Array;
}

/** The state after one step at `column` (a new state; the input is not modified). */
export function decodeStep(
  sampledIds: ArrayLike<number>,
  sampledLogprobs: ArrayLike<number>,
  stop: readonly number[],
  state: HostDecodeState,
  columns: number,
  column: number,
  padId: number,
): HostDecodeState {
  const out: HostDecodeState = {
    finished: state.finished.slice(),
    nextIds: state.nextIds.slice(),
    positions: state.positions.slice(),
    tokens: state.tokens.slice(),
    logprobs: state.logprobs.slice(),
  };
  for (let r = 0; r < sampledIds.length; r++) {
    let token = padId;
    let logprob = 0;
    if (state.finished[r] === 0) {
      token = sampledIds[r];
      logprob = sampledLogprobs[r];
      if (stop.includes(token)) out.finished[r] = 1;
    }
    out.tokens[r * columns + column] = token;
    out.logprobs[r * columns + column] = logprob;
    out.nextIds[r] = token;
    out.positions[r] = state.positions[r] + 1;
  }
  return out;
}
