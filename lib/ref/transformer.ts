// Reference decoder-only transformer (Qwen2ForCausalLM, Qwen3ForCausalLM, LlamaForCausalLM):
// the whole model forward, the next-token cross-entropy loss and its analytic backward to every
// parameter, in plain f64 loops. It is the test oracle for the GPU model, and is itself checked
// against Hugging Face transformers (tests/model/transformer_ref_test.ts). Clarity over speed:
// tiny models only (hidden ≤ 64, vocab ≤ 300, 2 layers, a dozen tokens).
//
// Shapes: B sequences, right-padded to T = the longest; N = B·T token rows; d = hidden size;
// Hq, Hkv query and key/value heads of width D; F = intermediate size; V = vocabulary.
// Every activation is row-major [N, ...]; a head-split tensor [N, H·D] is [B, T, H, D].
//
//   x⁰ = embed_tokens[ids]                                           [N, d]
//   per layer ℓ:
//     h   = RMSNorm(x; input_layernorm)                              [N, d]
//     q   = h·Wqᵀ (+ bq)   k = h·Wkᵀ (+ bk)   v = h·Wvᵀ (+ bv)       [N, Hq·D], [N, Hkv·D] ×2
//     Qwen3: q, k ← RMSNorm over each head (q_norm, k_norm: [D])
//     q, k ← RoPE(q, k; position t of the token in its own sequence, rope_theta)
//     a   = causal GQA attention(q, k, v), padding keys masked      [N, Hq·D]
//     x   ← x + a·Woᵀ (+ bo)                                        [N, d]
//     g   = RMSNorm(x; post_attention_layernorm)                     [N, d]
//     x   ← x + (silu(g·Wgateᵀ) ⊙ g·Wupᵀ)·Wdownᵀ                    [N, d]
//   logits = RMSNorm(x; model.norm)·Wlmᵀ, Wlm = lm_head or embed_tokens (tied)   [N, V]
//
// The loss (see LossSpec): L = Σ_{b,t} w[b][t]·(−log softmax(logits[b, t])[target[b][t]]),
// divided by Σ w for the default "mean" reduction. By default target[b][t] = ids[b][t + 1]
// with weight 1 for every t < len_b − 1: the mean next-token cross-entropy of the batch.
//
// Padding: rows t ≥ len_b of a sequence are padding. Their keys are masked out of every
// attention row, and they carry no loss weight, so they change nothing that real tokens see;
// their logits are returned as zeros.

import {
  type Architecture,
  expectedTensors,
  type ModelConfig,
  parseConfig,
} from "../model/config.ts";
import { swiglu, swigluBackward } from "./activation.ts";
import { type AttentionDims, attentionForwardF64 } from "./attention.ts";
import { crossEntropy, crossEntropyBackward } from "./cross_entropy.ts";
import { embedding, embeddingBackward } from "./embedding.ts";
import { matmulBackwardF64, matmulF64 } from "./matmul.ts";
import { rmsNorm, rmsNormBackward } from "./norm.ts";
import { Rng } from "./random.ts";
import { rope, ropeBackward, type RopeShape } from "./rope.ts";

type Numbers = ArrayLike<number>;

/** Parameters by HF tensor name (Float32Array as loaded, or Float64Array for finite differences). */
export type Weights = ReadonlyMap<string, Numbers>;

// ---- test models -----------------------------------------------------------------------------

export interface TinyConfigOptions {
  /** lm_head shares embed_tokens (default false). */
  tied?: boolean;
  /** Llama/Qwen3 attention_bias: biases on q, k, v and o (default false; Qwen2 ignores it). */
  attentionBias?: boolean;
}

/**
 * A tiny model of the architecture: vocab 67, hidden 32, MLP 40, 2 layers, 4 query heads over
 * 2 kv heads (GQA). Qwen3 gets an explicit head_dim 12 (q width 48 ≠ hidden), the others 8.
 */
