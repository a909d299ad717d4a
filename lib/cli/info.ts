// `rmt info [--json]`: which adapter rmt runs on, its backend, limits and features.

import { parseArgs } from "node:util";
import { gpu } from "../gpu/context.ts";
import type { AdapterSummary } from "../gpu/device.ts";
import { VERSION } from "../version.ts";

export const infoHelp = `rmt info [--json]

Prints the WebGPU adapter rmt would use: name, backend, whether it is a software
fallback (Mesa llvmpipe/lavapipe), the limits rmt requested, and the optional features.

Options:
  --json    one JSON object instead of text (default: off)
  --help    this help`;

/** The limits that decide what fits: shown first in the text form. */
const KEY_LIMITS = [
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupsPerDimension",
];

export function formatInfo(a: AdapterSummary): string {
  const lines = [
    `rmt ${VERSION}`,
    `adapter:   ${a.name}`,
    `backend:   ${a.backend}${a.isFallback ? " (software fallback: CPU, slow)" : ""}`,
    `kernels:   ${a.kernels}${
      a.kernels === (a.isFallback ? "software" : "gpu") ? "" : " (RMT_KERNELS)"
    }`,
    `features:  ${a.features.join(", ") || "(none)"}`,
    "limits:",
  ];
  for (const k of KEY_LIMITS) lines.push(`  ${k.padEnd(36)} ${a.limits[k]}`);
  return lines.join("\n");
}

export async function info(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { json: { type: "boolean", default: false }, help: { type: "boolean" } },
  });
  if (values.help) {
    console.log(infoHelp);
    return 0;
  }
  const ctx = await gpu();
  if (values.json) console.log(JSON.stringify({ version: VERSION, adapter: ctx.adapter }, null, 2));
  else console.log(formatInfo(ctx.adapter));
  return 0;
}
