// Shared setup of the training tests: a tiny model folder (rmt init's qwen2 tiny preset), a
// small corpus cut from the shipped one, and a config for them with small steps.

import { initModel } from "../../lib/model/init.ts";
import { writeModelFolder } from "../../lib/model/model_folder.ts";
import { resolveConfigText, type RmtConfig } from "../../lib/train/config.ts";
import { readMetrics } from "../../lib/train/metrics.ts";
import {
  train,
  type TrainOptions,
  type TrainResult,
  withoutTiming,
} from "../../lib/train/trainer.ts";
import { assert, assertEquals } from "../helpers.ts";

export const ROOT = new URL("../../", import.meta.url).pathname;

/** Documents of the shipped corpus the tests train on (enough for 32-token windows). */
const CORPUS_DOCUMENTS = 300;

export interface Fixture {
  dir: string;
  modelDir: string;
  corpus: string;
  cacheDir: string;
}

/** A tiny model and a small corpus under `dir`. */
export async function makeFixture(dir: string): Promise<Fixture> {
  const modelDir = `${dir}/tiny`;
  const model = initModel({ arch: "qwen2", preset: "tiny", seed: 1 });
  await writeModelFolder(modelDir, {
    config: model.config,
    weights: model.weights,
    tokenizerFiles: model.tokenizerFiles,
  });
  const lines = (await Deno.readTextFile(`${ROOT}data/math/train.jsonl`)).split("\n");
  const corpus = `${dir}/corpus.jsonl`;
  await Deno.writeTextFile(corpus, lines.slice(0, CORPUS_DOCUMENTS).join("\n") + "\n");
  return { dir, modelDir, corpus, cacheDir: `${dir}/cache` };
}

/** The YAML of a small NTP run on the fixture. */
export function fixtureYaml(f: Fixture, steps: number): string {
  return [
    "method: ntp",
    "seed: 7",
    "model:",
    `  path: ${f.modelDir}`,
    "  max_context: 32",
    "data:",
    `  train: ${f.corpus}`,
    "training:",
    `  steps: ${steps}`,
    "  batch_size: 4",
    "  lr: 3.0e-3",
    "  schedule: cosine",
    "  warmup_steps: 2",
    "  min_lr_ratio: 0.1",
    "  checkpoint_interval: 4",
    "",
  ].join("\n");
}

/** The resolved config of fixtureYaml with --set overrides. */
export async function fixtureConfig(
  f: Fixture,
  steps: number,
  overrides: string[] = [],
): Promise<RmtConfig> {
  return (await resolveConfigText(fixtureYaml(f, steps), "test.yaml", overrides)).config;
}

/** Trains quietly (no progress, no signal handlers); log lines are collected in `lines`. */
export async function trainQuietly(
  options: TrainOptions,
  lines: string[] = [],
): Promise<TrainResult> {
  return await train({
    progress: false,
    handleSignals: false,
    log: (line) => lines.push(line),
    warn: (line) => lines.push(line),
    ...options,
  });
}

/** Asserts two metrics files hold the same records, the timing fields aside. */
export async function assertSameMetrics(a: string, b: string, what: string): Promise<void> {
  const left = (await readMetrics(a)).map(withoutTiming);
  const right = (await readMetrics(b)).map(withoutTiming);
  assert(left.length > 0, `${what}: no metrics`);
  assertEquals(left, right, what);
}

/** Asserts two files are byte-identical. */
export async function assertSameBytes(a: string, b: string, what: string): Promise<void> {
  const x = await Deno.readFile(a);
  const y = await Deno.readFile(b);
  assert(x.length === y.length && x.every((v, i) => v === y[i]), `${what}: ${a} and ${b} differ`);
}