export function tinyConfig(arch: Architecture, options: TinyConfigOptions = {}): ModelConfig {
  const qwen3 = arch === "Qwen3ForCausalLM";
  return parseConfig({
    architectures: [arch],
    vocab_size: 67,
    hidden_size: 32,
    intermediate_size: 40,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: qwen3 ? 12 : 8,
    hidden_act: "silu",
    rms_norm_eps: arch === "LlamaForCausalLM" ? 1e-5 : 1e-6,
    rope_theta: arch === "LlamaForCausalLM" ? 10000 : 1000000,
    rope_scaling: null,
    max_position_embeddings: 64,
    tie_word_embeddings: options.tied ?? false,
    attention_bias: options.attentionBias ?? false,
    torch_dtype: "float32",
    bos_token_id: null,
    eos_token_id: null,
  }, `tinyConfig(${arch})`);
}

export interface RandomWeightOptions {
  /** Standard deviation of matrices and embeddings (HF's initializer_range: 0.02). */
  std?: number;
  /** Standard deviation of biases (HF inits them to 0). */
  biasStd?: number;
  /** Norm weights are 1 + normStd·N(0, 1) (HF: exactly 1). */
  normStd?: number;
}

/**
 * Random parameters for every tensor of expectedTensors(config), drawn in checkpoint order
 * from Rng(seed). The defaults are HF's init; tests raise the scales so that every part of
 * the model (biases, norm weights, sharp attention) visibly matters.
 */
export function randomWeights(
  config: ModelConfig,
  seed: number,
  { std = 0.02, biasStd = 0, normStd = 0 }: RandomWeightOptions = {},
): Map<string, Float32Array> {
  const rng = new Rng(seed);
  const weights = new Map<string, Float32Array>();
  for (const [name, shape] of expectedTensors(config)) {
    const count = shape.reduce((a, b) => a * b, 1);
    if (name.endsWith("norm.weight")) {
      weights.set(name, rng.normals(count, normStd).map((v) => 1 + v));
    } else if (name.endsWith(".bias")) {
      weights.set(name, rng.normals(count, biasStd));
    } else {
      weights.set(name, rng.normals(count, std));
    }
  }
  return weights;
}

// ---- the batch -------------------------------------------------------------------------------

/** The ragged batch laid out as [B, T] rows. */
export interface PaddedBatch {
  batch: number;
  /** T: the longest sequence. */
  time: number;
  /** len_b of each sequence. */
  lengths: number[];
  /** [B·T] token ids; padding rows hold 0. */
  ids: Int32Array;
  /** [B·T] 1 = real token, 0 = padding. */
  keyMask: Float64Array;
  /** [B·T] position of each row in its sequence: t. */
  positions: Float64Array;
}

function padBatch(ids: readonly (readonly number[])[], vocab: number): PaddedBatch {
  if (ids.length === 0) throw new Error("referenceForward: empty batch");
  const lengths = ids.map((s) => s.length);
  const batch = ids.length;
  const time = Math.max(...lengths);
  const padded = new Int32Array(batch * time);
  const keyMask = new Float64Array(batch * time);
  const positions = new Float64Array(batch * time);
  ids.forEach((sequence, b) => {
    if (sequence.length === 0) throw new Error(`referenceForward: sequence ${b} is empty`);
    sequence.forEach((id, t) => {
      if (!Number.isInteger(id) || id < 0 || id >= vocab) {
        throw new Error(`referenceForward: ids[${b}][${t}] = ${id} is not a token id < ${vocab}`);
      }
      padded[b * time + t] = id;
      keyMask[b * time + t] = 1;
    });
    for (let t = 0; t < time; t++) positions[b * time + t] = t;
  });
  return { batch, time, lengths, ids: padded, keyMask, positions };
}

// ---- parameters ------------------------------------------------------------------------------

