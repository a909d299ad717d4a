// rmt — Reinforcement Mid-Training of language models with WGSL kernels on WebGPU.
// Entry point: everything lives in lib/; see lib/cli/main.ts for the commands.

import { main } from "./lib/cli/main.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
