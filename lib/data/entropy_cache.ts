// The spec's token-entropy pass ("Definitions → Token entropy"): a proxy model scores every
// position of the tokenised corpus once, and the top-k entropies are kept on disk beside the
// token cache (lib/data/token_cache.ts), so that later runs read them back.
//
// Indexing. The corpus is one stream `tokens` (doc0 EOT doc1 EOT … docN-1) with docOffsets.
// Each document is scored on its own, with its trailing EOT: document d is the sequence
// tokens[docOffsets[d], min(docOffsets[d + 1], tokenCount)), and for every position p of it
//
//   entropies[p] = H_p, the top-k entropy of the proxy's distribution that predicts tokens[p]
//                  from the tokens of the same document before p (x_<p; k = 16),
//   entropies[docOffsets[d]] = NaN        (a document's first token has no context).
//
// So the EOT after a document gets the entropy of predicting the end of that document. Contexts
// longer than the window (default: the proxy's max_position_embeddings) restart at window
// boundaries, as lib/model/score.ts explains; entropies[p] is exactly what scoreTokens gives
// for position p − docOffsets[d] of document d's sequence.
//
// The cache entry `<cacheDir>/entropy-<key>.f32` (cacheDir: the token cache's folder) has
// little-endian words
//
//   [MAGIC, FORMAT_VERSION, k, window, tokenCount]   u32 header
//   entropies [tokenCount]                            f32
//
// written under a temporary name and renamed into place. key = SHA-256 over (format, the token
// cache key, the proxy model hash, k, window). The model hash is the SHA-256 of config.json and
// of every weight file's bytes (model.safetensors, or the index and every shard; streamed, about
// 1-2 s per GB): any change of the weights — a new checkpoint of the same size included —
// gives a new key, and a copied model folder keeps its key (nothing depends on paths or
// mtimes).

import { createHash } from "node:crypto";
import { gpu, type GpuContext } from "../gpu/context.ts";
import { UserError } from "../gpu/errors.ts";
import { loadConfig, type ModelConfig } from "../model/config.ts";
import { loadGpuWeights, releaseGpuModel } from "../model/gpu_weights.ts";
import { readModelFolder } from "../model/model_folder.ts";
import { scoreLimits, scoreSequences } from "../model/score.ts";
import { ModelWeights, WEIGHTS_FILE, WEIGHTS_INDEX_FILE } from "../model/weights.ts";
import { DEFAULT_TOP_K, MAX_TOP_K } from "../ops/cross_entropy.ts";
import {
  DEFAULT_THRESHOLDS,
  entropyHistogram,
  type TierHistogram,
  tierHistogram,
  type TierThresholds,
} from "../rmt/tiers.ts";
import type { TokenStream } from "./token_cache.ts";

const MAGIC = 0x544e4552; // "RENT" as little-endian bytes
const FORMAT_VERSION = 1;
const HEADER_WORDS = 5;
/** Bytes read at a time while hashing weight files. */
const HASH_CHUNK_BYTES = 8 * 1024 * 1024;
/** The equal-width histogram the report shows: bins of 0.25 nats, the last one open. */
const HISTOGRAM_BIN = 0.25;
const HISTOGRAM_BINS = 16;

export interface EntropyCacheOptions {
  /** The proxy model folder. It must use the corpus's tokenizer (ids mean the same tokens). */
  modelDir: string;
  /** The tokenised corpus: tokenizeCorpusCached's result (its key and path place the entry). */
  stream: TokenStream & { key: string; path: string };
  /** k of the top-k entropy, 1..32 (default 16). */
  k?: number;
  /** Longest context; default the proxy's max_position_embeddings (capped by memory). */
  window?: number;
  /** Where the entry goes; default the token cache file's folder. */
  cacheDir?: string;
  /** Tier thresholds of the report (default 0.5 / 1.0 / 1.5). */
  thresholds?: TierThresholds;
  /** The GPU context (default the process-wide one). */
  ctx?: GpuContext;
  /** Progress of a computation (positions scored so far, total). */
  onProgress?: (done: number, total: number) => void;
}

