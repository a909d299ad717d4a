// Model presets: the shapes rmt uses when it creates a model from scratch (`rmt init`), per
// architecture and size, written as the Hugging Face config.json a downloaded model has.
//
//   tiny   for tests: hidden 64, 2 layers, 4 query heads over 2 kv heads, MLP 172
//          (≈0.16–0.25M parameters with a 1024-token vocabulary)
//   small  a real (if small) model: hidden 384, 6 layers, 6 query heads over 2 kv heads,
//          MLP 1536 (≈13–16M parameters)
//
// The architectures differ where their published models do:
//   qwen2  q/k/v biases (built into Qwen2); tied embeddings, like Qwen2.5-0.5B
//   qwen3  q/k RMSNorm; an explicit head_dim of twice hidden/heads, like Qwen3-0.6B (so the
//          attention width differs from the hidden size); untied for tiny, tied for small
//   llama  no biases; rope_theta 500000 and eps 1e-5 as in Llama 3; untied for tiny, tied for
//          small like Llama 3.2 1B
// so the tiny presets together cover tied and untied heads, biases and qk-norm.

import { type ModelConfig, parseConfig } from "./config.ts";
import { UserError } from "./errors.ts";

export const PRESET_ARCHITECTURES = ["qwen2", "qwen3", "llama"] as const;
export type PresetArchitecture = typeof PRESET_ARCHITECTURES[number];

export const PRESET_SIZES = ["tiny", "small"] as const;
export type PresetSize = typeof PRESET_SIZES[number];

/** The tokenizer vocabulary each size asks BPE training for (overridable). */
export const DEFAULT_VOCAB: Readonly<Record<PresetSize, number>> = { tiny: 1024, small: 1024 };

/** Context length written to config.json (and the tokenizer's model_max_length). */
export const DEFAULT_MAX_POSITIONS = 1024;

/** The architecture-independent shape of a size. */
interface Shape {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  intermediateSize: number;
}

const SHAPES: Readonly<Record<PresetSize, Shape>> = {
  tiny: { hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 172 },
  small: { hiddenSize: 384, numLayers: 6, numHeads: 6, numKvHeads: 2, intermediateSize: 1536 },
};

const ARCHITECTURE_CLASS: Readonly<Record<PresetArchitecture, string>> = {
  qwen2: "Qwen2ForCausalLM",
  qwen3: "Qwen3ForCausalLM",
  llama: "LlamaForCausalLM",
};

export interface PresetOptions {
  /** vocab_size: the trained tokenizer's size (ids 0..vocabSize-1). */
  vocabSize: number;
  /** The <|endoftext|> id: bos_token_id and eos_token_id. */
  endOfTextId: number;
  maxPositionEmbeddings?: number;
}

/** "qwen2" → true, narrowing the type; for parsing user input. */
export function isPresetArchitecture(value: string): value is PresetArchitecture {
  return (PRESET_ARCHITECTURES as readonly string[]).includes(value);
}

export function isPresetSize(value: string): value is PresetSize {
  return (PRESET_SIZES as readonly string[]).includes(value);
}

/**
 * The config.json object of a preset, with every key transformers reads for the architecture,
 * checked with parseConfig before it is returned. Weights are described as float32 (the
 * folder writer changes torch_dtype when it stores bf16).
 */
export function presetConfigJson(
  arch: PresetArchitecture,
  size: PresetSize,
  { vocabSize, endOfTextId, maxPositionEmbeddings = DEFAULT_MAX_POSITIONS }: PresetOptions,
): Record<string, unknown> {
  if (!isPresetArchitecture(arch)) {
    throw new UserError(
      `unknown architecture ${JSON.stringify(arch)} (accepted: ${PRESET_ARCHITECTURES.join(", ")})`,
    );
  }
  if (!isPresetSize(size)) {
    throw new UserError(
      `unknown preset ${JSON.stringify(size)} (accepted: ${PRESET_SIZES.join(", ")})`,
    );
  }
  if (!Number.isSafeInteger(endOfTextId) || endOfTextId < 0 || endOfTextId >= vocabSize) {
    throw new Error(`preset: <|endoftext|> id ${endOfTextId} is not below vocab ${vocabSize}`);
  }
  const shape = SHAPES[size];
  const tied = arch === "qwen2" || size === "small";
  const common: Record<string, unknown> = {
    architectures: [ARCHITECTURE_CLASS[arch]],
    model_type: arch,
    vocab_size: vocabSize,
    hidden_size: shape.hiddenSize,
    intermediate_size: shape.intermediateSize,
    num_hidden_layers: shape.numLayers,
    num_attention_heads: shape.numHeads,
    num_key_value_heads: shape.numKvHeads,
    hidden_act: "silu",
    max_position_embeddings: maxPositionEmbeddings,
    initializer_range: 0.02,
    rms_norm_eps: arch === "llama" ? 1e-5 : 1e-6,
    rope_theta: arch === "llama" ? 500000 : 1000000,
    rope_scaling: null,
    attention_dropout: 0.0,
    tie_word_embeddings: tied,
    use_cache: true,
    bos_token_id: endOfTextId,
    eos_token_id: endOfTextId,
    torch_dtype: "float32",
  };
  let json: Record<string, unknown>;
  switch (arch) {
    case "qwen2":
      // Qwen2's q/k/v biases are implied by the architecture; no attention_bias key.
      json = { ...common, use_sliding_window: false, max_window_layers: shape.numLayers };
      break;
    case "qwen3":
      json = {
        ...common,
        head_dim: (2 * shape.hiddenSize) / shape.numHeads,
        attention_bias: false,
        use_sliding_window: false,
        max_window_layers: shape.numLayers,
      };
      break;
    case "llama":
      json = { ...common, attention_bias: false, mlp_bias: false, pretraining_tp: 1 };
      break;
  }
  parseConfig(json, `preset ${arch} ${size}`); // throws if we wrote something rmt cannot run
  return json;
}

/** The parsed form of a preset (for parameter counts and the GPU model). */
export function presetConfig(
  arch: PresetArchitecture,
  size: PresetSize,
  options: PresetOptions,
): ModelConfig {
  return parseConfig(presetConfigJson(arch, size, options), `preset ${arch} ${size}`);
}
