// Math responses sampled and graded (lib/rmt/math_rollouts.ts): the problems of a step
// (mathBatchIndices: per-epoch permutations, a pure function of (seed, step)), the codec of a
// real tokenizer, sampling with a stub generator (Philox row ids, grading with answersMatch,
// problem-major order, splitting into calls), the prompt-length check, and the statistics.

import type { MathProblem } from "../../lib/data/math_set.ts";
import { initModel } from "../../lib/model/init.ts";
import { TextTokenizer } from "../../lib/model/tokenizer.ts";
import { MATH_INSTRUCTION, MATH_PROMPT } from "../../lib/rmt/math_prompts.ts";
import {
  fittingMathProblems,
  mathBatchIndices,
  type MathCodec,
  mathCodec,
  mathPrompts,
  type MathResponseResult,
  type MathSampling,
  mathStats,
  sampleMathResponses,
} from "../../lib/rmt/math_rollouts.ts";
import type { Generator, GeneratorOptions } from "../../lib/rmt/rollouts.ts";
import { assert, assertClose, assertEquals, assertUserError } from "../helpers.ts";

// ---- the problems of a step -------------------------------------------------------------------

/** The sorted copy of a list of indices. */
const sorted = (xs: readonly number[]) => [...xs].sort((a, b) => a - b);
const range = (n: number) => [...Array(n).keys()];

Deno.test("math_rollouts: mathBatchIndices is a pure function of (seed, step)", () => {
  for (const step of [0, 1, 7, 1000]) {
    assertEquals(
      mathBatchIndices(37, 4, 5, step),
      mathBatchIndices(37, 4, 5, step),
      `step ${step}: the same twice`,
    );
  }
  // Out of order and in order give the same (no state carried between calls).
  const inOrder = range(10).map((t) => mathBatchIndices(23, 3, 9, t));
  const backwards = range(10).reverse().map((t) => mathBatchIndices(23, 3, 9, t)).reverse();
  assertEquals(backwards, inOrder, "no hidden state");
  for (const indices of inOrder) {
    assert(indices.every((i) => Number.isInteger(i) && i >= 0 && i < 23), `${indices}`);
  }
});

Deno.test("math_rollouts: every epoch is a permutation of the problems", () => {
  // B·steps = n: each run of n/B steps covers every problem exactly once.
  const n = 12;
  const B = 4;
  for (let epoch = 0; epoch < 3; epoch++) {
    const covered = range(n / B).flatMap((s) => mathBatchIndices(n, B, 1, epoch * (n / B) + s));
    assertEquals(sorted(covered), range(n), `epoch ${epoch}: each problem once`);
  }
  // B does not divide n: the endless sequence, cut into epochs of n, is still permutations
  // (a batch may straddle two epochs).
  const m = 10;
  const stream = range(15).flatMap((t) => mathBatchIndices(m, 4, 2, t)); // 60 = 6 epochs
  for (let e = 0; e < 6; e++) {
    assertEquals(sorted(stream.slice(e * m, (e + 1) * m)), range(m), `n = 10, epoch ${e}`);
  }
  const epochs = range(6).map((e) => stream.slice(e * m, (e + 1) * m).join(","));
  assert(new Set(epochs).size > 1, "epochs are shuffled anew");
  // A batch larger than the set: several epochs in one step, each a permutation.
  const big = mathBatchIndices(3, 9, 4, 0);
  for (let e = 0; e < 3; e++) assertEquals(sorted(big.slice(3 * e, 3 * e + 3)), [0, 1, 2], "B > n");
  assertEquals(mathBatchIndices(1, 3, 0, 5), [0, 0, 0], "one problem");
});

Deno.test("math_rollouts: different seeds draw different orders; any 32-bit seed works", () => {
  const order = (seed: number) => range(25).flatMap((t) => mathBatchIndices(100, 4, seed, t));
  const a = order(1);
  assertEquals(sorted(a), range(100), "seed 1: a permutation");
  assert(a.join() !== order(2).join(), "seeds 1 and 2 differ");
  assert(a.join() !== range(100).join(), "shuffled, not the file order");
  for (const seed of [0, 2 ** 31, 2 ** 32 - 1]) {
    assertEquals(sorted(order(seed)), range(100), `seed ${seed}: a permutation`);
  }
});

// ---- a fake codec ---------------------------------------------------------------------------

// Character-level ids: char code; 1000 = </think>, 1001 = end-of-text (decoded to nothing).
const THINK_END = 1000;
const EOT = 1001;
const encode = (text: string) => [...text].map((c) => c.charCodeAt(0));
const decode = (ids: readonly number[]) =>
  ids.map((id) => id === THINK_END ? "</think>" : id === EOT ? "" : String.fromCharCode(id))
    .join("");

const CODEC: MathCodec = {
  format: { kind: "compact", template: "Q: {question}\n", instruction: "", chat: null },
  encode,
  decode,
  thinkEnd: THINK_END,
  stopTokens: [EOT],
};

const PROBLEMS: MathProblem[] = [
  { question: "half", answer: "1/2" },
  { question: "six", answer: "6" },
  { question: "1000", answer: "1,000" },
];

