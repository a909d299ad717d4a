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
  try {
    const json = JSON.parse(text);
    if (typeof json !== "object" || json === null || Array.isArray(json)) throw new Error("");
    return json;
  } catch {
    throw new UserError(`${path}: the ${what} is not a JSON object`);
  }
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
    try {
      this.#inner = new Tokenizer(tokenizerJson, tokenizerConfig);
    } catch (e) {
      throw new UserError(`${source}: cannot build the tokenizer: ${(e as Error).message}`);
    }
    this.#chatTemplate = chatTemplate;
    let maxId = -1;
    for (const id of this.#inner.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
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
