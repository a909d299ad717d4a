// `deno task bench [--quick]`: runs the benchmark suite and prints one JSON document.
// Every number is measured in this run, on the adapter named in the output.

import { parseArgs } from "node:util";
import { gpu } from "../lib/gpu/context.ts";
import { VERSION } from "../lib/version.ts";
import { benchAttention } from "./attention.ts";
import { benchMatmul } from "./matmul.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    json: { type: "boolean", default: true }, // the output is always JSON; accepted for clarity
  },
});

const ctx = await gpu();
const started = new Date();
const report = {
  rmt: VERSION,
  date: started.toISOString(),
  deno: Deno.version.deno,
  adapter: {
    name: ctx.adapter.name,
    backend: ctx.adapter.backend,
    isFallback: ctx.adapter.isFallback,
  },
  quick: values.quick,
  matmul: await benchMatmul(ctx, { quick: values.quick }),
  attention: await benchAttention(ctx, { quick: values.quick }),
  seconds: 0,
};
report.seconds = Math.round((Date.now() - started.getTime()) / 100) / 10;
console.log(JSON.stringify(report, null, 2));
