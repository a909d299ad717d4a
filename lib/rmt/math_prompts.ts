// Prompts and answers of math post-training (method grpo-math) and of the math evaluation.
//
// compact (small models trained here on the shipped corpus, whose documents read
// "Problem: <question>\n<think>\n<steps>\n</think>\nAnswer: <answer>"):
//   prompt  = config math.prompt with {question} filled in (default "Problem: {question}\n<think>\n")
// paper (chat / reasoning models, e.g. R1-Distill, Qwen3):
//   prompt  = the chat template around "<question>\n\n<math.instruction>" (DeepSeek-R1's
//             "Please reason step by step, and put your final answer within \boxed{}."),
//             then "<think>\n" unless the template opened the think block already
//
// The answer of a response is read from its text after the first </think> (the whole text
// when there is none): the last complete \boxed{...} (unless empty); else what follows the last
// "Answer:" on its line; else what follows the last "####" (GSM8K). Reasoning length: the
// tokens before the first </think> (every token, bar a final stop token, without one).

import { chatPromptText, type ChatTemplater, lastBoxed } from "./prompts.ts";

/** The default compact template (config math.prompt). */
export const MATH_PROMPT = "Problem: {question}\n<think>\n";
/** The default paper-format instruction (config math.instruction). */
export const MATH_INSTRUCTION =
  "Please reason step by step, and put your final answer within \\boxed{}.";

export interface MathPromptFormat {
  kind: "compact" | "paper";
  /** compact: the template, with {question}. */
  template: string;
  /** paper: the instruction after the question. */
  instruction: string;
  /** paper: the chat template, or null for the plain one. */
  chat: ChatTemplater | null;
}

/** The prompt text of one question. */
export function mathPromptText(question: string, format: MathPromptFormat): string {
  // A replacer function: a string replacement would read "$$" (TeX display math) as "$".
  if (format.kind === "compact") return format.template.replaceAll("{question}", () => question);
  return chatPromptText(`${question}\n\n${format.instruction}`, format.chat);
}

/** The final answer in a response text (see the top of this file), or null. */
export function extractMathAnswer(text: string): string | null {
  const boxed = lastBoxed(text)?.trim() ?? "";
  if (boxed !== "") return boxed; // an empty \boxed{} (the instruction echoed) is no answer
  const answer = text.lastIndexOf("Answer:");
  if (answer >= 0) {
    const line = text.slice(answer + "Answer:".length).split("\n")[0].trim();
    if (line !== "") return line;
  }
  const hashes = text.lastIndexOf("####");
  if (hashes >= 0) {
    const line = text.slice(hashes + 4).split("\n")[0].trim();
    if (line !== "") return line;
  }
  return null;
}

/** A math response read back. */
export interface MathResponse {
  /** The extracted final answer, or null (unparseable). */
  answer: string | null;
  /** Tokens before the first </think> (all, bar a final stop token, without one). */
  reasoningLength: number;
}

/**
 * Reads a generated response: ids after the prompt (a final stop id included when it stopped).
 * decode: ids → text; thinkEnd: the </think> id (null when the vocabulary has none).
 */
export function parseMathResponse(
  generated: readonly number[],
  thinkEnd: number | null,
  stopTokens: readonly number[],
  decode: (ids: readonly number[]) => string,
): MathResponse {
  const n = generated.length;
  const body = n > 0 && stopTokens.includes(generated[n - 1])
    ? generated.slice(0, n - 1)
    : generated;
  const end = thinkEnd === null ? -1 : body.indexOf(thinkEnd);
  const answerIds = end < 0 ? body : body.slice(end + 1);
  return {
    answer: extractMathAnswer(decode(answerIds)),
    reasoningLength: end < 0 ? body.length : end,
  };
}
