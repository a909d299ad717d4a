// Tokenise a corpus once and keep the result on disk: a later run with the same tokenizer,
// the same corpus files and the same options reads the token ids back instead of encoding
// every document again.
//
// The cache key is the SHA-256 of the tokenizer files' bytes (tokenizer.json, and
// tokenizer_config.json when present), the corpus files' bytes, the corpus options and any
// extra key material the caller passes: change any of them and the key changes, so a stale
// entry is never read. One entry is one binary file, `<cacheDir>/tokens-<key>.u32`, of
// little-endian u32 words:
//
//   [MAGIC, FORMAT_VERSION, docCount, tokenCount, endOfText]   header
//   docOffsets [docCount + 1]                                  see TokenStream
//   tokens     [tokenCount]
//
// written under a temporary name and renamed into place, so a reader never sees half a file
// (an entry that fails the header checks anyway is ignored and rewritten).

import { TextTokenizer } from "../model/tokenizer.ts";
import { UserError } from "../gpu/errors.ts";
import type { Corpus } from "./corpus.ts";

/** What tokenising needs from a tokenizer (TextTokenizer has it; tests wrap it to count). */
export interface DocumentEncoder {
  encode(text: string): number[];
  /** The id between documents (TextTokenizer: <|endoftext|>, else its eos token). */
  documentSeparator(neededFor?: string): number;
}

/**
 * Documents as one token stream, joined with the <|endoftext|> id between them:
 * doc0 EOT doc1 EOT … EOT docN-1.
 */
export interface TokenStream {
  /** [tokenCount] */
  tokens: Uint32Array<ArrayBuffer>;
  /**
   * [docCount + 1]: document d is tokens[docOffsets[d], docOffsets[d + 1] - 1), the EOT (if
   * any) sits at docOffsets[d + 1] - 1, and docOffsets[docCount] = tokenCount + 1.
   */
  docOffsets: Uint32Array<ArrayBuffer>;
  /** The <|endoftext|> id. */
  endOfText: number;
}

export interface CachedTokenStream extends TokenStream {
  /** The cache key (hex SHA-256). */
  key: string;
  /** The cache file. */
  path: string;
  /** True when the tokens were read from the cache, false when the corpus was tokenised. */
  fromCache: boolean;
}

/** Where the cache lives unless told otherwise: `.cache/rmt` under the working directory. */
export const DEFAULT_CACHE_DIR = ".cache/rmt";

const MAGIC = 0x4b4f5452; // "RTOK" as little-endian bytes
const FORMAT_VERSION = 1;
const HEADER_WORDS = 5;

/** The tokens of document d (a view into the stream). */
export function documentTokens(stream: TokenStream, d: number): Uint32Array<ArrayBuffer> {
  return stream.tokens.subarray(stream.docOffsets[d], stream.docOffsets[d + 1] - 1);
}

/** Joins per-document token ids into one stream, EOT between documents. */
export function joinDocuments(
  documents: readonly ArrayLike<number>[],
  endOfText: number,
): TokenStream {
  let total = Math.max(documents.length - 1, 0);
  for (const doc of documents) total += doc.length;
  const tokens = new Uint32Array(total);
  const docOffsets = new Uint32Array(documents.length + 1);
  let at = 0;
  documents.forEach((doc, d) => {
    docOffsets[d] = at;
    tokens.set(doc, at);
    at += doc.length;
    if (d + 1 < documents.length) tokens[at] = endOfText;
    at += 1; // past the EOT (or, after the last document, the virtual one)
  });
  docOffsets[documents.length] = at;
  return { tokens, docOffsets, endOfText };
}

/** A new stream of the chosen documents (e.g. one side of splitDocuments), in that order. */
export function selectDocuments(stream: TokenStream, indices: readonly number[]): TokenStream {
  const docCount = stream.docOffsets.length - 1;
  for (const d of indices) {
    if (!Number.isInteger(d) || d < 0 || d >= docCount) {
      throw new Error(`selectDocuments: document ${d} is outside [0, ${docCount})`);
    }
  }
  return joinDocuments(indices.map((d) => documentTokens(stream, d)), stream.endOfText);
}

/** JSON with object keys sorted, so equal options always give equal bytes. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/**
 * The cache key: hex SHA-256 over a JSON description (format version, options, and the byte
 * length of every part, which makes the concatenation unambiguous) followed by the parts.
 */
