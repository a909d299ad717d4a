// The next-token summary after each context (left-padded, one column of logits) equals what
// score.ts gives at the last position of (context, target) and generate.ts's greedy token,
// whatever the grouping into forwards.

import { scoreAfterContexts } from "../../lib/eval/context_scores.ts";
import { generate } from "../../lib/model/generate.ts";
import { loadGpuWeights, releaseGpuModel } from "../../lib/model/gpu_weights.ts";
import { initModel } from "../../lib/model/init.ts";
import { scoreTokens } from "../../lib/model/score.ts";
import { assert, assertBitEqual, assertClose, assertEquals, Rng, testGpu } from "../helpers.ts";

Deno.test("context scores: argmax, log-prob and entropy after ragged contexts", async () => {
  const ctx = await testGpu();
  const m = initModel({ arch: "qwen2", preset: "tiny", seed: 4, maxPositionEmbeddings: 64 });
  const model = await loadGpuWeights(ctx, m.modelConfig, m.weights);
  try {
    const rng = new Rng(9);
    const lengths = [1, 7, 3, 20, 13, 2, 31];
    const contexts = lengths.map((n) => Array.from({ length: n }, () => 3 + rng.int(900)));
    const targets = contexts.map(() => 3 + rng.int(900));
    const all = await scoreAfterContexts(ctx, model, contexts, targets);
    // Small forwards: several groups (31 rows at most each), the same numbers.
    const grouped = await scoreAfterContexts(ctx, model, contexts, targets, { maxRows: 31 });
    assert(grouped.forwards > all.forwards, `groups: ${grouped.forwards} vs ${all.forwards}`);
    assertEquals(grouped.argmax, all.argmax, "argmax whatever the grouping");
    // f32 rounding may differ with the padding: a tolerance, not bit equality.
    assertClose(grouped.logprobs, all.logprobs, { rtol: 1e-4, atol: 1e-4 }, "log-probs");
    assertClose(grouped.entropies, all.entropies, { rtol: 1e-4, atol: 1e-4 }, "entropies");

    for (let i = 0; i < contexts.length; i++) {
      const ref = await scoreTokens(ctx, model, [...contexts[i], targets[i]]);
      const last = contexts[i].length;
      assertClose([all.logprobs[i]], [ref.logprobs[last]], { rtol: 1e-4, atol: 1e-4 }, `lp ${i}`);
      assertClose([all.entropies[i]], [ref.entropies[last]], { rtol: 1e-4, atol: 1e-4 }, `H ${i}`);
    }
    const greedy = await generate(ctx, model, contexts, { maxNewTokens: 1, temperature: 0 });
    assertEquals(all.argmax, greedy.tokens.map((t) => t[0]), "argmax = greedy first token");

    const again = await scoreAfterContexts(ctx, model, contexts, targets);
    assertBitEqual(again.entropies, all.entropies, "deterministic");
  } finally {
    releaseGpuModel(model);
  }
});