/** One tensor by name, its length checked against expectedTensors. */
function param(config: ModelConfig, weights: Weights, name: string): Numbers {
  const shape = expectedTensors(config).get(name);
  const tensor = weights.get(name);
  if (!shape) throw new Error(`transformer reference: "${name}" is not a parameter of this model`);
  if (!tensor) throw new Error(`transformer reference: weight "${name}" is missing`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (tensor.length !== count) {
    throw new Error(
      `transformer reference: weight "${name}" has ${tensor.length} elements, ` +
        `[${shape.join(", ")}] needs ${count}`,
    );
  }
  return tensor;
}

/** The lm_head matrix [V, d]: embed_tokens when tied. */
function lmHeadName(config: ModelConfig): string {
  return config.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight";
}

// ---- linear layers (y = x·Wᵀ + b, HF's nn.Linear) --------------------------------------------

/** x: [rows, in], weight: [out, in], bias: [out] or none → [rows, out]. */
function linear(
  x: Numbers,
  weight: Numbers,
  bias: Numbers | undefined,
  rows: number,
  inDim: number,
  outDim: number,
): Float64Array {
  const y = matmulF64(
    { data: x, shape: [rows, inDim] },
    { data: weight, shape: [outDim, inDim] },
    { transposeB: true },
  );
  if (bias) {
    for (let r = 0; r < rows; r++) for (let o = 0; o < outDim; o++) y[r * outDim + o] += bias[o];
  }
  return y;
}

/** dy: [rows, out] → dx: [rows, in], dWeight: [out, in], dBias: [out] (Σ over rows of dy). */
function linearBackward(
  dy: Numbers,
  x: Numbers,
  weight: Numbers,
  rows: number,
  inDim: number,
  outDim: number,
): { dx: Float64Array; dWeight: Float64Array; dBias: Float64Array } {
  const { dA, dB } = matmulBackwardF64(
    { data: x, shape: [rows, inDim] },
    { data: weight, shape: [outDim, inDim] },
    dy,
    { transposeB: true },
  );
  const dBias = new Float64Array(outDim);
  for (let r = 0; r < rows; r++) for (let o = 0; o < outDim; o++) dBias[o] += dy[r * outDim + o];
  return { dx: dA, dWeight: dB, dBias };
}

// ---- attention backward in f64 ---------------------------------------------------------------

/**
 * The backward of attentionForwardF64 (lib/ref/attention.ts) kept in f64: that file's
 * attentionBackward rounds its results to f32, too coarse for finite-difference checks of the
 * whole model. Same math, same visibility rule (causal, keyMask, Tq = Tk here):
 *   p_ij = softmax_j(scale·q_i·k_j)     dP_ij = dOut_i·v_j     D_i = Σ_j p_ij dP_ij
 *   dS_ij = p_ij (dP_ij − D_i)          dQ_i = scale Σ_j dS_ij k_j
 *   dK_j += scale Σ_i dS_ij q_i         dV_j += Σ_i p_ij dOut_i
 * q, dOut: [B, T, Hq, D]; k, v: [B, T, Hkv, D]; keyMask: [B, T].
 */
function attentionBackwardF64(
  dOut: Numbers,
  q: Numbers,
  k: Numbers,
  v: Numbers,
  keyMask: Numbers,
  dims: AttentionDims,
): { dQ: Float64Array; dK: Float64Array; dV: Float64Array } {
  const { batch, queryLen: time, queryHeads: hq, kvHeads: hkv, headDim: d } = dims;
  const scale = 1 / Math.sqrt(d);
  const group = hq / hkv;
  const qRow = (b: number, i: number, h: number) => ((b * time + i) * hq + h) * d;
  const kvRow = (b: number, j: number, h: number) =>
    ((b * time + j) * hkv + Math.floor(h / group)) * d;
  const dot = (a: Numbers, ai: number, c: Numbers, ci: number) => {
    let s = 0;
    for (let t = 0; t < d; t++) s += a[ai + t] * c[ci + t];
    return s;
  };
  const dQ = new Float64Array(q.length);
  const dK = new Float64Array(k.length);
  const dV = new Float64Array(v.length);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < time; i++) {
      for (let h = 0; h < hq; h++) {
        const qi = qRow(b, i, h);
        // The row's probabilities over the keys it sees (j ≤ i, not padding).
        const visible: number[] = [];
        for (let j = 0; j <= i; j++) if (keyMask[b * time + j] !== 0) visible.push(j);
        if (visible.length === 0) continue;
        const s = visible.map((j) => scale * dot(q, qi, k, kvRow(b, j, h)));
        const max = Math.max(...s);
        const e = s.map((x) => Math.exp(x - max));
        const total = e.reduce((a, c) => a + c, 0);
        const p = e.map((x) => x / total);
        const dP = visible.map((j) => dot(dOut, qi, v, kvRow(b, j, h)));
        let rowDot = 0;
        for (let n = 0; n < visible.length; n++) rowDot += p[n] * dP[n];
        for (let n = 0; n < visible.length; n++) {
          const kj = kvRow(b, visible[n], h);
          const dS = p[n] * (dP[n] - rowDot);
          for (let t = 0; t < d; t++) {
            dV[kj + t] += p[n] * dOut[qi + t];
            dQ[qi + t] += scale * dS * k[kj + t];
            dK[kj + t] += scale * dS * q[qi + t];
          }
        }
      }
    }
  }
  return { dQ, dK, dV };
}

