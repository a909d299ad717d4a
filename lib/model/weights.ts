// A model folder's weights, as Hugging Face lays them out:
//   model.safetensors                              one file, or
//   model.safetensors.index.json                   {"metadata": {"total_size": bytes},
//   model-00001-of-00003.safetensors ...            "weight_map": {tensor name: shard file}}
// Reading opens every file's header (never the data) and checks that the index and the shards
// agree. Writing shards like transformers' save_pretrained: tensors in the order given, a new
// shard whenever the next tensor would push the current one past the size limit.

import { UserError } from "./errors.ts";
import {
  elementCount,
  type ElementRange,
  readHeader,
  readTensorBytes,
  readTensorF32,
  storedBytes,
  type TensorEntry,
  type TensorSource,
  writeSafetensors,
} from "./safetensors.ts";

export const WEIGHTS_FILE = "model.safetensors";
export const WEIGHTS_INDEX_FILE = "model.safetensors.index.json";

/** Shard size above which a checkpoint is split (transformers' own default is 5 GB). */
export const DEFAULT_MAX_SHARD_BYTES = 4 * 1024 ** 3;

function join(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/** The tensors of a model folder (or of one .safetensors file), read on demand. */
export class ModelWeights {
  private constructor(
    /** The folder (or file) they were opened from. */
    readonly source: string,
    /** Every tensor, by name, with the file that holds it. */
    readonly tensors: ReadonlyMap<string, TensorEntry>,
    /** The safetensors files, in the order the index first names them. */
    readonly files: readonly string[],
  ) {}

  /**
   * Opens a folder holding model.safetensors or model.safetensors.index.json (transformers
   * prefers the single file when both exist; so do we), or a path to one .safetensors file.
   */
  static async open(path: string): Promise<ModelWeights> {
    let stat: Deno.FileInfo;
    try {
      stat = await Deno.stat(path);
    } catch (e) {
      throw new UserError(`${path}: cannot open model weights: ${(e as Error).message}`);
    }
    if (stat.isFile) return await ModelWeights.#single(path, path);
    const single = join(path, WEIGHTS_FILE);
    if (await isFile(single)) return await ModelWeights.#single(path, single);
    const index = join(path, WEIGHTS_INDEX_FILE);
    if (await isFile(index)) return await ModelWeights.#sharded(path, index);
    throw new UserError(`${path}: no ${WEIGHTS_FILE} or ${WEIGHTS_INDEX_FILE} in this folder`);
  }

  static async #single(source: string, file: string): Promise<ModelWeights> {
    const header = await readHeader(file);
    return new ModelWeights(source, header.tensors, [file]);
  }

  static async #sharded(dir: string, indexPath: string): Promise<ModelWeights> {
    const weightMap = await readWeightMap(indexPath);
    const shardNames = [...new Set(weightMap.values())];
    const tensors = new Map<string, TensorEntry>();
    const files: string[] = [];
    for (const shard of shardNames) {
      if (!(await isFile(join(dir, shard)))) {
        throw new UserError(`${indexPath}: names shard "${shard}", which does not exist`);
      }
    }
    for (const shard of shardNames) {
      const file = join(dir, shard);
      files.push(file);
      for (const [name, entry] of (await readHeader(file)).tensors) {
        const listed = weightMap.get(name);
        if (listed === undefined) {
          throw new UserError(`${file}: holds tensor "${name}", which the index does not list`);
        }
        if (listed !== shard) {
          throw new UserError(
            `${file}: holds tensor "${name}", which the index places in "${listed}"`,
          );
        }
        tensors.set(name, entry);
      }
    }
    for (const [name, shard] of weightMap) {
      if (!tensors.has(name)) {
        throw new UserError(
          `${indexPath}: tensor "${name}" is listed in shard "${shard}", which does not hold it`,
        );
      }
    }
    return new ModelWeights(dir, tensors, files);
  }

  /** The entry of a tensor; a UserError naming it if the weights do not have it. */
  entry(name: string): TensorEntry {
    const entry = this.tensors.get(name);
    if (!entry) throw new UserError(`${this.source}: no tensor "${name}" in the model weights`);
    return entry;
  }

  /** A tensor's values as f32 (or an element range of them: row chunks of big tensors). */
  readF32(name: string, range?: ElementRange): Promise<Float32Array<ArrayBuffer>> {
    return readTensorF32(this.entry(name), range);
  }

  /** A tensor's raw little-endian bytes (or an element range of them). */
  readBytes(name: string, range?: ElementRange): Promise<Uint8Array<ArrayBuffer>> {
    return readTensorBytes(this.entry(name), range);
  }
}

