// Training checkpoints: RUN/checkpoints/step-N/, the state after N optimizer steps.
//
//   config.json, generation_config.json,     the model, a Hugging Face model folder
//   model.safetensors, tokenizer*.json         (f32: resuming is bit-exact)
//   optimizer.safetensors                      AdamW moments: "m.<HF name>", "v.<HF name>";
//                                              metadata: updates (applied steps so far)
//   trainer_state.json                         step, seed, data position, counters, config
//                                              hash, metrics line count, and the size and
//                                              SHA-256 of every other file in the folder
//
// A checkpoint is written whole under a temporary name and renamed into place
// (writeModelFolder), so a crash never leaves a half checkpoint under step-N. On resume a
// checkpoint is verified before use (verifyCheckpoint): every listed file present with its
// size and checksum, the model's and the optimizer's tensors present with the right shapes.

import { createHash } from "node:crypto";
import { UserError } from "../gpu/errors.ts";
import { expectedTensors, type ModelConfig } from "../model/config.ts";
import { type TokenizerFiles, writeModelFolder } from "../model/model_folder.ts";
import {
  readHeader,
  readTensorF32,
  type TensorSource,
  writeSafetensors,
} from "../model/safetensors.ts";
import { ModelWeights } from "../model/weights.ts";
import type { OptimizerState } from "./optimizer.ts";

export const CHECKPOINTS_DIR = "checkpoints";
export const OPTIMIZER_FILE = "optimizer.safetensors";
export const TRAINER_STATE_FILE = "trainer_state.json";
const STATE_FORMAT = "rmt-trainer-state";
const STATE_VERSION = 1;
const OPTIMIZER_FORMAT = "rmt-adamw";

/** What trainer_state.json holds besides the file checksums. */
export interface TrainerStateFields {
  /** Optimizer steps completed (the checkpoint is named step-<step>). */
  step: number;
  seed: number;
  method: string;
  /** SHA-256 of the fully resolved config YAML the run was started with. */
  config_sha256: string;
  /**
   * Where the data stands: the batches are a pure function of (seed, step), so the next step
   * is all there is to it.
   */
  data: { sampler: string; seed: number; next_step: number };
  /** Host RNG state: none (every draw is counter-based on (seed, step)). */
  rng: null;
  /** AdamW updates applied (skipped steps do not count). */
  optimizer_updates: number;
  /** metrics.jsonl lines written up to this step. */
  metrics_lines: number;
  /** Tokens trained on so far. */
  tokens: number;
  /** Training wall time so far (seconds, across resumes). */
  elapsed_s: number;
  /** Steps skipped for a non-finite objective or gradient norm, in all, and in a row now. */
  skipped_steps: number;
  bad_in_a_row: number;
  /** The TrainStep's own state (TrainStep.saveState), or null. */
  step_state: unknown;
  rmt_version: string;
}

export interface FileChecksum {
  bytes: number;
  sha256: string;
}

export interface TrainerState extends TrainerStateFields {
  format: typeof STATE_FORMAT;
  version: number;
  /** Every other file of the checkpoint folder. */
  files: Record<string, FileChecksum>;
}

/** The model part of a checkpoint. */
export interface CheckpointModel {
  config: ModelConfig;
  /** Every parameter by HF name (f32). */
  weights: ReadonlyMap<string, Float32Array>;
  tokenizerFiles: TokenizerFiles;
  generationConfig?: Record<string, unknown>;
  /** More files copied into the folder as they are (e.g. chat_template.jinja). */
  extraFiles?: Readonly<Record<string, Uint8Array>>;
}

export interface CheckpointRef {
  step: number;
  dir: string;
}