// ---- one decoder layer -----------------------------------------------------------------------

/** The parameters of layer ℓ (biases and q/k norms only where the architecture has them). */
interface LayerParams {
  inputNorm: Numbers; // [d]
  wq: Numbers; // [Hq·D, d]
  wk: Numbers; // [Hkv·D, d]
  wv: Numbers; // [Hkv·D, d]
  bq?: Numbers; // [Hq·D]
  bk?: Numbers; // [Hkv·D]
  bv?: Numbers; // [Hkv·D]
  qNorm?: Numbers; // [D]
  kNorm?: Numbers; // [D]
  wo: Numbers; // [d, Hq·D]
  bo?: Numbers; // [d]
  postNorm: Numbers; // [d]
  wGate: Numbers; // [F, d]
  wUp: Numbers; // [F, d]
  wDown: Numbers; // [d, F]
}

function layerPrefix(layer: number): string {
  return `model.layers.${layer}`;
}

function layerParams(config: ModelConfig, weights: Weights, layer: number): LayerParams {
  const p = (suffix: string) => param(config, weights, `${layerPrefix(layer)}.${suffix}`);
  return {
    inputNorm: p("input_layernorm.weight"),
    wq: p("self_attn.q_proj.weight"),
    wk: p("self_attn.k_proj.weight"),
    wv: p("self_attn.v_proj.weight"),
    bq: config.qkvBias ? p("self_attn.q_proj.bias") : undefined,
    bk: config.qkvBias ? p("self_attn.k_proj.bias") : undefined,
    bv: config.qkvBias ? p("self_attn.v_proj.bias") : undefined,
    qNorm: config.qkNorm ? p("self_attn.q_norm.weight") : undefined,
    kNorm: config.qkNorm ? p("self_attn.k_norm.weight") : undefined,
    wo: p("self_attn.o_proj.weight"),
    bo: config.oBias ? p("self_attn.o_proj.bias") : undefined,
    postNorm: p("post_attention_layernorm.weight"),
    wGate: p("mlp.gate_proj.weight"),
    wUp: p("mlp.up_proj.weight"),
    wDown: p("mlp.down_proj.weight"),
  };
}

/** Every intermediate of one layer's forward that its backward needs. */
export interface LayerCache {
  /** [N, d] the residual stream entering the layer */
  x: Float64Array;
  /** [N, d] RMSNorm(x; input_layernorm) */
  h: Float64Array;
  /** [N, Hq·D], [N, Hkv·D], [N, Hkv·D] the projections (biases added) */
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
  /** [N, Hq·D], [N, Hkv·D] after the per-head norm (Qwen3) and RoPE: what attention reads */
  qRoped: Float64Array;
  kRoped: Float64Array;
  /** [N, Hq·D] the attention output before o_proj */
  attention: Float64Array;
  /** [N, d] the residual stream after attention */
  xMid: Float64Array;
  /** [N, d] RMSNorm(xMid; post_attention_layernorm) */
  g: Float64Array;
  /** [N, F] gate and up projections, and silu(gate) ⊙ up */
  gate: Float64Array;
  up: Float64Array;
  act: Float64Array;
}

