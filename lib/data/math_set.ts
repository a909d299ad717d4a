// Math problems with verifiable answers, for GRPO post-training (method grpo-math) and the math
// evaluation (`rmt eval --task math`): a JSONL file, one problem per line.
//
//   {"question": "...", "answer": "42"}                 the shipped corpus (data/math/*.jsonl)
//   {"question": "...", "answer": "... #### 42"}        GSM8K: the answer after "####"
//   {"problem": "...", "solution": "... \boxed{42}"}    MATH-style: the last \boxed{} (kept
//                                                       as written; normalizeAnswer unboxes)
//
// Other fields are ignored. The reference answer is compared with answersMatch (answers.ts).

import { UserError } from "../gpu/errors.ts";

export interface MathProblem {
  question: string;
  /** The reference final answer (as written; compared after normalisation). */
  answer: string;
}

/** The reference answer of an answer/solution field: the part after GSM8K's "####" if any. */
export function referenceAnswer(field: string): string {
  const marker = field.lastIndexOf("####");
  return (marker >= 0 ? field.slice(marker + 4) : field).trim();
}

/** Parses JSONL text of math problems; `source` names the file in errors. */
export function parseMathSet(text: string, source: string): MathProblem[] {
  const problems: MathProblem[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    const where = `${source}:${i + 1}`;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      throw new UserError(`${where}: not valid JSON (expected one problem object per line)`);
    }
    if (typeof json !== "object" || json === null || Array.isArray(json)) {
      throw new UserError(`${where}: expected an object with "question" and "answer"`);
    }
    const record = json as Record<string, unknown>;
    const question = record.question ?? record.problem;
    const answer = record.answer ?? record.solution;
    if (typeof question !== "string" || question.trim() === "") {
      throw new UserError(`${where}: "question" (or "problem") must be a non-empty string`);
    }
    if (typeof answer !== "string" && typeof answer !== "number") {
      throw new UserError(`${where}: "answer" (or "solution") must be a string or a number`);
    }
    const reference = referenceAnswer(String(answer));
    if (reference === "") throw new UserError(`${where}: the answer is empty`);
    problems.push({ question: question.trim(), answer: reference });
  });
  if (problems.length === 0) throw new UserError(`${source}: no math problems in the file`);
  return problems;
}

/** Reads a JSONL file of math problems. */
export async function loadMathSet(path: string): Promise<MathProblem[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(`${path}: math problem file not found`);
    }
    throw new UserError(`${path}: cannot read: ${(e as Error).message}`);
  }
  return parseMathSet(text, path);
}
