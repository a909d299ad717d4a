// A Hugging Face tokenizer folder (tokenizer.json + tokenizer_config.json), loaded with
// tokenizers.js (@huggingface/tokenizers, the JS port transformers.js uses): text ↔ token ids,
// the special tokens RMT needs, and the chat template (rendered with @huggingface/jinja).

import { Template } from "@huggingface/jinja";
import { Tokenizer } from "@huggingface/tokenizers";
import { UserError } from "./errors.ts";

/** The tokens RMT's compact prompt format needs, by role. */
export const THINK_START = "<think>";
export const THINK_END = "</think>";
export const END_OF_TEXT = "<|endoftext|>";

export interface ChatMessage {
  role: string;
  content: string;
}

type Json = Record<string, unknown>;

async function readJson(path: string, what: string): Promise<Json> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new UserError(`${path}: cannot read the ${what}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${path}: the ${what} is not valid JSON: ${oneLine(e)}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new UserError(`${path}: the ${what} is not a JSON object`);
  }
  return json as Json;
}

/** An error's message on one line (library messages may span several). */
function oneLine(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return message.replace(/\s+/g, " ").trim() || "unknown error";
}

/** Text with every kind of piece a prompt has: words, digits, the RMT tokens, non-ASCII. */
const PROBE_TEXT =
  "Problem: 12 + 7 = ?\n<think>\n12 + 7 = 19\n</think>\nAnswer: 19 é 😀<|endoftext|>";

/** A JSON value for a message, cut short. */
function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

const isTokenId = (value: unknown): value is number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= 0;

/**
 * The parts of tokenizer.json whose damage tokenizers.js would not notice: the vocabulary's
 * ids (non-negative integers, each used once) and the added tokens ({id, content}). A
 * UserError naming the file and the entry otherwise.
 */
function checkTokenizerJson(json: Json, path: string): void {
  const fail = (message: string): never => {
    throw new UserError(`${path}: ${message}`);
  };
  const model = json.model;
  if (typeof model !== "object" || model === null || Array.isArray(model)) {
    fail(`"model" is ${model === undefined ? "missing" : "not an object"}`);
  }
  const vocab = (model as Json).vocab;
  // An id used twice within the vocabulary, or within the added tokens (an added token may
  // take over a vocabulary id: some published tokenizers do that on purpose).
  let seen = new Map<number, string>();
  const useId = (id: number, token: string, where: string) => {
    const other = seen.get(id);
    if (other !== undefined && other !== token) {
      fail(`${where}: id ${id} of ${show(token)} is also ${show(other)}'s`);
    }
    seen.set(id, token);
  };
  if (Array.isArray(vocab)) {
    // Unigram: [[piece, score], ...], the id is the index.
    vocab.forEach((entry, id) => {
      if (!Array.isArray(entry) || typeof entry[0] !== "string" || typeof entry[1] !== "number") {
        fail(`model.vocab[${id}] is not a [piece, score] pair`);
      }
    });
  } else if (typeof vocab === "object" && vocab !== null) {
    for (const [token, id] of Object.entries(vocab)) {
      if (!isTokenId(id)) {
        fail(
          `model.vocab: token ${show(token)} has id ${show(id)}, ` +
            "not a non-negative integer",
        );
      }
      useId(id, token, "model.vocab");
    }
  } else {
    fail(`"model.vocab" is ${vocab === undefined ? "missing" : "not an object or a list"}`);
  }
  // tokenizers.js only warns on the console about a split pattern it does not know (or a
  // missing one), then splits differently from transformers.
  const checkPatterns = (value: unknown, where: string): void => {
    if (typeof value !== "object" || value === null) return;
    const node = value as Json;
    if ("pattern" in node || node.type === "Split" || node.type === "Replace") {
      const { Regex, String: text } = (node.pattern ?? {}) as Json;
      if (typeof Regex !== "string" && typeof text !== "string") {
        fail(`${where}.pattern is ${show(node.pattern)}, not {"Regex": ...} or {"String": ...}`);
      }
    }
    for (const [key, child] of Object.entries(node)) {
      checkPatterns(child, Array.isArray(node) ? `${where}[${key}]` : `${where}.${key}`);
    }
  };
  for (const part of ["normalizer", "pre_tokenizer", "decoder"]) checkPatterns(json[part], part);

  seen = new Map();
  const added = json.added_tokens ?? [];
  if (!Array.isArray(added)) fail(`"added_tokens" is not a list`);
  (added as unknown[]).forEach((entry, i) => {
    const { id, content } = (entry ?? {}) as Json;
    if (typeof content !== "string" || content === "") {
      fail(`added_tokens[${i}] has no "content" string`);
    }
    if (!isTokenId(id)) {
      fail(
        `added_tokens[${i}] (${show(content)}) has id ${show(id)}, ` +
          "not a non-negative integer",
      );
    }
    useId(id as number, content as string, `added_tokens[${i}]`);
  });
}