function attentionDims(config: ModelConfig, batch: PaddedBatch): AttentionDims {
  return {
    batch: batch.batch,
    queryLen: batch.time,
    keyLen: batch.time,
    queryHeads: config.numHeads,
    kvHeads: config.numKvHeads,
    headDim: config.headDim,
  };
}

function ropeShape(batch: PaddedBatch, heads: number, headDim: number): RopeShape {
  return { batch: batch.batch, time: batch.time, heads, headDim };
}

/** x: [N, d] → the layer's output [N, d] and its cache. */
function layerForward(
  config: ModelConfig,
  p: LayerParams,
  x: Float64Array,
  batch: PaddedBatch,
): { out: Float64Array; cache: LayerCache } {
  const { hiddenSize: d, intermediateSize: ff, numHeads: hq, numKvHeads: hkv, headDim } = config;
  const rows = batch.batch * batch.time;
  const eps = config.rmsNormEps;

  // Attention block.
  const h = rmsNorm(x, p.inputNorm, rows, d, eps).y; // [N, d]
  const q = linear(h, p.wq, p.bq, rows, d, hq * headDim); // [N, Hq·D]
  const k = linear(h, p.wk, p.bk, rows, d, hkv * headDim); // [N, Hkv·D]
  const v = linear(h, p.wv, p.bv, rows, d, hkv * headDim); // [N, Hkv·D]
  // Qwen3 normalises every head vector (rows N·H of width D) before RoPE.
  const qNormed = p.qNorm ? rmsNorm(q, p.qNorm, rows * hq, headDim, eps).y : q;
  const kNormed = p.kNorm ? rmsNorm(k, p.kNorm, rows * hkv, headDim, eps).y : k;
  const qRoped = rope(qNormed, batch.positions, ropeShape(batch, hq, headDim), config.ropeTheta);
  const kRoped = rope(kNormed, batch.positions, ropeShape(batch, hkv, headDim), config.ropeTheta);
  const attention = attentionForwardF64(
    qRoped,
    kRoped,
    v,
    batch.keyMask,
    attentionDims(config, batch),
  ).out; // [N, Hq·D]
  const o = linear(attention, p.wo, p.bo, rows, hq * headDim, d); // [N, d]
  const xMid = x.map((value, i) => value + o[i]); // [N, d]

  // MLP block.
  const g = rmsNorm(xMid, p.postNorm, rows, d, eps).y; // [N, d]
  const gate = linear(g, p.wGate, undefined, rows, d, ff); // [N, F]
  const up = linear(g, p.wUp, undefined, rows, d, ff); // [N, F]
  const act = swiglu(gate, up); // [N, F]
  const down = linear(act, p.wDown, undefined, rows, ff, d); // [N, d]
  const out = xMid.map((value, i) => value + down[i]); // [N, d]

  return { out, cache: { x, h, q, k, v, qRoped, kRoped, attention, xMid, g, gate, up, act } };
}

/**
 * dOut: [N, d] (∂L/∂ layer output) → ∂L/∂x [N, d]; the parameter gradients are added into
 * `grads` under their HF names.
 */
