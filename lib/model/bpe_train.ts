// Training a byte-level BPE tokenizer (GPT-2 / Qwen style) in plain TypeScript, written out as a
// Hugging Face tokenizer.json + tokenizer_config.json that transformers and tokenizers.js load.
//
// Byte-level BPE: text → UTF-8 bytes, each byte shown as one printable character (GPT-2's
// bytes_to_unicode: a space is "Ġ", a newline "Ċ"), so the 256 byte characters are the base
// vocabulary and every string is encodable, with no unknown token. Training repeatedly merges
// the most frequent adjacent pair of symbols into a new symbol, within pre-tokens (the pieces
// Qwen's split regex cuts text into: words with their leading space, single digits,
// punctuation runs, whitespace runs), until the vocabulary reaches the target size.
//
// Deterministic: ties between equally frequent pairs go to the pair of smaller token ids.
// Fast enough for a few MB: pair counts are updated incrementally, only in the words that
// contain the merged pair, and a lazy max-heap finds the most frequent pair.
//
// No normalizer (Qwen uses NFC): without one, decode(encode(s)) === s for every string.

import { SplitPreTokenizer } from "@huggingface/tokenizers";

/** Qwen2's pre-tokenizer pattern (Oniguruma syntax; tokenizers.js translates it). */
export const QWEN_SPLIT_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" +
  "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** A token added on top of the BPE vocabulary: never split, never merged. */
export interface AddedTokenSpec {
  content: string;
  /** Special tokens are dropped by decode(..., skip_special_tokens). */
  special: boolean;
}

/**
 * The default added tokens. Like Qwen3, the think tags are not "special": decoding with
 * skip_special_tokens keeps them, so the reasoning stays readable.
 */
export const DEFAULT_ADDED_TOKENS: readonly AddedTokenSpec[] = [
  { content: "<|endoftext|>", special: true },
  { content: "<think>", special: false },
  { content: "</think>", special: false },
];

export interface BpeTrainingOptions {
  /** Total vocabulary: 256 byte tokens + merges + added tokens. */
  vocabSize: number;
  addedTokens?: readonly AddedTokenSpec[];
  /** Pairs seen fewer times are never merged (training may then stop short of vocabSize). */
  minPairCount?: number;
  /** Written to tokenizer_config.json. */
  modelMaxLength?: number;
}

export interface TrainedTokenizer {
  /** The tokenizer.json object. */
  tokenizerJson: Record<string, unknown>;
  /** The tokenizer_config.json object. */
  tokenizerConfig: Record<string, unknown>;
  /** Number of ids, added tokens included (may be below the target if merges ran out). */
  vocabSize: number;
  mergeCount: number;
}

/** GPT-2's byte → printable character table: printable Latin-1 bytes map to themselves. */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const table = new Array<string>(256);
  for (const b of printable) table[b] = String.fromCharCode(b);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    if (table[b] === undefined) table[b] = String.fromCharCode(next++);
  }
  return table;
}

/**
 * The 256 byte characters in vocabulary order: printable bytes first, then the rest, as in
 * GPT-2's and Qwen's vocabularies ("!" is id 0).
 */
function byteAlphabet(): { chars: string[]; idOfByte: Int32Array } {
  const table = bytesToUnicode();
  const order = [...Array(256).keys()].sort((a, b) =>
    table[a].charCodeAt(0) - table[b].charCodeAt(0)
  );
  const idOfByte = new Int32Array(256);
  order.forEach((byte, id) => idOfByte[byte] = id);
  return { chars: order.map((b) => table[b]), idOfByte };
}

/** Pre-tokenizer, decoder and post-processor objects of the tokenizer.json we write. */
const BYTE_LEVEL = { add_prefix_space: false, trim_offsets: false, use_regex: false };
const SPLIT = {
  type: "Split" as const,
  pattern: { Regex: QWEN_SPLIT_PATTERN },
  behavior: "Isolated" as const,
  invert: false,
};

/**
 * Counts the distinct pre-tokens of `text`, as byte sequences. Added tokens are cut out first
 * (they are never merged with anything). The split is tokenizers.js's own, so training sees
 * exactly the pieces that encoding will.
 */
