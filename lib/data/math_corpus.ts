// A generated corpus of math problems with worked solutions, in the spirit of OmniMATH but
// sized for the small models rmt pre-trains itself: integer arithmetic, fractions,
// percentages, linear equations and word problems (shopping, speed, ages, sharing).
//
// A document reads:
//
//   Problem: What is 15% of 240?
//   Write 15% as the fraction 15/100.            ← the worked steps, one per line
//   Then 15/100 * 240 = 36.
//   So 15% of 240 is 36.
//   Answer: 36
//
// and in a "thinking" document (a configurable fraction, 50% by default) the same steps sit
// inside <think> … </think> before the answer line, so that a model pre-trained on the corpus
// learns to reason between those tags before it answers (RMT's compact prompt format):
//
//   Problem: What is 15% of 240?
//   <think>
//   Write 15% as the fraction 15/100.
//   ...
//   </think>
//   Answer: 36
//
// Everything is drawn from one seeded RNG: the same seed gives the same corpus, byte for byte.

import { Rng } from "../ref/random.ts";
import { PROBLEM_GENERATORS, PROBLEM_KINDS, type ProblemKind } from "./math_problems.ts";

export { answersMatch, normalizeAnswer } from "./answers.ts";
export { PROBLEM_KINDS, type ProblemKind } from "./math_problems.ts";

export interface MathDocument {
  kind: ProblemKind;
  /** The problem statement (without the "Problem: " prefix). */
  question: string;
  /** Everything after the problem line: the steps (maybe inside <think>) and "Answer: …". */
  solution: string;
  /** The final answer, a plain number ("17", "7.5", "3/4"). */
  answer: string;
  /** Whether the steps are inside <think> … </think>. */
  think: boolean;
  /** The whole document: "Problem: " + question + "\n" + solution. */
  text: string;
}

/** The fraction of documents whose working is inside <think> tags, unless told otherwise. */
export const DEFAULT_THINK_FRACTION = 0.5;

/**
 * One document. `kind` defaults to a uniform draw over PROBLEM_KINDS; `think` to a draw with
 * probability DEFAULT_THINK_FRACTION. Draws everything from `rng`, advancing it.
 */
export function generateMathDocument(
  rng: Rng,
  kind: ProblemKind = PROBLEM_KINDS[rng.int(PROBLEM_KINDS.length)],
  think: boolean = rng.next() < DEFAULT_THINK_FRACTION,
): MathDocument {
  const problem = PROBLEM_GENERATORS[kind](rng);
  const working = problem.steps.join("\n");
  const answerLine = `Answer: ${problem.answer}`;
  const solution = think
    ? `<think>\n${working}\n</think>\n${answerLine}`
    : `${working}\n${answerLine}`;
  return {
    kind,
    question: problem.question,
    solution,
    answer: problem.answer,
    think,
    text: `Problem: ${problem.question}\n${solution}`,
  };
}

export interface CorpusGenerationOptions {
  seed: number;
  /** Number of documents. */
  count: number;
  /** Fraction of documents with their working inside <think> tags (default 0.5). */
  thinkFraction?: number;
  /** Skip documents whose question already appeared, so every question is distinct. */
  distinct?: boolean;
  /** The kinds to draw from, uniformly (default: all of PROBLEM_KINDS). */
  kinds?: readonly ProblemKind[];
}

/** `count` documents from one RNG seeded with `seed`: same options, same documents. */
export function generateCorpus(options: CorpusGenerationOptions): MathDocument[] {
  const { seed, count, distinct = false, kinds = PROBLEM_KINDS } = options;
  const thinkFraction = options.thinkFraction ?? DEFAULT_THINK_FRACTION;
  if (!(thinkFraction >= 0 && thinkFraction <= 1)) {
    throw new Error(`math corpus: thinkFraction ${thinkFraction} is not in [0, 1]`);
  }
  if (kinds.length === 0) throw new Error("math corpus: no problem kinds to draw from");
  const rng = new Rng(seed);
  const seen = new Set<string>();
  const documents: MathDocument[] = [];
  for (let attempts = 0; documents.length < count; attempts++) {
    if (attempts > 100 * count + 1000) {
      throw new Error(`math corpus: could not draw ${count} distinct questions`);
    }
    const kind = kinds[rng.int(kinds.length)];
    const think = rng.next() < thinkFraction;
    const document = generateMathDocument(rng, kind, think);
    if (distinct) {
      if (seen.has(document.question)) continue;
      seen.add(document.question);
    }
    documents.push(document);
  }
  return documents;
}
