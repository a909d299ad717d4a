// Fixture folders for the report tests: run folders as `rmt train` writes them (run.json,
// config.yaml, metrics.jsonl; only the fields the report reads) and a pipeline folder with
// results.json listing two of them.

import type { MetricsRecord } from "../../lib/train/metrics.ts";

/** An RMT-like run: every RL metric logged; reward and match rate rise, the budget shrinks. */
export function rmtRecords(steps: number, offset = 0): MetricsRecord[] {
  return Array.from({ length: steps }, (_, i) => ({
    step: i + 1,
    lr: 0.0003,
    loss_ntp: 2 - i * 0.02 + offset,
    loss_rl: 0.1 * Math.sin(i / 3),
    reward_mean: 0.05 + i * 0.01 + offset,
    match_rate: i / (2 * steps),
    reasoning_len: 16 - i * 0.3,
    budget: Math.max(1, 8 - Math.floor(i / 4)),
    tier_mix: [5, 2, 1],
    parse_rate: Math.min(1, i / steps + 0.1),
    grad_norm: 1 / (i + 1),
    skipped: false,
  }));
}

/** An NTP-like run: the RL metrics are null. */
export function ntpRecords(steps: number): MetricsRecord[] {
  return Array.from({ length: steps }, (_, i) => ({
    step: i + 1,
    lr: 0.0003,
    loss_ntp: 2.1 - i * 0.015,
    loss_rl: null,
    reward_mean: null,
    match_rate: null,
    reasoning_len: null,
    budget: null,
    tier_mix: null,
    grad_norm: 0.5,
    skipped: false,
  }));
}

export interface RunFixture {
  method: string;
  records: MetricsRecord[];
  /** Extra text appended to metrics.jsonl (e.g. a torn last line). */
  tail?: string;
  /** Write the method into run.json (default) or only into config.yaml. */
  methodIn?: "run.json" | "config.yaml";
}

export async function writeRunFolder(dir: string, run: RunFixture): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const lines = run.records.map((r) => JSON.stringify(r) + "\n").join("") + (run.tail ?? "");
  await Deno.writeTextFile(`${dir}/metrics.jsonl`, lines);
  await Deno.writeTextFile(`${dir}/config.yaml`, `# rmt config\nmethod: ${run.method}\nseed: 0\n`);
  if ((run.methodIn ?? "run.json") === "run.json") {
    const info = { format: "rmt-run", version: 1, method: run.method, seed: 0 };
    await Deno.writeTextFile(`${dir}/run.json`, JSON.stringify(info, null, 2));
  }
}

/** results.json of a pipeline "paper-tiny" (tables with nulls and text, two runs). */
export const RESULTS = {
  pipeline: "paper-tiny",
  created: "2026-11-25T12:00:00.000Z",
  machine: "test machine (lavapipe)",
  tables: [
    {
      id: "next_token",
      title: "Next-token accuracy with reasoning by tier",
      columns: ["Method", "Easy", "Medium", "Hard", "Avg"],
      rows: [
        ["ntp", 0.41, 0.3, null, 0.123456],
        ["rmt", 0.5, 0.375, 0.25, 0.375],
      ],
      note: "tiers by the base model's entropy",
    },
    {
      id: "perplexity",
      title: "Perplexity",
      columns: ["Method", "ppl", "tokens"],
      rows: [["ntp", 3.845123, 12345], ["rmt", 5.06, 12345]],
    },
  ],
  runs: [
    { name: "rmt", dir: "midtrain/rmt" },
    { name: "ntp baseline", dir: "midtrain/ntp" },
  ],
};

/** A pipeline folder at `dir`: results.json and its two run folders. */
export async function writePipelineFolder(dir: string, steps = 30): Promise<void> {
  await writeRunFolder(`${dir}/midtrain/rmt`, { method: "rmt", records: rmtRecords(steps) });
  await writeRunFolder(`${dir}/midtrain/ntp`, { method: "ntp", records: ntpRecords(steps) });
  await Deno.writeTextFile(`${dir}/results.json`, JSON.stringify(RESULTS, null, 2));
}
