// Scoring (lib/model/score.ts) against log-softmax and the top-k entropy computed on the host
// from full forwards; windows for long inputs; batching many sequences; and the `rmt score`
// and `rmt generate` commands on a tiny model folder (run in-process).

import { main } from "../../lib/cli/main.ts";
import { perplexityOf } from "../../lib/cli/score.ts";
import type { GpuContext } from "../../lib/gpu/context.ts";
import { type GpuModel, loadGpuWeights, releaseGpuModel } from "../../lib/model/gpu_weights.ts";
import { initModel } from "../../lib/model/init.ts";
import { padSequences, uploadBatch } from "../../lib/model/model_batch.ts";
import { writeModelFolder } from "../../lib/model/model_folder.ts";
import { scoreSequences, scoreTokens } from "../../lib/model/score.ts";
import { forward } from "../../lib/model/transformer.ts";
import { randomWeights, tinyConfig } from "../../lib/ref/transformer.ts";
import { topKEntropy } from "../../lib/rmt/tiers.ts";
import { assertClose, Rng, testGpu } from "../helpers.ts";
import { assert, withTempDir } from "./model_helpers.ts";

const TEST_SCALES = { std: 0.2, biasStd: 0.2, normStd: 0.2 };
const TOLERANCE = { rtol: 1e-4, atol: 1e-5 };

async function tinyModel(ctx: GpuContext): Promise<GpuModel> {
  const config = tinyConfig("Qwen3ForCausalLM"); // vocab 67, max context 64
  return await loadGpuWeights(ctx, config, randomWeights(config, 8, TEST_SCALES));
}

function randomIds(rng: Rng, n: number, vocab: number): number[] {
  return Array.from({ length: n }, () => rng.int(vocab));
}

/**
 * The expected scores on the host, from one forward per window of `window` tokens (each
 * window's last row predicting the next window's first token).
 */
async function expectedScores(
  ctx: GpuContext,
  model: GpuModel,
  ids: number[],
  window: number,
  k: number,
): Promise<{ logprobs: Float64Array; entropies: Float64Array }> {
  const vocab = model.config.vocabSize;
  const logprobs = new Float64Array(ids.length).fill(NaN);
  const entropies = new Float64Array(ids.length).fill(NaN);
  for (let start = 0; start + 1 < ids.length; start += window) {
    const tokens = ids.slice(start, start + window);
    const batch = uploadBatch(ctx, padSequences([tokens]));
    const { logits } = forward(ctx, model, batch, { train: false });
    const [all] = await ctx.readMany([logits]);
    logits.release();
    batch.release();
    for (let i = 0; i < tokens.length && start + i + 1 < ids.length; i++) {
      const row = all.subarray(i * vocab, (i + 1) * vocab);
      const max = Math.max(...row);
      let sum = 0;
      for (const z of row) sum += Math.exp(z - max);
      const p = start + i + 1;
      logprobs[p] = row[ids[p]] - max - Math.log(sum);
      entropies[p] = topKEntropy(row, k);
    }
  }
  return { logprobs, entropies };
}

function checkScores(
  got: { logprobs: Float32Array; entropies: Float32Array },
  expected: { logprobs: Float64Array; entropies: Float64Array },
  what: string,
): void {
  assert(Number.isNaN(got.logprobs[0]) && Number.isNaN(got.entropies[0]), `${what}: p = 0 NaN`);
  assertClose(got.logprobs.subarray(1), expected.logprobs.subarray(1), TOLERANCE, `${what} lp`);
  assertClose(got.entropies.subarray(1), expected.entropies.subarray(1), TOLERANCE, `${what} H`);
}

Deno.test("score: log-probs and top-k entropies match the full forward", async () => {
  const ctx = await testGpu();
  const model = await tinyModel(ctx);
  const ids = randomIds(new Rng(1), 23, model.config.vocabSize);
  for (const k of [16, 3]) {
    const got = await scoreTokens(ctx, model, ids, { k });
    assert(got.ids.length === 23 && got.ids[5] === ids[5], "ids returned");
    checkScores(got, await expectedScores(ctx, model, ids, 64, k), `k ${k}`);
  }
  releaseGpuModel(model);
});

Deno.test("score: long inputs are scored in windows of the context, batched", async () => {
  const ctx = await testGpu();
  const model = await tinyModel(ctx);
  const rng = new Rng(2);
  const ids = randomIds(rng, 29, model.config.vocabSize);
  const expected = await expectedScores(ctx, model, ids, 8, 16);
  // 4 windows (8, 8, 8, 5); maxRows 17 puts two full windows in a forward.
  const got = await scoreSequences(ctx, model, [ids], { window: 8, maxRows: 17 });
  assert(got.forwards === 2 && got.window === 8, `forwards ${got.forwards}, window ${got.window}`);
  checkScores({ logprobs: got.logprobs[0], entropies: got.entropies[0] }, expected, "windowed");
  // A window of exactly the length + 1 boundary: the last window holds one token, no forward.
  const exact = await scoreSequences(ctx, model, [ids.slice(0, 17)], { window: 8 });
  assert(exact.forwards === 1, `17 tokens in windows of 8: ${exact.forwards} forwards`);
  checkScores(
    { logprobs: exact.logprobs[0], entropies: exact.entropies[0] },
    await expectedScores(ctx, model, ids.slice(0, 17), 8, 16),
    "17 tokens",
  );

  // Many sequences in one call = each scored alone.
  const sequences = [5, 1, 12, 2, 9].map((n) => randomIds(rng, n, model.config.vocabSize));
  const together = await scoreSequences(ctx, model, sequences, { window: 6 });
  for (const [s, seq] of sequences.entries()) {
    const alone = await scoreTokens(ctx, model, seq, { window: 6 });
    const [lp, h] = [together.logprobs[s], together.entropies[s]];
    assert(Number.isNaN(lp[0]) && Number.isNaN(h[0]), `sequence ${s}: p = 0 unscored`);
    assertClose(lp.subarray(1), alone.logprobs.subarray(1), TOLERANCE, `sequence ${s} lp`);
    assertClose(h.subarray(1), alone.entropies.subarray(1), TOLERANCE, `sequence ${s} H`);
  }
  assert(together.logprobs[1].length === 1 && Number.isNaN(together.logprobs[1][0]), "1 token");
  releaseGpuModel(model);
});

