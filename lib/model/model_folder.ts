// A model folder, laid out exactly as a Hugging Face download (what from_pretrained reads and
// save_pretrained writes):
//
//   config.json                 the architecture (lib/model/config.ts)
//   generation_config.json      bos/eos for generation
//   model.safetensors           the weights, or model-0000i-of-0000n.safetensors shards plus
//                               model.safetensors.index.json (lib/model/weights.ts)
//   tokenizer.json              the tokenizer (lib/model/tokenizer.ts)
//   tokenizer_config.json       its special tokens and settings
//
// This file is the one place that knows that layout: `rmt init` and checkpoints write through
// writeModelFolder, everything that loads a model reads through readModelFolder.
//
// Writing is crash-safe. The whole folder is first written under a temporary name next to
// the destination (each file itself to a temp name, then renamed), and only a complete folder
// is renamed into place, so a crash never leaves a half-written model under the real name.
// Replacing an existing model folder (overwrite: true) swaps the folders by renaming and then
// deletes the old one; files of the old folder are not carried over.

import {
  checkTensors,
  configToJson,
  expectedTensors,
  loadConfig,
  type ModelConfig,
  parseConfig,
} from "./config.ts";
import { UserError } from "./errors.ts";
import { elementCount, type TensorSource, type WriteDtype } from "./safetensors.ts";
import { TextTokenizer } from "./tokenizer.ts";
import { DEFAULT_MAX_SHARD_BYTES, ModelWeights, writeWeights } from "./weights.ts";

export const CONFIG_FILE = "config.json";
export const GENERATION_CONFIG_FILE = "generation_config.json";
export const TOKENIZER_FILE = "tokenizer.json";
export const TOKENIZER_CONFIG_FILE = "tokenizer_config.json";

/** The dtypes a model folder is written in (all computation is f32; bf16 halves the files). */
export const FOLDER_DTYPES = ["f32", "bf16"] as const;
export type FolderDtype = typeof FOLDER_DTYPES[number];

const SAFETENSORS_DTYPE: Readonly<Record<FolderDtype, WriteDtype>> = { f32: "F32", bf16: "BF16" };
const TORCH_DTYPE: Readonly<Record<FolderDtype, string>> = { f32: "float32", bf16: "bfloat16" };

type Json = Record<string, unknown>;

/** The two tokenizer files' contents (a TrainedTokenizer or a loaded TextTokenizer has them). */
export interface TokenizerFiles {
  readonly tokenizerJson: Json;
  readonly tokenizerConfig: Json;
}

/** A file written next to the model: its contents, or a function that writes it at `path`. */
export type ExtraFile = string | Uint8Array | ((path: string) => Promise<void>);

export interface ModelFolderContents {
  /** The config.json object, or a parsed ModelConfig (written back with configToJson). */
  config: Json | ModelConfig;
  /**
   * Every parameter: f32 values by HF name (written in checkpoint order), or TensorSources
   * (written in the order given; their dtype is replaced by `dtype`).
   */
  weights: ReadonlyMap<string, Float32Array> | readonly TensorSource[];
  tokenizerFiles: TokenizerFiles;
  /** Storage dtype of the weights; config.json's torch_dtype is set to match. Default f32. */
  dtype?: FolderDtype;
  /** generation_config.json; default: bos_token_id and eos_token_id from the config. */
  generationConfig?: Json;
  /** More files in the same folder, written inside the same atomic rename (checkpoint state). */
  extraFiles?: Readonly<Record<string, ExtraFile>>;
  /** Replace an existing model folder (or an empty folder). Default false: refuse. */
  overwrite?: boolean;
  /** Shard the weights above this many bytes per file (default 4 GiB). */
  maxShardBytes?: number;
}

/** What writeModelFolder wrote. */
export interface WrittenModelFolder {
  dir: string;
  /** The file names in the folder, sorted. */
  files: string[];
  config: ModelConfig;
  /** Bytes of tensor data. */
  weightBytes: number;
}

/** A model folder opened for use. Weights are read on demand. */
export interface ModelFolder {
  dir: string;
  config: ModelConfig;
  weights: ModelWeights;
  tokenizer: TextTokenizer;
  /** generation_config.json, or null when the folder has none (it is optional). */
  generationConfig: Json | null;
}

// ---- paths -----------------------------------------------------------------------------------

function join(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

/** model.safetensors, its index, or a shard: the names writeWeights owns. */
function isWeightFileName(name: string): boolean {
  return /^model(-\d{5}-of-\d{5})?\.safetensors(\.index\.json)?$/.test(name);
}

/** "a/b/c" → {parent: "a/b", base: "c"}; "c" → {parent: ".", base: "c"}. */
function splitPath(path: string): { parent: string; base: string } {
  const slash = path.lastIndexOf("/");
  if (slash < 0) return { parent: ".", base: path };
  return { parent: slash === 0 ? "/" : path.slice(0, slash), base: path.slice(slash + 1) };
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new UserError(`${path}: cannot access: ${(e as Error).message}`);
  }
}

