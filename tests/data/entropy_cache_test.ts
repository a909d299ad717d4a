// The token-entropy pass (lib/data/entropy_cache.ts): values equal scoreTokens on each
// document (NaN at document starts), a second call reads the cache without running anything
// on the GPU, and changing the proxy model (or k) gives a new entry.

import type { Corpus } from "../../lib/data/corpus.ts";
import {
  documentSequences,
  formatEntropyReport,
  modelHash,
  tokenEntropiesCached,
} from "../../lib/data/entropy_cache.ts";
import { tokenizeCorpusCached } from "../../lib/data/token_cache.ts";
import { loadGpuWeights, releaseGpuModel } from "../../lib/model/gpu_weights.ts";
import { initModel } from "../../lib/model/init.ts";
import { readModelFolder, writeModelFolder } from "../../lib/model/model_folder.ts";
import { scoreTokens } from "../../lib/model/score.ts";
import {
  assert,
  assertBitEqual,
  assertClose,
  assertUserError,
  testGpu,
  withTempDir,
} from "../helpers.ts";

const DOCUMENTS = [
  "the cat sat on the mat and the dog sat on the log, and then the cat ran away",
  "one plus two is three",
  "x",
  "three plus four is seven, and seven plus one is eight",
];

function memoryCorpus(documents: string[]): Corpus {
  return {
    source: "test",
    documents,
    files: [],
    options: { textField: "text", txtDocuments: "paragraphs" },
  };
}

/** A tiny qwen3 model folder whose tokenizer is trained on the documents. */
async function writeProxy(dir: string, seed: number, overwrite = false): Promise<string> {
  const model = initModel({ arch: "qwen3", preset: "tiny", seed, vocab: 300, corpus: DOCUMENTS });
  const path = `${dir}/proxy`;
  await writeModelFolder(path, {
    config: model.config,
    weights: model.weights,
    tokenizerFiles: model.tokenizerFiles,
    overwrite,
  });
  return path;
}

Deno.test("entropy_cache: values, cache hit without GPU work, invalidation on a new model", async () => {
  const ctx = await testGpu();
  await withTempDir(async (dir) => {
    const proxy = await writeProxy(dir, 1);
    const stream = await tokenizeCorpusCached({
      corpus: memoryCorpus(DOCUMENTS),
      tokenizerDir: proxy,
      cacheDir: `${dir}/cache`,
    });
    const window = 12; // the first document is longer: its context restarts every 12 tokens
    const first = await tokenEntropiesCached({ modelDir: proxy, stream, window, ctx });
    assert(!first.fromCache, "first call computes");
    assert(first.path.startsWith(`${dir}/cache/entropy-`), `beside the token cache: ${first.path}`);
    assert(first.entropies.length === stream.tokens.length, "one entropy per token");

    // Equal to scoreTokens on each document's sequence (with its EOT); NaN at its start.
    const folder = await readModelFolder(proxy);
    const model = await loadGpuWeights(ctx, folder.config, folder.weights);
    const sequences = documentSequences(stream);
    assert(sequences[0].length > 2 * window, "a document spans several windows");
    for (const [d, seq] of sequences.entries()) {
      const start = stream.docOffsets[d];
      const got = first.entropies.subarray(start, start + seq.length);
      assert(Number.isNaN(got[0]), `document ${d} starts with NaN`);
      const expected = (await scoreTokens(ctx, model, seq, { window })).entropies;
      assertClose(got.subarray(1), expected.subarray(1), { rtol: 1e-4, atol: 1e-5 }, `doc ${d}`);
    }
    releaseGpuModel(model);
    const { tiers } = first;
    assert(tiers.total === stream.tokens.length && tiers.missing === DOCUMENTS.length, "tiers");
    assert(
      tiers.below + tiers.easy + tiers.medium + tiers.hard + tiers.missing === tiers.total,
      "sum",
    );
    assert(first.histogram.reduce((a, b) => a + b, 0) === tiers.total - tiers.missing, "histogram");
    assert(formatEntropyReport(first).includes("computed into"), "report");

    // Second call: read back, nothing dispatched or read from the GPU.
    const before = { ...ctx.counts };
    const second = await tokenEntropiesCached({ modelDir: proxy, stream, window, ctx });
    assert(second.fromCache && second.key === first.key, "second call hits the cache");
    assert(
      ctx.counts.dispatches === before.dispatches && ctx.counts.readbacks === before.readbacks,
      "no GPU work on a hit",
    );
    assertBitEqual(second.entropies, first.entropies, "cached entropies");
    assert(formatEntropyReport(second).includes("read from"), "report says cached");

    // Another k, another window, or another model: another entry.
    const k8 = await tokenEntropiesCached({ modelDir: proxy, stream, window, k: 8, ctx });
    assert(!k8.fromCache && k8.key !== first.key, "k is part of the key");
    const hashBefore = await modelHash(proxy);
    await writeProxy(dir, 2, true); // same config and tokenizer, new weights
    assert((await modelHash(proxy)) !== hashBefore, "the model hash follows the weights");
    const retrained = await tokenEntropiesCached({ modelDir: proxy, stream, window, ctx });
    assert(!retrained.fromCache && retrained.key !== first.key, "a new model misses the cache");
    let differs = false;
    retrained.entropies.forEach((h, p) => {
      if (Number.isFinite(h) && h !== first.entropies[p]) differs = true;
    });
    assert(differs, "the new model's entropies differ");

    // A damaged entry is recomputed, not trusted.
    await Deno.writeFile(retrained.path, new Uint8Array(12));
    const repaired = await tokenEntropiesCached({ modelDir: proxy, stream, window, ctx });
    assert(!repaired.fromCache, "a damaged entry is recomputed");
    assertBitEqual(repaired.entropies, retrained.entropies, "recomputed entropies");
  });
});

Deno.test("entropy_cache: a proxy whose vocabulary misses corpus ids is refused", async () => {
  await withTempDir(async (dir) => {
    const proxy = await writeProxy(dir, 1);
    const stream = {
      tokens: Uint32Array.from([1, 2, 5000]),
      docOffsets: Uint32Array.from([0, 4]),
      endOfText: 0,
      key: "k",
      path: `${dir}/tokens-k.u32`,
    };
    await assertUserError(
      () => tokenEntropiesCached({ modelDir: proxy, stream }),
      ["vocab_size", "token id 5000", "tokenizer"],
      "vocabulary mismatch",
    );
  });
});
