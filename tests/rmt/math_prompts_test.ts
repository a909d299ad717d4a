// Prompts and answers of math post-training (lib/rmt/math_prompts.ts): the compact and paper
// prompts (a fake chat template, and none), the answer extraction rules (\boxed{}, "Answer:",
// "####") and the reading of a generated response (reasoning length, stop token, answer only
// after </think>).

import {
  extractMathAnswer,
  MATH_INSTRUCTION,
  MATH_PROMPT,
  type MathPromptFormat,
  mathPromptText,
  parseMathResponse,
} from "../../lib/rmt/math_prompts.ts";
import type { ChatTemplater } from "../../lib/rmt/prompts.ts";
import { assert, assertEquals } from "../helpers.ts";

const compact: MathPromptFormat = {
  kind: "compact",
  template: MATH_PROMPT,
  instruction: MATH_INSTRUCTION,
  chat: null,
};

const paper = (chat: ChatTemplater | null): MathPromptFormat => ({
  kind: "paper",
  template: MATH_PROMPT,
  instruction: MATH_INSTRUCTION,
  chat,
});

/** A chat template in Qwen's style; `opensThink`: R1-distill's, which opens <think> itself. */
function fakeChat(opensThink: boolean) {
  const calls: { messages: { role: string; content: string }[]; generation: boolean }[] = [];
  const chat: ChatTemplater = {
    applyChatTemplate(messages, options) {
      calls.push({ messages: [...messages], generation: options?.addGenerationPrompt ?? false });
      const body = messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join("");
      return `${body}<|im_start|>assistant\n${opensThink ? "<think>\n" : ""}`;
    },
  };
  return { chat, calls };
}

Deno.test("math_prompts: the compact prompt fills {question} in the template", () => {
  assertEquals(
    mathPromptText("Compute 3 * 7.", compact),
    "Problem: Compute 3 * 7.\n<think>\n",
    "the default template",
  );
  const twice = { ...compact, template: "Q: {question}\nQ again: {question}\nA:" };
  assertEquals(mathPromptText("x?", twice), "Q: x?\nQ again: x?\nA:", "every {question}");
  // The question is inserted as written: "$$" (TeX display math), "$&" and "$'" are not
  // replacement patterns.
  const tex = "Solve $$x^2 = 4$$ for $x$ (cost $& and $' and $`).";
  assertEquals(mathPromptText(tex, compact), `Problem: ${tex}\n<think>\n`, "$ patterns kept");
});

Deno.test("math_prompts: the paper prompt without a chat template", () => {
  const text = mathPromptText("What is 2 + 2?", paper(null));
  assertEquals(text, `What is 2 + 2?\n\n${MATH_INSTRUCTION}\n\n<think>\n`, "plain template");
  assert(text.endsWith("<think>\n"), "opens the reasoning");
});

Deno.test("math_prompts: the paper prompt in a chat template; <think> never doubled", () => {
  const plain = fakeChat(false);
  const text = mathPromptText("What is 2 + 2?", paper(plain.chat));
  assertEquals(
    plain.calls,
    [{
      messages: [{ role: "user", content: `What is 2 + 2?\n\n${MATH_INSTRUCTION}` }],
      generation: true,
    }],
    "one user message with the instruction, with the generation prompt",
  );
  assertEquals(
    text,
    `<|im_start|>user\nWhat is 2 + 2?\n\n${MATH_INSTRUCTION}<|im_end|>\n` +
      "<|im_start|>assistant\n<think>\n",
    "the template, then <think>",
  );

  const r1 = fakeChat(true);
  const opened = mathPromptText("What is 2 + 2?", paper(r1.chat));
  assert(opened.endsWith("assistant\n<think>\n"), `ends with <think>: ${JSON.stringify(opened)}`);
  assertEquals(opened.split("<think>").length - 1, 1, "one <think> when the template opened it");
  assertEquals(opened, text, "the same prompt either way");
});