function layerBackward(
  config: ModelConfig,
  p: LayerParams,
  cache: LayerCache,
  dOut: Float64Array,
  batch: PaddedBatch,
  layer: number,
  grads: Map<string, Float64Array>,
): Float64Array {
  const { hiddenSize: d, intermediateSize: ff, numHeads: hq, numKvHeads: hkv, headDim } = config;
  const rows = batch.batch * batch.time;
  const eps = config.rmsNormEps;
  const add = (suffix: string, g: Float64Array) => {
    const into = grads.get(`${layerPrefix(layer)}.${suffix}`)!;
    for (let i = 0; i < g.length; i++) into[i] += g[i];
  };

  // MLP block: out = xMid + down(swiglu(gate(g), up(g))), g = RMSNorm(xMid).
  const down = linearBackward(dOut, cache.act, p.wDown, rows, ff, d); // dx: [N, F]
  add("mlp.down_proj.weight", down.dWeight);
  const { dGate, dUp } = swigluBackward(cache.gate, cache.up, down.dx); // [N, F] ×2
  const gateBack = linearBackward(dGate, cache.g, p.wGate, rows, d, ff); // dx: [N, d]
  const upBack = linearBackward(dUp, cache.g, p.wUp, rows, d, ff); // dx: [N, d]
  add("mlp.gate_proj.weight", gateBack.dWeight);
  add("mlp.up_proj.weight", upBack.dWeight);
  const dG = gateBack.dx.map((value, i) => value + upBack.dx[i]); // [N, d]
  const postNorm = rmsNormBackward(cache.xMid, p.postNorm, dG, rows, d, eps);
  add("post_attention_layernorm.weight", postNorm.dWeight);
  const dXMid = dOut.map((value, i) => value + postNorm.dx[i]); // [N, d]: residual + norm path

  // Attention block: xMid = x + o_proj(attention(rope(norm(q)), rope(norm(k)), v)).
  const oBack = linearBackward(dXMid, cache.attention, p.wo, rows, hq * headDim, d);
  add("self_attn.o_proj.weight", oBack.dWeight);
  if (p.bo) add("self_attn.o_proj.bias", oBack.dBias);
  const { dQ: dQRoped, dK: dKRoped, dV } = attentionBackwardF64(
    oBack.dx,
    cache.qRoped,
    cache.kRoped,
    cache.v,
    batch.keyMask,
    attentionDims(config, batch),
  );
  let dQ = ropeBackward(dQRoped, batch.positions, ropeShape(batch, hq, headDim), config.ropeTheta);
  let dK = ropeBackward(dKRoped, batch.positions, ropeShape(batch, hkv, headDim), config.ropeTheta);
  if (p.qNorm && p.kNorm) {
    const qNormBack = rmsNormBackward(cache.q, p.qNorm, dQ, rows * hq, headDim, eps);
    const kNormBack = rmsNormBackward(cache.k, p.kNorm, dK, rows * hkv, headDim, eps);
    add("self_attn.q_norm.weight", qNormBack.dWeight);
    add("self_attn.k_norm.weight", kNormBack.dWeight);
    dQ = qNormBack.dx;
    dK = kNormBack.dx;
  }
  const qBack = linearBackward(dQ, cache.h, p.wq, rows, d, hq * headDim);
  const kBack = linearBackward(dK, cache.h, p.wk, rows, d, hkv * headDim);
  const vBack = linearBackward(dV, cache.h, p.wv, rows, d, hkv * headDim);
  add("self_attn.q_proj.weight", qBack.dWeight);
  add("self_attn.k_proj.weight", kBack.dWeight);
  add("self_attn.v_proj.weight", vBack.dWeight);
  if (p.bq) {
    add("self_attn.q_proj.bias", qBack.dBias);
    add("self_attn.k_proj.bias", kBack.dBias);
    add("self_attn.v_proj.bias", vBack.dBias);
  }
  const dH = qBack.dx.map((value, i) => value + kBack.dx[i] + vBack.dx[i]); // [N, d]
  const inputNorm = rmsNormBackward(cache.x, p.inputNorm, dH, rows, d, eps);
  add("input_layernorm.weight", inputNorm.dWeight);
  return dXMid.map((value, i) => value + inputNorm.dx[i]); // [N, d]: residual + norm path
}

// ---- the model -------------------------------------------------------------------------------