/** A file name that stays inside the folder: no separators, not "." or "..". */
function isPlainFileName(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !/[/\\]/.test(name);
}

// ---- writing ---------------------------------------------------------------------------------

/** Writes `bytes` to `path` through a temp name, so `path` is either absent or complete. */
async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  const temp = `${path}.tmp`;
  if (typeof bytes === "string") await Deno.writeTextFile(temp, bytes);
  else await Deno.writeFile(temp, bytes);
  await Deno.rename(temp, path);
}

const jsonText = (value: unknown) => JSON.stringify(value, null, 2) + "\n";

function isModelConfig(config: Json | ModelConfig): config is ModelConfig {
  return typeof (config as ModelConfig).architecture === "string" &&
    typeof (config as ModelConfig).raw === "object";
}

/** One past the largest id a tokenizer.json defines (vocab and added tokens). */
function tokenizerIdCount(files: TokenizerFiles): number {
  let maxId = -1;
  const vocab = (files.tokenizerJson.model as Json | undefined)?.vocab;
  if (typeof vocab === "object" && vocab !== null) {
    for (const id of Object.values(vocab)) if (typeof id === "number") maxId = Math.max(maxId, id);
  }
  const added = files.tokenizerJson.added_tokens;
  if (Array.isArray(added)) {
    for (const t of added) if (typeof t?.id === "number") maxId = Math.max(maxId, t.id);
  }
  return maxId + 1;
}

/** The tensors to write, in order, each with its shape and the folder's dtype. */
function tensorSources(
  config: ModelConfig,
  weights: ModelFolderContents["weights"],
  dtype: WriteDtype,
): TensorSource[] {
  if (Array.isArray(weights)) {
    return (weights as readonly TensorSource[]).map((t) => ({ ...t, dtype }));
  }
  const map = weights as ReadonlyMap<string, Float32Array>;
  const expected = expectedTensors(config);
  const sources: TensorSource[] = [];
  for (const [name, shape] of expected) {
    const data = map.get(name);
    if (data === undefined) continue; // reported by checkTensors below
    if (data.length !== elementCount(shape)) {
      throw new Error(
        `model folder: tensor "${name}" has ${data.length} values, its shape ` +
          `[${shape.join(", ")}] needs ${elementCount(shape)}`,
      );
    }
    sources.push({ name, shape, dtype, data });
  }
  for (const [name, data] of map) {
    if (!expected.has(name)) sources.push({ name, shape: [data.length], dtype, data });
  }
  return sources;
}

/**
 * Writes a complete model folder at `dir` (see the top of this file). Refuses an existing
 * path unless `overwrite` is set, and even then replaces only an empty folder or a model folder
 * (one with config.json), never an arbitrary directory. The config, the tensors (names and
 * shapes) and the tokenizer's vocabulary are checked against each other before anything is
 * written.
 */