function countPreTokens(text: string, added: readonly string[]): Map<string, number> {
  const splitter = new SplitPreTokenizer(SPLIT);
  const counts = new Map<string, number>();
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const pieces = added.length === 0
    ? [text]
    : text.split(new RegExp(added.map(escape).join("|"), "u"));
  for (const piece of pieces) {
    if (piece.length === 0) continue;
    for (const token of splitter.pre_tokenize_text(piece)) {
      counts.set(token, (counts.get(token) ?? 0) + 1);
    }
  }
  return counts;
}

/** A max-heap of (count, pair) with lazy invalidation: stale entries are re-checked on pop. */
class PairHeap {
  #counts: number[] = [];
  #pairs: number[] = [];

  get size(): number {
    return this.#counts.length;
  }

  /** Higher count first; on a tie, the smaller pair key (smaller left id, then right id). */
  #before(i: number, j: number): boolean {
    const ci = this.#counts[i];
    const cj = this.#counts[j];
    return ci > cj || (ci === cj && this.#pairs[i] < this.#pairs[j]);
  }

  #swap(i: number, j: number): void {
    [this.#counts[i], this.#counts[j]] = [this.#counts[j], this.#counts[i]];
    [this.#pairs[i], this.#pairs[j]] = [this.#pairs[j], this.#pairs[i]];
  }

  push(count: number, pair: number): void {
    this.#counts.push(count);
    this.#pairs.push(pair);
    let i = this.#counts.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#before(i, parent)) break;
      this.#swap(i, parent);
      i = parent;
    }
  }

