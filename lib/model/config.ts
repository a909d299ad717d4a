// A Hugging Face config.json, parsed into the typed ModelConfig the rest of rmt uses, and the
// parameter list each supported architecture implies (names and shapes exactly as in HF
// checkpoints). Anything we cannot run faithfully (another architecture, scaled RoPE, sliding
// windows, MLP biases, an activation other than SiLU) is refused with a message naming it.
//
// The three architectures share one decoder layer; they differ only in attention extras:
//   Qwen2:  q, k, v projections have biases (always), o has none
//   Qwen3:  RMSNorm over each head of q and k (q_norm, k_norm: [head_dim]); explicit head_dim
//   Llama:  attention_bias puts biases on q, k, v and o (off in every Llama we know)
// (Qwen3's attention_bias, like Llama's, means biases on all four projections.)

import { UserError } from "./errors.ts";
import { FLOAT_DTYPES, type SafetensorsDtype } from "./safetensors.ts";

export const SUPPORTED_ARCHITECTURES = [
  "Qwen2ForCausalLM",
  "Qwen3ForCausalLM",
  "LlamaForCausalLM",
] as const;

export type Architecture = typeof SUPPORTED_ARCHITECTURES[number];

const MODEL_TYPES: Record<Architecture, string> = {
  Qwen2ForCausalLM: "qwen2",
  Qwen3ForCausalLM: "qwen3",
  LlamaForCausalLM: "llama",
};

export interface ModelConfig {
  architecture: Architecture;
  vocabSize: number;
  hiddenSize: number;
  /** MLP width (gate/up output, down input). */
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  /** Per-head width; q has numHeads·headDim features, k and v numKvHeads·headDim. */
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  maxPositionEmbeddings: number;
  /** lm_head shares model.embed_tokens.weight (no lm_head.weight tensor). */
  tieWordEmbeddings: boolean;
  /** Biases on the q, k, v projections (Qwen2 always; Llama/Qwen3 with attention_bias). */
  qkvBias: boolean;
  /** Bias on the o projection (Llama/Qwen3 with attention_bias). */
  oBias: boolean;
  /** Per-head RMSNorm on q and k before RoPE (Qwen3). */
  qkNorm: boolean;
  /** The dtype the weights were published in ("bfloat16", ...), if the config says. */
  torchDtype: string | null;
  bosTokenId: number | null;
  /** Generation stops at any of these (Llama 3 lists several). */
  eosTokenIds: number[];
  /** The config.json object as read, so that writing it back keeps every other key. */
  raw: Readonly<Record<string, unknown>>;
}

type Json = Record<string, unknown>;

