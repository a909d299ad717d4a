// The reference decoder (lib/ref/transformer.ts) checked three ways:
//   1. its analytic gradients equal central finite differences of its own loss (f64, tight),
//      for every parameter tensor of every architecture, tied and untied;
//   2. padding a sequence into a batch changes none of its logits;
//   3. its logits, loss and gradients equal Hugging Face transformers' on the same random tiny
//      checkpoints written in the HF layout (tests/model/hf_forward.py; needs python3 with torch,
//      transformers and safetensors; ignored with a loud name when they are missing, failed
//      instead when RMT_REQUIRE_HF=1).

import { configToJson, expectedTensors, type ModelConfig } from "../../lib/model/config.ts";
import { readHeader, readTensorBytes, writeSafetensors } from "../../lib/model/safetensors.ts";
import {
  type LossSpec,
  randomWeights,
  referenceBackward,
  referenceForward,
  referenceLoss,
  tinyConfig,
} from "../../lib/ref/transformer.ts";
import { assertClose, AssertionError, Rng } from "../helpers.ts";
import { type Variant, variantLabel as label, withTempDir } from "./model_helpers.ts";

/** Scales large enough that biases, norm weights and attention patterns all matter. */
const TEST_SCALES = { std: 0.2, biasStd: 0.2, normStd: 0.2 };

function randomIds(rng: Rng, lengths: number[], vocab: number): number[][] {
  return lengths.map((len) => Array.from({ length: len }, () => rng.int(vocab)));
}

// ---- 1. gradients vs finite differences ------------------------------------------------------

const GRADIENT_VARIANTS: Variant[] = [
  { arch: "Qwen2ForCausalLM", options: { tied: false } },
  { arch: "Qwen2ForCausalLM", options: { tied: true } },
  { arch: "Qwen3ForCausalLM", options: { tied: false } },
  { arch: "Qwen3ForCausalLM", options: { tied: true, attentionBias: true } },
  { arch: "LlamaForCausalLM", options: { tied: false } },
  { arch: "LlamaForCausalLM", options: { tied: true } },
  { arch: "LlamaForCausalLM", options: { attentionBias: true } },
];

/** Central difference step; the loss is f64, so roundoff (~1e-16/h) stays far below rtol. */
const STEP = 1e-4;
const GRADIENT_TOLERANCE = { rtol: 1e-5, atol: 1e-9 };

for (const [index, variant] of GRADIENT_VARIANTS.entries()) {
  Deno.test(`transformer ref: gradients match finite differences (${label(variant)})`, () => {
    const config = tinyConfig(variant.arch, variant.options);
    const rng = new Rng(100 + index);
    const weights = new Map(
      [...randomWeights(config, 7 + index, TEST_SCALES)].map(([n, w]) => [n, Float64Array.from(w)]),
    );
    // Two sequences of different lengths: the padding path is exercised too.
    const ids = randomIds(rng, [7, 4], config.vocabSize);
    // Odd variants: arbitrary targets and weights with a plain sum; even: the default NTP mean.
    const spec: LossSpec = index % 2 === 1
      ? {
        targets: ids.map((s) => s.map(() => rng.int(config.vocabSize))),
        lossWeights: ids.map((s) => s.map(() => [0, 0.5, 1, 2][rng.int(4)])),
        reduction: "sum",
      }
      : {};
    const { grads } = referenceBackward(config, weights, ids, spec);
    const usedRows = [...new Set(ids.flat())];

    for (const [name, tensor] of weights) {
      const shape = expectedTensors(config).get(name)!;
      const width = shape[shape.length - 1];
      // Three random elements; for the embedding one more in the row of a token that occurs
      // (most rows are only reached through the tied lm_head, or not at all).
      const picks = [0, 1, 2].map(() => rng.int(tensor.length));
      if (name === "model.embed_tokens.weight") {
        picks.push(usedRows[rng.int(usedRows.length)] * width + rng.int(width));
      }
      const analytic = picks.map((i) => grads.get(name)![i]);
      const numeric = picks.map((i) => {
        const saved = tensor[i];
        tensor[i] = saved + STEP;
        const up = referenceLoss(config, weights, ids, spec);
        tensor[i] = saved - STEP;
        const down = referenceLoss(config, weights, ids, spec);
        tensor[i] = saved;
        return (up - down) / (2 * STEP);
      });
      assertClose(analytic, numeric, GRADIENT_TOLERANCE, `${name} at [${picks.join(", ")}]`);
    }
  });
}

