// A new model from nothing: a byte-level BPE tokenizer trained on a corpus (by default the math
// corpus rmt ships), a preset's config.json sized to that tokenizer, and random weights
// initialized the way transformers initializes these architectures:
//   embeddings and every projection matrix   normal(0, initializer_range = 0.02)
//   RMSNorm weights                          1
//   biases                                   0
// Everything is deterministic: the same options give bit-identical weights and tokenizer.
//
// The shipped corpus comes in through a text import, so a single bundled rmt file carries it
// and `rmt init` works with no access to the source tree.

import shippedTrainJsonl from "../../data/math/train.jsonl" with { type: "text" };
import { DEFAULT_ADDED_TOKENS, trainByteLevelBpe, type TrainedTokenizer } from "./bpe_train.ts";
import { expectedTensors, type ModelConfig, parseConfig } from "./config.ts";
import { UserError } from "./errors.ts";
import {
  DEFAULT_MAX_POSITIONS,
  DEFAULT_VOCAB,
  isPresetArchitecture,
  isPresetSize,
  PRESET_ARCHITECTURES,
  PRESET_SIZES,
  type PresetArchitecture,
  presetConfigJson,
  type PresetSize,
} from "./presets.ts";
import { END_OF_TEXT } from "./tokenizer.ts";
import { Rng } from "../ref/random.ts";

/** transformers' initializer_range for these architectures. */
export const INIT_STD = 0.02;

/** vocab_size is a multiple of this (see paddedVocabSize). */
export const VOCAB_MULTIPLE = 64;

/** Smallest vocabulary: the 256 byte tokens plus <|endoftext|>, <think>, </think>. */
export const MIN_VOCAB = 256 + DEFAULT_ADDED_TOKENS.length;
/** Largest vocabulary BPE training accepts here (far beyond any corpus rmt trains on). */
export const MAX_VOCAB = 1 << 20;

export interface InitOptions {
  arch: PresetArchitecture;
  preset: PresetSize;
  /** Target tokenizer size; default DEFAULT_VOCAB[preset]. */
  vocab?: number;
  /** Seeds the weights (an integer in [0, 2^32)). The tokenizer depends only on the corpus. */
  seed: number;
  /** Documents to train the tokenizer on; default the shipped math corpus (train split). */
  corpus?: readonly string[];
  maxPositionEmbeddings?: number;
}

export interface InitializedModel {
  /** The config.json object. */
  config: Record<string, unknown>;
  /** The same, parsed. */
  modelConfig: ModelConfig;
  /** Every parameter by HF name, in checkpoint order. */
  weights: Map<string, Float32Array>;
  /** tokenizer.json and tokenizer_config.json contents (and training statistics). */
  tokenizerFiles: TrainedTokenizer;
  /** The vocabulary asked for; config vocab_size is below it when the corpus ran out of merges. */
  requestedVocab: number;
}

/** The text of each document of the shipped training corpus (JSONL, field "text"). */
export function shippedCorpusDocuments(): string[] {
  const documents: string[] = [];
  for (const line of shippedTrainJsonl.split("\n")) {
    if (line.trim().length === 0) continue;
    const text = (JSON.parse(line) as { text: string }).text.trim();
    if (text.length > 0) documents.push(text);
  }
  return documents;
}

/**
 * The initial weights of `config`: HF's init (see the top of this file), one seeded stream of
 * normals drawn tensor by tensor in checkpoint order.
 */
export function initialWeights(config: ModelConfig, seed: number): Map<string, Float32Array> {
  const rng = new Rng(seed);
  const weights = new Map<string, Float32Array>();
  for (const [name, shape] of expectedTensors(config)) {
    const count = shape.reduce((a, b) => a * b, 1);
    if (name.endsWith("norm.weight")) weights.set(name, new Float32Array(count).fill(1));
    else if (name.endsWith(".bias")) weights.set(name, new Float32Array(count));
    else weights.set(name, rng.normals(count, INIT_STD));
  }
  return weights;
}

function checkOptions(options: InitOptions): number {
  if (!isPresetArchitecture(options.arch)) {
    throw new UserError(
      `unknown architecture ${JSON.stringify(options.arch)} ` +
        `(accepted: ${PRESET_ARCHITECTURES.join(", ")})`,
    );
  }
  if (!isPresetSize(options.preset)) {
    throw new UserError(
      `unknown preset ${JSON.stringify(options.preset)} (accepted: ${PRESET_SIZES.join(", ")})`,
    );
  }
  if (!Number.isSafeInteger(options.seed) || options.seed < 0 || options.seed >= 2 ** 32) {
    throw new UserError(`seed ${options.seed} is not an integer in [0, 4294967295]`);
  }
  const vocab = options.vocab ?? DEFAULT_VOCAB[options.preset];
  if (!Number.isSafeInteger(vocab) || vocab < MIN_VOCAB || vocab > MAX_VOCAB) {
    throw new UserError(
      `vocab ${vocab} is not an integer in [${MIN_VOCAB}, ${MAX_VOCAB}] ` +
        `(256 bytes + ${DEFAULT_ADDED_TOKENS.length} special tokens at least)`,
    );
  }
  return vocab;
}

/**
 * The model's vocab_size: the tokenizer's size rounded up to a multiple of 64, as Qwen pads
 * 151,665 tokens to 151,936. Aligned matrix widths let the lm_head matmul take the fast
 * vec4 kernel; the extra rows are never a target and learn to stay unlikely.
 */
export function paddedVocabSize(tokenizerVocab: number): number {
  return Math.ceil(tokenizerVocab / VOCAB_MULTIPLE) * VOCAB_MULTIPLE;
}

/** Trains the tokenizer, sizes the preset to it, and draws the weights. */
export function initModel(options: InitOptions): InitializedModel {
  const requestedVocab = checkOptions(options);
  const maxPositionEmbeddings = options.maxPositionEmbeddings ?? DEFAULT_MAX_POSITIONS;
  const documents = options.corpus ?? shippedCorpusDocuments();
  if (documents.length === 0) throw new UserError("the tokenizer corpus has no documents");

  // Documents joined by <|endoftext|>, as training will see them; BPE cuts added tokens out
  // first, so no merge ever spans two documents.
  const tokenizerFiles = trainByteLevelBpe(documents.join(END_OF_TEXT), {
    vocabSize: requestedVocab,
    modelMaxLength: maxPositionEmbeddings,
  });
  const added = tokenizerFiles.tokenizerJson.added_tokens as { id: number; content: string }[];
  const endOfTextId = added.find((t) => t.content === END_OF_TEXT)!.id;

  const config = presetConfigJson(options.arch, options.preset, {
    vocabSize: paddedVocabSize(tokenizerFiles.vocabSize),
    endOfTextId,
    maxPositionEmbeddings,
  });
  const modelConfig = parseConfig(config, `preset ${options.arch} ${options.preset}`);
  const weights = initialWeights(modelConfig, options.seed);
  return { config, modelConfig, weights, tokenizerFiles, requestedVocab };
}
