// Mesa's llvmpipe (lavapipe, the software adapter) ends every loop of a shader invocation once
// that invocation has run LP_MAX_TGSI_LOOP_ITERATIONS = 65,535 loop iterations in all (a guard
// against hangs in Mesa's gallivm), and the kernel then writes wrong values without any error.
// Measured with Mesa 22.3: attention went wrong from ~700–1,800 rows, the tiled matmul from
// K ≈ 65,536. An op whose invocations loop over a size the caller chooses (keys, K, the
// occurrences of a token) keeps every dispatch within loopBudget(ctx): by splitting the work
// into several dispatches, or by refusing the shape with one line (LoopLimitError).

import type { GpuContext } from "./context.ts";
import { UserError } from "./errors.ts";

export const LLVMPIPE_LOOP_LIMIT = 65535;
/** What an op may plan for one invocation: room for the loops its estimate does not count. */
const SOFTWARE_LOOP_BUDGET = 60000;

/** Loop iterations one invocation may run on this adapter: the budget on a software one. */
export function loopBudget(ctx: GpuContext): number {
  return ctx.adapter.isFallback ? SOFTWARE_LOOP_BUDGET : Infinity;
}

/** A shape past the software adapter's loop limit (the CLI prints it as one line). */
export class LoopLimitError extends UserError {
  constructor(op: string, what: string, iterations: number, advice: string) {
    super(
      `${op}: ${what} is more than this software adapter can run: one invocation would loop ` +
        `~${iterations} times, and llvmpipe stops every loop after ${LLVMPIPE_LOOP_LIMIT} in ` +
        `all, returning wrong values; ${advice}, or use a GPU`,
    );
  }
}