/** Parses a config.json object; `source` names it in error messages. */
export function parseConfig(json: unknown, source = "config.json"): ModelConfig {
  const fail = (message: string): never => {
    throw new UserError(`${source}: ${message}`);
  };
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return fail("not a JSON object");
  }
  const raw = json as Json;

  const architectures = raw.architectures;
  if (!Array.isArray(architectures) || architectures.length !== 1) {
    return fail(
      `"architectures" must list exactly one architecture, got ${JSON.stringify(architectures)}`,
    );
  }
  const architecture = architectures[0];
  if (!(SUPPORTED_ARCHITECTURES as readonly unknown[]).includes(architecture)) {
    return fail(
      `architecture ${JSON.stringify(architecture)} is not supported ` +
        `(supported: ${SUPPORTED_ARCHITECTURES.join(", ")})`,
    );
  }
  const arch = architecture as Architecture;

  const positiveInt = (key: string, fallback?: number): number => {
    const value = raw[key] ?? fallback;
    if (value === undefined) return fail(`"${key}" is missing`);
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
      return fail(`"${key}" must be a positive integer, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const positiveNumber = (key: string, value: unknown): number => {
    if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) {
      return fail(`"${key}" must be a positive number, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const flag = (key: string, fallback: boolean): boolean => {
    const value = raw[key] ?? fallback;
    if (typeof value !== "boolean") return fail(`"${key}" must be true or false`);
    return value;
  };
  const tokenId = (key: string): number | null => {
    const value = raw[key] ?? null;
    if (value !== null && !(Number.isSafeInteger(value) && (value as number) >= 0)) {
      return fail(`"${key}" must be a token id, got ${JSON.stringify(value)}`);
    }
    return value as number | null;
  };

  if (raw.model_type !== undefined && raw.model_type !== MODEL_TYPES[arch]) {
    fail(`"model_type" ${JSON.stringify(raw.model_type)} does not match ${arch}`);
  }
  const activation = raw.hidden_act ?? "silu";
  if (activation !== "silu") {
    fail(`hidden_act ${JSON.stringify(activation)} is not supported (only "silu")`);
  }
  if (raw.use_sliding_window === true) {
    fail("use_sliding_window: true is not supported (only full attention)");
  }
  if (raw.mlp_bias === true) fail("mlp_bias: true is not supported");
  // transformers 5 lists each layer's attention kind; only full attention is supported.
  if (Array.isArray(raw.layer_types) && raw.layer_types.some((t) => t !== "full_attention")) {
    fail(`layer_types ${JSON.stringify(raw.layer_types)} is not supported (only full_attention)`);
  }
  const ropeTheta = parseRopeTheta(raw, fail);

  const hiddenSize = positiveInt("hidden_size");
  const numHeads = positiveInt("num_attention_heads");
  const numKvHeads = positiveInt("num_key_value_heads", numHeads);
  if (numHeads % numKvHeads !== 0) {
    fail(`num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  }
  if (raw.head_dim == null && hiddenSize % numHeads !== 0) {
    fail(`hidden_size ${hiddenSize} is not a multiple of num_attention_heads ${numHeads}`);
  }
  const headDim = positiveInt("head_dim", hiddenSize / numHeads);

  // Qwen2's q/k/v biases are built into the architecture; the others follow attention_bias.
  const attentionBias = flag("attention_bias", false);
  const qkvBias = arch === "Qwen2ForCausalLM" ? true : attentionBias;
  const oBias = arch === "Qwen2ForCausalLM" ? false : attentionBias;

  const eos = raw.eos_token_id ?? [];
  const eosList = Array.isArray(eos) ? eos : [eos];
  if (!eosList.every((id) => Number.isSafeInteger(id) && id >= 0)) {
    fail(`"eos_token_id" must be a token id or a list of them, got ${JSON.stringify(eos)}`);
  }
  const dtype = raw.torch_dtype ?? raw.dtype ?? null;

  return {
    architecture: arch,
    vocabSize: positiveInt("vocab_size"),
    hiddenSize,
    intermediateSize: positiveInt("intermediate_size"),
    numLayers: positiveInt("num_hidden_layers"),
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: positiveNumber("rms_norm_eps", raw.rms_norm_eps ?? 1e-6),
    ropeTheta,
    maxPositionEmbeddings: positiveInt("max_position_embeddings"),
    // Qwen2Config, Qwen3Config and LlamaConfig all default to untied embeddings.
    tieWordEmbeddings: flag("tie_word_embeddings", false),
    qkvBias,
    oBias,
    qkNorm: arch === "Qwen3ForCausalLM",
    torchDtype: typeof dtype === "string" ? dtype : null,
    bosTokenId: tokenId("bos_token_id"),
    eosTokenIds: eosList as number[],
    raw,
  };
}

/**
 * The RoPE base. transformers ≤ 4.x: rope_theta with rope_scaling (null for plain RoPE);
 * transformers 5: rope_parameters {rope_type: "default", rope_theta}.
 */
function parseRopeTheta(raw: Json, fail: (message: string) => never): number {
  if (raw.rope_scaling != null) {
    fail(
      `rope_scaling ${JSON.stringify(raw.rope_scaling)} is not supported (only plain RoPE, ` +
        `rope_scaling: null)`,
    );
  }
  const parameters = raw.rope_parameters as Json | null | undefined;
  const theta = parameters != null ? parameters.rope_theta ?? raw.rope_theta : raw.rope_theta;
  if (
    parameters != null && (typeof parameters !== "object" || Array.isArray(parameters) ||
      (parameters.rope_type ?? "default") !== "default")
  ) {
    fail(`rope_parameters ${JSON.stringify(parameters)} is not supported (only plain RoPE)`);
  }
  if (theta === undefined) return 10000; // the architectures' default
  if (typeof theta !== "number" || !(theta > 0) || !Number.isFinite(theta)) {
    return fail(`"rope_theta" must be a positive number, got ${JSON.stringify(theta)}`);
  }
  return theta;
}

/** Reads config.json from a model folder (or the path of a config file itself). */
export async function loadConfig(path: string): Promise<ModelConfig> {
  const file = path.endsWith(".json") ? path : `${path.replace(/\/$/, "")}/config.json`;
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new UserError(`${file}: cannot read the model config: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return parseConfig(json, file);
}

/**
 * The config.json object for `config`: its original keys, with every field ModelConfig knows
 * set from the config (so a config built or changed in code writes out what it says).
 */
export function configToJson(config: ModelConfig): Json {
  const out: Json = { ...config.raw };
  out.architectures = [config.architecture];
  out.model_type = MODEL_TYPES[config.architecture];
  out.vocab_size = config.vocabSize;
  out.hidden_size = config.hiddenSize;
  out.intermediate_size = config.intermediateSize;
  out.num_hidden_layers = config.numLayers;
  // transformers 5 checks that layer_types has one entry per layer.
  if (out.layer_types !== undefined) {
    out.layer_types = Array(config.numLayers).fill("full_attention");
  }
  out.num_attention_heads = config.numHeads;
  out.num_key_value_heads = config.numKvHeads;
  out.head_dim = config.headDim;
  out.hidden_act = "silu";
  out.rms_norm_eps = config.rmsNormEps;
  out.max_position_embeddings = config.maxPositionEmbeddings;
  out.tie_word_embeddings = config.tieWordEmbeddings;
  if (config.architecture !== "Qwen2ForCausalLM") out.attention_bias = config.oBias;
  if (out.rope_parameters != null) {
    out.rope_parameters = { rope_type: "default", rope_theta: config.ropeTheta };
  } else {
    out.rope_theta = config.ropeTheta;
    out.rope_scaling = null;
  }
  // transformers 5 calls torch_dtype "dtype"; keep whichever key the config had.
  if (config.torchDtype !== null) {
    out[out.dtype !== undefined ? "dtype" : "torch_dtype"] = config.torchDtype;
  }
  out.bos_token_id = config.bosTokenId;
  const eos = config.eosTokenIds;
  out.eos_token_id = eos.length === 0 ? null : eos.length === 1 ? eos[0] : [...eos];
  return out;
}

/** Every parameter tensor of the model, with its HF name and shape, in checkpoint order. */
export function expectedTensors(config: ModelConfig): Map<string, number[]> {
  const { hiddenSize: d, headDim, numHeads, numKvHeads, intermediateSize: ff } = config;
  const q = numHeads * headDim;
  const kv = numKvHeads * headDim;
  const tensors = new Map<string, number[]>();
  tensors.set("model.embed_tokens.weight", [config.vocabSize, d]);
  for (let i = 0; i < config.numLayers; i++) {
    const layer = `model.layers.${i}`;
    tensors.set(`${layer}.input_layernorm.weight`, [d]);
    tensors.set(`${layer}.self_attn.q_proj.weight`, [q, d]);
    tensors.set(`${layer}.self_attn.k_proj.weight`, [kv, d]);
    tensors.set(`${layer}.self_attn.v_proj.weight`, [kv, d]);
    if (config.qkvBias) {
      tensors.set(`${layer}.self_attn.q_proj.bias`, [q]);
      tensors.set(`${layer}.self_attn.k_proj.bias`, [kv]);
      tensors.set(`${layer}.self_attn.v_proj.bias`, [kv]);
    }
    if (config.qkNorm) {
      tensors.set(`${layer}.self_attn.q_norm.weight`, [headDim]);
      tensors.set(`${layer}.self_attn.k_norm.weight`, [headDim]);
    }
    tensors.set(`${layer}.self_attn.o_proj.weight`, [d, q]);
    if (config.oBias) tensors.set(`${layer}.self_attn.o_proj.bias`, [d]);
    tensors.set(`${layer}.post_attention_layernorm.weight`, [d]);
    tensors.set(`${layer}.mlp.gate_proj.weight`, [ff, d]);
    tensors.set(`${layer}.mlp.up_proj.weight`, [ff, d]);
    tensors.set(`${layer}.mlp.down_proj.weight`, [d, ff]);
  }
  tensors.set("model.norm.weight", [d]);
  if (!config.tieWordEmbeddings) tensors.set("lm_head.weight", [config.vocabSize, d]);
  return tensors;
}

/** Number of trainable parameters (tied embeddings counted once). */
export function parameterCount(config: ModelConfig): number {
  let total = 0;
  for (const shape of expectedTensors(config).values()) total += shape.reduce((a, b) => a * b, 1);
  return total;
}

const shapeText = (shape: readonly number[]) => `[${shape.join(", ")}]`;

/**
 * Checks a checkpoint's tensors against the config: every expected tensor present with its
 * shape and a float dtype (any of them: they are all read as f32, whatever config.json's
 * torch_dtype says), nothing unexpected. Tolerated extras: lm_head.weight in a tied model (some tools
 * save the shared matrix twice) and rotary inv_freq buffers of old Llama checkpoints.
 * Throws one UserError naming the first problem (and how many more there are).
 */
export function checkTensors(
  config: ModelConfig,
  actual: ReadonlyMap<
    string,
    { readonly shape: readonly number[]; readonly dtype?: SafetensorsDtype }
  >,
  source: string,
): void {
  const expected = expectedTensors(config);
  const problems: string[] = [];
  for (const [name, shape] of expected) {
    const found = actual.get(name);
    if (!found) {
      problems.push(`tensor "${name}" ${shapeText(shape)} is missing`);
    } else if (
      found.shape.length !== shape.length || found.shape.some((d, i) => d !== shape[i])
    ) {
      problems.push(
        `tensor "${name}" has shape ${shapeText(found.shape)}, the config implies ` +
          shapeText(shape),
      );
    } else if (found.dtype !== undefined && !FLOAT_DTYPES.includes(found.dtype)) {
      problems.push(
        `tensor "${name}" has dtype ${found.dtype}, not a float dtype ` +
          `(${FLOAT_DTYPES.join(", ")}; config.json says ${config.torchDtype ?? "none"})`,
      );
    }
  }
  for (const [name, { shape }] of actual) {
    if (expected.has(name) || name.endsWith(".rotary_emb.inv_freq")) continue;
    if (name === "lm_head.weight" && config.tieWordEmbeddings) {
      const embedding = expected.get("model.embed_tokens.weight")!;
      if (shape.length === 2 && shape[0] === embedding[0] && shape[1] === embedding[1]) continue;
    }
    problems.push(
      `unexpected tensor "${name}" ${shapeText(shape)} (not part of ${config.architecture})`,
    );
  }
  if (problems.length > 0) {
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more problems)` : "";
    throw new UserError(`${source}: ${problems[0]}${more}`);
  }
}