function join(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

export function checkpointsDir(runDir: string): string {
  return join(runDir, CHECKPOINTS_DIR);
}

export function checkpointDir(runDir: string, step: number): string {
  return join(checkpointsDir(runDir), `step-${step}`);
}

/** SHA-256 and size of a file, read in chunks (big weight files never sit in memory whole). */
export async function fileChecksum(path: string): Promise<FileChecksum> {
  const hash = createHash("sha256");
  const file = await Deno.open(path, { read: true });
  let bytes = 0;
  try {
    const chunk = new Uint8Array(1 << 20);
    while (true) {
      const n = await file.read(chunk);
      if (n === null) break;
      hash.update(chunk.subarray(0, n));
      bytes += n;
    }
  } finally {
    file.close();
  }
  return { bytes, sha256: hash.digest("hex") };
}

/** The optimizer moments as safetensors entries: m.<name>, v.<name>, in parameter order. */
function optimizerTensors(config: ModelConfig, state: OptimizerState): TensorSource[] {
  const out: TensorSource[] = [];
  for (const which of ["m", "v"] as const) {
    for (const [name, shape] of expectedTensors(config)) {
      const data = state[which].get(name);
      if (!data) throw new Error(`checkpoint: optimizer ${which} of "${name}" is missing`);
      out.push({ name: `${which}.${name}`, shape, dtype: "F32", data });
    }
  }
  return out;
}

/**
 * Writes RUN/checkpoints/step-<state.step>/ atomically (replacing a checkpoint of that step),
 * then removes all but the newest `keep` checkpoints. Returns the folder.
 */
export async function writeCheckpoint(
  runDir: string,
  model: CheckpointModel,
  optimizer: OptimizerState,
  state: TrainerStateFields,
  { keep }: { keep: number },
): Promise<string> {
  const dir = checkpointDir(runDir, state.step);
  const writeOptimizer = async (path: string) => {
    await writeSafetensors(path, optimizerTensors(model.config, optimizer), {
      format: OPTIMIZER_FORMAT,
      updates: String(optimizer.updates),
    });
  };
  // Written last, inside the temporary folder: checksums of everything written before it.
  const writeState = async (path: string) => {
    const folder = path.slice(0, path.lastIndexOf("/"));
    const files: Record<string, FileChecksum> = {};
    const names: string[] = [];
    for await (const entry of Deno.readDir(folder)) {
      if (entry.isFile && entry.name !== TRAINER_STATE_FILE && !entry.name.endsWith(".tmp")) {
        names.push(entry.name);
      }
    }
    for (const name of names.sort()) files[name] = await fileChecksum(join(folder, name));
    const full: TrainerState = {
      format: STATE_FORMAT,
      version: STATE_VERSION,
      ...state,
      files,
    };
    await Deno.writeTextFile(`${path}.tmp`, JSON.stringify(full, null, 2) + "\n");
    await Deno.rename(`${path}.tmp`, path);
  };
  await writeModelFolder(dir, {
    config: model.config,
    weights: model.weights,
    tokenizerFiles: model.tokenizerFiles,
    generationConfig: model.generationConfig,
    dtype: "f32",
    overwrite: true,
    extraFiles: {
      ...model.extraFiles,
      [OPTIMIZER_FILE]: writeOptimizer,
      [TRAINER_STATE_FILE]: writeState,
    },
  });
  await pruneCheckpoints(runDir, keep);
  return dir;
}

/** The checkpoints of a run (folders named step-N), newest first. */
export async function listCheckpoints(runDir: string): Promise<CheckpointRef[]> {
  const root = checkpointsDir(runDir);
  const found: CheckpointRef[] = [];
  try {
    for await (const entry of Deno.readDir(root)) {
      const match = /^step-(\d+)$/.exec(entry.name);
      if (entry.isDirectory && match) {
        found.push({ step: Number(match[1]), dir: join(root, entry.name) });
      }
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return found.sort((a, b) => b.step - a.step);
}

/** Removes all but the newest `keep` checkpoints (keep ≥ 1). */
export async function pruneCheckpoints(runDir: string, keep: number): Promise<void> {
  const all = await listCheckpoints(runDir);
  for (const old of all.slice(Math.max(1, keep))) await Deno.remove(old.dir, { recursive: true });
}

/** Removes folders that a crash left behind mid-write (.step-N.tmp-*, .step-N.old-*). */
export async function removeStaleTemporaries(runDir: string): Promise<void> {
  const root = checkpointsDir(runDir);
  try {
    for await (const entry of Deno.readDir(root)) {
      if (/^\.step-\d+\.(tmp|old)-/.test(entry.name)) {
        await Deno.remove(join(root, entry.name), { recursive: true });
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/** Renames a checkpoint that failed verification to step-N.bad (…bad-2, …), out of the way. */
export async function setAside(dir: string): Promise<string> {
  let target = `${dir}.bad`;
  for (let i = 2; await exists(target); i++) target = `${dir}.bad-${i}`;
  await Deno.rename(dir, target);
  return target;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** A checkpoint that cannot be used, with the reason in one line. */
export class BadCheckpoint extends Error {}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Parses and checks trainer_state.json's shape (not the files it lists). */
async function readTrainerState(dir: string): Promise<TrainerState> {
  const path = join(dir, TRAINER_STATE_FILE);
  let state: unknown;
  try {
    state = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new BadCheckpoint(`${TRAINER_STATE_FILE}: ${(e as Error).message.split("\n")[0]}`);
  }
  if (!isRecord(state) || state.format !== STATE_FORMAT || state.version !== STATE_VERSION) {
    throw new BadCheckpoint(`${TRAINER_STATE_FILE}: not an rmt trainer state (version 1)`);
  }
  for (const key of ["step", "seed", "optimizer_updates", "metrics_lines", "tokens"]) {
    if (!Number.isSafeInteger(state[key])) {
      throw new BadCheckpoint(`${TRAINER_STATE_FILE}: ${key} is missing or not an integer`);
    }
  }
  if (!isRecord(state.files)) throw new BadCheckpoint(`${TRAINER_STATE_FILE}: no file list`);
  return state as unknown as TrainerState;
}

/**
 * Checks a checkpoint folder for the model `config` and returns its trainer state, or throws
 * BadCheckpoint with the reason: the state file readable and of the folder's step, every file
 * it lists present with the same size and SHA-256, the weights and the optimizer moments
 * present with the shapes `config` implies.
 */
export async function verifyCheckpoint(dir: string, config: ModelConfig): Promise<TrainerState> {
  const state = await readTrainerState(dir);
  const named = /step-(\d+)$/.exec(dir);
  if (named && Number(named[1]) !== state.step) {
    throw new BadCheckpoint(`${TRAINER_STATE_FILE} says step ${state.step}`);
  }
  for (const required of ["config.json", OPTIMIZER_FILE]) {
    if (!(required in state.files)) {
      throw new BadCheckpoint(`${TRAINER_STATE_FILE} does not list ${required}`);
    }
  }
  for (const [name, expected] of Object.entries(state.files)) {
    if (!isRecord(expected) || name.includes("/")) {
      throw new BadCheckpoint(`${TRAINER_STATE_FILE}: bad entry for ${name}`);
    }
    let actual: FileChecksum;
    try {
      actual = await fileChecksum(join(dir, name));
    } catch {
      throw new BadCheckpoint(`${name} is missing`);
    }
    if (actual.bytes !== expected.bytes) {
      throw new BadCheckpoint(`${name} has ${actual.bytes} bytes, ${expected.bytes} were written`);
    }
    if (actual.sha256 !== expected.sha256) throw new BadCheckpoint(`${name}: checksum mismatch`);
  }
  const tensors = expectedTensors(config);
  try {
    const weights = await ModelWeights.open(dir);
    for (const [name, shape] of tensors) {
      const entry = weights.tensors.get(name);
      if (!entry || !sameShape(entry.shape, shape) || entry.dtype !== "F32") {
        throw new BadCheckpoint(`model weights: "${name}" is missing or not f32 [${shape}]`);
      }
    }
    const optimizer = await readHeader(join(dir, OPTIMIZER_FILE));
    if (optimizer.metadata.format !== OPTIMIZER_FORMAT) {
      throw new BadCheckpoint(`${OPTIMIZER_FILE}: not an rmt AdamW state`);
    }
    for (const [name, shape] of tensors) {
      for (const which of ["m", "v"]) {
        const entry = optimizer.tensors.get(`${which}.${name}`);
        if (!entry || !sameShape(entry.shape, shape) || entry.dtype !== "F32") {
          throw new BadCheckpoint(`${OPTIMIZER_FILE}: "${which}.${name}" is missing or misshapen`);
        }
      }
    }
  } catch (e) {
    if (e instanceof BadCheckpoint) throw e;
    if (e instanceof UserError) throw new BadCheckpoint(e.message);
    throw e;
  }
  return state;
}

/** The AdamW moments of a (verified) checkpoint, by HF name. */
export async function readOptimizerState(
  dir: string,
  config: ModelConfig,
): Promise<OptimizerState> {
  const header = await readHeader(join(dir, OPTIMIZER_FILE));
  const updates = Number(header.metadata.updates);
  if (!Number.isSafeInteger(updates) || updates < 0) {
    throw new UserError(`${join(dir, OPTIMIZER_FILE)}: bad "updates" metadata`);
  }
  const state: OptimizerState = { m: new Map(), v: new Map(), updates };
  for (const name of expectedTensors(config).keys()) {
    state.m.set(name, await readTensorF32(header.tensors.get(`m.${name}`)!));
    state.v.set(name, await readTensorF32(header.tensors.get(`v.${name}`)!));
  }
  return state;
}

/** The newest checkpoint that verifies, with the ones newer than it that did not. */
export interface GoodCheckpoint extends CheckpointRef {
  state: TrainerState;
}

/**
 * The newest checkpoint of the run that passes verifyCheckpoint, or null. Each one that fails
 * is reported through `warn` in one line and set aside (renamed step-N.bad), so that training
 * can write step-N again.
 */
export async function newestGoodCheckpoint(
  runDir: string,
  config: ModelConfig,
  warn: (line: string) => void,
): Promise<GoodCheckpoint | null> {
  await removeStaleTemporaries(runDir);
  for (const candidate of await listCheckpoints(runDir)) {
    try {
      const state = await verifyCheckpoint(candidate.dir, config);
      return { ...candidate, state };
    } catch (e) {
      if (!(e instanceof BadCheckpoint)) throw e;
      const aside = await setAside(candidate.dir);
      warn(
        `checkpoint step-${candidate.step} is unusable (${e.message}); ` +
          `moved to ${aside.slice(aside.lastIndexOf("/") + 1)}, trying the previous one`,
      );
    }
  }
  return null;
}
