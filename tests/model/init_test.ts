// `rmt init` and the model folder: every tiny preset written, read back and checked (files,
// config, tensor names and shapes, parameter count, tokenizer special tokens), determinism in
// the seed, bf16 storage, crash-safe and non-clobbering writes, clear errors, the CLI as a
// subprocess (source and single-file bundle), and, when python3 has torch and transformers,
// Hugging Face loading the folders with AutoModelForCausalLM / AutoTokenizer (ignored with a
// loud name otherwise, failed instead when RMT_REQUIRE_HF=1).

import {
  checkTensors,
  expectedTensors,
  parameterCount,
  parseConfig,
} from "../../lib/model/config.ts";
import { bf16BitsToF32Bits, f32BitsToBf16Bits } from "../../lib/model/float16.ts";
import { initModel, type InitOptions } from "../../lib/model/init.ts";
import {
  CONFIG_FILE,
  readModelFolder,
  TOKENIZER_FILE,
  writeModelFolder,
} from "../../lib/model/model_folder.ts";
import { PRESET_ARCHITECTURES, type PresetArchitecture } from "../../lib/model/presets.ts";
import type { TensorSource } from "../../lib/model/safetensors.ts";
import { END_OF_TEXT, TextTokenizer, THINK_END, THINK_START } from "../../lib/model/tokenizer.ts";
import { WEIGHTS_FILE } from "../../lib/model/weights.ts";
import { AssertionError } from "../helpers.ts";
import { assert, assertEquals, assertUserError, withTempDir } from "./model_helpers.ts";
import { HF_REQUIRED, hfAvailable, PYTHON } from "../python.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

const FOLDER_FILES = [
  "config.json",
  "generation_config.json",
  "model.safetensors",
  "tokenizer.json",
  "tokenizer_config.json",
];

/** Exact tiny parameter counts with the shipped corpus's 1024-token vocabulary. */
const TINY_PARAMETERS: Record<PresetArchitecture, number> = {
  qwen2: 156_736, // tied; q/k/v biases
  qwen3: 246_720, // untied; head_dim 32 (attention width 128 ≠ hidden 64); q/k norms
  llama: 222_016, // untied
};

const tiny = (arch: PresetArchitecture, seed = 1): InitOptions => ({ arch, preset: "tiny", seed });

async function folderFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