Deno.test("score: perplexity is exp of the mean NLL over the scored positions", () => {
  const s = perplexityOf(Float32Array.from([NaN, -1, -2, -3]));
  assert(s.count === 3 && s.meanNll === 2 && Math.abs(s.perplexity! - Math.exp(2)) < 1e-12, "ppl");
  assert(perplexityOf([NaN]).meanNll === null, "nothing scored");
});

// ---- the commands ------------------------------------------------------------------------------

/** Runs `rmt ARGS` in this process; returns the exit code and what it printed. */
async function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    const code = await main(args);
    return { code, stdout: out.join("\n"), stderr: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/** A tiny qwen2 model folder with a BPE tokenizer trained on a few sentences. */
async function writeTinyFolder(dir: string): Promise<string> {
  const corpus = [
    "the cat sat on the mat and the dog sat on the log",
    "one plus two is three, and three plus four is seven",
  ];
  const model = initModel({ arch: "qwen2", preset: "tiny", seed: 4, vocab: 300, corpus });
  const path = `${dir}/tiny`;
  await writeModelFolder(path, {
    config: model.config,
    weights: model.weights,
    tokenizerFiles: model.tokenizerFiles,
  });
  return path;
}

Deno.test("score: rmt score prints a table or JSON; rmt generate prints continuations", async () => {
  await withTempDir(async (dir) => {
    const folder = await writeTinyFolder(dir);
    const text = "the cat sat on the log";
    const json = await runCli(["score", "--model", folder, "--text", text, "--json"]);
    assert(json.code === 0, `score --json: exit ${json.code}: ${json.stderr}`);
    const report = JSON.parse(json.stdout);
    assert(report.tokens.length >= 3 && report.tokens[0].logprob === null, "first token unscored");
    assert(report.tokens.map((t: { text: string }) => t.text).join("") === text, "token texts");
    const nll = -report.tokens.slice(1).reduce((s: number, t: { logprob: number }) =>
      s + t.logprob, 0) /
      (report.tokens.length - 1);
    assert(Math.abs(report.meanNll - nll) < 1e-9, `mean NLL ${report.meanNll} vs ${nll}`);
    assert(Math.abs(report.perplexity - Math.exp(nll)) < 1e-6, "perplexity");
    assert(report.tokens.slice(1).every((t: { entropy: number }) => t.entropy >= 0), "entropies");

    await Deno.writeTextFile(`${dir}/text.txt`, text);
    const table = await runCli(["score", "--model", folder, "--text-file", `${dir}/text.txt`]);
    assert(table.code === 0, `score table: exit ${table.code}: ${table.stderr}`);
    const lines = table.stdout.split("\n");
    assert(lines[0].includes("logprob") && lines.length === report.tokens.length + 2, table.stdout);
    assert(/perplexity \d/.test(lines[lines.length - 1]), lines[lines.length - 1]);

    const generateArgs = [
      "generate",
      "--model",
      folder,
      "--prompt",
      "the cat",
      "--max-tokens",
      "5",
      "--n",
      "2",
      "--seed",
      "3",
    ];
    const gen = await runCli(generateArgs);
    assert(gen.code === 0, `generate: exit ${gen.code}: ${gen.stderr}`);
    assert(gen.stdout.includes("--- continuation 2 of 2 ---"), gen.stdout);
    assert(/tokens in .* tokens\/s/.test(gen.stderr), gen.stderr);
    const again = await runCli(
      generateArgs,
    );
    assert(again.stdout === gen.stdout, "the same seed prints the same continuations");
  });
});

Deno.test("score: the commands' bad input is one line and exit code 2", async () => {
  await withTempDir(async (dir) => {
    const cases: [string[], string][] = [
      [["score", "--model", `${dir}/missing`, "--text", "x"], "no such model folder"],
      [["generate", "--model", `${dir}/missing`, "--prompt", "x"], "no such model folder"],
      [["generate", "--model", dir, "--prompt", "x"], "no config.json"],
      [["score", "--model", dir], "exactly one of --text"],
      [["generate", "--model", dir], "--prompt is required"],
      [["generate", "--model", dir, "--prompt", "x", "--top-p", "0"], "--top-p"],
      [["generate", "--model", dir, "--prompt", "x", "--temperature", "hot"], "--temperature"],
      [["score", "--model", dir, "--text", "x", "--k", "33"], "--k"],
      [["score", "--model", dir, "--text-file", `${dir}/none.txt`], "cannot read"],
    ];
    for (const [args, fragment] of cases) {
      const r = await runCli(args);
      assert(r.code === 2, `${args.join(" ")}: exit ${r.code}`);
      assert(r.stderr.split("\n").length === 1 && r.stderr.includes(fragment), r.stderr);
    }
  });
});
