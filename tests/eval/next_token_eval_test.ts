// Next-token evaluation: the reasoning prediction is read back right (the token after
// </think>; unparseable counts as wrong), accuracies follow from the verdicts, and on a real
// (tiny, random) model two checkpoints are scored on identical positions with a fixed proxy.

import {
  evaluateNextToken,
  predictWithReasoning,
  summarise,
} from "../../lib/eval/next_token_eval.ts";
import { initModel } from "../../lib/model/init.ts";
import { writeModelFolder } from "../../lib/model/model_folder.ts";
import type { Generator, GeneratorOptions } from "../../lib/rmt/rollouts.ts";
import { DEFAULT_THRESHOLDS } from "../../lib/rmt/tiers.ts";
import { assert, assertEquals, testGpu, withTempDir } from "../helpers.ts";

const THINK = 1;
const END_THINK = 2;
const EOT = 0;
const FORMAT = { kind: "compact" as const, thinkStart: THINK, thinkEnd: END_THINK, endOfText: EOT };

/** A generator that returns fixed rollouts by row id (the prompt's index), recording its calls. */
function stubGenerator(rollouts: number[][]) {
  const calls: { prompts: number[][]; options: GeneratorOptions }[] = [];
  const generator: Generator = (prompts, options) => {
    calls.push({ prompts: prompts.map((p) => [...p]), options });
    const tokens = options.rowIds.map((row) => rollouts[row]);
    return Promise.resolve({ tokens, logprobs: tokens.map((t) => t.map(() => 0)) });
  };
  return { generator, calls };
}

Deno.test("next-token eval: the token after </think> is the prediction; unparseable is wrong", async () => {
  const contexts = [[10, 11], [12], [13, 14, 15], [16], [17], [18]];
  const targets = [50, 51, 52, 53, 54, 55];
  const { generator, calls } = stubGenerator([
    [7, 8, END_THINK, 50, 9], // ℓ 2, predicts 50: right (tokens after the prediction ignored)
    [END_THINK, 99], // ℓ 0, predicts 99: wrong
    [7, 7, 7, 7, 7, 7], // never closes: unparseable, ℓ 6
    [7, END_THINK], // nothing after </think>: unparseable, ℓ 1
    [7, 7, 7, 7, 7, END_THINK, 54], // ℓ 5 > cap 4: unparseable, though it names the target
    [7, 8, 9, EOT], // stops without </think>: unparseable, ℓ 3 (EOT not counted)
  ]);
  const predictions = await predictWithReasoning(generator, contexts, targets, FORMAT, {
    maxReasoning: 4,
    temperature: 0,
    seed: 3,
    batchSize: 4,
    contextLimit: 10,
  });
  assertEquals(
    predictions.map((p) => p.prediction),
    [50, 99, null, null, null, null],
    "predictions",
  );
  assertEquals(predictions.map((p) => p.reasoningLength), [2, 0, 6, 1, 5, 3], "reasoning lengths");
  assertEquals(
    predictions.map((p) => p.parseable),
    [true, true, false, false, false, false],
    "parse",
  );
  assertEquals(
    predictions.map((p) => p.correct),
    [true, false, false, false, false, false],
    "verdicts",
  );
  // Two calls (batch 4), shortest prompts first: prompts are context + <think>, with room for
  // cap + </think> + answer, and the row ids are the positions' indices.
  assertEquals(calls.length, 2, "calls");
  assertEquals(calls[0].prompts, [[12, THINK], [16, THINK], [17, THINK], [18, THINK]], "prompts");
  assertEquals(calls[0].options.maxNewTokens, 6, "max new tokens");
  assertEquals(calls[0].options.stopTokens, [EOT], "stop at end-of-text");
  assertEquals(calls[0].options.rowIds, [1, 3, 4, 5], "row ids of the first call");
  assertEquals(calls[1].prompts, [[10, 11, THINK], [13, 14, 15, THINK]], "second call");
  assertEquals(calls[1].options.rowIds, [0, 2], "row ids of the second call");

  // Verdicts and the summary: 1 right of 6; parse rate 2/6; mean ℓ 17/6.
  const samples = predictions.map((p, i) => ({
    position: i,
    document: 0,
    contextLength: contexts[i].length,
    target: targets[i],
    entropy: [0.6, 1.1, 1.7, 0.1, 2.0, 0.9][i],
    prediction: p.prediction,
    answerText: p.answerText,
    parseable: p.parseable,
    reasoningLength: p.reasoningLength,
    correct: p.correct,
    argmax: [50, 51, 0, 53, 0, 0][i],
    argmaxCorrect: [true, true, false, true, false, false][i],
  }));
  const s = summarise(samples, DEFAULT_THRESHOLDS);
  assertEquals(s.withReasoning.all, { count: 6, correct: 1, accuracy: 1 / 6 }, "all");
  assertEquals(s.withReasoning.easy, { count: 5, correct: 1, accuracy: 0.2 }, "easy (H > 0.5)");
  assertEquals(s.withReasoning.hard, { count: 2, correct: 0, accuracy: 0 }, "hard");
  assertEquals(s.withReasoning.parseRate, 2 / 6, "parse rate");
  assertEquals(s.withReasoning.reasoningTokens, 17 / 6, "mean reasoning length");
  assertEquals(s.plain.all, { count: 6, correct: 3, accuracy: 0.5 }, "argmax accuracy");
  assertEquals(s.plain.medium, { count: 3, correct: 1, accuracy: 1 / 3 }, "argmax medium");
});