async function sameBytes(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([Deno.readFile(a), Deno.readFile(b)]);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

// ---- every architecture, tiny ---------------------------------------------------------------

for (const arch of PRESET_ARCHITECTURES) {
  Deno.test(`init: ${arch} tiny writes a complete, valid model folder`, () =>
    withTempDir(async (dir) => {
      const model = initModel(tiny(arch));
      const out = `${dir}/model`;
      const written = await writeModelFolder(out, {
        config: model.config,
        weights: model.weights,
        tokenizerFiles: model.tokenizerFiles,
      });
      assertEquals(written.files, FOLDER_FILES, "files written");
      assertEquals(await folderFiles(dir), ["model"], "nothing else left next to the folder");

      const configJson = JSON.parse(await Deno.readTextFile(`${out}/${CONFIG_FILE}`));
      const config = parseConfig(configJson);
      assertEquals(configJson.model_type, arch, "model_type");
      assertEquals(configJson.torch_dtype, "float32", "torch_dtype");
      assertEquals(config.vocabSize, 1024, "vocab_size");

      const folder = await readModelFolder(out);
      checkTensors(folder.config, folder.weights.tensors, out);
      const count = parameterCount(folder.config);
      assertEquals(count, TINY_PARAMETERS[arch], "parameter count");
      assert(count > 100_000 && count < 1_000_000, `tiny parameter count ${count} out of range`);
      let stored = 0;
      for (const entry of folder.weights.tensors.values()) {
        stored += entry.shape.reduce((a, b) => a * b, 1);
      }
      assertEquals(stored, count, "parameters in model.safetensors");

      // HF init: matrices normal(0, 0.02), norms 1, biases 0 (exactly +0).
      for (const [name, values] of model.weights) {
        const read = await folder.weights.readF32(name);
        assert(read.every((v, i) => Object.is(v, values[i])), `${name} reads back exactly`);
        if (name.endsWith("norm.weight")) {
          assert(values.every((v) => v === 1), `${name} is all ones`);
        } else if (name.endsWith(".bias")) {
          assert(values.every((v) => Object.is(v, 0)), `${name} is all +0`);
        } else {
          const mean = values.reduce((a, b) => a + b, 0) / values.length;
          const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
          assert(Math.abs(std - 0.02) < 0.002 && Math.abs(mean) < 0.002, `${name} std ${std}`);
        }
      }

      // The tokenizer: the three special tokens as single ids; eos/bos = <|endoftext|>.
      const tokenizer = await TextTokenizer.load(out);
      assertEquals(tokenizer.vocabSize, config.vocabSize, "tokenizer ids = vocab_size");
      const { thinkStart, thinkEnd, endOfText } = tokenizer.thinkTokens();
      for (const [token, id] of [[THINK_START, thinkStart], [THINK_END, thinkEnd]] as const) {
        assertEquals(tokenizer.encode(token), [id], `${token} is one token`);
      }
      assertEquals(tokenizer.encode(END_OF_TEXT), [endOfText], "<|endoftext|> is one token");
      assertEquals(config.eosTokenIds, [endOfText], "eos_token_id");
      assertEquals(config.bosTokenId, endOfText, "bos_token_id");
      assertEquals(tokenizer.eosTokenId, endOfText, "tokenizer eos");
      assertEquals(folder.generationConfig?.eos_token_id, endOfText, "generation eos");
      const text = "Problem: Compute 3 * 7 + 29.\n<think>\nMultiply: 3 * 7 = 21.\n</think>\n";
      const ids = tokenizer.encode(text);
      assert(ids.includes(thinkStart) && ids.includes(thinkEnd), "think tags inside text");
      assertEquals(tokenizer.decode(ids), text, "decode(encode(text))");
    }));

  Deno.test(`init: ${arch} tiny is deterministic in the seed`, () =>
    withTempDir(async (dir) => {
      for (const [name, seed] of [["a", 5], ["b", 5], ["c", 6]] as const) {
        const model = initModel(tiny(arch, seed));
        await writeModelFolder(`${dir}/${name}`, {
          config: model.config,
          weights: model.weights,
          tokenizerFiles: model.tokenizerFiles,
        });
      }
      for (const file of FOLDER_FILES) {
        assert(await sameBytes(`${dir}/a/${file}`, `${dir}/b/${file}`), `same seed: ${file}`);
      }
      assert(
        !(await sameBytes(`${dir}/a/${WEIGHTS_FILE}`, `${dir}/c/${WEIGHTS_FILE}`)),
        "another seed gives other weights",
      );
      assert(
        await sameBytes(`${dir}/a/${TOKENIZER_FILE}`, `${dir}/c/${TOKENIZER_FILE}`),
        "the tokenizer depends only on the corpus",
      );
    }));
}

// ---- storage --------------------------------------------------------------------------------

Deno.test("init: bf16 folders hold the bf16 rounding of the f32 weights", () =>
  withTempDir(async (dir) => {
    const model = initModel(tiny("qwen2", 9));
    await writeModelFolder(dir + "/bf16", {
      config: model.config,
      weights: model.weights,
      tokenizerFiles: model.tokenizerFiles,
      dtype: "bf16",
    });
    const folder = await readModelFolder(dir + "/bf16");
    assertEquals(folder.config.torchDtype, "bfloat16", "torch_dtype follows the stored dtype");
    const bits = new Uint32Array(1);
    const f32 = new Float32Array(bits.buffer);
    for (const [name, values] of model.weights) {
      const entry = folder.weights.entry(name);
      assertEquals(entry.dtype, "BF16", `${name} dtype`);
      const read = await folder.weights.readF32(name);
      for (let i = 0; i < values.length; i++) {
        f32[0] = values[i];
        bits[0] = bf16BitsToF32Bits(f32BitsToBf16Bits(bits[0]));
        if (!Object.is(read[i], f32[0])) {
          throw new AssertionError({
            message: `${name}[${i}]: read ${read[i]}, bf16(${values[i]}) = ${f32[0]}`,
          });
        }
      }
    }
  }));

Deno.test("init: sharded weights and extra files round-trip through the folder", () =>
  withTempDir(async (dir) => {
    const model = initModel(tiny("llama", 2));
    const written = await writeModelFolder(dir + "/m", {
      config: model.modelConfig, // a parsed ModelConfig is accepted too
      weights: model.weights,
      tokenizerFiles: model.tokenizerFiles,
      maxShardBytes: 300_000,
      extraFiles: { "trainer_state.json": '{"step": 3}\n' },
    });
    assert(written.files.includes("model.safetensors.index.json"), `${written.files}`);
    const shards = written.files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
    assert(shards.length > 1, `several shards: ${written.files}`);
    assert(written.files.includes("trainer_state.json"), "extra file written");
    const folder = await readModelFolder(dir + "/m");
    const name = "lm_head.weight";
    assertEquals(
      Array.from(await folder.weights.readF32(name)).slice(0, 5),
      Array.from(model.weights.get(name)!).slice(0, 5),
      name,
    );
  }));

// ---- refusing, crash safety, errors ---------------------------------------------------------

Deno.test("init: an existing folder is refused unless overwrite, and only a model folder is replaced", () =>
  withTempDir(async (dir) => {
    const model = initModel(tiny("qwen3", 1));
    const contents = {
      config: model.config,
      weights: model.weights,
      tokenizerFiles: model.tokenizerFiles,
    };
    const out = `${dir}/m`;
    await writeModelFolder(out, contents);
    await Deno.writeTextFile(`${out}/stale.txt`, "from before");
    await assertUserError(() => writeModelFolder(out, contents), [out, "already exists"], "again");
    const other = initModel(tiny("qwen3", 2));
    await writeModelFolder(out, { ...contents, weights: other.weights, overwrite: true });
    assertEquals(await folderFiles(out), FOLDER_FILES, "replaced as a whole");
    const read = await (await readModelFolder(out)).weights.readF32("model.norm.weight");
    assertEquals(read.length, 64, "readable");
    assertEquals(await folderFiles(dir), ["m"], "no temp or old folders left");

    // A folder that is not a model folder is never replaced, even with overwrite.
    await Deno.mkdir(`${dir}/home`);
    await Deno.writeTextFile(`${dir}/home/notes.txt`, "precious");
    await assertUserError(
      () => writeModelFolder(`${dir}/home`, { ...contents, overwrite: true }),
      ["not a model folder", "refusing"],
      "overwrite of a non-model folder",
    );
    assertEquals(await Deno.readTextFile(`${dir}/home/notes.txt`), "precious", "untouched");
  }));

Deno.test("init: a write that fails midway leaves no folder and no temp files", () =>
  withTempDir(async (dir) => {
    const model = initModel(tiny("llama", 1));
    const shapes = expectedTensors(model.modelConfig);
    const sources: TensorSource[] = [...model.weights].map(([name, data], i) => ({
      name,
      shape: shapes.get(name)!,
      dtype: "F32",
      data: i === 5
        ? async function* () {
          yield data.subarray(0, 10);
          throw new Error("disk on fire");
        }
        : data,
    }));
    let message = "";
    try {
      await writeModelFolder(`${dir}/m`, {
        config: model.config,
        weights: sources,
        tokenizerFiles: model.tokenizerFiles,
      });
    } catch (e) {
      message = (e as Error).message;
    }
    assertEquals(message, "disk on fire", "the failure propagates");
    assertEquals(await folderFiles(dir), [], "nothing left behind");
  }));

Deno.test("init: bad options are one-line UserErrors naming the accepted values", async () => {
  await assertUserError(
    () => initModel({ ...tiny("qwen2"), arch: "gpt2" as PresetArchitecture }),
    ['"gpt2"', "qwen2, qwen3, llama"],
    "bad arch",
  );
  await assertUserError(
    () => initModel({ ...tiny("qwen2"), preset: "huge" as "tiny" }),
    ['"huge"', "tiny, small"],
    "bad preset",
  );
  await assertUserError(
    () => initModel({ ...tiny("qwen2"), vocab: 100 }),
    ["vocab 100", "259"],
    "",
  );
  await assertUserError(() => initModel({ ...tiny("qwen2"), seed: -1 }), ["seed -1"], "bad seed");
});

Deno.test("init: reading an incomplete folder names what is missing", () =>
  withTempDir(async (dir) => {
    await assertUserError(() => readModelFolder(`${dir}/nope`), ["no such model folder"], "none");
    const model = initModel(tiny("qwen2", 1));
    await writeModelFolder(`${dir}/m`, {
      config: model.config,
      weights: model.weights,
      tokenizerFiles: model.tokenizerFiles,
    });
    // Removed one by one, so that each time the first file looked for is the one missing.
    const missing = [
      ["model.safetensors", "no model.safetensors"],
      ["tokenizer.json", "no tokenizer.json"],
      ["config.json", "no config.json"],
    ];
    for (const [file, fragment] of missing) {
      await Deno.remove(`${dir}/m/${file}`);
      await assertUserError(() => readModelFolder(`${dir}/m`), [fragment], `without ${file}`);
    }
  }));

// ---- the CLI ---------------------------------------------------------------------------------

async function run(args: string[], cwd = ROOT) {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

Deno.test("init: rmt init as a subprocess (exit 0, one-line summary; 2 on bad input)", () =>
  withTempDir(async (dir) => {
    const rmt = ["run", "-A", "main.ts", "init"];
    const out = `${dir}/m`;
    const ok = await run([
      ...rmt,
      "--arch",
      "llama",
      "--seed",
      "3",
      "--out",
      out,
      "--dtype",
      "bf16",
    ]);
    assert(ok.code === 0, `exit ${ok.code}: ${ok.stderr}`);
    const line = ok.stdout.trim();
    assert(!line.includes("\n"), `one line: ${ok.stdout}`);
    for (const part of ["LlamaForCausalLM", "222,016 parameters", "vocab 1024", out]) {
      assert(line.includes(part), `summary ${JSON.stringify(line)} lacks ${part}`);
    }
    assertEquals(await folderFiles(out), FOLDER_FILES, "files");

    const expectFailure = async (args: string[], fragments: string[]) => {
      const r = await run([...rmt, ...args]);
      assert(r.code === 2, `${args.join(" ")}: exit ${r.code}, expected 2 (${r.stderr})`);
      const lines = r.stderr.trim().split("\n");
      assert(lines.length === 1, `${args.join(" ")}: one line: ${r.stderr}`);
      for (const f of fragments) assert(lines[0].includes(f), `${lines[0]} lacks ${f}`);
    };
    await expectFailure(["--arch", "gpt2", "--out", `${dir}/x`], ["--arch", "qwen2, qwen3, llama"]);
    await expectFailure(["--arch", "qwen2", "--preset", "big", "--out", `${dir}/x`], [
      "--preset",
      "tiny, small",
    ]);
    await expectFailure(["--arch", "qwen2", "--dtype", "f16", "--out", `${dir}/x`], ["f32, bf16"]);
    await expectFailure(["--arch", "qwen2", "--vocab", "12", "--out", `${dir}/x`], ["--vocab"]);
    await expectFailure(["--arch", "qwen2", "--out", out], ["already exists", "--force"]);
    await expectFailure(["--arch", "qwen2"], ["--out"]);
    const forced = await run([...rmt, "--arch", "qwen2", "--out", out, "--force"]);
    assert(forced.code === 0 && forced.stdout.includes("Qwen2ForCausalLM"), forced.stderr);
    const help = await run([...rmt, "--help"]);
    for (const option of ["--arch", "--out", "--preset", "--vocab", "--seed", "--dtype"]) {
      assert(help.stdout.includes(option), `help lists ${option}`);
    }
  }));

Deno.test("init: the single-file bundle creates a model from an empty directory", () =>
  withTempDir(async (dir) => {
    const bundled = await run(["bundle", "--quiet", "-o", `${dir}/rmt.js`, "main.ts"]);
    assert(bundled.code === 0, `deno bundle failed: ${bundled.stderr}`);
    const r = await run(["run", "-A", "rmt.js", "init", "--arch", "qwen3", "--out", "m"], dir);
    assert(r.code === 0, `bundled rmt init: exit ${r.code}: ${r.stderr}`);
    assertEquals(await folderFiles(`${dir}/m`), FOLDER_FILES, "files");
  }));

// ---- Hugging Face transformers -------------------------------------------------------------

const PIP = "pip install torch transformers safetensors";

const HF_AVAILABLE = await hfAvailable();

/** Loads each folder with the Auto classes; prints one JSON object per folder. */
const HF_LOAD = `
import json, sys, warnings
warnings.filterwarnings("ignore")
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging
logging.set_verbosity_error()
logging.disable_progress_bar()
text = sys.argv[1]
for folder in sys.argv[2:]:
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer(text)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits
    embed = model.get_input_embeddings().weight
    print(json.dumps({
        "class": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "tied": model.get_output_embeddings().weight.data_ptr() == embed.data_ptr(),
        "embed_sum": float(embed.double().sum()),
        "ids": ids,
        "eos": tokenizer.eos_token_id,
        "logits_shape": list(logits.shape),
        "finite": bool(torch.isfinite(logits).all()),
    }))
`;

Deno.test({
  name: HF_AVAILABLE || HF_REQUIRED
    ? "init: transformers loads every tiny folder (AutoModelForCausalLM, AutoTokenizer)"
    : `init: transformers loads every tiny folder — IGNORED: ${PYTHON} cannot import torch, ` +
      `transformers (${PIP})`,
  ignore: !HF_AVAILABLE && !HF_REQUIRED,
  fn: () =>
    withTempDir(async (dir) => {
      if (!HF_AVAILABLE) {
        throw new AssertionError({
          message: `RMT_REQUIRE_HF=1 but ${PYTHON} cannot import torch, transformers (${PIP})`,
        });
      }
      const text = "Problem: Compute 12 * 4.\n<think>\n12 * 4 = 48.\n</think>\nAnswer: 48" +
        END_OF_TEXT;
      const cases = [];
      for (const arch of PRESET_ARCHITECTURES) {
        const model = initModel(tiny(arch, 4));
        const out = `${dir}/${arch}`;
        await writeModelFolder(out, {
          config: model.config,
          weights: model.weights,
          tokenizerFiles: model.tokenizerFiles,
          dtype: arch === "llama" ? "bf16" : "f32",
        });
        cases.push({ arch, out, model, folder: await readModelFolder(out) });
      }
      const r = await new Deno.Command(PYTHON, {
        args: ["-c", HF_LOAD, text, ...cases.map((c) => c.out)],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(r.stderr);
      assert(r.success, `transformers failed to load the folders:\n${stderr}`);
      const results = new TextDecoder().decode(r.stdout).trim().split("\n").map((l) =>
        JSON.parse(l)
      );
      assertEquals(results.length, cases.length, "one result per folder");
      for (const [i, { arch, model, folder }] of cases.entries()) {
        const hf = results[i];
        const config = model.modelConfig;
        assertEquals(hf.class, config.architecture, `${arch} class`);
        assertEquals(hf.parameters, parameterCount(config), `${arch} parameters`);
        assertEquals(hf.tied, config.tieWordEmbeddings, `${arch} tied`);
        assertEquals(hf.ids, folder.tokenizer.encode(text), `${arch} AutoTokenizer ids`);
        assertEquals(hf.eos, folder.tokenizer.eosTokenId, `${arch} eos`);
        assertEquals(hf.logits_shape, [1, hf.ids.length, config.vocabSize], `${arch} logits`);
        assert(hf.finite, `${arch}: logits are finite`);
        const embed = await folder.weights.readF32("model.embed_tokens.weight");
        const sum = embed.reduce((a, b) => a + b, 0);
        assert(Math.abs(hf.embed_sum - sum) < 1e-6, `${arch} embedding ${hf.embed_sum} vs ${sum}`);
      }
    }),
});
