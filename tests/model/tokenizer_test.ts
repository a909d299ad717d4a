// Tokenizer: train a byte-level BPE on ~1 MB of text, write tokenizer.json, load it back with
// tokenizers.js, and check exact round trips of arbitrary text, single-id special tokens,
// determinism, and the chat template.

import {
  DEFAULT_ADDED_TOKENS,
  trainByteLevelBpe,
  writeTokenizerFiles,
} from "../../lib/model/bpe_train.ts";
import { TextTokenizer } from "../../lib/model/tokenizer.ts";
import { Rng } from "../helpers.ts";
import { assert, assertEquals, assertUserError, withTempDir } from "./model_helpers.ts";

/** ~`bytes` of made-up prose: a Zipf-ish vocabulary of syllable words, digits, punctuation. */
function corpus(bytes: number, seed: number): string {
  const rng = new Rng(seed);
  const syllables = [
    "ka",
    "to",
    "ri",
    "an",
    "el",
    "mo",
    "su",
    "ne",
    "ta",
    "lo",
    "pi",
    "ur",
    "os",
    "qu",
    "ve",
    "di",
    "ch",
    "str",
    "ph",
    "ou",
    "é",
    "ñ",
    "ü",
    "th",
    "in",
    "er",
  ];
  const words: string[] = [];
  for (let i = 0; i < 6000; i++) {
    let w = "";
    for (let j = 1 + rng.int(4); j > 0; j--) w += syllables[rng.int(syllables.length)];
    words.push(rng.int(10) === 0 ? w[0].toUpperCase() + w.slice(1) : w);
  }
  const ends = [". ", ", ", "!\n", "? ", ".\n\n", "; "];
  const parts: string[] = [];
  let size = 0;
  while (size < bytes) {
    const sentence: string[] = [];
    for (let n = 4 + rng.int(12); n > 0; n--) {
      const r = rng.next();
      sentence.push(
        rng.int(30) === 0 ? String(rng.int(2024)) : words[Math.floor(words.length * r * r * r)],
      );
    }
    let text = sentence.join(" ") + ends[rng.int(ends.length)];
    if (rng.int(200) === 0) text += "<|endoftext|>";
    parts.push(text);
    size += text.length;
  }
  return parts.join("");
}

/** Random valid Unicode text: ASCII, Latin accents (composed and combining), CJK, emoji. */
function randomText(rng: Rng, length: number): string {
  const pools: [number, number][] = [
    [0x20, 0x7e],
    [0x00, 0x1f],
    [0xc0, 0x17f],
    [0x300, 0x36f],
    [0x4e00, 0x4fff],
    [0x1f600, 0x1f64f],
    [0x10000, 0x10ffff],
    [0x590, 0x5ff],
    [0xe000, 0xf8ff],
  ];
  let out = "";
  for (let i = 0; i < length; i++) {
    const [lo, hi] = pools[rng.int(pools.length)];
    out += String.fromCodePoint(lo + rng.int(hi - lo + 1));
    if (rng.int(8) === 0) out += [" ", "  ", "\n", "\r\n", "\t", "'s", "<think>"][rng.int(7)];
  }
  return out;
}

const TEXT = corpus(1_000_000, 7);

Deno.test("tokenizer: BPE training is fast, deterministic, and reaches the target size", () => {
  const start = performance.now();
  const a = trainByteLevelBpe(TEXT, { vocabSize: 2048 });
  const seconds = (performance.now() - start) / 1000;
  assert(seconds < 5, `training took ${seconds.toFixed(2)} s`);
  assertEquals([a.vocabSize, a.mergeCount], [2048, 2048 - 256 - 3], "sizes");
  const b = trainByteLevelBpe(TEXT, { vocabSize: 2048 });
  assert(JSON.stringify(a.tokenizerJson) === JSON.stringify(b.tokenizerJson), "deterministic");
  // The first merges are the most frequent pairs: among them a space followed by a letter.
  const merges = (a.tokenizerJson.model as { merges: string[][] }).merges;
  assert(merges.slice(0, 20).some(([l]) => l === "Ġ"), `early merges: ${merges.slice(0, 20)}`);
  // A corpus without repetition stops early rather than merging pairs seen once.
  const tiny = trainByteLevelBpe("abcdefg", { vocabSize: 1000 });
  assertEquals([tiny.mergeCount, tiny.vocabSize], [0, 259], "nothing to merge");
});