Deno.test("next-token eval: two checkpoints, one proxy: identical positions and tiers", async () => {
  await withTempDir(async (dir) => {
    const ctx = await testGpu();
    // Two "checkpoints" of one tokenizer: the tiny preset with two weight seeds.
    for (const seed of [1, 2]) {
      const m = initModel({ arch: "qwen2", preset: "tiny", seed, maxPositionEmbeddings: 64 });
      await writeModelFolder(`${dir}/m${seed}`, {
        config: m.config,
        weights: m.weights,
        tokenizerFiles: m.tokenizerFiles,
      });
    }
    const lines =
      (await Deno.readTextFile(new URL("../../data/math/heldout.jsonl", import.meta.url)))
        .split("\n").slice(0, 6);
    await Deno.writeTextFile(`${dir}/heldout.jsonl`, lines.join("\n") + "\n");
    const options = {
      dataPath: `${dir}/heldout.jsonl`,
      proxyDir: `${dir}/m1`,
      samples: 10,
      seed: 5,
      maxReasoning: 3,
      temperature: 0,
    };
    const a = await evaluateNextToken(ctx, { ...options, modelDir: `${dir}/m1` });
    const b = await evaluateNextToken(ctx, { ...options, modelDir: `${dir}/m2` });
    assertEquals(a.positions, 10, "positions evaluated");
    assertEquals(b.samples.map((s) => s.position), a.samples.map((s) => s.position), "positions");
    assertEquals(b.samples.map((s) => s.target), a.samples.map((s) => s.target), "targets");
    assertEquals(b.samples.map((s) => s.entropy), a.samples.map((s) => s.entropy), "proxy tiers");
    assert(a.settings.contextLimit === 64 - 3 - 2, `context limit ${a.settings.contextLimit}`);
    // The model as its own proxy: other entropies, same positions.
    const self = await evaluateNextToken(ctx, {
      ...options,
      proxyDir: undefined,
      modelDir: `${dir}/m2`,
    });
    assertEquals(self.samples.map((s) => s.position), a.samples.map((s) => s.position), "self");
    assert(self.samples.some((s, i) => s.entropy !== b.samples[i].entropy), "own entropies");
    for (const r of [a, b]) {
      for (const s of r.samples) {
        assert(s.correct === (s.parseable && s.prediction === s.target), "verdict");
        assert(s.argmaxCorrect === (s.argmax === s.target), "argmax verdict");
        assert(s.contextLength >= 8 && s.contextLength <= r.settings.contextLimit, "context");
        assert(Number.isFinite(s.entropy) && s.entropy >= 0, `entropy ${s.entropy}`);
      }
      const again = summarise(r.samples, DEFAULT_THRESHOLDS);
      assertEquals(again.withReasoning, r.withReasoning, "summary from the samples");
      // A random model over ~1000 tokens: perplexity near the vocabulary size.
      const ppl = r.perplexity.perplexity!;
      assert(ppl > 500 && ppl < 2000, `perplexity ${ppl}`);
      assert(r.perplexity.tokens > 100, `scored tokens ${r.perplexity.tokens}`);
    }
  });
});

Deno.test("next-token eval, paper format: the last \\boxed{} after </think> must be the next token's text", async () => {
  // A character-level "tokenizer": id = char code; </think> and end-of-text are ids ≥ 1000.
  const THINK_END_ID = 1000;
  const STOP = 1001;
  const encode = (text: string) =>
    [...text.replaceAll("</think>", "\u03e8")].map((c) =>
      c === "\u03e8" ? THINK_END_ID : c.charCodeAt(0)
    );
  const decode = (ids: readonly number[]) =>
    ids.map((id) => (id === THINK_END_ID ? "</think>" : id === STOP ? "" : String.fromCharCode(id)))
      .join("");
  const format = {
    kind: "paper" as const,
    thinkEnd: THINK_END_ID,
    endOfText: STOP,
    stopTokens: [STOP],
    encode,
    decode,
    decodeBytes: (ids: readonly number[]) => new TextEncoder().encode(decode(ids)),
    chat: null,
    template: { instruction: "Predict.", budgetSentence: "Use {budget} tokens." },
    maxAnswerTokens: 12,
    budgetInPrompt: true,
  };
  const contexts = [encode("2 + 2 = "), encode("ab"), encode("xy")];
  const targets = [..."4cz"].map((c) => c.charCodeAt(0));
  const answer = (reasoning: string, rest: string) => [
    ...encode(reasoning),
    THINK_END_ID,
    ...encode(rest),
    STOP,
  ];
  const { generator, calls } = stubGenerator([
    answer("sum", "so \\boxed{3} no, \\boxed{4}"), // the last box: "4", right
    answer("hmm", "\\boxed{d}"), // wrong
    answer("zz", "z"), // no \boxed{}: unparseable
  ]);
  const predictions = await predictWithReasoning(generator, contexts, targets, format, {
    maxReasoning: 8,
    temperature: 0,
    seed: 0,
    batchSize: 8,
    contextLimit: 100,
    budget: 5,
  });
  assertEquals(predictions.map((p) => p.correct), [true, false, false], "verdicts");
  assertEquals(predictions.map((p) => p.answerText), ["4", "d", null], "answers");
  assertEquals(predictions.map((p) => p.reasoningLength), [3, 3, 2], "reasoning lengths");
  const prompt = decode(calls[0].prompts.find((p) => decode(p).includes("2 + 2"))!);
  assertEquals(
    prompt,
    "Predict. Use 5 tokens.\n\n### Context\n2 + 2 = \n\n<think>\n",
    "the paper prompt around the context text",
  );
  assertEquals(calls[0].options.maxNewTokens, 8 + 1 + 12, "cap + </think> + answer tokens");
  assertEquals(calls[0].options.stopTokens, [STOP], "stop tokens");
});
