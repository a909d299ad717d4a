// tokenizer fuzz: random byte flips, truncations and wrong JSON values in a valid tokenizer.json
// and tokenizer_config.json. Whatever the damage, loading the folder and round-tripping a text
// either works (damage tokenizers.js does not care about) or fails with a one-line UserError
// naming the folder — never another exception, and never slowly.

import { trainByteLevelBpe, writeTokenizerFiles } from "../../lib/model/bpe_train.ts";
import { UserError } from "../../lib/model/errors.ts";
import { TextTokenizer } from "../../lib/model/tokenizer.ts";
import { Rng } from "../helpers.ts";
import { assert, withTempDir } from "./model_helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const CASES = 300;
/** A load that takes longer than this is a bug (a valid one takes about a millisecond). */
const SLOW_MS = 1000;
const FILES = ["tokenizer.json", "tokenizer_config.json"] as const;
const TEXT = "Problem: 3/4 of 28?\n<think>\n28 / 4 * 3 = 21\n</think>\nAnswer: 21 é 😀";

type Json = Record<string, unknown>;
type Outcome = "ok" | "user error";

/** Loads the folder and round-trips TEXT; "ok", "user error", or throws anything else. */
async function loadAndUse(dir: string, what: string): Promise<Outcome> {
  const start = performance.now();
  // tokenizers.js warns on the console about some damage and goes on: that counts as a failure
  // (rmt would print it amid its output, and tokenise differently from transformers).
  const printed: string[] = [];
  const saved = { log: console.log, warn: console.warn, error: console.error };
  console.log = console.warn = console.error = (...args: unknown[]) => printed.push(args.join(" "));
  let outcome: Outcome;
  try {
    const tokenizer = await TextTokenizer.load(dir);
    const ids = tokenizer.encode(TEXT);
    tokenizer.decode(ids);
    void tokenizer.eosTokenId;
    outcome = "ok";
  } catch (e) {
    if (!(e instanceof UserError) || e.message.includes("\n") || !e.message.includes(dir)) {
      throw new Error(`${what}: not a one-line UserError naming the folder: ${e}`);
    }
    outcome = "user error";
  } finally {
    Object.assign(console, saved);
  }
  assert(printed.length === 0, `${what}: printed ${JSON.stringify(printed[0])}`);
  const ms = performance.now() - start;
  assert(ms < SLOW_MS, `${what}: took ${ms.toFixed(0)} ms`);
  return outcome;
}

/** Every [parent, key] inside a JSON value (the first few items of each list). */
function slots(value: unknown, out: [Json | unknown[], string | number][] = []) {
  if (typeof value !== "object" || value === null) return out;
  const entries: [string | number, unknown][] = Array.isArray(value)
    ? value.slice(0, 4).map((v, i) => [i, v])
    : Object.entries(value);
  for (const [key, child] of entries) {
    out.push([value as Json, key]);
    slots(child, out);
  }
  return out;
}

const JUNK: unknown[] = [null, 0, -1, 1.5, "x", "", [], {}, [1, "a"], { type: "Nope" }, true];

Deno.test("tokenizer fuzz: damaged tokenizer files give a one-line UserError or a working tokenizer", async () => {
  const corpus = (await Deno.readTextFile(`${ROOT}data/math/train.jsonl`)).slice(0, 30_000);
  const trained = trainByteLevelBpe(corpus, { vocabSize: 300 });
  await withTempDir(async (dir) => {
    await writeTokenizerFiles(dir, trained);
    const original = {
      "tokenizer.json": await Deno.readFile(`${dir}/tokenizer.json`),
      "tokenizer_config.json": await Deno.readFile(`${dir}/tokenizer_config.json`),
    };
    const parsed = {
      "tokenizer.json": JSON.parse(new TextDecoder().decode(original["tokenizer.json"])),
      "tokenizer_config.json": JSON.parse(
        new TextDecoder().decode(original["tokenizer_config.json"]),
      ),
    };
    assert((await loadAndUse(dir, "the valid folder")) === "ok", "the valid folder loads");

    const rng = new Rng(77);
    const outcomes = { ok: 0, "user error": 0 };
    for (let i = 0; i < CASES; i++) {
      const file = FILES[i % 2];
      let bytes: Uint8Array;
      let what: string;
      const kind = rng.int(3);
      if (kind === 0) {
        const at = rng.int(original[file].length);
        bytes = original[file].slice(0, at);
        what = `${file} cut at byte ${at}`;
      } else if (kind === 1) {
        bytes = original[file].slice();
        const flips = 1 + rng.int(4);
        for (let f = 0; f < flips; f++) bytes[rng.int(bytes.length)] ^= 1 << rng.int(8);
        what = `${file} with ${flips} flipped bits (case ${i})`;
      } else {
        // Valid JSON, wrong value: one entry anywhere replaced (or deleted).
        const json = structuredClone(parsed[file]);
        const all = slots(json);
        const [parent, key] = all[rng.int(all.length)];
        const junk = JUNK[rng.int(JUNK.length)];
        if (rng.int(4) === 0) delete (parent as Json)[key];
        else (parent as Json)[key] = junk;
        bytes = new TextEncoder().encode(JSON.stringify(json));
        what = `${file} with ${key} = ${JSON.stringify(junk)} (case ${i})`;
      }
      for (const name of FILES) await Deno.writeFile(`${dir}/${name}`, original[name]);
      await Deno.writeFile(`${dir}/${file}`, bytes);
      outcomes[await loadAndUse(dir, what)]++;
    }
    assert(outcomes["user error"] > CASES / 4, `user errors: ${JSON.stringify(outcomes)}`);
    assert(outcomes.ok > 0, `some damage is harmless: ${JSON.stringify(outcomes)}`);
  });
});