/** Everything the backward needs from the forward. */
export interface ForwardCache {
  batch: PaddedBatch;
  /** One per layer. */
  layers: LayerCache[];
  /** [N, d] the residual stream after the last layer */
  xFinal: Float64Array;
  /** [N, d] RMSNorm(xFinal; model.norm): what lm_head reads */
  normed: Float64Array;
  /** [N, V] logits of every row, padding rows included */
  logits: Float64Array;
}

export interface ForwardResult {
  /** [B, T, V] row-major; rows t ≥ len_b (padding) are 0. */
  logits: Float64Array;
  batch: number;
  time: number;
  vocab: number;
  cache: ForwardCache;
}

/**
 * The model on a batch of token sequences (lengths may differ: right-padded internally;
 * positions 0..len_b−1 in each). ids[b][t] < vocab.
 */
export function referenceForward(
  config: ModelConfig,
  weights: Weights,
  ids: readonly (readonly number[])[],
): ForwardResult {
  const { hiddenSize: d, vocabSize: vocab } = config;
  const batch = padBatch(ids, vocab);
  const rows = batch.batch * batch.time;

  let x = embedding(batch.ids, param(config, weights, "model.embed_tokens.weight"), d); // [N, d]
  const layers: LayerCache[] = [];
  for (let layer = 0; layer < config.numLayers; layer++) {
    const { out, cache } = layerForward(config, layerParams(config, weights, layer), x, batch);
    layers.push(cache);
    x = out;
  }
  const finalNorm = param(config, weights, "model.norm.weight");
  const normed = rmsNorm(x, finalNorm, rows, d, config.rmsNormEps).y; // [N, d]
  const lmHead = param(config, weights, lmHeadName(config));
  const logits = linear(normed, lmHead, undefined, rows, d, vocab); // [N, V]

  const visible = logits.map((value, i) => batch.keyMask[Math.floor(i / vocab)] * value);
  return {
    logits: visible,
    batch: batch.batch,
    time: batch.time,
    vocab,
    cache: { batch, layers, xFinal: x, normed, logits },
  };
}

// ---- the loss --------------------------------------------------------------------------------

/** Which positions the loss scores, and how. Ragged arrays have the shape of ids. */
export interface LossSpec {
  /** target[b][t]: the token position t predicts (default ids[b][t + 1]). */
  targets?: readonly (readonly number[])[];
  /** w[b][t] ≥ 0: the weight of position t (default 1 for t < len_b − 1, 0 on the last). */
  lossWeights?: readonly (readonly number[])[];
  /** "mean" (default): Σ w·CE / Σ w. "sum": Σ w·CE. */
  reduction?: "mean" | "sum";
}

/** Per row of the padded batch: the target and dL/dlogprob (−w / Σ w, or −w). */
interface LossRows {
  /** [N] target ids (0 where the weight is 0) */
  targets: Int32Array;
  /** [N] the loss weight divided by the normaliser */
  scale: Float64Array;
}

function lossRows(
  ids: readonly (readonly number[])[],
  spec: LossSpec,
  batch: PaddedBatch,
  vocab: number,
): LossRows {
  const rows = batch.batch * batch.time;
  const targets = new Int32Array(rows);
  const weight = new Float64Array(rows);
  ids.forEach((sequence, b) => {
    const len = sequence.length;
    const given = spec.targets?.[b];
    const w = spec.lossWeights?.[b];
    if (given && given.length !== len) {
      throw new Error(`referenceLoss: targets[${b}] has ${given.length} entries, ids ${len}`);
    }
    if (w && w.length !== len) {
      throw new Error(`referenceLoss: lossWeights[${b}] has ${w.length} entries, ids ${len}`);
    }
    for (let t = 0; t < len; t++) {
      const row = b * batch.time + t;
      weight[row] = w ? w[t] : t < len - 1 ? 1 : 0;
      if (!(weight[row] >= 0)) throw new Error(`referenceLoss: lossWeights[${b}][${t}] < 0`);
      if (weight[row] === 0) continue;
      const target = given ? given[t] : sequence[t + 1];
      if (!Number.isInteger(target) || target < 0 || target >= vocab) {
        throw new Error(
          `referenceLoss: target of [${b}][${t}] = ${target} is not an id < ${vocab}`,
        );
      }
      targets[row] = target;
    }
  });
  let normaliser = 1;
  if ((spec.reduction ?? "mean") === "mean") {
    normaliser = weight.reduce((a, b) => a + b, 0);
    if (normaliser === 0) {
      throw new Error("referenceLoss: every loss weight is 0 (mean of nothing)");
    }
  }
  return { targets, scale: weight.map((w) => w / normaliser) };
}

