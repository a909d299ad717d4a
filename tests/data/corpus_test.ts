// Corpus input: .txt (blank-line documents, or one per file), .jsonl with a chosen text
// field, folders; every bad input gives a one-line UserError naming the file (and line); the
// train / held-out split is deterministic and by document.

import { loadCorpus, splitDocuments } from "../../lib/data/corpus.ts";
import { assert, assertEquals, assertUserError, withTempDir } from "../model/model_helpers.ts";

Deno.test("corpus: .txt documents are separated by blank lines, or one per file", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/notes.txt`;
    await Deno.writeTextFile(
      path,
      "\n\nFirst document,\nsecond line.\n\n\nSecond document.\r\n  \r\nThird.\n \t\n\n",
    );
    const corpus = await loadCorpus(path);
    assertEquals(
      corpus.documents,
      ["First document,\nsecond line.", "Second document.", "Third."],
      "paragraph documents",
    );
    assertEquals(corpus.files.map((f) => f.path), [path], "files");
    assertEquals(corpus.options, { textField: "text", txtDocuments: "paragraphs" }, "options");
    const whole = await loadCorpus(path, { txtDocuments: "file" });
    assertEquals(whole.documents.length, 1, "one document per file");
    assert(whole.documents[0].startsWith("First document,"), "the whole file, trimmed");
  });
});

Deno.test("corpus: .jsonl with a configurable text field; folders in sorted order", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/sub/deeper`, { recursive: true });
    await Deno.writeTextFile(
      `${dir}/b.jsonl`,
      '{"body": "beta one", "n": 1}\n\n{"body": "beta \\"two\\""}\r\n{"body": "  "}\n',
    );
    await Deno.writeTextFile(`${dir}/a.txt`, "alpha one\n\nalpha two\n");
    await Deno.writeTextFile(`${dir}/sub/deeper/c.txt`, "gamma\n");
    await Deno.writeTextFile(`${dir}/sub/ignored.md`, "not a corpus file\n");
    await Deno.writeTextFile(`${dir}/.hidden.txt`, "hidden\n");
    const jsonl = await loadCorpus(`${dir}/b.jsonl`, { textField: "body" });
    assertEquals(jsonl.documents, ["beta one", 'beta "two"'], "jsonl documents");
    const folder = await loadCorpus(`${dir}/`, { textField: "body" });
    assertEquals(
      folder.documents,
      ["alpha one", "alpha two", "beta one", 'beta "two"', "gamma"],
      "folder documents",
    );
    assertEquals(
      folder.files.map((f) => f.path.slice(dir.length)),
      ["/a.txt", "/b.jsonl", "/sub/deeper/c.txt"],
      "folder files",
    );
    assertEquals(folder.source, dir, "trailing slash removed");
  });
});