  pop(): { count: number; pair: number } {
    const top = { count: this.#counts[0], pair: this.#pairs[0] };
    const lastCount = this.#counts.pop()!;
    const lastPair = this.#pairs.pop()!;
    if (this.#counts.length > 0) {
      this.#counts[0] = lastCount;
      this.#pairs[0] = lastPair;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let best = i;
        if (left < this.#counts.length && this.#before(left, best)) best = left;
        if (right < this.#counts.length && this.#before(right, best)) best = right;
        if (best === i) break;
        this.#swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

/** Pair key of two token ids (ids stay below 2^21, so the key is an exact integer). */
const PAIR_BASE = 2 ** 21;
const pairKey = (a: number, b: number) => a * PAIR_BASE + b;

/** Trains the merges and returns the tokenizer files' contents. */
export function trainByteLevelBpe(text: string, options: BpeTrainingOptions): TrainedTokenizer {
  const added = options.addedTokens ?? DEFAULT_ADDED_TOKENS;
  const minPairCount = options.minPairCount ?? 2;
  const baseSize = 256 + added.length;
  if (!Number.isSafeInteger(options.vocabSize) || options.vocabSize < baseSize) {
    throw new Error(
      `BPE training: vocabSize ${options.vocabSize} is below 256 bytes + ${added.length} ` +
        `added tokens`,
    );
  }
  if (options.vocabSize >= PAIR_BASE) throw new Error(`BPE training: vocabSize too large`);

  // Words: the distinct pre-tokens as symbol id sequences, with their counts.
  const { chars, idOfByte } = byteAlphabet();
  const utf8 = new TextEncoder();
  const preTokens = countPreTokens(text, added.map((t) => t.content));
  const words: number[][] = [];
  const wordCounts: number[] = [];
  for (const [token, count] of preTokens) {
    words.push(Array.from(utf8.encode(token), (byte) => idOfByte[byte]));
    wordCounts.push(count);
  }

  // Pair statistics: how often each adjacent pair occurs, and in which words.
  const pairCounts = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPairs = (w: number, sign: number, delta: Map<number, number> | null) => {
    const symbols = words[w];
    for (let i = 0; i + 1 < symbols.length; i++) {
      const key = pairKey(symbols[i], symbols[i + 1]);
      const change = sign * wordCounts[w];
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + change);
      if (delta) delta.set(key, (delta.get(key) ?? 0) + change);
      if (sign > 0) {
        let set = pairWords.get(key);
        if (!set) pairWords.set(key, set = new Set());
        set.add(w);
      }
    }
  };
  for (let w = 0; w < words.length; w++) addPairs(w, +1, null);
  const heap = new PairHeap();
  for (const [key, count] of pairCounts) heap.push(count, key);

  const tokens = [...chars];
  const idOfToken = new Map(tokens.map((t, id) => [t, id]));
  const merges: [string, string][] = [];
  const targetTokens = options.vocabSize - added.length;
  while (tokens.length < targetTokens && heap.size > 0) {
    const { count, pair } = heap.pop();
    const current = pairCounts.get(pair) ?? 0;
    if (count !== current) {
      if (current > 0) heap.push(current, pair); // stale entry: requeue at its true count
      continue;
    }
    if (current < minPairCount) break;
    const left = Math.floor(pair / PAIR_BASE);
    const right = pair % PAIR_BASE;
    const merged = tokens[left] + tokens[right];
    let id = idOfToken.get(merged);
    if (id === undefined) {
      id = tokens.length;
      tokens.push(merged);
      idOfToken.set(merged, id);
    }
    merges.push([tokens[left], tokens[right]]);

    // Rewrite every word holding the pair, updating the pair counts by difference.
    const delta = new Map<number, number>();
    for (const w of pairWords.get(pair) ?? []) {
      const symbols = words[w];
      let holds = false;
      for (let i = 0; i + 1 < symbols.length && !holds; i++) {
        holds = symbols[i] === left && symbols[i + 1] === right;
      }
      if (!holds) continue;
      addPairs(w, -1, delta);
      const rewritten: number[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && symbols[i] === left && symbols[i + 1] === right) {
          rewritten.push(id);
          i++;
        } else {
          rewritten.push(symbols[i]);
        }
      }
      words[w] = rewritten;
      addPairs(w, +1, delta);
    }
    pairWords.delete(pair);
    pairCounts.delete(pair);
    for (const [key, change] of delta) {
      if (change > 0 && key !== pair) heap.push(pairCounts.get(key)!, key);
      if (pairCounts.get(key) === 0) pairCounts.delete(key);
    }
  }

  const addedTokens = added.map((t, i) => ({
    id: tokens.length + i,
    content: t.content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: t.special,
  }));
  const tokenizerJson = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [SPLIT, { type: "ByteLevel", ...BYTE_LEVEL }],
    },
    post_processor: { type: "ByteLevel", ...BYTE_LEVEL },
    decoder: { type: "ByteLevel", ...BYTE_LEVEL },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(tokens.map((t, id) => [t, id])),
      merges,
    },
  };
  const endOfText = added.find((t) => t.content === "<|endoftext|>")?.content ?? null;
  const tokenizerConfig = {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: Object.fromEntries(addedTokens.map((t) => [String(t.id), {
      content: t.content,
      lstrip: false,
      normalized: false,
      rstrip: false,
      single_word: false,
      special: t.special,
    }])),
    bos_token: null,
    clean_up_tokenization_spaces: false,
    eos_token: endOfText,
    errors: "replace",
    model_max_length: options.modelMaxLength ?? 32768,
    pad_token: endOfText,
    split_special_tokens: false,
    tokenizer_class: "PreTrainedTokenizerFast",
    unk_token: null,
  };
  return {
    tokenizerJson,
    tokenizerConfig,
    vocabSize: tokens.length + added.length,
    mergeCount: merges.length,
  };
}

/** Writes tokenizer.json and tokenizer_config.json into `dir` (created if needed). */
export async function writeTokenizerFiles(
  dir: string,
  files: Pick<TrainedTokenizer, "tokenizerJson" | "tokenizerConfig">,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const write = async (name: string, value: unknown) => {
    const path = `${dir.replace(/\/$/, "")}/${name}`;
    await Deno.writeTextFile(`${path}.tmp`, JSON.stringify(value, null, 2) + "\n");
    await Deno.rename(`${path}.tmp`, path);
  };
  await write("tokenizer.json", files.tokenizerJson);
  await write("tokenizer_config.json", files.tokenizerConfig);
}