/** A response: reasoning, </think>, the answer text, end-of-text. */
const response = (reasoning: string, answer: string) => [
  ...encode(reasoning),
  THINK_END,
  ...encode(answer),
  EOT,
];

/** G = 2 responses per problem: [problem][g]. */
const RESPONSES: number[][][] = [
  [response("ab", "Answer: 0.5"), response("abc", "Answer: 0.25")], // 0.5 = 1/2; wrong
  [response("", "\\boxed{6.0}"), encode("no end")], // 6.0 = 6; cut off, unparseable
  [response("x", "#### 1000"), response("xyz", "Answer: one thousand")], // 1000 = 1,000; wrong
];

/** A stub generator answering row t·R + i·G + g with RESPONSES[i][g]; records its calls. */
function stub(rowsPerStep: number, groupSize: number) {
  const calls: { prompts: number[][]; options: GeneratorOptions }[] = [];
  const generator: Generator = (prompts, options) => {
    calls.push({ prompts: prompts.map((p) => [...p]), options });
    const tokens = options.rowIds.map((row) => {
      const i = Math.floor((row % rowsPerStep) / groupSize);
      return [...RESPONSES[i][row % groupSize]];
    });
    const logprobs = options.rowIds.map((row, k) => tokens[k].map((_, j) => -(row + j / 100)));
    return Promise.resolve({ tokens, logprobs, readbacks: 2 });
  };
  return { generator, calls };
}

const SAMPLING: MathSampling = {
  groupSize: 2,
  maxNewTokens: 24,
  temperature: 0.7,
  topK: 5,
  topP: 0.9,
  seed: 11,
  step: 5,
};

Deno.test("math_rollouts: sampleMathResponses with a stub generator", async () => {
  const prompts = mathPrompts(PROBLEMS, CODEC, 64, 24);
  assertEquals(prompts[0], encode("Q: half\n"), "the compact prompt, encoded");
  const { generator, calls } = stub(6, 2);
  const sampled = await sampleMathResponses(generator, PROBLEMS, prompts, CODEC, SAMPLING);

  assertEquals(calls.length, 1, "one call by default");
  const { options } = calls[0];
  assertEquals(options.rowIds, [30, 31, 32, 33, 34, 35], "row ids t·R + i·G + g, R = 3·2");
  assertEquals(
    [options.maxNewTokens, options.temperature, options.topK, options.topP, options.seed],
    [24, 0.7, 5, 0.9, 11],
    "the sampling settings passed on",
  );
  assertEquals([options.rngStep, [...options.stopTokens]], [0, [EOT]], "rngStep 0, stop tokens");
  assertEquals(
    calls[0].prompts,
    [prompts[0], prompts[0], prompts[1], prompts[1], prompts[2], prompts[2]],
    "G copies of each prompt, problem-major",
  );

  const r = sampled.responses;
  assertEquals(r.map((x) => x.problem), [0, 0, 1, 1, 2, 2], "problem-major order");
  assertEquals(r.map((x) => x.answer), ["0.5", "0.25", "6.0", null, "1000", "one thousand"], "");
  assertEquals(
    r.map((x) => x.correct),
    [true, false, true, false, true, false],
    "graded with answersMatch: 0.5 = 1/2, 6.0 = 6, 1000 = 1,000",
  );
  assertEquals(r.map((x) => x.reasoningLength), [2, 3, 0, 6, 1, 3], "reasoning lengths");
  assertEquals(r.map((x) => x.tokens), RESPONSES.flat(), "the generated ids, stop included");
  assertEquals(r[3].logprobs, [-33, -33.01, -33.02, -33.03, -33.04, -33.05], "row 33's logprobs");
  assertEquals([sampled.calls, sampled.readbacks], [1, 2], "calls and readbacks");
});

Deno.test("math_rollouts: splitting into calls changes nothing but the calls", async () => {
  const prompts = mathPrompts(PROBLEMS, CODEC, 64, 24);
  const whole = await sampleMathResponses(stub(6, 2).generator, PROBLEMS, prompts, CODEC, SAMPLING);
  for (const perCall of [1, 2, 3, 10]) {
    const { generator, calls } = stub(6, 2);
    const split = await sampleMathResponses(generator, PROBLEMS, prompts, CODEC, {
      ...SAMPLING,
      problemsPerCall: perCall,
    });
    const expectedCalls = Math.ceil(3 / perCall);
    assertEquals([split.calls, calls.length], [expectedCalls, expectedCalls], `${perCall}: calls`);
    assertEquals(split.readbacks, 2 * expectedCalls, `${perCall}: readbacks add up`);
    assertEquals(calls.flatMap((c) => c.options.rowIds), range(6).map((k) => 30 + k), "row ids");
    assertEquals(split.responses, whole.responses, `${perCall} problems per call: same results`);
  }
  // rowsPerStep fixes R (the config's B·G) whatever the number of problems sampled here.
  const { generator, calls } = stub(8, 2);
  await sampleMathResponses(generator, PROBLEMS, prompts, CODEC, {
    ...SAMPLING,
    step: 2,
    rowsPerStep: 8,
  });
  assertEquals(calls[0].options.rowIds, [16, 17, 18, 19, 20, 21], "R = 8 at step 2");
});