/** Reads the weight_map of an index file: tensor name → shard file name. */
async function readWeightMap(indexPath: string): Promise<Map<string, string>> {
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(indexPath));
  } catch (e) {
    throw new UserError(`${indexPath}: cannot read the weights index: ${(e as Error).message}`);
  }
  const weightMap = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) {
    throw new UserError(`${indexPath}: no "weight_map" object`);
  }
  const out = new Map<string, string>();
  for (const [name, shard] of Object.entries(weightMap)) {
    // Shards are plain file names next to the index: nothing that climbs out of the folder.
    if (
      typeof shard !== "string" || shard === "" || shard.includes("/") || shard.includes("\\") ||
      shard === "." || shard === ".."
    ) {
      throw new UserError(`${indexPath}: tensor "${name}" has a bad shard name ${String(shard)}`);
    }
    out.set(name, shard);
  }
  return out;
}

export interface WriteWeightsOptions {
  /** Split into shards so that each stays at most this size (a bigger lone tensor gets its own). */
  maxShardBytes?: number;
  /** The safetensors metadata of every file (transformers requires format "pt"). */
  metadata?: Readonly<Record<string, string>>;
}

/** What `writeWeights` wrote. */
export interface WrittenWeights {
  /** The file names written, in the folder. */
  files: string[];
  /** Bytes of tensor data (the index's total_size). */
  totalBytes: number;
}

/** Groups tensors into shards in order: a new shard when the next would exceed the limit. */
export function planShards<T extends Pick<TensorSource, "shape" | "dtype">>(
  tensors: readonly T[],
  maxShardBytes: number,
): T[][] {
  const shards: T[][] = [];
  let current: T[] = [];
  let currentBytes = 0;
  for (const tensor of tensors) {
    const bytes = storedBytes(tensor);
    if (current.length > 0 && currentBytes + bytes > maxShardBytes) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(tensor);
    currentBytes += bytes;
  }
  if (current.length > 0 || shards.length === 0) shards.push(current);
  return shards;
}

export function shardFileName(index: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, "0");
  return `model-${pad(index + 1)}-of-${pad(count)}.safetensors`;
}

/**
 * Writes a checkpoint's weights into `dir` (created if needed) the way save_pretrained does:
 * model.safetensors, or shards plus model.safetensors.index.json. Every file goes to a temp
 * name first; the index is written last. Weight files of an earlier save that this one does
 * not overwrite are removed, so the folder never mixes two checkpoints.
 */
export async function writeWeights(
  dir: string,
  tensors: readonly TensorSource[],
  { maxShardBytes = DEFAULT_MAX_SHARD_BYTES, metadata = { format: "pt" } }: WriteWeightsOptions =
    {},
): Promise<WrittenWeights> {
  await Deno.mkdir(dir, { recursive: true });
  const shards = planShards(tensors, maxShardBytes);
  const files: string[] = [];
  let totalBytes = 0;
  if (shards.length === 1) {
    await writeSafetensors(join(dir, WEIGHTS_FILE), shards[0], metadata);
    files.push(WEIGHTS_FILE);
    totalBytes = shards[0].reduce((sum, t) => sum + storedBytes(t), 0);
  } else {
    const weightMap: Record<string, string> = {};
    for (let i = 0; i < shards.length; i++) {
      const name = shardFileName(i, shards.length);
      await writeSafetensors(join(dir, name), shards[i], metadata);
      files.push(name);
      for (const t of shards[i]) {
        weightMap[t.name] = name;
        totalBytes += storedBytes(t);
      }
    }
    const sortedMap = Object.fromEntries(
      Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    );
    const totalParameters = tensors.reduce((sum, t) => sum + elementCount(t.shape), 0);
    const index = {
      metadata: { total_parameters: totalParameters, total_size: totalBytes },
      weight_map: sortedMap,
    };
    const indexPath = join(dir, WEIGHTS_INDEX_FILE);
    await Deno.writeTextFile(`${indexPath}.tmp`, JSON.stringify(index, null, 2) + "\n");
    await Deno.rename(`${indexPath}.tmp`, indexPath);
    files.push(WEIGHTS_INDEX_FILE);
  }
  await removeStaleWeights(dir, new Set(files));
  return { files, totalBytes };
}

/** Deletes weight files (single, shards, index) in `dir` that are not in `keep`. */
async function removeStaleWeights(dir: string, keep: ReadonlySet<string>): Promise<void> {
  const isWeightFile = (name: string) =>
    name === WEIGHTS_FILE || name === WEIGHTS_INDEX_FILE ||
    /^model-\d{5}-of-\d{5}\.safetensors$/.test(name);
  for await (const item of Deno.readDir(dir)) {
    if (item.isFile && isWeightFile(item.name) && !keep.has(item.name)) {
      await Deno.remove(join(dir, item.name));
    }
  }
}
