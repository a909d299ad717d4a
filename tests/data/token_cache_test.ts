// The token cache: the first load tokenises and stores, the second reads the same ids back
// without encoding anything; changing the corpus, the tokenizer or the options misses; a
// damaged entry is rewritten. Also the stream layout (EOT between documents, offsets).

import { type Corpus, loadCorpus, splitDocuments } from "../../lib/data/corpus.ts";
import { generateCorpus } from "../../lib/data/math_corpus.ts";
import {
  type DocumentEncoder,
  documentTokens,
  selectDocuments,
  tokenizeCorpusCached,
} from "../../lib/data/token_cache.ts";
import { trainByteLevelBpe, writeTokenizerFiles } from "../../lib/model/bpe_train.ts";
import { END_OF_TEXT, TextTokenizer } from "../../lib/model/tokenizer.ts";
import { assert, assertEquals, withTempDir } from "../model/model_helpers.ts";

/** Wraps a tokenizer and counts encode calls, to see whether a load tokenised. */
class CountingEncoder implements DocumentEncoder {
  calls = 0;
  constructor(readonly inner: TextTokenizer) {}
  encode(text: string): number[] {
    this.calls++;
    return this.inner.encode(text);
  }
  documentSeparator(neededFor?: string): number {
    return this.inner.documentSeparator(neededFor);
  }
}

const documents = generateCorpus({ seed: 5, count: 60 }).map((d) => d.text);

/** A small BPE tokenizer trained on the test documents, written to `dir`. */
async function makeTokenizer(dir: string, vocabSize = 400): Promise<TextTokenizer> {
  await writeTokenizerFiles(dir, trainByteLevelBpe(documents.join("\n"), { vocabSize }));
  return await TextTokenizer.load(dir);
}

async function writeJsonl(path: string, texts: readonly string[]): Promise<Corpus> {
  await Deno.writeTextFile(path, texts.map((text) => JSON.stringify({ text }) + "\n").join(""));
  return await loadCorpus(path);
}

const equalArrays = (a: Uint32Array, b: Uint32Array) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

Deno.test("token cache: a miss tokenises and stores, a hit reads without tokenising", async () => {
  await withTempDir(async (dir) => {
    const tokenizer = await makeTokenizer(`${dir}/tok`);
    const corpus = await writeJsonl(`${dir}/corpus.jsonl`, documents);
    const cacheDir = `${dir}/cache`;

    const encoder = new CountingEncoder(tokenizer);
    const first = await tokenizeCorpusCached({
      corpus,
      tokenizerDir: `${dir}/tok`,
      tokenizer: encoder,
      cacheDir,
    });
    assertEquals(first.fromCache, false, "first load from cache");
    assertEquals(encoder.calls, documents.length, "documents encoded on a miss");
    assert(/^[0-9a-f]{64}$/.test(first.key), `key ${first.key}`);

    // The stream: documents in order, <|endoftext|> between them, offsets to each.
    const eot = tokenizer.requireToken(END_OF_TEXT);
    assertEquals(first.endOfText, eot, "EOT id");
    assertEquals(first.docOffsets.length, documents.length + 1, "offsets length");
    assertEquals(first.docOffsets[documents.length], first.tokens.length + 1, "last offset");
    const eots = first.tokens.filter((t) => t === eot).length;
    assertEquals(eots, documents.length - 1, "EOT between documents only");
    documents.forEach((text, d) => {
      assertEquals(tokenizer.decode([...documentTokens(first, d)]), text, `document ${d}`);
      if (d + 1 < documents.length) {
        assertEquals(first.tokens[first.docOffsets[d + 1] - 1], eot, `EOT after ${d}`);
      }
    });
    assertEquals(
      tokenizer.decode([...first.tokens]),
      documents.join(END_OF_TEXT),
      "whole stream",
    );

    const again = new CountingEncoder(tokenizer);
    const second = await tokenizeCorpusCached({
      corpus: await loadCorpus(`${dir}/corpus.jsonl`),
      tokenizerDir: `${dir}/tok/`,
      tokenizer: again,
      cacheDir,
    });
    assertEquals(second.fromCache, true, "second load from cache");
    assertEquals(again.calls, 0, "documents encoded on a hit");
    assertEquals(second.key, first.key, "key");
    assert(equalArrays(second.tokens, first.tokens), "cached tokens differ");
    assert(equalArrays(second.docOffsets, first.docOffsets), "cached offsets differ");
    assertEquals(second.endOfText, eot, "cached EOT id");
    // Without a tokenizer object: a hit needs none, and nothing half-written is left over.
    const third = await tokenizeCorpusCached({ corpus, tokenizerDir: `${dir}/tok`, cacheDir });
    assertEquals(third.fromCache, true, "hit without a tokenizer object");
    const names = [...Deno.readDirSync(cacheDir)].map((e) => e.name);
    assertEquals(names, [`tokens-${first.key}.u32`], "cache folder contents");
  });
});