Deno.test("math_prompts: extractMathAnswer", () => {
  const cases: [string, string | null, string][] = [
    ["so \\boxed{42}.", "42", "boxed"],
    ["\\boxed{\\frac{1}{2}}", "\\frac{1}{2}", "nested braces"],
    ["\\boxed{ {a}{b{c}} }", "{a}{b{c}}", "deeper nesting, trimmed"],
    ["first \\boxed{1}, then \\boxed{2}", "2", "the last one wins"],
    ["\\boxed{3} and a cut-off \\boxed{4", "3", "an unclosed final \\boxed{ is skipped"],
    ["\\boxed{5}\nAnswer: 6", "5", "boxed before Answer:"],
    ["Answer: 7/5", "7/5", "Answer:"],
    ["Answer: 1\nmore steps\nAnswer:  8 \nthe end", "8", "the last Answer:, its line only"],
    ["Answer:\n9", null, "an empty Answer: line"],
    ["work\n#### 12", "12", "GSM8K ####"],
    ["#### 1\nAnswer: 13", "13", "Answer: before ####"],
    ["Answer: \n#### 14", "14", "an empty Answer: falls back to ####"],
    ["put your answer in \\boxed{}\nAnswer: 15", "15", "an empty \\boxed{} is no answer"],
    ["\\boxed{ }", null, "only an empty \\boxed{}"],
    ["no answer here, 42", null, "none"],
    ["", null, "empty text"],
  ];
  for (const [text, expected, what] of cases) {
    assertEquals(extractMathAnswer(text), expected, `${what}: ${JSON.stringify(text)}`);
  }
});

// A character-level fake vocabulary: ids are character codes, 1000 = </think>, 1001 and
// 1002 = stop tokens (decoded to nothing, like special tokens skipped).
const THINK_END = 1000;
const STOPS = [1001, 1002];
const encode = (text: string) => [...text].map((c) => c.charCodeAt(0));
const decode = (ids: readonly number[]) =>
  ids.map((id) => id === THINK_END ? "</think>" : id > 1000 ? "" : String.fromCharCode(id))
    .join("");

Deno.test("math_prompts: parseMathResponse", () => {
  const parse = (ids: number[], thinkEnd: number | null = THINK_END) =>
    parseMathResponse(ids, thinkEnd, STOPS, decode);

  // With </think>: ℓ = tokens before it; the answer from the text after it.
  const full = [...encode("2+2=4"), THINK_END, ...encode("Answer: 4"), 1001];
  assertEquals(parse(full), { answer: "4", reasoningLength: 5 }, "reasoning, then answer");
  assertEquals(parse(full.slice(0, -1)), { answer: "4", reasoningLength: 5 }, "no stop token");
  assertEquals(
    parse([THINK_END, ...encode("\\boxed{1/2}"), 1002]),
    { answer: "1/2", reasoningLength: 0 },
    "empty reasoning, the other stop token",
  );
  // The answer is read only after the first </think>: one inside the reasoning is ignored.
  assertEquals(
    parse([...encode("Answer: 3"), THINK_END, ...encode("no idea"), 1001]),
    { answer: null, reasoningLength: 9 },
    "an answer in the reasoning does not count",
  );
  assertEquals(
    parse([...encode("ab"), THINK_END, ...encode("x"), THINK_END, ...encode("Answer: 5")]),
    { answer: "5", reasoningLength: 2 },
    "the first </think> ends the reasoning",
  );

  // Without </think>: every token bar a final stop token; the answer from the whole text.
  assertEquals(
    parse([...encode("so Answer: 6"), 1001]),
    { answer: "6", reasoningLength: 12 },
    "no </think>: the stop token dropped",
  );
  assertEquals(
    parse(encode("still thinking")),
    { answer: null, reasoningLength: 14 },
    "cut off at the limit: every token",
  );
  assertEquals(
    parse([...encode("Answer: 7"), 1001], null),
    { answer: "7", reasoningLength: 9 },
    "a vocabulary without </think>",
  );
  // A stop token that is not the last token stays (generation stops at the first one).
  assertEquals(parse([1001, ...encode("ab")]).reasoningLength, 3, "a stop token mid-way");
  assertEquals(parse([]), { answer: null, reasoningLength: 0 }, "nothing generated");
  assertEquals(parse([1001]), { answer: null, reasoningLength: 0 }, "only the stop token");
});
