// config.json parsing for the published configs in fixtures/, the parameter lists they imply
// (names and counts as in transformers: the counts below are what transformers reports for the
// same configs), and clear refusals of what we do not support.

import {
  checkTensors,
  configToJson,
  expectedTensors,
  loadConfig,
  type ModelConfig,
  parameterCount,
  parseConfig,
} from "../../lib/model/config.ts";
import type { SafetensorsDtype } from "../../lib/model/safetensors.ts";
import { assert, assertEquals, assertUserError, withTempDir } from "./model_helpers.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;

function fixture(name: string): Promise<ModelConfig> {
  return loadConfig(`${FIXTURES}${name}.json`);
}

async function rawFixture(name: string): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(`${FIXTURES}${name}.json`));
}

Deno.test("config: the published configs parse to the right fields", async () => {
  const small = await fixture("qwen2.5-0.5b");
  assertEquals(
    [small.architecture, small.vocabSize, small.hiddenSize, small.intermediateSize],
    ["Qwen2ForCausalLM", 151936, 896, 4864],
    "Qwen2.5-0.5B sizes",
  );
  assertEquals(
    [small.numLayers, small.numHeads, small.numKvHeads, small.headDim],
    [24, 14, 2, 64],
    "Qwen2.5-0.5B heads",
  );
  assertEquals(
    [small.tieWordEmbeddings, small.qkvBias, small.oBias, small.qkNorm],
    [true, true, false, false],
    "Qwen2.5-0.5B flags",
  );
  assertEquals([small.ropeTheta, small.rmsNormEps], [1e6, 1e-6], "Qwen2.5-0.5B numbers");
  assertEquals([small.bosTokenId, small.eosTokenIds, small.torchDtype], [
    151643,
    [151643],
    "bfloat16",
  ], "Qwen2.5-0.5B tokens");

  const big = await fixture("deepseek-r1-distill-qwen-14b");
  assertEquals(
    [big.hiddenSize, big.intermediateSize, big.numLayers, big.numHeads, big.numKvHeads],
    [5120, 13824, 48, 40, 8],
    "R1-Distill-Qwen-14B sizes",
  );
  assertEquals(
    [big.vocabSize, big.tieWordEmbeddings, big.rmsNormEps, big.maxPositionEmbeddings],
    [152064, false, 1e-5, 131072],
    "R1-Distill-Qwen-14B rest",
  );

  const qwen3 = await fixture("qwen3-0.6b");
  assertEquals(
    [qwen3.architecture, qwen3.headDim, qwen3.numHeads * qwen3.headDim, qwen3.hiddenSize],
    ["Qwen3ForCausalLM", 128, 2048, 1024],
    "Qwen3 head_dim is explicit (q is wider than hidden)",
  );
  assertEquals([qwen3.qkvBias, qwen3.oBias, qwen3.qkNorm], [false, false, true], "Qwen3 flags");

  const llama = await fixture("tinyllama-1.1b");
  assertEquals(
    [llama.architecture, llama.headDim, llama.ropeTheta, llama.qkvBias, llama.bosTokenId],
    ["LlamaForCausalLM", 64, 10000, false, 1],
    "TinyLlama",
  );
});

Deno.test("config: parameter counts match transformers for every published config", async () => {
  const expected: [string, number, number][] = [
    // name, parameters, tensors (as transformers counts them, tied lm_head not repeated)
    ["qwen2.5-0.5b", 494_032_768, 290],
    ["qwen2.5-1.5b", 1_543_714_304, 338],
    ["deepseek-r1-distill-qwen-14b", 14_770_033_664, 579],
    ["qwen3-0.6b", 596_049_920, 310],
    ["tinyllama-1.1b", 1_100_048_384, 201],
  ];
  for (const [name, parameters, tensorCount] of expected) {
    const config = await fixture(name);
    assertEquals(parameterCount(config), parameters, `${name} parameters`);
    assertEquals(expectedTensors(config).size, tensorCount, `${name} tensors`);
  }
});

