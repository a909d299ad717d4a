// The two prompt formats of a next-token reasoning problem, and how a rollout is read back
// (spec: "Prompt formats").
//
// compact (small models trained here; needs <think> and </think> in the vocabulary):
//   prompt    = context ids, <think>
//   rollout   = reasoning ids ..., </think>, prediction id [, anything after is ignored]
//   "the very next sampled token is the prediction (compare token ids; no text parsing)"
// paper (instruction / reasoning LLMs, RPT's template):
//   user message = instruction [+ budget sentence] + "\n\n### Context\n" + context text
//   prompt       = the chat template around it (when the tokenizer has one), then "<think>\n"
//                  unless the template already opened the think block
//   "the prediction is the last \boxed{...} after </think>"
//
// Reasoning length ℓ (for the length reward and the budget cap) is the number of generated
// tokens before </think>. A rollout without </think> (it hit the cap, or stopped) is
// unparseable, and so is one with nothing after </think> (compact) or no complete \boxed{...}
// after it (paper): r_pos = 0.
//
// The template wording: RPT's exact prompt text was not available to us, so the instruction
// below is ours, written to RPT's description (reason step by step, next token in \boxed{},
// "### Context"). Both sentences are config keys (prompt.paper_instruction,
// prompt.paper_budget_sentence), so a run can use any wording and records the one it used.

export const PROMPT_FORMATS = ["compact", "paper"] as const;
export type PromptFormat = typeof PROMPT_FORMATS[number];

/** The default instruction of the paper format (config prompt.paper_instruction). */
export const PAPER_INSTRUCTION = "Predict the next token of the text under ### Context. " +
  "Reason step by step about what comes next, then give the next token inside \\boxed{}: " +
  "exactly the characters that continue the text, nothing else.";

/** The default budget sentence, added in RMT mode; {budget} becomes B_t. */
export const PAPER_BUDGET_SENTENCE = "Use exactly {budget} tokens of reasoning.";

/** What the paper format needs from a chat template (TextTokenizer has it). */
export interface ChatTemplater {
  applyChatTemplate(
    messages: readonly { role: string; content: string }[],
    options?: { addGenerationPrompt?: boolean },
  ): string;
}

/** A rollout read back. */
export interface ParsedRollout {
  /** An answer was found: </think> and (compact) a token after it / (paper) a \boxed{}. */
  parseable: boolean;
  /** ℓ: generated tokens before </think> (all of them, end-of-text excluded, when missing). */
  reasoningLength: number;
  /** compact: the predicted token id; null for paper and when unparseable. */
  predictionId: number | null;
  /** paper: the text inside the last \boxed{...} after </think>; null otherwise. */
  answerText: string | null;
}

/** Reasoning length when there is no </think>: every token, bar a final end-of-text token. */
function lengthWithoutThinkEnd(generated: readonly number[], endOfText?: number): number {
  const n = generated.length;
  return n > 0 && endOfText !== undefined && generated[n - 1] === endOfText ? n - 1 : n;
}

// ---- compact --------------------------------------------------------------------------------

/** The compact prompt: context ids then <think>. [contextLength] → [contextLength + 1] */
export function buildCompactPrompt(contextIds: readonly number[], thinkStart: number): number[] {
  return [...contextIds, thinkStart];
}

/**
 * Reads a compact rollout (the generated ids after the prompt): the token after the first
 * </think> is the prediction. endOfText: a stop token not counted as reasoning when the
 * rollout never closed its think block.
 */
export function parseCompactRollout(
  generated: readonly number[],
  thinkEnd: number,
  endOfText?: number,
): ParsedRollout {
  const end = generated.indexOf(thinkEnd);
  if (end < 0) {
    return {
      parseable: false,
      reasoningLength: lengthWithoutThinkEnd(generated, endOfText),
      predictionId: null,
      answerText: null,
    };
  }
  const hasPrediction = end + 1 < generated.length;
  return {
    parseable: hasPrediction,
    reasoningLength: end,
    predictionId: hasPrediction ? generated[end + 1] : null,
    answerText: null,
  };
}

// ---- paper ----------------------------------------------------------------------------------

export interface PaperTemplate {
  instruction: string;
  /** Contains {budget}. */
  budgetSentence: string;
}

/** The user message: instruction [+ " " + budget sentence] + "\n\n### Context\n" + context. */
export function paperUserMessage(
  contextText: string,
  budget: number | null,
  template: PaperTemplate = {
    instruction: PAPER_INSTRUCTION,
    budgetSentence: PAPER_BUDGET_SENTENCE,
  },
): string {
  const sentence = budget === null
    ? ""
    : " " + template.budgetSentence.replaceAll("{budget}", String(budget));
  return `${template.instruction}${sentence}\n\n### Context\n${contextText}`;
}

/** Matches a prompt that already ends inside an opened think block (e.g. R1-distill's). */
const OPEN_THINK = /<think>\s*$/;

/**
 * The full paper-format prompt text: the user message inside the chat template (plain, then a
 * blank line, without one), ending with "<think>\n" so that generation starts in the reasoning.
 */
export function paperPromptText(
  contextText: string,
  budget: number | null,
  chat: ChatTemplater | null,
  template?: PaperTemplate,
): string {
  const message = paperUserMessage(contextText, budget, template);
  return chatPromptText(message, chat);
}

/**
 * A user message as a prompt that opens the reasoning: inside the chat template (plain: the
 * message and a blank line), ending with "<think>\n" unless the template already opened it.
 */
export function chatPromptText(message: string, chat: ChatTemplater | null): string {
  const rendered = chat === null
    ? `${message}\n\n`
    : chat.applyChatTemplate([{ role: "user", content: message }], { addGenerationPrompt: true });
  return OPEN_THINK.test(rendered) ? rendered : `${rendered}<think>\n`;
}

/**
 * The content of the last complete \boxed{...} in `text` (braces inside balanced), or null.
 * A final \boxed{ that never closes (a truncated answer) is skipped in favour of an earlier one.
 */
export function lastBoxed(text: string): string | null {
  const marker = "\\boxed{";
  let from = text.length;
  while (from >= 0) {
    const start = text.lastIndexOf(marker, from);
    if (start < 0) return null;
    let depth = 1;
    for (let i = start + marker.length; i < text.length; i++) {
      if (text[i] === "{") depth++;
      else if (text[i] === "}" && --depth === 0) return text.slice(start + marker.length, i);
    }
    from = start - 1;
  }
  return null;
}

/**
 * Reads a paper-format rollout: the answer is the last \boxed{...} in the text decoded from the
 * tokens after the first </think> token. decode: ids → text.
 */
export function parsePaperRollout(
  generated: readonly number[],
  thinkEnd: number,
  decode: (ids: readonly number[]) => string,
  endOfText?: number,
): ParsedRollout {
  const end = generated.indexOf(thinkEnd);
  if (end < 0) {
    return {
      parseable: false,
      reasoningLength: lengthWithoutThinkEnd(generated, endOfText),
      predictionId: null,
      answerText: null,
    };
  }
  const answer = lastBoxed(decode(generated.slice(end + 1)));
  return {
    parseable: answer !== null,
    reasoningLength: end,
    predictionId: null,
    answerText: answer,
  };
}
