// `rmt selfcheck`: runs every kernel family once on a small random case and compares it
// with the plain-TypeScript reference. Useful on a new GPU server or driver: a wrong
// result here means a driver or shader-compiler problem, before any training starts.

import { parseArgs } from "node:util";
import { gpu, type GpuContext } from "../gpu/context.ts";
import { UserError } from "../gpu/errors.ts";
import { KERNEL_CHECKS } from "./kernel_checks.ts";

export const selfcheckHelp = `rmt selfcheck [--json] [--seed S]

Runs each kernel family on a small random case and compares it with the TypeScript
reference. Exit code 1 if any result is outside its tolerance.

Options:
  --json      one JSON object instead of a table (default: off)
  --seed S    seed of the random inputs (default: 1)
  --help      this help`;

export interface CheckResult {
  name: string;
  /** Largest |gpu − ref| / (atol + rtol·|ref|): ≤ 1 passes. */
  worst: number;
  passed: boolean;
  ms: number;
}

export async function runKernelChecks(ctx: GpuContext, seed: number): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of KERNEL_CHECKS) {
    const start = performance.now();
    const worst = await check.run(ctx, seed);
    results.push({
      name: check.name,
      worst,
      passed: worst <= 1,
      ms: Math.round(performance.now() - start),
    });
  }
  return results;
}

export function formatChecks(results: CheckResult[]): string {
  const width = Math.max(...results.map((r) => r.name.length));
  return results.map((r) =>
    `  ${r.name.padEnd(width)}  ${r.passed ? "ok  " : "FAIL"}  error/tolerance ${
      r.worst.toExponential(2)
    }  ${r.ms} ms`
  ).join("\n");
}

export async function selfcheck(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      json: { type: "boolean", default: false },
      seed: { type: "string", default: "1" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    console.log(selfcheckHelp);
    return 0;
  }
  const seed = Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) {
    throw new UserError(`--seed: expected a non-negative integer, got '${values.seed}'`);
  }
  const ctx = await gpu();
  const results = await runKernelChecks(ctx, seed);
  const failed = results.filter((r) => !r.passed).length;
  if (values.json) console.log(JSON.stringify({ adapter: ctx.adapter.name, results }, null, 2));
  else {
    console.log(`kernel self-check on ${ctx.adapter.name}:`);
    console.log(formatChecks(results));
    console.log(`${results.length - failed} passed, ${failed} failed`);
  }
  return failed === 0 ? 0 : 1;
}