Deno.test("config: tensor names and shapes follow the HF checkpoints", async () => {
  const qwen2 = expectedTensors(await fixture("qwen2.5-0.5b"));
  const shape = (m: Map<string, number[]>, name: string) => m.get(name) ?? "absent";
  assertEquals(shape(qwen2, "model.embed_tokens.weight"), [151936, 896], "embedding");
  assertEquals(shape(qwen2, "model.layers.23.self_attn.q_proj.weight"), [896, 896], "q");
  assertEquals(shape(qwen2, "model.layers.23.self_attn.k_proj.weight"), [128, 896], "k");
  assertEquals(shape(qwen2, "model.layers.0.self_attn.v_proj.bias"), [128], "v bias");
  assertEquals(shape(qwen2, "model.layers.0.self_attn.o_proj.bias"), "absent", "no o bias");
  assertEquals(shape(qwen2, "model.layers.5.mlp.down_proj.weight"), [896, 4864], "down");
  assertEquals(shape(qwen2, "model.layers.5.mlp.gate_proj.weight"), [4864, 896], "gate");
  assertEquals(shape(qwen2, "model.norm.weight"), [896], "final norm");
  assertEquals(shape(qwen2, "lm_head.weight"), "absent", "tied: no lm_head");

  const qwen3 = expectedTensors(await fixture("qwen3-0.6b"));
  assertEquals(shape(qwen3, "model.layers.27.self_attn.q_norm.weight"), [128], "q_norm");
  assertEquals(shape(qwen3, "model.layers.27.self_attn.k_norm.weight"), [128], "k_norm");
  assertEquals(shape(qwen3, "model.layers.0.self_attn.q_proj.weight"), [2048, 1024], "q");
  assertEquals(shape(qwen3, "model.layers.0.self_attn.o_proj.weight"), [1024, 2048], "o");
  assertEquals(shape(qwen3, "model.layers.0.self_attn.q_proj.bias"), "absent", "no q bias");

  const big = expectedTensors(await fixture("deepseek-r1-distill-qwen-14b"));
  assertEquals(shape(big, "lm_head.weight"), [152064, 5120], "untied lm_head");
  assertEquals(shape(big, "model.layers.47.self_attn.k_proj.weight"), [1024, 5120], "k");

  const llamaWithBias = parseConfig({
    ...(await rawFixture("tinyllama-1.1b")),
    attention_bias: true,
  });
  const llama = expectedTensors(llamaWithBias);
  assertEquals(shape(llama, "model.layers.0.self_attn.q_proj.bias"), [2048], "llama q bias");
  assertEquals(shape(llama, "model.layers.0.self_attn.o_proj.bias"), [2048], "llama o bias");
});

Deno.test("config: unsupported architectures and features are refused by name", async () => {
  const base = await rawFixture("qwen2.5-0.5b");
  const cases: [string, Record<string, unknown>, string[]][] = [
    ["architecture", { architectures: ["MistralForCausalLM"] }, [
      "MistralForCausalLM",
      "not supported",
      "Qwen2ForCausalLM",
    ]],
    ["two architectures", { architectures: ["A", "B"] }, ["architectures"]],
    ["rope_scaling yarn", { rope_scaling: { type: "yarn", factor: 4 } }, ["rope_scaling", "yarn"]],
    ["rope_scaling llama3", { rope_scaling: { rope_type: "llama3", factor: 8 } }, [
      "rope_scaling",
      "llama3",
    ]],
    ["rope_parameters yarn", { rope_parameters: { rope_type: "yarn", rope_theta: 1e6 } }, [
      "rope_parameters",
      "yarn",
    ]],
    ["sliding window", { use_sliding_window: true }, ["use_sliding_window"]],
    ["sliding layers", { layer_types: ["full_attention", "sliding_attention"] }, ["layer_types"]],
    ["activation", { hidden_act: "gelu" }, ["hidden_act", "gelu"]],
    ["mlp bias", { mlp_bias: true }, ["mlp_bias"]],
    ["model_type mismatch", { model_type: "llama" }, ["model_type", "llama"]],
    ["missing size", { hidden_size: undefined }, ['"hidden_size" is missing']],
    ["bad size", { intermediate_size: "4864" }, ['"intermediate_size"', "positive integer"]],
    ["heads", { num_key_value_heads: 3 }, ["num_attention_heads 14", "num_key_value_heads 3"]],
    ["rope_theta", { rope_theta: -1 }, ["rope_theta"]],
    ["eos", { eos_token_id: "x" }, ["eos_token_id"]],
  ];
  for (const [what, change, fragments] of cases) {
    const json = { ...base, ...change };
    await assertUserError(() => parseConfig(json, "m/config.json"), [
      "m/config.json",
      ...fragments,
    ], what);
  }
  await assertUserError(() => parseConfig([1], "x.json"), ["x.json", "not a JSON object"], "array");
});