Deno.test("tokenizer: trained files load with tokenizers.js and round-trip any text", async () => {
  await withTempDir(async (dir) => {
    const trained = trainByteLevelBpe(TEXT, { vocabSize: 2048 });
    await writeTokenizerFiles(dir, trained);
    const tokenizer = await TextTokenizer.load(dir);
    assertEquals(tokenizer.vocabSize, 2048, "vocab size");

    // The training text compresses (merges are applied), and decodes back exactly.
    const sample = TEXT.slice(0, 100_000);
    const ids = tokenizer.encode(sample);
    assert(ids.length < sample.length / 3, `${ids.length} tokens for ${sample.length} chars`);
    assert(tokenizer.decode(ids) === sample, "corpus round trip");

    const fixed = [
      "",
      " ",
      "Hello, wörld! Ça va? naïve café",
      "e\u0301 vs \u00e9 (combining vs composed: no normalisation, both survive)",
      "emoji 😀🎉👩‍👩‍👧 flags 🇫🇷 skin 👍🏽",
      "日本語のテキスト、中文，한국어",
      "עברית ومرحبا",
      "  leading and trailing  \n\n\t\r\n",
      "it's DON'T we'll I'd",
      "digits 1234567890 ½ ²",
      "\u0000\u0001 control \u007f",
      "<|endoftext|><think>reason</think>x",
    ];
    const rng = new Rng(99);
    const random = Array.from({ length: 200 }, () => randomText(rng, 1 + rng.int(40)));
    for (const text of [...fixed, ...random]) {
      const encoded = tokenizer.encode(text);
      assert(
        encoded.every((id) => Number.isInteger(id) && id >= 0 && id < 2048),
        `ids in range: ${JSON.stringify(text)}`,
      );
      const decoded = tokenizer.decode(encoded);
      assert(decoded === text, `round trip ${JSON.stringify(text)} → ${JSON.stringify(decoded)}`);
    }
  });
});

Deno.test("tokenizer: special tokens are single ids, never split or merged", () => {
  const trained = trainByteLevelBpe(TEXT, { vocabSize: 1024 });
  const tokenizer = TextTokenizer.fromJson(trained.tokenizerJson, trained.tokenizerConfig);
  const { thinkStart, thinkEnd, endOfText } = tokenizer.thinkTokens();
  assertEquals([endOfText, thinkStart, thinkEnd], [1021, 1022, 1023], "ids at the end");
  assertEquals(tokenizer.encode("<think>"), [thinkStart], "<think>");
  assertEquals(tokenizer.encode("</think>"), [thinkEnd], "</think>");
  assertEquals(tokenizer.encode("<|endoftext|>"), [endOfText], "<|endoftext|>");
  const ids = tokenizer.encode("ka<think>to</think>ri<|endoftext|>");
  assertEquals(ids.filter((id) => id >= 1021), [thinkStart, thinkEnd, endOfText], "in context");
  assertEquals(tokenizer.eosTokenId, endOfText, "eos");
  assertEquals(tokenizer.tokenOf(thinkStart), "<think>", "id → token");
  // skip_special_tokens drops <|endoftext|> but keeps the think tags (they are not special).
  assertEquals(tokenizer.decode(ids, { skipSpecialTokens: true }), "ka<think>to</think>ri", "skip");
  let threw = false;
  try {
    tokenizer.decode([1024]);
  } catch (e) {
    threw = (e as Error).message.includes("1024");
  }
  assert(threw, "an id past the vocabulary is refused");
  // The added tokens are the ones asked for, in order.
  assertEquals(
    (trained.tokenizerJson.added_tokens as { content: string }[]).map((t) => t.content),
    DEFAULT_ADDED_TOKENS.map((t) => t.content),
    "added tokens",
  );
});