/** The loss of `spec` on the forward's logits. */
export function referenceLoss(
  config: ModelConfig,
  weights: Weights,
  ids: readonly (readonly number[])[],
  spec: LossSpec = {},
  forward: ForwardResult = referenceForward(config, weights, ids),
): number {
  const { batch, logits } = forward.cache;
  const { targets, scale } = lossRows(ids, spec, batch, config.vocabSize);
  const rows = batch.batch * batch.time;
  const { logprob } = crossEntropy(logits, targets, rows, config.vocabSize, { k: 1 });
  let loss = 0;
  for (let r = 0; r < rows; r++) if (scale[r] !== 0) loss -= scale[r] * logprob[r];
  return loss;
}

/**
 * The loss of `spec` and its gradient w.r.t. every parameter, keyed by HF name (the names of
 * expectedTensors(config); a tied model's lm_head gradient is part of embed_tokens').
 */
export function referenceBackward(
  config: ModelConfig,
  weights: Weights,
  ids: readonly (readonly number[])[],
  spec: LossSpec = {},
  forward: ForwardResult = referenceForward(config, weights, ids),
): { loss: number; grads: Map<string, Float64Array> } {
  const { hiddenSize: d, vocabSize: vocab } = config;
  const { batch, layers, xFinal, normed, logits } = forward.cache;
  const rows = batch.batch * batch.time;
  const grads = new Map<string, Float64Array>();
  for (const [name, shape] of expectedTensors(config)) {
    grads.set(name, new Float64Array(shape.reduce((a, b) => a * b, 1)));
  }
  const add = (name: string, g: Float64Array) => {
    const into = grads.get(name)!;
    for (let i = 0; i < g.length; i++) into[i] += g[i];
  };

  // L = −Σ_r scale_r·logprob_r  ⇒  dL/dlogprob_r = −scale_r.
  const loss = referenceLoss(config, weights, ids, spec, forward);
  const { targets, scale } = lossRows(ids, spec, batch, vocab);
  const dLogits = crossEntropyBackward(logits, targets, scale.map((s) => -s), rows, vocab); // [N, V]

  // logits = normed·Wlmᵀ, normed = RMSNorm(xFinal; model.norm).
  const lmHead = linearBackward(
    dLogits,
    normed,
    param(config, weights, lmHeadName(config)),
    rows,
    d,
    vocab,
  );
  add(lmHeadName(config), lmHead.dWeight);
  const finalNorm = rmsNormBackward(
    xFinal,
    param(config, weights, "model.norm.weight"),
    lmHead.dx,
    rows,
    d,
    config.rmsNormEps,
  );
  add("model.norm.weight", finalNorm.dWeight);

  let dx = finalNorm.dx; // [N, d]
  for (let layer = config.numLayers - 1; layer >= 0; layer--) {
    const p = layerParams(config, weights, layer);
    dx = layerBackward(config, p, layers[layer], dx, batch, layer, grads);
  }

  // x⁰ = embed_tokens[ids]: scatter-add the rows (into the lm_head gradient too when tied).
  const embedName = "model.embed_tokens.weight";
  grads.set(embedName, embeddingBackward(dx, batch.ids, grads.get(embedName)!, d));
  return { loss, grads };
}
