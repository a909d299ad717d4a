// Corpus input: the documents a run trains on, read from a file or a folder, and their
// deterministic split into a training and a held-out part.
//
// Formats, by file extension:
//   .txt    plain UTF-8 text. By default, documents are separated by blank lines (a line that
//           is empty or only spaces); with `txtDocuments: "file"`, each file is one document.
//   .jsonl  one JSON object per line; the document is the string in `textField` ("text" by
//           default). Empty lines are skipped.
// A folder: every .txt and .jsonl file under it (recursively; names starting with "." are
// skipped), in sorted path order. Documents are trimmed; empty ones are dropped.
//
// Bad input is reported as a UserError naming the file (and the line, for JSONL).

import { UserError } from "../gpu/errors.ts";

export interface CorpusOptions {
  /** JSONL: the field that holds the document text. Default "text". */
  textField?: string;
  /** .txt files: "paragraphs" (blank-line separated documents, default) or "file". */
  txtDocuments?: "paragraphs" | "file";
}

/** One input file and its exact bytes (the token cache hashes them). */
export interface CorpusFile {
  path: string;
  bytes: Uint8Array;
}

export interface Corpus {
  /** Where it was loaded from. */
  source: string;
  documents: string[];
  files: CorpusFile[];
  /** The options it was read with, defaults filled in. */
  options: Required<CorpusOptions>;
}

const CORPUS_EXTENSIONS = [".txt", ".jsonl"];

const isCorpusFile = (name: string) => CORPUS_EXTENSIONS.some((ext) => name.endsWith(ext));

/** Every .txt / .jsonl file under `dir`, sorted by path. */
async function listCorpusFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (folder: string) => {
    for await (const entry of Deno.readDir(folder)) {
      if (entry.name.startsWith(".")) continue;
      const path = `${folder}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (entry.isFile && isCorpusFile(entry.name)) found.push(path);
    }
  };
  await walk(dir);
  return found.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function decodeUtf8(path: string, bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new UserError(`${path}: the corpus file is not valid UTF-8 text`);
  }
}

/** Documents of a .txt file. */
function txtDocuments(text: string, mode: "paragraphs" | "file"): string[] {
  const normalized = text.replaceAll("\r\n", "\n");
  const pieces = mode === "file" ? [normalized] : normalized.split(/\n[ \t]*\n/);
  return pieces.map((piece) => piece.trim()).filter((piece) => piece.length > 0);
}

/** A JSON value's type, in words, for messages. */
function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/** Documents of a .jsonl file: the `field` string of each line's object. */
function jsonlDocuments(path: string, text: string, field: string): string[] {
  const documents: string[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line.length === 0) continue;
    const where = `${path}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      const reason = (e as Error).message.replace(/\s+/g, " ");
      throw new UserError(`${where}: the line is not valid JSON (${reason})`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new UserError(`${where}: expected a JSON object, got ${typeName(value)}`);
    }
    if (!(field in value)) {
      throw new UserError(
        `${where}: the object has no "${field}" field (the JSONL text field option names the ` +
          "field that holds each document)",
      );
    }
    const document = (value as Record<string, unknown>)[field];
    if (typeof document !== "string") {
      throw new UserError(`${where}: field "${field}" is ${typeName(document)}, not a string`);
    }
    const trimmed = document.trim();
    if (trimmed.length > 0) documents.push(trimmed);
  }
  return documents;
}

/** Loads a corpus file (.txt / .jsonl) or every such file in a folder. */
export async function loadCorpus(path: string, options: CorpusOptions = {}): Promise<Corpus> {
  const resolved: Required<CorpusOptions> = {
    textField: options.textField ?? "text",
    txtDocuments: options.txtDocuments ?? "paragraphs",
  };
  const source = path.length > 1 ? path.replace(/\/+$/, "") : path;
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(source);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(`${source}: no such corpus file or folder`);
    }
    throw new UserError(`${source}: cannot read the corpus: ${(e as Error).message}`);
  }
  let paths: string[];
  if (info.isDirectory) {
    paths = await listCorpusFiles(source);
    if (paths.length === 0) {
      throw new UserError(`${source}: the corpus folder has no .txt or .jsonl files`);
    }
  } else {
    if (!isCorpusFile(source)) {
      throw new UserError(`${source}: unsupported corpus file type (expected .txt or .jsonl)`);
    }
    paths = [source];
  }

  const files: CorpusFile[] = [];
  const documents: string[] = [];
  for (const file of paths) {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(file);
    } catch (e) {
      throw new UserError(`${file}: cannot read the corpus file: ${(e as Error).message}`);
    }
    const text = decodeUtf8(file, bytes);
    files.push({ path: file, bytes });
    documents.push(
      ...(file.endsWith(".jsonl")
        ? jsonlDocuments(file, text, resolved.textField)
        : txtDocuments(text, resolved.txtDocuments)),
    );
  }
  if (documents.length === 0) throw new UserError(`${source}: the corpus has no documents`);
  return { source, documents, files, options: resolved };
}

// ---------------------------------------------------------------------------------------------
// Train / held-out split, by document.

export interface SplitOptions {
  seed: number;
  /** Fraction of the distinct documents held out, in [0, 1). */
  heldoutFraction: number;
}

/** Indices into the document list, ascending. */
export interface DocumentSplit {
  train: number[];
  heldout: number[];
}

/** A 53-bit string hash with a seed (cyrb53): fast, well mixed, not cryptographic. */
function hashText(text: string, seed: number): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/**
 * Splits documents into train and held-out, deterministically from the seed. Distinct texts
 * are ranked by a seeded hash of their content and the first round(fraction · distinct) are
 * held out (at least one when the fraction is positive, never all), so the split does not
 * depend on the order of the documents, and copies of one text always land in the same
 * split: no document is in both.
 */
export function splitDocuments(
  documents: readonly string[],
  { seed, heldoutFraction }: SplitOptions,
): DocumentSplit {
  if (!(heldoutFraction >= 0 && heldoutFraction < 1)) {
    throw new UserError(`held-out fraction ${heldoutFraction} is not in [0, 1)`);
  }
  const distinct = [...new Set(documents)];
  const ranked = distinct
    .map((text) => ({ text, hash: hashText(text, seed >>> 0) }))
    .sort((a, b) => a.hash - b.hash || (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
  let count = Math.round(heldoutFraction * distinct.length);
  if (heldoutFraction > 0) count = Math.max(count, 1);
  count = Math.min(count, distinct.length - 1);
  const heldoutTexts = new Set(ranked.slice(0, Math.max(count, 0)).map((r) => r.text));
  const split: DocumentSplit = { train: [], heldout: [] };
  documents.forEach((text, i) => (heldoutTexts.has(text) ? split.heldout : split.train).push(i));
  return split;
}