/** A token in tokenizer_config.json: a string, or {content: string, ...}, or null. */
function tokenText(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (typeof value === "object" && value !== null) {
    const content = (value as Json).content;
    if (typeof content === "string") return content;
  }
  return null;
}

export class TextTokenizer {
  readonly #inner: Tokenizer;
  readonly #chatTemplate: string | null;
  /** One past the largest id (added tokens included). */
  readonly vocabSize: number;

  private constructor(
    /** Where it was loaded from, for messages. */
    readonly source: string,
    readonly tokenizerJson: Json,
    readonly tokenizerConfig: Json,
    chatTemplate: string | null,
  ) {
    checkTokenizerJson(tokenizerJson, `${source}/tokenizer.json`);
    // tokenizers.js trusts its input: a damaged file can fail here, or later in encode or
    // decode with a TypeError. Build it and round-trip a probe text now, so that any damage
    // the checks above let through is one line naming the files, before anything runs.
    try {
      this.#inner = new Tokenizer(tokenizerJson, tokenizerConfig);
      let maxId = -1;
      for (const id of this.#inner.get_vocab(true).values()) maxId = Math.max(maxId, id);
      this.vocabSize = maxId + 1;
      this.#inner.decode(this.#inner.encode(PROBE_TEXT, { add_special_tokens: true }).ids, {
        skip_special_tokens: false,
        clean_up_tokenization_spaces: false,
      });
    } catch (e) {
      throw new UserError(
        `${source}: cannot build the tokenizer from tokenizer.json and tokenizer_config.json: ` +
          oneLine(e),
      );
    }
    this.#chatTemplate = chatTemplate;
  }

  /**
   * Loads tokenizer.json and tokenizer_config.json from a folder. The chat template comes from
   * tokenizer_config.json's chat_template, or from chat_template.jinja (newer transformers).
   */
  static async load(dir: string): Promise<TextTokenizer> {
    const base = dir.replace(/\/$/, "");
    const json = await readJson(`${base}/tokenizer.json`, "tokenizer");
    const config = await readJson(`${base}/tokenizer_config.json`, "tokenizer config");
    let template = chatTemplateOf(config);
    if (template === null) {
      template = await Deno.readTextFile(`${base}/chat_template.jinja`).catch(() => null);
    }
    return new TextTokenizer(base, json, config, template);
  }

  /** Builds a tokenizer from the two files' parsed contents. */
  static fromJson(tokenizerJson: Json, tokenizerConfig: Json, source = "tokenizer") {
    return new TextTokenizer(
      source,
      tokenizerJson,
      tokenizerConfig,
      chatTemplateOf(tokenizerConfig),
    );
  }

  /**
   * Text → ids. Added tokens written in the text (e.g. "<think>") become their single ids.
   * `addSpecialTokens` runs the post-processor (e.g. Llama's BOS); off by default, since
   * corpus text and prompts are assembled by rmt itself.
   */
  encode(text: string, { addSpecialTokens = false } = {}): number[] {
    if (text.length === 0) return [];
    return this.#inner.encode(text, { add_special_tokens: addSpecialTokens }).ids;
  }

  /** Ids → text. Exact inverse of encode for byte-level tokenizers (no space clean-up). */
  decode(ids: readonly number[], { skipSpecialTokens = false } = {}): string {
    if (ids.length === 0) return "";
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new Error(
          `${this.source}: token id ${id} is outside the vocabulary [0, ${this.vocabSize})`,
        );
      }
    }
    return this.#inner.decode([...ids], {
      skip_special_tokens: skipSpecialTokens,
      clean_up_tokenization_spaces: false,
    });
  }

  /** The id of a token string (added or regular), if the vocabulary has it. */
  tokenId(token: string): number | undefined {
    return this.#inner.token_to_id(token);
  }

  /** The token string of an id. */
  tokenOf(id: number): string | undefined {
    return this.#inner.id_to_token(id);
  }

  /** The id of a token that must exist; a UserError saying what it is needed for otherwise. */
  requireToken(token: string, neededFor = "this run"): number {
    const id = this.tokenId(token);
    if (id === undefined) {
      throw new UserError(
        `${this.source}: the tokenizer has no ${JSON.stringify(token)} token, needed for ` +
          `${neededFor} (add it to tokenizer.json's added_tokens, or train a tokenizer with it)`,
      );
    }
    return id;
  }

  /**
   * The id that separates documents in a token stream: <|endoftext|>, or, for a vocabulary
   * without it (DeepSeek-R1-Distill's ends a text with its eos, <｜end▁of▁sentence｜>), the
   * tokenizer_config's eos token; a UserError saying what it is needed for when neither exists.
   */
  documentSeparator(neededFor = "joining documents"): number {
    const id = this.tokenId(END_OF_TEXT) ?? this.eosTokenId;
    if (id === undefined || id === null) {
      throw new UserError(
        `${this.source}: the tokenizer has neither ${END_OF_TEXT} nor an eos_token, needed for ` +
          `${neededFor}`,
      );
    }
    return id;
  }

  /** <think>, </think> and <|endoftext|>, all required (the compact RMT prompt format). */
  thinkTokens(): { thinkStart: number; thinkEnd: number; endOfText: number } {
    const why = "the compact reasoning format";
    return {
      thinkStart: this.requireToken(THINK_START, why),
      thinkEnd: this.requireToken(THINK_END, why),
      endOfText: this.requireToken(END_OF_TEXT, why),
    };
  }

  /** tokenizer_config.json's eos_token, as an id (null when the config names none). */
  get eosTokenId(): number | null {
    const eos = tokenText(this.tokenizerConfig.eos_token);
    return eos === null ? null : this.tokenId(eos) ?? null;
  }

  get hasChatTemplate(): boolean {
    return this.#chatTemplate !== null;
  }

  /**
   * Renders the chat template as transformers' apply_chat_template(tokenize=False) does. The
   * template sees messages, add_generation_prompt, the config's special token strings
   * (bos_token, eos_token, ...) and any `variables` (e.g. enable_thinking for Qwen3).
   */
  applyChatTemplate(
    messages: readonly ChatMessage[],
    { addGenerationPrompt = true, variables = {} }: {
      addGenerationPrompt?: boolean;
      variables?: Json;
    } = {},
  ): string {
    if (this.#chatTemplate === null) {
      throw new UserError(`${this.source}: the tokenizer has no chat template`);
    }
    const specials: Json = {};
    for (const key of ["bos_token", "eos_token", "pad_token", "unk_token"]) {
      specials[key] = tokenText(this.tokenizerConfig[key]) ?? "";
    }
    try {
      return new Template(this.#chatTemplate).render({
        ...specials,
        messages: messages.map((m) => ({ ...m })),
        add_generation_prompt: addGenerationPrompt,
        ...variables,
      });
    } catch (e) {
      throw new UserError(`${this.source}: the chat template failed: ${(e as Error).message}`);
    }
  }
}

/** chat_template from tokenizer_config.json: a string, or a list of named templates. */
function chatTemplateOf(config: Json): string | null {
  const template = config.chat_template;
  if (typeof template === "string") return template;
  if (Array.isArray(template)) {
    const named = template.find((t) => t?.name === "default") ?? template[0];
    if (typeof named?.template === "string") return named.template;
  }
  return null;
}