Deno.test("math_rollouts: a prompt that leaves no room for the response is refused", async () => {
  const long: MathProblem[] = [
    { question: "short", answer: "1" },
    { question: "a long\nquestion that\ngoes on and on and on and on", answer: "2" },
  ];
  // "Q: short\n" = 9 tokens: 9 + 24 − 1 = 32 fits 32 positions exactly.
  assertEquals(mathPrompts(long.slice(0, 1), CODEC, 32, 24)[0].length, 9, "fits exactly");
  await assertUserError(
    () => mathPrompts(long.slice(0, 1), CODEC, 31, 24),
    ["9 tokens", "24 response tokens", "31 positions", "math.max_new_tokens"],
    "one token too many",
  );
  const message = await assertUserError(
    () => mathPrompts(long, CODEC, 40, 24),
    ["problem 2", "a long question that", "math.max_new_tokens"],
    "a question with newlines: the message stays one line",
  );
  assert(!message.includes("\n"), message);
});

Deno.test("math_rollouts: mathStats", () => {
  const result = (
    tokens: number,
    answer: string | null,
    correct: boolean,
    reasoning: number,
  ): MathResponseResult => ({
    problem: 0,
    tokens: new Array(tokens).fill(1),
    logprobs: new Array(tokens).fill(0),
    answer,
    correct,
    reasoningLength: reasoning,
  });
  const stats = mathStats([
    result(10, "1", true, 6),
    result(4, "2", false, 1),
    result(7, null, false, 7),
    result(3, "4", true, 0),
  ]);
  assertClose(
    [stats.accuracy, stats.parseRate, stats.reasoningLength, stats.responseLength],
    [0.5, 0.75, 3.5, 6],
    { rtol: 1e-15, atol: 0 },
    "accuracy, parse rate, mean reasoning and response length",
  );
  assertEquals(stats.generatedTokens, 24, "generated tokens");
  assertEquals(
    mathStats([]),
    { accuracy: 0, parseRate: 0, reasoningLength: 0, responseLength: 0, generatedTokens: 0 },
    "no responses",
  );
});

Deno.test("math_rollouts: the codec of a trained byte-level tokenizer", () => {
  const { tokenizerFiles } = initModel({
    arch: "qwen2",
    preset: "tiny",
    seed: 1,
    vocab: 300,
    corpus: ["Problem: 2 + 2?\n<think>\n2 + 2 = 4\n</think>\nAnswer: 4"],
  });
  const tokenizer = TextTokenizer.fromJson(
    tokenizerFiles.tokenizerJson,
    tokenizerFiles.tokenizerConfig,
  );
  const settings = { template: MATH_PROMPT, instruction: MATH_INSTRUCTION, chat: true };
  const codec = mathCodec(tokenizer, { kind: "compact", ...settings });
  const eot = tokenizer.tokenId("<|endoftext|>")!;
  assertEquals(codec.thinkEnd, tokenizer.tokenId("</think>"), "</think>");
  assertEquals(codec.stopTokens, [eot], "stops at end-of-text (once, though it is eos too)");
  assert(codec.format.chat === null, "compact: no chat template");
  const prompt = codec.encode("Problem: 3 + 4?\n<think>\n");
  assertEquals(prompt[prompt.length - 2], tokenizer.tokenId("<think>"), "<think> is one token");
  const [ids] = mathPrompts([{ question: "3 + 4?", answer: "7" }], codec, 1024, 16);
  assertEquals(ids, prompt, "mathPrompts encodes the compact prompt");
  const reply = [...codec.encode("3 + 4 = 7\n</think>\nAnswer: 7"), eot];
  const paper = mathCodec(tokenizer, { kind: "paper", ...settings });
  assert(paper.format.chat === null, "paper without a chat template in the tokenizer: plain");
  assertEquals(
    codec.decode(reply.slice(0, -1)),
    "3 + 4 = 7\n</think>\nAnswer: 7",
    "decode inverts encode",
  );
});

Deno.test("math_rollouts: problems whose prompt leaves no room are left out and counted", async () => {
  // "Q: half\n" is 8 characters, "Q: 1000\n" 8, "Q: six\n" 7: a prompt and 24 new tokens (the
  // last one never fed back) need prompt + 23 positions, so 30 hold only "six".
  const fit = fittingMathProblems(PROBLEMS, CODEC, 30, 24);
  assertEquals(fit.problems.map((p) => p.question), ["six"], "the one that fits");
  assertEquals(fit.prompts, [encode("Q: six\n")], "its prompt");
  assertEquals(fit.skipped, 2, "two left out");
  assertEquals(fittingMathProblems(PROBLEMS, CODEC, 64, 24).skipped, 0, "all fit");
  await assertUserError(
    () => Promise.resolve(fittingMathProblems(PROBLEMS, CODEC, 20, 24)),
    ["math problem 1", "math.max_new_tokens"],
    "none fits: the first one's error",
  );
});