export interface EntropyCache {
  /** [tokenCount] H of predicting tokens[p]; NaN at every document's first token. */
  entropies: Float32Array<ArrayBuffer>;
  /** The entry's key (hex SHA-256) and file. */
  key: string;
  path: string;
  /** True when read from the cache (no model was loaded, nothing ran on the GPU). */
  fromCache: boolean;
  /** The proxy model's hash (hex SHA-256 of config.json and the weight files). */
  modelHash: string;
  k: number;
  window: number;
  /** Counts per sampling tier (and below the easy threshold, and missing). */
  tiers: TierHistogram;
  /** Equal-width histogram of the finite entropies: 16 bins of 0.25 nats. */
  histogram: number[];
}

/** Hex SHA-256 of config.json and every weight file of a model folder (see the top). */
export async function modelHash(dir: string): Promise<string> {
  const folder = dir.length > 1 ? dir.replace(/\/+$/, "") : dir;
  const weights = await ModelWeights.open(folder);
  const files = [`${folder}/config.json`];
  // Sharded: the index too (the single file wins when both exist, as in ModelWeights.open).
  const single = weights.files.length === 1 && weights.files[0].endsWith(`/${WEIGHTS_FILE}`);
  if (!single) files.push(`${folder}/${WEIGHTS_INDEX_FILE}`);
  files.push(...weights.files);
  const hash = createHash("sha256");
  const buffer = new Uint8Array(HASH_CHUNK_BYTES);
  for (const path of files) {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (e) {
      throw new UserError(`${path}: cannot read the proxy model: ${(e as Error).message}`);
    }
    try {
      const { size } = await file.stat();
      // Name and size first: the concatenation of the files is then unambiguous.
      hash.update(`${path.slice(path.lastIndexOf("/") + 1)}\n${size}\n`);
      for (;;) {
        const n = await file.read(buffer);
        if (n === null) break;
        hash.update(buffer.subarray(0, n));
      }
    } finally {
      file.close();
    }
  }
  return hash.digest("hex");
}

/** Each document as its own sequence, with its trailing EOT (views into the stream). */
export function documentSequences(stream: TokenStream): Uint32Array<ArrayBuffer>[] {
  const count = stream.docOffsets.length - 1;
  const sequences: Uint32Array<ArrayBuffer>[] = [];
  for (let d = 0; d < count; d++) {
    const end = Math.min(stream.docOffsets[d + 1], stream.tokens.length);
    sequences.push(stream.tokens.subarray(stream.docOffsets[d], end));
  }
  return sequences;
}

/** The entry's entropies, or null when the file is missing or does not match. */
async function readEntry(
  path: string,
  k: number,
  window: number,
  tokenCount: number,
): Promise<Float32Array<ArrayBuffer> | null> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch {
    return null;
  }
  if (bytes.byteLength !== 4 * (HEADER_WORDS + tokenCount)) return null;
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  const header = new Uint32Array(aligned.buffer, aligned.byteOffset, HEADER_WORDS);
  const expected = [MAGIC, FORMAT_VERSION, k, window, tokenCount];
  if (expected.some((v, i) => header[i] !== v)) return null;
  return new Float32Array(aligned.buffer.slice(
    aligned.byteOffset + 4 * HEADER_WORDS,
    aligned.byteOffset + aligned.byteLength,
  ) as ArrayBuffer);
}

/** Writes an entry under a temporary name, then renames it into place. */
async function writeEntry(
  path: string,
  k: number,
  window: number,
  entropies: Float32Array<ArrayBuffer>,
): Promise<void> {
  const bytes = new Uint8Array(4 * (HEADER_WORDS + entropies.length));
  new Uint32Array(bytes.buffer, 0, HEADER_WORDS).set(
    [MAGIC, FORMAT_VERSION, k, window, entropies.length],
  );
  new Float32Array(bytes.buffer, 4 * HEADER_WORDS).set(entropies);
  const temporary = `${path}.${Deno.pid}-${crypto.randomUUID()}.tmp`;
  try {
    await Deno.writeFile(temporary, bytes);
    await Deno.rename(temporary, path);
  } catch (e) {
    await Deno.remove(temporary).catch(() => {});
    throw new UserError(`${path}: cannot write the entropy cache: ${(e as Error).message}`);
  }
}