export async function writeModelFolder(
  dir: string,
  contents: ModelFolderContents,
): Promise<WrittenModelFolder> {
  const dtype = contents.dtype ?? "f32";
  if (!(FOLDER_DTYPES as readonly string[]).includes(dtype)) {
    throw new UserError(`unknown dtype ${JSON.stringify(dtype)} (accepted: f32, bf16)`);
  }
  const target = dir.length > 1 ? dir.replace(/\/+$/, "") : dir;
  const { parent, base } = splitPath(target);
  if (base === "" || base === "." || base === "..") {
    throw new UserError(`${dir}: not a usable model folder name`);
  }

  // config.json: validated, and its torch_dtype saying what the files hold.
  const configJson: Json = isModelConfig(contents.config)
    ? configToJson(contents.config)
    : { ...contents.config };
  if (configJson.dtype !== undefined) configJson.dtype = TORCH_DTYPE[dtype];
  if (configJson.torch_dtype !== undefined || configJson.dtype === undefined) {
    configJson.torch_dtype = TORCH_DTYPE[dtype];
  }
  const config = parseConfig(configJson, join(target, CONFIG_FILE));

  const sources = tensorSources(config, contents.weights, SAFETENSORS_DTYPE[dtype]);
  checkTensors(config, new Map(sources.map((s) => [s.name, s])), target);
  const tokenizerIds = tokenizerIdCount(contents.tokenizerFiles);
  if (tokenizerIds > config.vocabSize) {
    throw new UserError(
      `${target}: the tokenizer has ${tokenizerIds} ids, more than the model's vocab_size ` +
        `${config.vocabSize}`,
    );
  }
  const generationConfig = contents.generationConfig ?? {
    bos_token_id: config.bosTokenId,
    eos_token_id: configJson.eos_token_id ?? null,
  };
  const layoutFiles = new Set([
    CONFIG_FILE,
    GENERATION_CONFIG_FILE,
    TOKENIZER_FILE,
    TOKENIZER_CONFIG_FILE,
  ]);
  const extraFiles = Object.entries(contents.extraFiles ?? {});
  for (const [name] of extraFiles) {
    if (!isPlainFileName(name) || layoutFiles.has(name) || isWeightFileName(name)) {
      throw new Error(`model folder: extra file name ${JSON.stringify(name)} is not allowed`);
    }
  }

  // Where it goes: nothing there, or (with overwrite) a folder we may replace.
  const existing = await statOrNull(target);
  if (existing !== null) {
    if (!existing.isDirectory) throw new UserError(`${target}: exists and is not a folder`);
    if (!contents.overwrite) {
      throw new UserError(`${target}: already exists (refusing to overwrite it)`);
    }
    if (!(await isReplaceable(target))) {
      throw new UserError(
        `${target}: is not a model folder (no ${CONFIG_FILE}) and not empty; ` +
          "refusing to replace it",
      );
    }
  }

  await Deno.mkdir(parent, { recursive: true });
  const temp = await Deno.makeTempDir({ dir: parent, prefix: `.${base}.tmp-` });
  let weightBytes = 0;
  try {
    await Deno.chmod(temp, 0o755).catch(() => {}); // makeTempDir makes it private (0700)
    await writeFileAtomic(join(temp, CONFIG_FILE), jsonText(configJson));
    await writeFileAtomic(join(temp, GENERATION_CONFIG_FILE), jsonText(generationConfig));
    await writeFileAtomic(
      join(temp, TOKENIZER_FILE),
      jsonText(contents.tokenizerFiles.tokenizerJson),
    );
    await writeFileAtomic(
      join(temp, TOKENIZER_CONFIG_FILE),
      jsonText(contents.tokenizerFiles.tokenizerConfig),
    );
    const written = await writeWeights(temp, sources, {
      maxShardBytes: contents.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES,
    });
    weightBytes = written.totalBytes;
    for (const [name, file] of extraFiles) {
      const path = join(temp, name);
      if (typeof file === "function") await file(path);
      else await writeFileAtomic(path, file);
    }

    if (existing === null) {
      await Deno.rename(temp, target);
    } else {
      // Swap: old → aside, new → in place, then delete the old one. A crash in between
      // leaves both complete folders on disk, never a mixed one.
      const aside = `${join(parent, `.${base}.old-`)}${crypto.randomUUID().slice(0, 8)}`;
      await Deno.rename(target, aside);
      await Deno.rename(temp, target);
      await Deno.remove(aside, { recursive: true });
    }
  } catch (e) {
    await Deno.remove(temp, { recursive: true }).catch(() => {});
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new UserError(`${target}: cannot write the model folder: ${e.message}`);
    }
    throw e;
  }
  const files: string[] = [];
  for await (const entry of Deno.readDir(target)) files.push(entry.name);
  files.sort();
  return { dir: target, files, config, weightBytes };
}

/** Whether `dir` may be replaced by overwrite: empty, or a model folder. */
async function isReplaceable(dir: string): Promise<boolean> {
  if ((await statOrNull(join(dir, CONFIG_FILE)))?.isFile) return true;
  for await (const _ of Deno.readDir(dir)) return false;
  return true;
}

// ---- reading ---------------------------------------------------------------------------------

async function readJsonObject(path: string, what: string): Promise<Json> {
  let value: unknown;
  try {
    value = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new UserError(`${path}: cannot read the ${what}: ${(e as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new UserError(`${path}: the ${what} is not a JSON object`);
  }
  return value as Json;
}

/**
 * Opens a model folder: config.json parsed, the weights' headers read and checked against the
 * config, the tokenizer loaded and checked to fit the vocabulary. Missing pieces are a
 * UserError naming the file.
 */
export async function readModelFolder(dir: string): Promise<ModelFolder> {
  const folder = dir.length > 1 ? dir.replace(/\/+$/, "") : dir;
  const info = await statOrNull(folder);
  if (info === null) throw new UserError(`${folder}: no such model folder`);
  if (!info.isDirectory) throw new UserError(`${folder}: not a folder (expected a model folder)`);
  const require = async (name: string, what: string) => {
    if (!(await statOrNull(join(folder, name)))?.isFile) {
      throw new UserError(`${folder}: no ${name} (${what}); not a complete model folder`);
    }
  };
  await require(CONFIG_FILE, "the model config");
  await require(TOKENIZER_FILE, "the tokenizer");
  await require(TOKENIZER_CONFIG_FILE, "the tokenizer settings");

  const config = await loadConfig(join(folder, CONFIG_FILE));
  const weights = await ModelWeights.open(folder);
  checkTensors(config, weights.tensors, folder);
  const tokenizer = await TextTokenizer.load(folder);
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new UserError(
      `${folder}: the tokenizer has ${tokenizer.vocabSize} ids, more than the config's ` +
        `vocab_size ${config.vocabSize}`,
    );
  }
  const generationPath = join(folder, GENERATION_CONFIG_FILE);
  const generationConfig = (await statOrNull(generationPath))?.isFile
    ? await readJsonObject(generationPath, "generation config")
    : null;
  return { dir: folder, config, weights, tokenizer, generationConfig };
}
