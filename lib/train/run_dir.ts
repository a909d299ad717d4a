// The run folder (`rmt train --out RUN`):
//
//   run.json          what this run is: the fully resolved config (YAML text and JSON), its
//                     SHA-256, seed, method, rmt version, git commit, GPU adapter, start time,
//                     and one entry per resume
//   config.yaml       the same resolved config as a file `--config` accepts
//   metrics.jsonl     one line per logged step (lib/train/metrics.ts)
//   checkpoints/      step-N/ folders (lib/train/checkpoint.ts)
//
// A run folder belongs to one run. openRunDir refuses a folder that already holds a run unless
// told what to do with it: --resume continues it (the config must be the same, or --force
// too), --force starts over in it (deleting only the files listed above). A non-empty folder
// that is not a run is refused unless --force.

import { UserError } from "../gpu/errors.ts";
import type { AdapterSummary } from "../gpu/device.ts";
import { VERSION } from "../version.ts";
import type { RmtConfig } from "./config.ts";
import { CHECKPOINTS_DIR } from "./checkpoint.ts";

export const RUN_FILE = "run.json";
export const RUN_CONFIG_FILE = "config.yaml";
export const METRICS_FILE = "metrics.jsonl";
const RUN_FORMAT = "rmt-run";

export interface RunInfo {
  format: typeof RUN_FORMAT;
  version: 1;
  method: string;
  seed: number;
  config_sha256: string;
  /** The fully resolved config (configToYaml), and the same as JSON. */
  config_yaml: string;
  config: RmtConfig;
  rmt_version: string;
  /** `git rev-parse HEAD` in the folder rmt ran in, or null outside a git checkout. */
  git_commit: string | null;
  adapter: {
    name: string;
    vendor: string;
    backend: string;
    is_fallback: boolean;
    /** The kernel profile the run chose (lib/gpu/device.ts); absent in runs before it. */
    kernels?: string;
  };
  started_at: string;
  /** One entry per `--resume`. */
  resumes: {
    at: string;
    git_commit: string | null;
    config_sha256: string;
    /** The adapter and kernel profile of the resumed part (absent in runs before them). */
    adapter?: string;
    kernels?: string;
  }[];
}

export interface OpenRunOptions {
  config: RmtConfig;
  /** The resolved config as YAML (configToYaml(config)). */
  yamlText: string;
  adapter: AdapterSummary;
  resume: boolean;
  force: boolean;
}

export interface OpenedRun {
  dir: string;
  info: RunInfo;
  /** True when continuing the run already in the folder. */
  resuming: boolean;
  /** With --resume --force: the config the run was started with differed (first key). */
  configChange: string | null;
  /**
   * Resuming on another adapter or kernel profile than the run's last part: what changed (the
   * continuation then sums in another order, so it is not bit-identical to an uninterrupted
   * run), or null.
   */
  adapterChange: string | null;
}

function join(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

/** What differs between the adapter and kernel profile a run last ran on and `adapter`. */
function adapterChange(previous: RunInfo, adapter: AdapterSummary): string | null {
  const last = previous.resumes?.at(-1);
  const name = last?.adapter ?? previous.adapter.name;
  const kernels = last?.kernels ?? previous.adapter.kernels;
  const changes: string[] = [];
  if (name !== adapter.name) changes.push(`adapter ${name} → ${adapter.name}`);
  if (kernels !== undefined && kernels !== adapter.kernels) {
    changes.push(`kernels ${kernels} → ${adapter.kernels}`);
  }
  return changes.length === 0 ? null : changes.join(", ");
}

/** Whether a path exists (false for "not found", a one-line UserError for anything else). */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw new UserError(`${path}: cannot access: ${(e as Error).message}`);
  }
}

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The commit checked out in the working folder, or null (no git, not a checkout). */
export async function gitCommit(): Promise<string | null> {
  try {
    const out = await new Deno.Command("git", {
      args: ["rev-parse", "HEAD"],
      stdout: "piped",
      stderr: "null",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    return out.success && /^[0-9a-f]{40,64}$/.test(text) ? text : null;
  } catch {
    return null;
  }
}

/** Every leaf of a config as "key.path" → JSON text. */
function flatten(value: unknown, prefix = "", out = new Map<string, string>()) {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.set(prefix, JSON.stringify(value));
  }
  return out;
}

/** The first key whose value differs, as "key: A there, B here", or null. */
export function firstConfigDifference(there: unknown, here: unknown): string | null {
  const a = flatten(there);
  const b = flatten(here);
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    if (a.get(key) !== b.get(key)) {
      return `${key}: ${a.get(key) ?? "absent"} there, ${b.get(key) ?? "absent"} here`;
    }
  }
  return null;
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new UserError(`${path}: cannot access: ${(e as Error).message}`);
  }
}

