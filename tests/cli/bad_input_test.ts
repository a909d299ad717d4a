// Bad input through the command line, as a user meets it: one line on stderr naming what is
// wrong, exit code 2, and nothing half-written (no run folder for a run that never started, the
// run folder of an earlier run untouched). The library tests check every kind of damage in
// detail (tests/model/, tests/data/corpus_test.ts, tests/train/config_test.ts); this file
// checks that each kind reaches the user that way.

import { initModel } from "../../lib/model/init.ts";
import { writeModelFolder } from "../../lib/model/model_folder.ts";
import { assert, assertEquals, withTempDir } from "../helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

async function rmt(args: string[], cwd: string, env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}main.ts`, ...args],
    cwd,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

/** `rmt ARGS` exits 2 with one line on stderr holding every fragment; returns that line. */
async function expectOneLine(
  args: string[],
  cwd: string,
  fragments: string[],
  env: Record<string, string> = {},
): Promise<string> {
  const r = await rmt(args, cwd, env);
  const what = `rmt ${args.join(" ")}`;
  assertEquals(r.code, 2, `${what}: exit code (stderr: ${r.stderr})`);
  const lines = r.stderr.trim().split("\n");
  assert(lines.length === 1, `${what}: one line on stderr, got:\n${r.stderr}`);
  for (const fragment of fragments) {
    assert(lines[0].includes(fragment), `${what}: "${lines[0]}" does not mention ${fragment}`);
  }
  return lines[0];
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

/** A tiny qwen2 model folder. */
async function tinyModel(dir: string): Promise<void> {
  const model = initModel({ arch: "qwen2", preset: "tiny", seed: 1 });
  await writeModelFolder(dir, {
    config: model.config,
    weights: model.weights,
    tokenizerFiles: model.tokenizerFiles,
  });
}

/** A config for `rmt train`, relative paths from the test folder. */
function configYaml(method: string, model: string, corpus: string, extra = ""): string {
  return `method: ${method}\nmodel:\n  path: ${model}\n  max_context: 32\ndata:\n  train: ${corpus}\n` +
    `training:\n  steps: 2\n  batch_size: 2\n${extra}`;
}

Deno.test("bad input: rmt train refuses bad configs, corpora and tokenizers in one line, writing nothing", () =>
  withTempDir(async (dir) => {
    await tinyModel(`${dir}/m`);
    const shipped = await Deno.readTextFile(`${ROOT}data/math/train.jsonl`);
    await Deno.writeTextFile(`${dir}/corpus.jsonl`, shipped.split("\n").slice(0, 100).join("\n"));
    await Deno.writeTextFile(
      `${dir}/bad.jsonl`,
      '{"text": "1 + 1 = 2"}\n{"text": "2 + 2 = 4"}\n{text: 3 + 3}\n',
    );
    await Deno.writeTextFile(`${dir}/short.jsonl`, '{"text": "1 + 1 = 2"}\n');
    await Deno.writeTextFile(`${dir}/empty.jsonl`, "\n\n");

    // The model without <think>: what the compact prompt format of method rmt needs.
    await Deno.mkdir(`${dir}/no-think`);
    for (const name of ["config.json", "model.safetensors", "generation_config.json"]) {
      await Deno.copyFile(`${dir}/m/${name}`, `${dir}/no-think/${name}`);
    }
    const tokenizer = JSON.parse(await Deno.readTextFile(`${dir}/m/tokenizer.json`));
    tokenizer.added_tokens = tokenizer.added_tokens.filter(
      (t: { content: string }) => t.content !== "<think>",
    );
    await Deno.writeTextFile(`${dir}/no-think/tokenizer.json`, JSON.stringify(tokenizer));
    const settings = JSON.parse(await Deno.readTextFile(`${dir}/m/tokenizer_config.json`));
    for (const [id, token] of Object.entries(settings.added_tokens_decoder)) {
      if ((token as { content: string }).content === "<think>") {
        delete settings.added_tokens_decoder[id];
      }
    }
    await Deno.writeTextFile(`${dir}/no-think/tokenizer_config.json`, JSON.stringify(settings));

    const cases: [string, string, string[]][] = [
      ["no-think", configYaml("rmt", "no-think", "corpus.jsonl"), [
        "no-think",
        '"<think>"',
        "compact reasoning format",
      ]],
      ["unknown-key", configYaml("ntp", "m", "corpus.jsonl", "  stpes: 3\n"), [
        "unknown-key.yaml",
        "training.stpes",
        "training.steps",
      ]],
      ["wrong-type", configYaml("ntp", "m", "corpus.jsonl", "rl:\n  group_size: many\n"), [
        "rl.group_size",
        '"many"',
      ]],
      ["out-of-range", configYaml("ntp", "m", "corpus.jsonl", "  lr: -1\n"), [
        "training.lr",
        "out of range",
      ]],
      ["not-json", configYaml("ntp", "m", "bad.jsonl"), ["bad.jsonl:3", "not valid JSON"]],
      ["empty-corpus", configYaml("ntp", "m", "empty.jsonl"), ["empty.jsonl", "no documents"]],
      ["short-corpus", configYaml("ntp", "m", "short.jsonl"), [
        "tokens",
        "model.max_context",
        "data.train",
      ]],
    ];
    for (const [name, yaml, fragments] of cases) {
      await Deno.writeTextFile(`${dir}/${name}.yaml`, yaml);
      await expectOneLine(
        ["train", "--config", `${name}.yaml`, "--out", `run-${name}`],
        dir,
        [`rmt train: `, ...fragments],
      );
      assert(!(await exists(`${dir}/run-${name}`)), `${name}: the run folder was left behind`);
    }
  }));

Deno.test("bad input: a run folder holding another run is refused without --resume / --force", () =>
  withTempDir(async (dir) => {
    await tinyModel(`${dir}/m`);
    const shipped = await Deno.readTextFile(`${ROOT}data/math/train.jsonl`);
    await Deno.writeTextFile(`${dir}/corpus.jsonl`, shipped.split("\n").slice(0, 100).join("\n"));
    await Deno.writeTextFile(`${dir}/ntp.yaml`, configYaml("ntp", "m", "corpus.jsonl"));
    const train = ["train", "--config", "ntp.yaml", "--out", "run"];
    const first = await rmt(train, dir);
    assertEquals(first.code, 0, `the first run: ${first.stderr}`);
    const before = await Deno.readTextFile(`${dir}/run/run.json`);

    await expectOneLine([...train, "--set", "training.lr=0.001"], dir, [
      "--out run",
      "holds a different run",
      "training.lr",
      "--force",
    ]);
    await expectOneLine(train, dir, ["already holds this run", "--resume"]);
    assertEquals(await Deno.readTextFile(`${dir}/run/run.json`), before, "run.json untouched");
  }));

Deno.test("bad input: damaged model folders are one line naming the file", () =>
  withTempDir(async (dir) => {
    await tinyModel(`${dir}/m`);
    const weights = await Deno.readFile(`${dir}/m/model.safetensors`);
    const generate = (model: string) => ["generate", "--model", model, "--prompt", "1 +"];
    const copy = async (name: string) => {
      await Deno.mkdir(`${dir}/${name}`);
      for await (const entry of Deno.readDir(`${dir}/m`)) {
        await Deno.copyFile(`${dir}/m/${entry.name}`, `${dir}/${name}/${entry.name}`);
      }
      return `${dir}/${name}`;
    };

    const truncated = await copy("truncated");
    await Deno.writeFile(`${truncated}/model.safetensors`, weights.slice(0, weights.length - 10));
    await expectOneLine(generate(truncated), dir, [
      `${truncated}/model.safetensors`,
      "outside the data area",
    ]);

    // model.norm.weight stored as I32 (same size as F32, so the file itself stays valid).
    const integer = await copy("integer");
    const headerLength = Number(new DataView(weights.buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(weights.slice(8, 8 + headerLength)));
    header["model.norm.weight"].dtype = "I32";
    const bytes = weights.slice();
    bytes.set(new TextEncoder().encode(JSON.stringify(header).padEnd(headerLength)), 8);
    await Deno.writeFile(`${integer}/model.safetensors`, bytes);
    await expectOneLine(generate(integer), dir, ['"model.norm.weight" has dtype I32']);

    const llama3 = await copy("rope");
    const config = JSON.parse(await Deno.readTextFile(`${dir}/m/config.json`));
    await Deno.writeTextFile(
      `${llama3}/config.json`,
      JSON.stringify({ ...config, rope_scaling: { rope_type: "llama3", factor: 8 } }),
    );
    await expectOneLine(generate(llama3), dir, ["config.json", "rope_scaling", "llama3"]);

    const brokenTokenizer = await copy("tokenizer");
    const tokenizer = await Deno.readTextFile(`${dir}/m/tokenizer.json`);
    await Deno.writeTextFile(`${brokenTokenizer}/tokenizer.json`, tokenizer.slice(0, 500));
    await expectOneLine(generate(brokenTokenizer), dir, ["tokenizer.json", "not valid JSON"]);
  }));

Deno.test("bad input: RMT_KERNELS other than auto, software or gpu is refused in one line", () =>
  withTempDir(async (dir) => {
    await expectOneLine(["info"], dir, ["RMT_KERNELS=fast", "expected auto, software or gpu"], {
      RMT_KERNELS: "fast",
    });
    // A valid choice is shown by `rmt info`, marked when it is not the adapter's own.
    const r = await rmt(["info"], dir, { RMT_KERNELS: "gpu" });
    assertEquals(r.code, 0, r.stderr);
    assert(/kernels: +gpu/.test(r.stdout), `rmt info with RMT_KERNELS=gpu:\n${r.stdout}`);
  }));
