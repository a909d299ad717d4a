// `rmt demo`: the main job a new user runs first. For now: the adapter, then the kernel
// self-check. (Later: create a small model, pre-train it, run RMT, evaluate.)

import { parseArgs } from "node:util";
import { gpu } from "../gpu/context.ts";
import { formatInfo } from "./info.ts";
import { formatChecks, runKernelChecks } from "./selfcheck.ts";

export const demoHelp = `rmt demo [--seed S]

Shows the GPU adapter rmt runs on and checks every kernel family against its
TypeScript reference on small random inputs.

Options:
  --seed S    seed of the random inputs (default: 1)
  --help      this help`;

export async function demo(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { seed: { type: "string", default: "1" }, help: { type: "boolean" } },
  });
  if (values.help) {
    console.log(demoHelp);
    return 0;
  }
  const ctx = await gpu();
  console.log(formatInfo(ctx.adapter));
  console.log("\nkernel self-check (GPU vs TypeScript reference):");
  const results = await runKernelChecks(ctx, Number(values.seed));
  console.log(formatChecks(results));
  const failed = results.filter((r) => !r.passed).length;
  console.log(`${results.length - failed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}