async function isEmptyDir(dir: string): Promise<boolean> {
  for await (const _ of Deno.readDir(dir)) return false;
  return true;
}

async function readRunInfo(dir: string): Promise<RunInfo | null> {
  const path = join(dir, RUN_FILE);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new UserError(`${path}: cannot read: ${(e as Error).message}`);
  }
  try {
    const info = JSON.parse(text);
    if (info?.format !== RUN_FORMAT) throw new Error("not an rmt run.json");
    return info as RunInfo;
  } catch (e) {
    throw new UserError(
      `${path}: unreadable (${(e as Error).message}); pass --force to start a new run here`,
    );
  }
}

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await Deno.writeTextFile(`${path}.tmp`, JSON.stringify(value, null, 2) + "\n");
  await Deno.rename(`${path}.tmp`, path);
}

/** Deletes the files a run writes (and nothing else) from `dir`. */
async function clearRun(dir: string): Promise<void> {
  for (const name of [RUN_FILE, RUN_CONFIG_FILE, METRICS_FILE, CHECKPOINTS_DIR]) {
    await Deno.remove(join(dir, name), { recursive: true }).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  }
}

/**
 * Prepares the run folder for a new run or a resume (see the top of this file) and writes
 * run.json and config.yaml. One-line UserErrors say what to pass instead.
 */
export async function openRunDir(runDir: string, options: OpenRunOptions): Promise<OpenedRun> {
  const dir = runDir.length > 1 ? runDir.replace(/\/+$/, "") : runDir;
  const { config, yamlText, resume, force } = options;
  const hash = await sha256Hex(yamlText);
  const commit = await gitCommit();
  const now = new Date().toISOString();

  const stat = await statOrNull(dir);
  if (stat !== null && !stat.isDirectory) throw new UserError(`--out ${dir}: is not a folder`);
  const previous = stat === null ? null : await readRunInfo(dir);

  if (resume) {
    if (previous === null) {
      throw new UserError(`--out ${dir}: there is no run to resume here (no ${RUN_FILE})`);
    }
    const change = previous.config_sha256 === hash
      ? null
      : firstConfigDifference(previous.config, config) ?? "the config text differs";
    if (change !== null && !force) {
      throw new UserError(
        `--out ${dir}: the run there was started with a different config (${change}); ` +
          "resume with the same config, or add --force to continue with this one",
      );
    }
    const info: RunInfo = {
      ...previous,
      method: config.method,
      seed: config.seed,
      config_sha256: hash,
      config_yaml: yamlText,
      config,
      resumes: [...(previous.resumes ?? []), {
        at: now,
        git_commit: commit,
        config_sha256: hash,
        adapter: options.adapter.name,
        kernels: options.adapter.kernels,
      }],
    };
    await writeJsonAtomic(join(dir, RUN_FILE), info);
    await Deno.writeTextFile(join(dir, RUN_CONFIG_FILE), yamlText);
    return {
      dir,
      info,
      resuming: true,
      configChange: change,
      adapterChange: adapterChange(previous, options.adapter),
    };
  }

  if (stat !== null && !force) {
    if (previous !== null) {
      const change = previous.config_sha256 === hash
        ? null
        : firstConfigDifference(previous.config, config) ?? "the config text differs";
      throw new UserError(
        change === null
          ? `--out ${dir}: already holds this run; pass --resume to continue it, or --force to ` +
            "start it over"
          : `--out ${dir}: holds a different run (${change}); pass --force to replace it, or ` +
            "choose another --out",
      );
    }
    if (!(await isEmptyDir(dir))) {
      throw new UserError(
        `--out ${dir}: exists and is not an rmt run folder (no ${RUN_FILE}); choose another ` +
          "--out, or pass --force to use it anyway",
      );
    }
  }
  if (stat !== null) await clearRun(dir);
  await Deno.mkdir(dir, { recursive: true });
  const adapter = options.adapter;
  const info: RunInfo = {
    format: RUN_FORMAT,
    version: 1,
    method: config.method,
    seed: config.seed,
    config_sha256: hash,
    config_yaml: yamlText,
    config,
    rmt_version: VERSION,
    git_commit: commit,
    adapter: {
      name: adapter.name,
      vendor: adapter.vendor,
      backend: adapter.backend,
      is_fallback: adapter.isFallback,
      kernels: adapter.kernels,
    },
    started_at: now,
    resumes: [],
  };
  await writeJsonAtomic(join(dir, RUN_FILE), info);
  await Deno.writeTextFile(join(dir, RUN_CONFIG_FILE), yamlText);
  return { dir, info, resuming: false, configChange: null, adapterChange: null };
}