Deno.test("config: transformers 5 configs (rope_parameters, dtype, layer_types) parse", () => {
  const config = parseConfig({
    architectures: ["Qwen3ForCausalLM"],
    model_type: "qwen3",
    vocab_size: 500,
    hidden_size: 64,
    intermediate_size: 96,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 16,
    max_position_embeddings: 32768,
    layer_types: ["full_attention", "full_attention"],
    rope_parameters: { rope_theta: 5e5, rope_type: "default" },
    dtype: "float32",
    eos_token_id: null,
    bos_token_id: null,
  });
  assertEquals(
    [config.ropeTheta, config.torchDtype, config.eosTokenIds, config.bosTokenId],
    [5e5, "float32", [], null],
    "fields",
  );
  // Written back with fewer layers, layer_types follows; the rope stays in rope_parameters.
  const json = configToJson({ ...config, numLayers: 3 });
  assertEquals(json.layer_types, ["full_attention", "full_attention", "full_attention"], "layers");
  assertEquals(json.rope_parameters, { rope_type: "default", rope_theta: 5e5 }, "rope");
  assertEquals([json.dtype, json.eos_token_id], ["float32", null], "dtype, eos");
});

Deno.test("config: configToJson writes a config that parses back to the same model", async () => {
  for (const name of ["qwen2.5-0.5b", "qwen3-0.6b", "tinyllama-1.1b"]) {
    const config = await fixture(name);
    const changed: ModelConfig = { ...config, numLayers: 2, vocabSize: 1000, eosTokenIds: [5, 6] };
    const json = configToJson(changed);
    const back = parseConfig(JSON.parse(JSON.stringify(json)));
    const { raw: _a, ...fields } = back;
    const { raw: _b, ...expected } = changed;
    assertEquals(fields, expected, name);
    assertEquals(json.max_window_layers, config.raw.max_window_layers, `${name} keeps other keys`);
  }
  await withTempDir(async (dir) => {
    await assertUserError(() => loadConfig(dir), [`${dir}/config.json`, "cannot read"], "none");
    await Deno.writeTextFile(`${dir}/config.json`, "{ nope");
    await assertUserError(() => loadConfig(dir), [`${dir}/config.json`, "not valid JSON"], "bad");
  });
});

Deno.test("config: checkpoint tensors are checked against the config", async () => {
  const config = parseConfig({
    ...(await rawFixture("qwen2.5-0.5b")),
    num_hidden_layers: 2,
    vocab_size: 100,
    hidden_size: 28,
    intermediate_size: 40,
  });
  const good = new Map(
    [...expectedTensors(config)].map(([name, shape]) => [name, { shape }] as const),
  );
  checkTensors(config, good, "ok"); // no throw

  const missing = new Map(good);
  missing.delete("model.layers.1.self_attn.k_proj.bias");
  await assertUserError(() => checkTensors(config, missing, "ckpt"), [
    "ckpt",
    '"model.layers.1.self_attn.k_proj.bias" [4] is missing',
  ], "missing");

  const wrong = new Map(good);
  wrong.set("model.layers.0.mlp.up_proj.weight", { shape: [28, 40] });
  await assertUserError(() => checkTensors(config, wrong, "ckpt"), [
    '"model.layers.0.mlp.up_proj.weight"',
    "[28, 40]",
    "[40, 28]",
  ], "transposed");

  const extra = new Map(good);
  extra.set("model.layers.2.mlp.up_proj.weight", { shape: [40, 28] });
  extra.set("model.layers.0.self_attn.o_proj.bias", { shape: [28] });
  const message = await assertUserError(() => checkTensors(config, extra, "ckpt"), [
    'unexpected tensor "model.layers.2.mlp.up_proj.weight"',
    "and 1 more",
  ], "unexpected");
  assert(message.startsWith("ckpt: "), message);

  // Any float dtype is read (converted to f32), whatever torch_dtype says; others are refused.
  const dtypes = new Map<string, { shape: readonly number[]; dtype: SafetensorsDtype }>(
    [...good].map(([name, t]) => [name, { ...t, dtype: "BF16" }]),
  );
  checkTensors(config, dtypes, "ok"); // config.json says bfloat16 or not: read as f32
  dtypes.set("model.norm.weight", { shape: [28], dtype: "I64" });
  await assertUserError(() => checkTensors(config, dtypes, "ckpt"), [
    '"model.norm.weight" has dtype I64',
    "not a float dtype",
  ], "integer dtype");

  // Tolerated: a tied model that also stores lm_head (same shape), old rotary buffers.
  const tolerated = new Map(good);
  tolerated.set("lm_head.weight", { shape: [100, 28] });
  tolerated.set("model.layers.0.self_attn.rotary_emb.inv_freq", { shape: [2] });
  checkTensors(config, tolerated, "ok");
  tolerated.set("lm_head.weight", { shape: [99, 28] });
  await assertUserError(() => checkTensors(config, tolerated, "ckpt"), ['"lm_head.weight"'], "lm");
});
