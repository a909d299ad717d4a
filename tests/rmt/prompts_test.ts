// Prompt formats: build and parse round trips for compact (token ids) and paper (template text,
// chat template, \boxed{} after </think>), with small fake tokenizers.

import {
  buildCompactPrompt,
  type ChatTemplater,
  lastBoxed,
  paperPromptText,
  paperUserMessage,
  parseCompactRollout,
  parsePaperRollout,
} from "../../lib/rmt/prompts.ts";
import { prefixMatchReward } from "../../lib/rmt/rewards.ts";
import { assert, assertEquals, FakeTokenizer } from "./rmt_helpers.ts";

const THINK = 1;
const END_THINK = 2;
const EOT = 3;

Deno.test("prompts: compact build and parse", () => {
  assertEquals(buildCompactPrompt([10, 11, 12], THINK), [10, 11, 12, THINK], "prompt");
  const full = parseCompactRollout([20, 21, 22, END_THINK, 42, EOT], END_THINK, EOT);
  assertEquals(
    full,
    { parseable: true, reasoningLength: 3, predictionId: 42, answerText: null },
    "rollout",
  );
  assertEquals(
    parseCompactRollout([END_THINK, 7], END_THINK),
    { parseable: true, reasoningLength: 0, predictionId: 7, answerText: null },
    "no reasoning",
  );
  assertEquals(
    parseCompactRollout([20, 21, 22, 23], END_THINK, EOT),
    { parseable: false, reasoningLength: 4, predictionId: null, answerText: null },
    "cap reached without </think>",
  );
  assertEquals(parseCompactRollout([20, 21, EOT], END_THINK, EOT).reasoningLength, 2, "stopped");
  assertEquals(parseCompactRollout([20, END_THINK], END_THINK).parseable, false, "nothing after");
  assertEquals(
    parseCompactRollout([20, END_THINK, END_THINK], END_THINK).predictionId,
    END_THINK,
    "any id",
  );
});

Deno.test("prompts: paper user message and prompt text", () => {
  const withBudget = paperUserMessage("The cat", 32);
  assert(withBudget.includes("\\boxed{}"), "asks for \\boxed{}");
  assert(withBudget.includes("Use exactly 32 tokens of reasoning."), "budget sentence");
  assert(withBudget.endsWith("\n\n### Context\nThe cat"), "context last");
  const noBudget = paperUserMessage("The cat", null);
  assert(!noBudget.includes("tokens of reasoning"), "no budget sentence without a budget");
  const custom = paperUserMessage("x", 5, {
    instruction: "Go.",
    budgetSentence: "Spend {budget}.",
  });
  assertEquals(custom, "Go. Spend 5.\n\n### Context\nx", "custom template");

  assertEquals(
    paperPromptText("x", null, null, { instruction: "Go.", budgetSentence: "{budget}" }),
    "Go.\n\n### Context\nx\n\n<think>\n",
    "plain",
  );
  const chat: ChatTemplater = {
    applyChatTemplate: (m) => `<|user|>${m[0].content}<|assistant|>`,
  };
  assert(paperPromptText("x", 3, chat).endsWith("<|assistant|><think>\n"), "think appended");
  const r1: ChatTemplater = {
    applyChatTemplate: (m) => `<｜User｜>${m[0].content}<｜Assistant｜><think>\n`,
  };
  const text = paperPromptText("x", 3, r1);
  assertEquals(text.split("<think>").length, 2, "the template's own <think> is not repeated");
});

Deno.test("prompts: the last \\boxed{} with nested braces", () => {
  assertEquals(lastBoxed("so \\boxed{a} then \\boxed{b}"), "b", "last one");
  assertEquals(lastBoxed("\\boxed{\\frac{1}{2}}"), "\\frac{1}{2}", "nested");
  assertEquals(lastBoxed("\\boxed{a} and \\boxed{trunc"), "a", "truncated last one skipped");
  assertEquals(lastBoxed("\\boxed{ cat}"), " cat", "spaces kept");
  assertEquals(lastBoxed("\\boxed{}"), "", "empty");
  assertEquals(lastBoxed("no answer"), null, "none");
});

Deno.test("prompts: paper rollout round trip into the prefix reward", () => {
  const tok = new FakeTokenizer([
    "<unk>",
    "<think>",
    "</think>",
    "<eot>",
    "Hmm",
    " maybe",
    " cat",
    "s",
    " The",
    " answer",
    " is",
    " \\boxed{",
    "cat",
    "}",
    "dog",
    " sat",
  ]);
  const endThink = tok.id("</think>");
  const rollout = tok.ids([
    "Hmm",
    " maybe",
    " cat",
    "</think>",
    " The",
    " answer",
    " is",
    " \\boxed{",
    "cat",
    "s",
    "}",
    "<eot>",
  ]);
  const parsed = parsePaperRollout(rollout, endThink, tok.decode, tok.id("<eot>"));
  assertEquals(parsed, {
    parseable: true,
    reasoningLength: 3,
    predictionId: null,
    answerText: "cats",
  }, "parsed");
  const truth = tok.ids([" cat", "s", " sat"]);
  const reward = prefixMatchReward(
    new TextEncoder().encode(parsed.answerText!),
    truth,
    tok.decodeBytes,
  );
  assertEquals(reward, 1, '"cats" is a 2-token prefix of " cats sat" (leading space optional)');
  // A \boxed{} only inside the reasoning does not count.
  const early = tok.ids([" \\boxed{", "dog", "}", "</think>", " The", " answer"]);
  assertEquals(
    parsePaperRollout(early, endThink, tok.decode).parseable,
    false,
    "boxed before </think>",
  );
  const noEnd = tok.ids(["Hmm", " maybe", "<eot>"]);
  assertEquals(
    parsePaperRollout(noEnd, endThink, tok.decode, tok.id("<eot>")),
    { parseable: false, reasoningLength: 2, predictionId: null, answerText: null },
    "no </think>",
  );
});