// ---- 2. padding ------------------------------------------------------------------------------

for (const arch of ["Qwen2ForCausalLM", "Qwen3ForCausalLM", "LlamaForCausalLM"] as const) {
  Deno.test(`transformer ref: padding leaves a shorter sequence's logits unchanged (${arch})`, () => {
    const config = tinyConfig(arch);
    const weights = randomWeights(config, 3, TEST_SCALES);
    const ids = randomIds(new Rng(4), [9, 5, 1], config.vocabSize);
    const together = referenceForward(config, weights, ids);
    const { time, vocab } = together;
    ids.forEach((sequence, b) => {
      const alone = referenceForward(config, weights, [sequence]);
      const rows = together.logits.subarray(b * time * vocab, (b * time + sequence.length) * vocab);
      assertClose(rows, alone.logits, { rtol: 1e-12, atol: 1e-12 }, `sequence ${b} logits`);
      const padding = together.logits.subarray(
        (b * time + sequence.length) * vocab,
        (b + 1) * time * vocab,
      );
      assertClose(padding, new Float64Array(padding.length), { rtol: 0, atol: 0 }, "padding rows");
    });
  });
}

// ---- 3. against Hugging Face transformers ----------------------------------------------------

const PYTHON = Deno.env.get("RMT_PYTHON") ?? "python3";
const PIP = "pip install torch transformers safetensors";

/** Whether python3 can find torch, transformers and safetensors (without importing torch). */
async function hfAvailable(): Promise<boolean> {
  const probe = "import importlib.util as u, sys; " +
    "sys.exit(0 if all(u.find_spec(m) for m in ('torch', 'transformers', 'safetensors')) else 1)";
  try {
    const { success } = await new Deno.Command(PYTHON, {
      args: ["-c", probe],
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false; // no python3 at all
  }
}

const HF_AVAILABLE = await hfAvailable();
const HF_REQUIRED = Deno.env.get("RMT_REQUIRE_HF") === "1";

const HF_VARIANTS: Variant[] = [
  { arch: "Qwen2ForCausalLM", options: { tied: true } },
  { arch: "Qwen3ForCausalLM", options: { tied: false } },
  { arch: "LlamaForCausalLM", options: { tied: false } },
  { arch: "LlamaForCausalLM", options: { tied: true, attentionBias: true } },
];

/**
 * Tolerances. f32: HF computes in f32 (brief: rtol 1e-4, atol 1e-5 on logits). f64: HF in f64
 * still rounds RoPE's cos/sin to f32 (its rotary embedding always runs in f32), so agreement
 * stops near 1e-7 relative, not 1e-15.
 */
const HF_TOLERANCE = {
  f32: { logits: { rtol: 1e-4, atol: 1e-5 }, grads: { rtol: 1e-3, atol: 5e-6 } },
  f64: { logits: { rtol: 1e-10, atol: 1e-12 }, grads: { rtol: 1e-9, atol: 1e-12 } },
};

/** config.json + model.safetensors (F32, checkpoint order) in `dir`. */
async function writeHfModel(
  dir: string,
  config: ModelConfig,
  weights: Map<string, Float32Array>,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(configToJson(config), null, 2));
  const tensors = [...expectedTensors(config)].map(([name, shape]) => ({
    name,
    shape,
    dtype: "F32" as const,
    data: weights.get(name)!,
  }));
  await writeSafetensors(`${dir}/model.safetensors`, tensors);
}

/** Every tensor of a safetensors file, at full precision (F32 or F64). */
async function readAll(path: string): Promise<Map<string, Float64Array>> {
  const out = new Map<string, Float64Array>();
  for (const [name, entry] of (await readHeader(path)).tensors) {
    const bytes = await readTensorBytes(entry);
    if (entry.dtype === "F64") out.set(name, new Float64Array(bytes.buffer));
    else if (entry.dtype === "F32") {
      out.set(name, Float64Array.from(new Float32Array(bytes.buffer)));
    } else throw new Error(`${path}: ${name} has dtype ${entry.dtype}`);
  }
  return out;
}

/** max |a − e| and max |a − e| / |e| (over |e| > 1e-3, where relative error means something). */
function differences(actual: ArrayLike<number>, expected: ArrayLike<number>) {
  let abs = 0;
  let rel = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    abs = Math.max(abs, d);
    if (Math.abs(expected[i]) > 1e-3) rel = Math.max(rel, d / Math.abs(expected[i]));
  }
  return { abs, rel };
}