Deno.test("corpus: every bad input is a one-line error naming the file", async () => {
  await withTempDir(async (dir) => {
    const write = (name: string, text: string) => Deno.writeTextFile(`${dir}/${name}`, text);
    await assertUserError(
      () => loadCorpus(`${dir}/missing.jsonl`),
      ["missing.jsonl", "no such corpus file or folder"],
      "missing file",
    );
    await write("empty.txt", "\n  \n\n");
    await assertUserError(
      () => loadCorpus(`${dir}/empty.txt`),
      ["empty.txt", "no documents"],
      "empty corpus",
    );
    await write("empty.jsonl", "");
    await assertUserError(
      () => loadCorpus(`${dir}/empty.jsonl`),
      ["empty.jsonl", "no documents"],
      "empty JSONL",
    );
    await write("bad.jsonl", '{"text": "fine"}\n{"text": "fine"}\n{"text": broken\n');
    await assertUserError(
      () => loadCorpus(`${dir}/bad.jsonl`),
      ["bad.jsonl:3", "not valid JSON"],
      "a line that is not JSON",
    );
    await write("array.jsonl", '{"text": "fine"}\n["text"]\n');
    await assertUserError(
      () => loadCorpus(`${dir}/array.jsonl`),
      ["array.jsonl:2", "expected a JSON object", "an array"],
      "a line that is not an object",
    );
    await write("field.jsonl", '{"text": "fine"}\n\n{"content": "other"}\n');
    await assertUserError(
      () => loadCorpus(`${dir}/field.jsonl`),
      ["field.jsonl:3", 'no "text" field'],
      "missing text field",
    );
    await assertUserError(
      () => loadCorpus(`${dir}/field.jsonl`, { textField: "content" }),
      ["field.jsonl:1", 'no "content" field'],
      "missing custom text field",
    );
    await write("number.jsonl", '{"text": "fine"}\n{"text": 42}\n');
    await assertUserError(
      () => loadCorpus(`${dir}/number.jsonl`),
      ["number.jsonl:2", 'field "text" is a number, not a string'],
      "text field not a string",
    );
    await Deno.writeFile(`${dir}/latin1.txt`, new Uint8Array([0x63, 0x61, 0x66, 0xe9, 0x0a]));
    await assertUserError(
      () => loadCorpus(`${dir}/latin1.txt`),
      ["latin1.txt", "not valid UTF-8"],
      "invalid UTF-8",
    );
    await write("data.csv", "a,b\n");
    await assertUserError(
      () => loadCorpus(`${dir}/data.csv`),
      ["data.csv", "unsupported corpus file type"],
      "unsupported extension",
    );
    await Deno.mkdir(`${dir}/nothing`);
    await write("nothing/readme.md", "hello\n");
    await assertUserError(
      () => loadCorpus(`${dir}/nothing`),
      ["nothing", "no .txt or .jsonl files"],
      "folder without corpus files",
    );
    await Deno.mkdir(`${dir}/blank`);
    await write("blank/a.txt", "\n\n");
    await assertUserError(
      () => loadCorpus(`${dir}/blank`),
      ["blank", "the corpus has no documents"],
      "folder of empty files",
    );
  });
});

Deno.test("corpus: the split is deterministic, by document, and disjoint", () => {
  const documents = Array.from({ length: 500 }, (_, i) => `document number ${i}`);
  documents.push("a duplicated document", "a duplicated document"); // 501 distinct texts
  const split = splitDocuments(documents, { seed: 7, heldoutFraction: 0.1 });
  assertEquals(split, splitDocuments(documents, { seed: 7, heldoutFraction: 0.1 }), "repeat");
  assertEquals(split.heldout.length + split.train.length, documents.length, "every document");
  const heldoutTexts = new Set(split.heldout.map((i) => documents[i]));
  assertEquals(heldoutTexts.size, 50, "round(0.1 × 501 distinct texts) held out");
  for (const i of split.train) {
    assert(!heldoutTexts.has(documents[i]), `train document ${i} is also held out`);
  }
  const sorted = (xs: number[]) => xs.every((x, i) => i === 0 || xs[i - 1] < x);
  assert(sorted(split.train) && sorted(split.heldout), "indices ascending");

  const other = splitDocuments(documents, { seed: 8, heldoutFraction: 0.1 });
  assert(JSON.stringify(other) !== JSON.stringify(split), "another seed, another split");
  // The split follows the texts, not their positions: reordering keeps each text's side.
  const reversed = [...documents].reverse();
  const reversedSplit = splitDocuments(reversed, { seed: 7, heldoutFraction: 0.1 });
  assertEquals(
    reversedSplit.heldout.map((i) => reversed[i]).sort(),
    [...heldoutTexts].sort(),
    "held-out texts after reordering",
  );

  assertEquals(splitDocuments(["a", "b", "c"], { seed: 1, heldoutFraction: 0 }).heldout, [], "0");
  assertEquals(
    splitDocuments(["a", "b", "c"], { seed: 1, heldoutFraction: 0.01 }).heldout.length,
    1,
    "at least one",
  );
  assertEquals(
    splitDocuments(["a", "b"], { seed: 1, heldoutFraction: 0.9 }).train.length,
    1,
    "never all",
  );
});

Deno.test("corpus: a held-out fraction outside [0, 1) is refused", async () => {
  for (const heldoutFraction of [-0.1, 1, Number.NaN]) {
    await assertUserError(
      () => splitDocuments(["a", "b"], { seed: 1, heldoutFraction }),
      ["held-out fraction", String(heldoutFraction)],
      `fraction ${heldoutFraction}`,
    );
  }
});