Deno.test("token cache: a changed corpus, tokenizer or option misses", async () => {
  await withTempDir(async (dir) => {
    const tokenizer = await makeTokenizer(`${dir}/tok`);
    const cacheDir = `${dir}/cache`;
    const load = async (corpus: Corpus, keyExtra = {}, tokenizerDir = `${dir}/tok`) => {
      const encoder = new CountingEncoder(tokenizer);
      const result = await tokenizeCorpusCached({
        corpus,
        tokenizerDir,
        tokenizer: encoder,
        cacheDir,
        keyExtra,
      });
      assertEquals(encoder.calls > 0, !result.fromCache, "encode calls match fromCache");
      return result;
    };
    const path = `${dir}/corpus.jsonl`;
    const base = await load(await writeJsonl(path, documents.slice(0, 20)));
    assertEquals(base.fromCache, false, "first load");
    assertEquals((await load(await loadCorpus(path))).fromCache, true, "unchanged");

    // One more document: the file's bytes change.
    const grown = await load(await writeJsonl(path, documents.slice(0, 21)));
    assertEquals(grown.fromCache, false, "after the corpus changed");
    assert(grown.key !== base.key, "key unchanged after the corpus changed");
    assertEquals(grown.docOffsets.length, 22, "new document count");

    // Options: extra key material, and the corpus options.
    const corpus = await loadCorpus(path);
    assertEquals((await load(corpus, { maxDocTokens: 512 })).fromCache, false, "keyExtra");
    assertEquals((await load(corpus, { maxDocTokens: 512 })).fromCache, true, "same keyExtra");
    await Deno.writeTextFile(`${dir}/notes.txt`, "one\n\ntwo\n");
    const paragraphs = await load(await loadCorpus(`${dir}/notes.txt`));
    const whole = await load(await loadCorpus(`${dir}/notes.txt`, { txtDocuments: "file" }));
    assert(!whole.fromCache && whole.key !== paragraphs.key, "txtDocuments option in the key");
    assertEquals(whole.docOffsets.length, 2, "one document");

    // The tokenizer: another tokenizer.json in another folder.
    await writeTokenizerFiles(
      `${dir}/tok2`,
      trainByteLevelBpe(documents.join("\n"), { vocabSize: 380 }),
    );
    const other = await tokenizeCorpusCached({ corpus, tokenizerDir: `${dir}/tok2`, cacheDir });
    assertEquals(other.fromCache, false, "another tokenizer.json");
    assert(other.key !== grown.key, "key unchanged with another tokenizer");
  });
});

Deno.test("token cache: a damaged entry is ignored and rewritten", async () => {
  await withTempDir(async (dir) => {
    const tokenizer = await makeTokenizer(`${dir}/tok`);
    const corpus = await writeJsonl(`${dir}/corpus.jsonl`, documents.slice(0, 10));
    const options = { corpus, tokenizerDir: `${dir}/tok`, tokenizer, cacheDir: `${dir}/c` };
    const first = await tokenizeCorpusCached(options);
    const bytes = await Deno.readFile(first.path);
    await Deno.writeFile(first.path, bytes.subarray(0, bytes.length - 8)); // truncated
    const second = await tokenizeCorpusCached(options);
    assertEquals(second.fromCache, false, "truncated entry read");
    assert(equalArrays(second.tokens, first.tokens), "tokens after rewriting");
    assertEquals((await tokenizeCorpusCached(options)).fromCache, true, "rewritten entry");
    const garbage = new Uint8Array(bytes.length); // right size, wrong magic
    await Deno.writeFile(first.path, garbage);
    assertEquals((await tokenizeCorpusCached(options)).fromCache, false, "entry of zeros");
  });
});

Deno.test("token cache: selectDocuments builds a split's stream", async () => {
  await withTempDir(async (dir) => {
    const tokenizer = await makeTokenizer(`${dir}/tok`);
    const corpus = await writeJsonl(`${dir}/corpus.jsonl`, documents.slice(0, 30));
    const all = await tokenizeCorpusCached({
      corpus,
      tokenizerDir: `${dir}/tok`,
      tokenizer,
      cacheDir: `${dir}/c`,
    });
    const split = splitDocuments(corpus.documents, { seed: 3, heldoutFraction: 0.2 });
    for (const side of [split.train, split.heldout]) {
      const stream = selectDocuments(all, side);
      assertEquals(stream.docOffsets.length, side.length + 1, "offsets");
      assertEquals(
        tokenizer.decode([...stream.tokens]),
        side.map((i) => corpus.documents[i]).join(END_OF_TEXT),
        "split stream text",
      );
    }
  });
});
