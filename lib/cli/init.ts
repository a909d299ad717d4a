// `rmt init`: creates a new model folder from a preset, in the layout of a downloaded Hugging
// Face model: a byte-level BPE tokenizer trained on a corpus, config.json, random weights.

import { parseArgs } from "node:util";
import { loadCorpus } from "../data/corpus.ts";
import { UserError } from "../gpu/errors.ts";
import { initModel, MAX_VOCAB, MIN_VOCAB } from "../model/init.ts";
import { FOLDER_DTYPES, type FolderDtype, writeModelFolder } from "../model/model_folder.ts";
import { parameterCount } from "../model/config.ts";
import { DEFAULT_VOCAB, PRESET_ARCHITECTURES, PRESET_SIZES } from "../model/presets.ts";

export const initHelp = `rmt init --arch ARCH --out DIR [options]

Creates a new model folder (config.json, generation_config.json, model.safetensors,
tokenizer.json, tokenizer_config.json) that transformers loads like a downloaded model:
a byte-level BPE tokenizer with <|endoftext|>, <think>, </think> trained on the corpus,
and random weights (normal std 0.02, norms 1, biases 0) drawn from the seed.

Options:
  --arch ARCH      ${PRESET_ARCHITECTURES.join(" | ")} (required)
  --out DIR        the model folder to create (required)
  --preset NAME    ${PRESET_SIZES.join(" | ")} (default: tiny)
                   tiny ≈ 0.2M parameters (for tests), small ≈ 13-16M
  --vocab N        tokenizer vocabulary to train, ${MIN_VOCAB}..${MAX_VOCAB}
                   (default: ${DEFAULT_VOCAB.tiny} for tiny, ${DEFAULT_VOCAB.small} for small; fewer when the
                   corpus runs out of pairs to merge: the shipped one gives about 1030)
  --seed S         seed of the weights, 0..4294967295 (default: 0)
  --dtype DTYPE    ${FOLDER_DTYPES.join(" | ")}: how the weights are stored (default: f32)
  --corpus PATH    .txt / .jsonl file or folder to train the tokenizer on
                   (default: the shipped math corpus, data/math/train.jsonl)
  --force          replace DIR if it is already a model folder (default: off)
  --help           this help`;

/** Parses a whole non-negative integer option; a UserError naming the option otherwise. */
function integerOption(option: string, text: string, min: number, max: number): number {
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UserError(`${option}: expected an integer in [${min}, ${max}], got '${text}'`);
  }
  return value;
}

function choice<T extends string>(option: string, text: string, accepted: readonly T[]): T {
  if (!(accepted as readonly string[]).includes(text)) {
    throw new UserError(`${option}: expected one of ${accepted.join(", ")}, got '${text}'`);
  }
  return text as T;
}

export async function init(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      arch: { type: "string" },
      out: { type: "string" },
      preset: { type: "string", default: "tiny" },
      vocab: { type: "string" },
      seed: { type: "string", default: "0" },
      dtype: { type: "string", default: "f32" },
      corpus: { type: "string" },
      force: { type: "boolean", default: false },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    console.log(initHelp);
    return 0;
  }
  if (values.arch === undefined) {
    throw new UserError(`--arch is required (one of ${PRESET_ARCHITECTURES.join(", ")})`);
  }
  const arch = choice("--arch", values.arch, PRESET_ARCHITECTURES);
  const preset = choice("--preset", values.preset, PRESET_SIZES);
  if (values.out === undefined || values.out === "") {
    throw new UserError("--out is required (the model folder to create)");
  }
  const out = values.out;
  const vocab = values.vocab === undefined
    ? undefined
    : integerOption("--vocab", values.vocab, MIN_VOCAB, MAX_VOCAB);
  const seed = integerOption("--seed", values.seed, 0, 2 ** 32 - 1);
  const dtype: FolderDtype = choice("--dtype", values.dtype, FOLDER_DTYPES);

  // Refuse early, before the tokenizer is trained.
  const existing = await Deno.stat(out).catch(() => null);
  if (existing !== null && !values.force) {
    throw new UserError(`--out ${out} already exists (pass --force to replace a model folder)`);
  }
  const corpus = values.corpus === undefined
    ? undefined
    : (await loadCorpus(values.corpus)).documents;

  const model = initModel({ arch, preset, vocab, seed, corpus });
  const written = await writeModelFolder(out, {
    config: model.config,
    weights: model.weights,
    tokenizerFiles: model.tokenizerFiles,
    dtype,
    overwrite: values.force,
  });
  const tokens = model.tokenizerFiles.vocabSize;
  const vocabSize = model.modelConfig.vocabSize;
  const vocabText = `vocab ${tokens} tokens` +
    (tokens < model.requestedVocab
      ? ` (of ${model.requestedVocab} asked: the corpus has no more pairs to merge)`
      : "") +
    (vocabSize > tokens ? `, vocab_size ${vocabSize} (padded to a multiple of 64)` : "");
  console.log(
    `initialized ${model.modelConfig.architecture} (${arch} ${preset}): ` +
      `${parameterCount(model.modelConfig).toLocaleString("en-US")} parameters, ${vocabText}, ` +
      `${dtype}, seed ${seed} → ${written.dir}`,
  );
  return 0;
}