async function entryKey(parts: Record<string, string | number>): Promise<string> {
  const text = JSON.stringify({ format: FORMAT_VERSION, ...parts });
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The largest id of the stream must be a token of the proxy. */
function checkVocabulary(stream: TokenStream, config: ModelConfig, dir: string): void {
  let max = 0;
  for (let i = 0; i < stream.tokens.length; i++) max = Math.max(max, stream.tokens[i]);
  if (stream.tokens.length > 0 && max >= config.vocabSize) {
    throw new UserError(
      `${dir}: the proxy model's vocab_size ${config.vocabSize} does not cover token id ${max} ` +
        "of the corpus: the proxy must use the corpus's tokenizer",
    );
  }
}

/**
 * The top-k entropy of every corpus position under the proxy model (see the top of this file):
 * read from the cache when an entry for this token stream, proxy model, k and window exists,
 * else computed (batched windows, one readback per forward) and stored.
 */
export async function tokenEntropiesCached(options: EntropyCacheOptions): Promise<EntropyCache> {
  const { stream, k = DEFAULT_TOP_K, thresholds = DEFAULT_THRESHOLDS } = options;
  if (!Number.isInteger(k) || k < 1 || k > MAX_TOP_K) {
    throw new UserError(`entropy cache: k must be an integer in 1..${MAX_TOP_K}, got ${k}`);
  }
  const modelDir = options.modelDir.replace(/\/+$/, "");
  const config = await loadConfig(`${modelDir}/config.json`);
  checkVocabulary(stream, config, modelDir);
  const ctx = options.ctx ?? await gpu();
  const { window } = scoreLimits(ctx, config, { window: options.window });
  const hash = await modelHash(modelDir);
  const key = await entryKey({ tokens: stream.key, model: hash, k, window });
  const cacheDir =
    (options.cacheDir ?? stream.path.slice(0, Math.max(0, stream.path.lastIndexOf("/"))))
      .replace(/\/+$/, "") || ".";
  const path = `${cacheDir}/entropy-${key}.f32`;
  const summary = (entropies: Float32Array<ArrayBuffer>, fromCache: boolean): EntropyCache => ({
    entropies,
    key,
    path,
    fromCache,
    modelHash: hash,
    k,
    window,
    tiers: tierHistogram(entropies, thresholds),
    histogram: entropyHistogram(entropies, HISTOGRAM_BIN, HISTOGRAM_BINS),
  });

  const cached = await readEntry(path, k, window, stream.tokens.length);
  if (cached !== null) return summary(cached, true);

  const folder = await readModelFolder(modelDir);
  const model = await loadGpuWeights(ctx, folder.config, folder.weights);
  const entropies = new Float32Array(stream.tokens.length).fill(NaN);
  try {
    const sequences = documentSequences(stream);
    const scores = await scoreSequences(ctx, model, sequences, {
      k,
      window,
      onProgress: options.onProgress,
    });
    sequences.forEach((_, d) => entropies.set(scores.entropies[d], stream.docOffsets[d]));
  } finally {
    releaseGpuModel(model);
  }
  try {
    await Deno.mkdir(cacheDir, { recursive: true });
  } catch (e) {
    throw new UserError(`${cacheDir}: cannot create the cache folder: ${(e as Error).message}`);
  }
  await writeEntry(path, k, window, entropies);
  return summary(entropies, false);
}

/** A few lines for the log: where the entropies came from, the tiers, the histogram. */
export function formatEntropyReport(
  cache: EntropyCache,
  thresholds: TierThresholds = DEFAULT_THRESHOLDS,
): string {
  const { tiers } = cache;
  const scored = tiers.total - tiers.missing;
  const share = (n: number) => `${n} (${scored > 0 ? ((100 * n) / scored).toFixed(1) : "0.0"}%)`;
  const top = Math.max(1, ...cache.histogram);
  const bars = cache.histogram.map((count, i) => {
    const low = (i * HISTOGRAM_BIN).toFixed(2);
    const label = i === cache.histogram.length - 1 ? `≥${low}` : `${low}`;
    return `  ${label.padStart(6)} ${
      "#".repeat(Math.round((40 * count) / top)).padEnd(40)
    } ${count}`;
  });
  return [
    `token entropy (top-${cache.k}, window ${cache.window}) ${
      cache.fromCache ? "read from" : "computed into"
    } ${cache.path}`,
    `  ${scored} positions scored (${tiers.missing} document starts have none): ` +
    `H ≤ ${thresholds.easy}: ${share(tiers.below)}, easy: ${share(tiers.easy)}, ` +
    `medium: ${share(tiers.medium)}, hard (> ${thresholds.hard}): ${share(tiers.hard)}`,
    ...bars,
  ].join("\n");
}