Deno.test({
  name: HF_AVAILABLE || HF_REQUIRED
    ? "transformer ref: matches Hugging Face transformers (Qwen2, Qwen3, Llama)"
    : `transformer ref: matches Hugging Face transformers — IGNORED: ${PYTHON} cannot import ` +
      `torch, transformers, safetensors (${PIP})`,
  ignore: !HF_AVAILABLE && !HF_REQUIRED,
  fn: () =>
    withTempDir(async (dir) => {
      if (!HF_AVAILABLE) {
        throw new AssertionError({
          message: `RMT_REQUIRE_HF=1 but ${PYTHON} cannot import torch, transformers, ` +
            `safetensors (${PIP})`,
        });
      }
      const rng = new Rng(2024);
      const cases = [];
      const args: string[] = [];
      for (const [index, variant] of HF_VARIANTS.entries()) {
        const config = tinyConfig(variant.arch, variant.options);
        const weights = randomWeights(config, 50 + index, TEST_SCALES);
        const ids = randomIds(rng, [12, 5, 9], config.vocabSize);
        const model = `${dir}/model${index}`;
        await writeHfModel(model, config, weights);
        // The default NTP loss written out explicitly for Python: target ids[t + 1], weight 1
        // except on the last token.
        const batch = {
          ids,
          targets: ids.map((s) => s.map((_, t) => s[t + 1] ?? 0)),
          loss_weights: ids.map((s) => s.map((_, t) => (t < s.length - 1 ? 1 : 0))),
        };
        await Deno.writeTextFile(`${model}/batch.json`, JSON.stringify(batch));
        args.push(model, `${model}/batch.json`, `${model}/out.safetensors`);
        cases.push({ variant, config, weights, ids, out: `${model}/out.safetensors` });
      }

      const run = await new Deno.Command(PYTHON, {
        args: [new URL("./hf_forward.py", import.meta.url).pathname, ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (!run.success) {
        throw new AssertionError({
          message: `hf_forward.py failed:\n${new TextDecoder().decode(run.stderr)}`,
        });
      }

      const report: string[] = [];
      for (const { variant, config, weights, ids, out } of cases) {
        const hf = await readAll(out);
        const forward = referenceForward(config, weights, ids);
        const { loss, grads } = referenceBackward(config, weights, ids, {}, forward);
        const { time, vocab } = forward;
        // Only real rows: HF's padding rows hold whatever the padding computes.
        const realRows = (logits: Float64Array) =>
          Float64Array.from(
            ids.flatMap((
              s,
              b,
            ) => [...logits.subarray(b * time * vocab, (b * time + s.length) * vocab)]),
          );
        const expectedLogits = realRows(forward.logits);
        const line = [label(variant)];
        for (const dtype of ["f32", "f64"] as const) {
          const tolerance = HF_TOLERANCE[dtype];
          const what = `${label(variant)} ${dtype}`;
          const hfLogits = realRows(hf.get(`${dtype}.logits`)!);
          assertClose(hfLogits, expectedLogits, tolerance.logits, `${what} logits`);
          assertClose(hf.get(`${dtype}.loss`)!, [loss], tolerance.logits, `${what} loss`);
          let gradAbs = 0;
          for (const [name, grad] of grads) {
            const hfGrad = hf.get(`${dtype}.grad.${name}`);
            if (!hfGrad) {
              throw new AssertionError({ message: `${what}: HF has no gradient ${name}` });
            }
            assertClose(hfGrad, grad, tolerance.grads, `${what} gradient of ${name}`);
            gradAbs = Math.max(gradAbs, differences(hfGrad, grad).abs);
          }
          const d = differences(hfLogits, expectedLogits);
          line.push(
            `${dtype}: logits max abs ${d.abs.toExponential(1)} rel ${d.rel.toExponential(1)}, ` +
              `grads max abs ${gradAbs.toExponential(1)}`,
          );
        }
        report.push(line.join(" | "));
      }
      console.log(`  vs transformers:\n  ${report.join("\n  ")}`);
    }),
});
