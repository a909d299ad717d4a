// The math corpus generator: determinism, variety, every answer and every worked step
// correct (checked by tests/data/math_check.ts, written independently of the generator), the
// document layout, and the fraction of documents that think inside <think> tags.

import {
  generateCorpus,
  generateMathDocument,
  type MathDocument,
  normalizeAnswer,
  PROBLEM_KINDS,
} from "../../lib/data/math_corpus.ts";
import { Rng } from "../helpers.ts";
import { assert, assertEquals } from "../model/model_helpers.ts";
import { arithmeticClaims, recomputeAnswer } from "./math_check.ts";

Deno.test("math corpus: the same seed gives the same documents, another seed others", () => {
  const a = generateCorpus({ seed: 11, count: 300 });
  const b = generateCorpus({ seed: 11, count: 300 });
  const c = generateCorpus({ seed: 12, count: 300 });
  assertEquals(a, b, "two runs with seed 11");
  assert(JSON.stringify(a) !== JSON.stringify(c), "seeds 11 and 12 gave the same corpus");
  const one = generateMathDocument(new Rng(5), "fractions", true);
  assertEquals(one, generateMathDocument(new Rng(5), "fractions", true), "one document");
});

Deno.test("math corpus: questions vary, overall and within every kind", () => {
  const documents = generateCorpus({ seed: 3, count: 1000 });
  const distinct = new Set(documents.map((d) => d.question)).size;
  assert(distinct >= 900, `only ${distinct} distinct questions among 1000`);
  for (const kind of PROBLEM_KINDS) {
    const ofKind = generateCorpus({ seed: 4, count: 300, kinds: [kind] });
    const questions = new Set(ofKind.map((d) => d.question)).size;
    assert(questions >= 255, `${kind}: only ${questions} distinct questions among 300`);
    // Several templates per kind: the questions' first three words differ.
    const openings = new Set(ofKind.map((d) => d.question.split(" ").slice(0, 3).join(" ")));
    assert(openings.size >= 3, `${kind}: only ${openings.size} question openings`);
    assert(ofKind.every((d) => d.kind === kind), `${kind}: a document of another kind`);
  }
  const kinds = new Set(documents.map((d) => d.kind));
  assertEquals(kinds.size, PROBLEM_KINDS.length, "kinds drawn in 1000 documents");
  const distinctRun = generateCorpus({ seed: 3, count: 1000, distinct: true });
  assertEquals(new Set(distinctRun.map((d) => d.question)).size, 1000, "distinct: true");
});

/** Checks one document's layout and the correctness of its steps and answer. */
function checkDocument(d: MathDocument): { recomputed: boolean } {
  const what = `${d.kind} document ${JSON.stringify(d.text)}`;
  assertEquals(d.text, `Problem: ${d.question}\n${d.solution}`, `${what}: text`);
  assert(d.text.endsWith(`\nAnswer: ${d.answer}`), `${what}: does not end with the answer`);
  assert(!d.question.includes("\n"), `${what}: multi-line question`);
  const thinks = d.solution.startsWith("<think>\n") &&
    d.solution.includes(`\n</think>\nAnswer: ${d.answer}`);
  assertEquals(thinks, d.think, `${what}: <think> layout`);
  assertEquals(d.text.split("<think>").length - 1, d.think ? 1 : 0, `${what}: <think> count`);
  assert(!d.text.includes("\n\n"), `${what}: blank line inside the document`);
  assertEquals(normalizeAnswer(d.answer), d.answer, `${what}: answer not in canonical form`);

  const claims = arithmeticClaims(d.solution);
  assert(claims.length > 0, `${what}: no computation in the steps`);
  for (const { claim, holds } of claims) assert(holds, `${what}: false step ${claim}`);
  const steps = d.solution.slice(0, d.solution.lastIndexOf("\nAnswer:"));
  assert(
    new RegExp(`(^|[ :=])${d.answer.replace(/[./]/g, "\\$&")}([ .,]|$)`, "m").test(steps),
    `${what}: the steps never reach the answer`,
  );
  const recomputed = recomputeAnswer(d.kind, d.question, d.answer);
  if (recomputed !== null) assert(recomputed, `${what}: wrong answer ${d.answer}`);
  return { recomputed: recomputed !== null };
}

Deno.test("math corpus: every answer and every worked step is correct", () => {
  const documents = generateCorpus({ seed: 2025, count: 4000 });
  const recomputed: Record<string, number> = {};
  for (const d of documents) {
    if (checkDocument(d).recomputed) recomputed[d.kind] = (recomputed[d.kind] ?? 0) + 1;
  }
  // The kinds whose questions state the computation were all recomputed from the question.
  for (const kind of ["arithmetic", "fractions", "equation"]) {
    const total = documents.filter((d) => d.kind === kind).length;
    assertEquals(recomputed[kind], total, `${kind} answers recomputed`);
  }
  for (const kind of ["percent", "speed", "sharing"]) {
    assert((recomputed[kind] ?? 0) > 100, `${kind}: only ${recomputed[kind]} recomputed`);
  }
});

Deno.test("math corpus: the think fraction is honoured", () => {
  for (const thinkFraction of [0, 0.2, 0.5, 1]) {
    const documents = generateCorpus({ seed: 9, count: 3000, thinkFraction });
    const thinking = documents.filter((d) => d.text.includes("<think>")).length / 3000;
    assert(
      Math.abs(thinking - thinkFraction) <= 0.03,
      `thinkFraction ${thinkFraction}: ${thinking} of the documents think`,
    );
    assert(documents.every((d) => d.think === d.text.includes("</think>")), "think flag");
  }
  const defaults = generateCorpus({ seed: 10, count: 3000 });
  const share = defaults.filter((d) => d.think).length / 3000;
  assert(Math.abs(share - 0.5) <= 0.03, `default think fraction: ${share}`);
});

Deno.test("math corpus: bad options are refused", () => {
  let message = "";
  try {
    generateCorpus({ seed: 1, count: 5, thinkFraction: 1.5 });
  } catch (e) {
    message = (e as Error).message;
  }
  assert(message.includes("thinkFraction 1.5"), `message: ${message}`);
});