export async function tokenCacheKey(
  tokenizerFiles: readonly Uint8Array[],
  corpus: Corpus,
  keyExtra: Record<string, unknown> = {},
): Promise<string> {
  const encoder = new TextEncoder();
  // A corpus built in memory has no files: its documents stand in for them.
  const corpusParts = corpus.files.length > 0
    ? corpus.files.map((f) => f.bytes)
    : [encoder.encode(JSON.stringify(corpus.documents))];
  const parts = [...tokenizerFiles, ...corpusParts];
  const description = encoder.encode(
    canonicalJson({
      format: FORMAT_VERSION,
      corpusOptions: corpus.options,
      keyExtra,
      tokenizerParts: tokenizerFiles.length,
      sizes: parts.map((p) => p.length),
    }) + "\n",
  );
  const all = new Uint8Array(description.length + parts.reduce((n, p) => n + p.length, 0));
  all.set(description, 0);
  let at = description.length;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The cache entry's stream, or null when the file is missing or not a valid entry. */
async function readEntry(path: string, docCount: number): Promise<TokenStream | null> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch {
    return null;
  }
  if (bytes.byteLength % 4 !== 0 || bytes.byteLength < 4 * HEADER_WORDS) return null;
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  const words = new Uint32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
  const [magic, version, docs, tokenCount, endOfText] = words;
  if (magic !== MAGIC || version !== FORMAT_VERSION || docs !== docCount) return null;
  if (words.length !== HEADER_WORDS + docs + 1 + tokenCount) return null;
  const docOffsets = words.slice(HEADER_WORDS, HEADER_WORDS + docs + 1);
  if (docOffsets[docs] !== tokenCount + 1) return null;
  const tokens = words.slice(HEADER_WORDS + docs + 1);
  return { tokens, docOffsets, endOfText };
}

/** Writes an entry under a temporary name, then renames it into place. */
async function writeEntry(path: string, stream: TokenStream): Promise<void> {
  const docCount = stream.docOffsets.length - 1;
  const words = new Uint32Array(HEADER_WORDS + stream.docOffsets.length + stream.tokens.length);
  words.set([MAGIC, FORMAT_VERSION, docCount, stream.tokens.length, stream.endOfText]);
  words.set(stream.docOffsets, HEADER_WORDS);
  words.set(stream.tokens, HEADER_WORDS + stream.docOffsets.length);
  const temporary = `${path}.${Deno.pid}-${crypto.randomUUID()}.tmp`;
  try {
    await Deno.writeFile(temporary, new Uint8Array(words.buffer));
    await Deno.rename(temporary, path);
  } catch (e) {
    await Deno.remove(temporary).catch(() => {});
    throw new UserError(`${path}: cannot write the token cache: ${(e as Error).message}`);
  }
}

async function readTokenizerFile(dir: string, name: string, required: boolean) {
  const path = `${dir}/${name}`;
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (!required && e instanceof Deno.errors.NotFound) return new Uint8Array(0);
    throw new UserError(`${path}: cannot read the tokenizer: ${(e as Error).message}`);
  }
}

export interface TokenCacheOptions {
  corpus: Corpus;
  /** The tokenizer folder (tokenizer.json, tokenizer_config.json): hashed into the key. */
  tokenizerDir: string;
  /** The tokenizer of that folder, if already loaded; otherwise loaded on a cache miss. */
  tokenizer?: DocumentEncoder;
  /** Default DEFAULT_CACHE_DIR under the working directory. */
  cacheDir?: string;
  /** Anything else the tokens depend on, mixed into the key. */
  keyExtra?: Record<string, unknown>;
}

/**
 * The corpus's documents as one token stream (corpus order, EOT between documents), read
 * from the cache when an entry for this exact tokenizer + corpus + options exists, else
 * tokenised and stored.
 */
export async function tokenizeCorpusCached(options: TokenCacheOptions): Promise<CachedTokenStream> {
  const { corpus, keyExtra = {} } = options;
  if (corpus.documents.length === 0) {
    throw new UserError(`${corpus.source}: the corpus has no documents`);
  }
  const tokenizerDir = options.tokenizerDir.replace(/\/+$/, "");
  const cacheDir = (options.cacheDir ?? `${Deno.cwd()}/${DEFAULT_CACHE_DIR}`).replace(/\/+$/, "");
  const tokenizerFiles = [
    await readTokenizerFile(tokenizerDir, "tokenizer.json", true),
    await readTokenizerFile(tokenizerDir, "tokenizer_config.json", false),
  ];
  const key = await tokenCacheKey(tokenizerFiles, corpus, keyExtra);
  const path = `${cacheDir}/tokens-${key}.u32`;

  const cached = await readEntry(path, corpus.documents.length);
  if (cached !== null) return { ...cached, key, path, fromCache: true };

  const tokenizer = options.tokenizer ?? await TextTokenizer.load(tokenizerDir);
  const endOfText = tokenizer.documentSeparator("joining corpus documents");
  const stream = joinDocuments(corpus.documents.map((doc) => tokenizer.encode(doc)), endOfText);
  try {
    await Deno.mkdir(cacheDir, { recursive: true });
  } catch (e) {
    throw new UserError(`${cacheDir}: cannot create the cache folder: ${(e as Error).message}`);
  }
  await writeEntry(path, stream);
  return { ...stream, key, path, fromCache: false };
}