Deno.test("tokenizer: a missing required token is a clear UserError", async () => {
  const trained = trainByteLevelBpe(TEXT.slice(0, 50_000), {
    vocabSize: 400,
    addedTokens: [{ content: "<|endoftext|>", special: true }],
  });
  const tokenizer = TextTokenizer.fromJson(trained.tokenizerJson, trained.tokenizerConfig, "tok/");
  await assertUserError(() => tokenizer.thinkTokens(), ["tok/", '"<think>"', "reasoning"], "think");
  await assertUserError(() => tokenizer.requireToken("<|im_end|>", "chat"), [
    '"<|im_end|>"',
    "chat",
  ], "im_end");
  await withTempDir(async (dir) => {
    await assertUserError(() => TextTokenizer.load(dir), [`${dir}/tokenizer.json`], "no files");
  });
});

const CHATML = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + " +
  "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

Deno.test("tokenizer: the chat template renders (config key or chat_template.jinja)", async () => {
  const trained = trainByteLevelBpe(TEXT.slice(0, 50_000), { vocabSize: 400 });
  const messages = [
    { role: "system", content: "Be brief." },
    { role: "user", content: "2+2?" },
  ];
  const expected = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n" +
    "<|im_start|>assistant\n";
  const withKey = TextTokenizer.fromJson(trained.tokenizerJson, {
    ...trained.tokenizerConfig,
    chat_template: CHATML,
  });
  assert(withKey.hasChatTemplate, "has a template");
  assertEquals(withKey.applyChatTemplate(messages), expected, "rendered");
  assertEquals(
    withKey.applyChatTemplate(messages, { addGenerationPrompt: false }),
    expected.slice(0, -"<|im_start|>assistant\n".length),
    "without generation prompt",
  );
  await withTempDir(async (dir) => {
    await writeTokenizerFiles(dir, trained);
    const plain = await TextTokenizer.load(dir);
    assert(!plain.hasChatTemplate, "no template yet");
    await assertUserError(() => plain.applyChatTemplate(messages), ["no chat template"], "none");
    await Deno.writeTextFile(`${dir}/chat_template.jinja`, CHATML);
    assertEquals((await TextTokenizer.load(dir)).applyChatTemplate(messages), expected, "file");
  });
  const broken = TextTokenizer.fromJson(trained.tokenizerJson, {
    ...trained.tokenizerConfig,
    chat_template: "{{ raise_exception('no system role') }}",
  });
  await assertUserError(() => broken.applyChatTemplate(messages), ["chat template"], "raises");
});

Deno.test("tokenizer: documents are separated by <|endoftext|>, else by the eos token", async () => {
  const withEot = trainByteLevelBpe(TEXT.slice(0, 20_000), {
    vocabSize: 300,
    addedTokens: [{ content: "<|endoftext|>", special: true }],
  });
  const a = TextTokenizer.fromJson(withEot.tokenizerJson, withEot.tokenizerConfig, "a/");
  assertEquals(a.documentSeparator(), a.tokenId("<|endoftext|>"), "<|endoftext|>");
  // DeepSeek-R1-Distill style: no <|endoftext|>, the eos token ends a text.
  const eos = "<｜end▁of▁sentence｜>";
  const r1 = trainByteLevelBpe(TEXT.slice(0, 20_000), {
    vocabSize: 300,
    addedTokens: [{ content: eos, special: true }],
  });
  const b = TextTokenizer.fromJson(
    r1.tokenizerJson,
    { ...r1.tokenizerConfig, eos_token: eos },
    "b/",
  );
  assertEquals(b.documentSeparator(), b.tokenId(eos), "the eos token");
  const c = TextTokenizer.fromJson(
    r1.tokenizerJson,
    { ...r1.tokenizerConfig, eos_token: null },
    "c/",
  );
  await assertUserError(
    () => c.documentSeparator("joining"),
    ["c/", "<|endoftext|>", "joining"],
    "none",
  );
});
