// Math problem files (lib/data/math_set.ts): the three accepted line shapes (the shipped
// corpus, GSM8K's "#### 42", MATH's problem/solution), numbers as answers, every error as one
// line naming the file (and line), and the shipped held-out file.

import { loadMathSet, parseMathSet, referenceAnswer } from "../../lib/data/math_set.ts";
import { answersMatch } from "../../lib/data/answers.ts";
import { assert, assertEquals, assertUserError, withTempDir } from "../helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

const line = (record: unknown) => JSON.stringify(record);

Deno.test("math_set: shipped-style lines keep question and answer, other fields ignored", () => {
  const text = [
    line({
      text: "Problem: Compute 3 * 7 + 29.\nAnswer: 50",
      question: "Compute 3 * 7 + 29.",
      answer: "50",
    }),
    "",
    line({ text: "...", question: "  Find 15% of 140. ", answer: " 21 ", topic: "percent" }),
    "   ",
  ].join("\n");
  assertEquals(
    parseMathSet(text, "train.jsonl"),
    [
      { question: "Compute 3 * 7 + 29.", answer: "50" },
      { question: "Find 15% of 140.", answer: "21" },
    ],
    "blank lines skipped, question and answer trimmed",
  );
});

Deno.test("math_set: GSM8K answers are the part after ####", () => {
  const text = line({
    question: "Natalia sold clips to 48 of her friends...",
    answer: "In April she sold 48/2 = <<48/2=24>>24 clips.\n48 + 24 = 72.\n#### 72",
  });
  assertEquals(parseMathSet(text, "gsm8k.jsonl"), [
    { question: "Natalia sold clips to 48 of her friends...", answer: "72" },
  ], "GSM8K");
  assertEquals(referenceAnswer("a #### 1 #### 2,000 "), "2,000", "the last ####");
  assertEquals(referenceAnswer(" 3/4 "), "3/4", "no ####: the field, trimmed");
});

Deno.test("math_set: MATH-style problem/solution; the reference matches the boxed value", () => {
  const solution = "We have $\\frac{1}{2} + \\frac{1}{4} = \\boxed{\\frac{3}{4}}$.";
  const [p] = parseMathSet(line({ problem: "What is 1/2 + 1/4?", solution }), "math.jsonl");
  assertEquals(p.question, "What is 1/2 + 1/4?", "problem → question");
  assertEquals(p.answer, solution, "the solution kept as written");
  assert(answersMatch("\\frac{3}{4}", p.answer), "normalizeAnswer unboxes the reference");
  const [q] = parseMathSet(line({ problem: "2 + 2?", solution: "So \\boxed{4}." }), "m.jsonl");
  assert(answersMatch("4", q.answer) && answersMatch("4.0", q.answer), "numeric boxed answer");
  // "question"/"answer" win over "problem"/"solution" when both are there.
  const [r] = parseMathSet(
    line({ question: "Q", problem: "P", answer: "1", solution: "\\boxed{2}" }),
    "both.jsonl",
  );
  assertEquals(r, { question: "Q", answer: "1" }, "question/answer first");
});

Deno.test("math_set: numbers as answers", () => {
  const text = [
    line({ question: "a", answer: 42 }),
    line({ question: "b", answer: 0 }),
    line({ question: "c", answer: -2.5 }),
    line({ question: "d", answer: null, solution: 7 }),
  ].join("\n");
  assertEquals(
    parseMathSet(text, "n.jsonl").map((p) => p.answer),
    ["42", "0", "-2.5", "7"],
    "numbers become their string (0 included)",
  );
});

Deno.test("math_set: every error is one line naming the file (and line)", async () => {
  const ok = line({ question: "q", answer: "1" });
  const cases: [string, string[], string][] = [
    [`${ok}\n{"question": "q", "answer": \n`, ["bad.jsonl:2", "not valid JSON"], "bad JSON"],
    [`${ok}\n\n[1, 2]`, ["bad.jsonl:3", "expected an object"], "an array"],
    [`"just text"`, ["bad.jsonl:1", "expected an object"], "a string"],
    [line({ answer: "1" }), ["bad.jsonl:1", '"question"'], "missing question"],
    [line({ question: "   ", answer: "1" }), ["bad.jsonl:1", '"question"'], "blank question"],
    [line({ question: 5, answer: "1" }), ["bad.jsonl:1", '"question"'], "question not a string"],
    [line({ question: "q" }), ["bad.jsonl:1", '"answer"'], "missing answer"],
    [line({ question: "q", answer: ["1"] }), ["bad.jsonl:1", '"answer"'], "answer a list"],
    [line({ question: "q", answer: "  " }), ["bad.jsonl:1", "answer is empty"], "empty answer"],
    [
      `${ok}\n${line({ question: "q", answer: "steps #### " })}`,
      ["bad.jsonl:2", "answer is empty"],
      "empty after ####",
    ],
    ["", ["bad.jsonl", "no math problems"], "empty file"],
    ["\n  \n\n", ["bad.jsonl", "no math problems"], "only blank lines"],
  ];
  for (const [text, fragments, what] of cases) {
    await assertUserError(() => parseMathSet(text, "bad.jsonl"), fragments, what);
  }
  await withTempDir(async (dir) => {
    await assertUserError(
      () => loadMathSet(`${dir}/missing.jsonl`),
      [`${dir}/missing.jsonl`, "not found"],
      "missing file",
    );
    await Deno.writeTextFile(`${dir}/bad.jsonl`, `${ok}\nnot json\n`);
    await assertUserError(() => loadMathSet(`${dir}/bad.jsonl`), [`${dir}/bad.jsonl:2`], "file");
  });
});

Deno.test("math_set: the shipped held-out file has 400 problems with answers", async () => {
  const problems = await loadMathSet(`${ROOT}data/math/heldout.jsonl`);
  assertEquals(problems.length, 400, "problems");
  for (const [i, p] of problems.entries()) {
    assert(p.question.length > 0 && p.answer.length > 0, `problem ${i + 1}: ${JSON.stringify(p)}`);
    assert(answersMatch(p.answer, p.answer), `problem ${i + 1}: its answer matches itself`);
  }
});
