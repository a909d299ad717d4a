// The shipped corpus in data/math/ is exactly what the generator produces from its seed (so
// the files and the generator cannot drift apart), and has the promised shape.

import { SHIPPED_MATH_CORPUS, shippedCorpusFiles } from "../../lib/data/shipped_corpus.ts";
import { assert, assertEquals } from "../model/model_helpers.ts";

const REPO = new URL("../../", import.meta.url);
const FIX = "regenerate them with ./rmtw run -A tools/make_corpus.ts and ship the new files";

Deno.test("shipped corpus: data/math/ matches the generator byte for byte", async () => {
  for (const [name, contents] of Object.entries(shippedCorpusFiles())) {
    const path = `${SHIPPED_MATH_CORPUS.dir}/${name}`;
    const shipped = await Deno.readFile(new URL(path, REPO));
    const expected = new TextEncoder().encode(contents);
    let same = shipped.length === expected.length;
    for (let i = 0; same && i < expected.length; i++) same = shipped[i] === expected[i];
    assert(same, `${path} differs from what the generator produces: ${FIX}`);
  }
});

Deno.test("shipped corpus: sizes, fields, and no question in both splits", async () => {
  const read = async (name: string) => {
    const text = await Deno.readTextFile(new URL(`${SHIPPED_MATH_CORPUS.dir}/${name}`, REPO));
    return { bytes: new TextEncoder().encode(text).length, rows: text.trimEnd().split("\n") };
  };
  const train = await read("train.jsonl");
  const heldout = await read("heldout.jsonl");
  assertEquals(train.rows.length, SHIPPED_MATH_CORPUS.train, "train documents");
  assertEquals(heldout.rows.length, SHIPPED_MATH_CORPUS.heldout, "held-out documents");
  const total = train.bytes + heldout.bytes;
  assert(total >= 1e6 && total <= 2e6, `corpus size ${total} bytes is not 1-2 MB`);
  const questions = new Set<string>();
  let thinking = 0;
  for (const [split, rows] of [["train", train.rows], ["heldout", heldout.rows]] as const) {
    for (const row of rows) {
      const record = JSON.parse(row);
      assertEquals(Object.keys(record), ["text", "question", "answer"], `${split} fields`);
      assert(record.text.startsWith(`Problem: ${record.question}\n`), `${split}: text start`);
      assert(record.text.endsWith(`\nAnswer: ${record.answer}`), `${split}: text end`);
      assert(!questions.has(record.question), `question repeated: ${record.question}`);
      questions.add(record.question);
      if (record.text.includes("<think>")) thinking++;
    }
  }
  const share = thinking / questions.size;
  assert(Math.abs(share - SHIPPED_MATH_CORPUS.thinkFraction) < 0.05, `think share ${share}`);
});
