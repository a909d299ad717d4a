import { grpoSurrogate as gpuSurrogate } from "../../lib/ops/grpo_surrogate.ts";
import { grpoSurrogate as refSurrogate } from "../../lib/ref/grpo_surrogate.ts";
import { clippedSurrogate } from "../../lib/rmt/grpo.ts";
import { assert, assertBitEqual, assertClose, finiteDifference, Rng, testGpu } from "../helpers.ts";

// Awkward sizes: 1, primes, not multiples of the workgroup (256), and one large case.
const SIZES = [1, 7, 257, 1000, 65_537];
const CLIP = 0.2;

/** Log-probs whose ratios land inside, below and above [1 − ε, 1 + ε]; a = 0 on some rows. */
function randomRows(rng: Rng, rows: number) {
  const newLogprob = new Float32Array(rows);
  const oldLogprob = new Float32Array(rows);
  const refLogprob = new Float32Array(rows);
  const coefficients = new Float32Array(2 * rows);
  for (let r = 0; r < rows; r++) {
    newLogprob[r] = -3 * rng.next();
    oldLogprob[r] = newLogprob[r] + 0.6 * (rng.next() - 0.5); // ρ ∈ [e^-0.3, e^0.3]
    refLogprob[r] = newLogprob[r] + 0.5 * (rng.next() - 0.5);
    coefficients[2 * r] = 2 * (rng.next() - 0.5); // A
    coefficients[2 * r + 1] = rng.next() < 0.2 ? 0 : rng.next() / rows; // a
  }
  return { newLogprob, oldLogprob, refLogprob, coefficients };
}

Deno.test("grpo_surrogate: GPU matches the reference (rtol 1e-5) with and without KL", async () => {
  const ctx = await testGpu();
  const rng = new Rng(3);
  for (const rows of SIZES) {
    const host = randomRows(rng, rows);
    const t = {
      newLogprob: ctx.f32(host.newLogprob),
      oldLogprob: ctx.f32(host.oldLogprob),
      refLogprob: ctx.f32(host.refLogprob),
      coefficients: ctx.f32(host.coefficients, [rows, 2]),
    };
    for (const klBeta of [0, 0.1]) {
      const out = gpuSurrogate(ctx, t, { clipEpsilon: CLIP, klBeta });
      const [d, loss, clip] = await ctx.readMany([out.dLogprob, out.lossTerms, out.clipTerms]);
      const expected = refSurrogate(
        host.newLogprob,
        host.oldLogprob,
        host.refLogprob,
        host.coefficients,
        { clipEpsilon: CLIP, klBeta },
      );
      // exp of an f32 difference: a few ulps relative; rows near a clip edge agree on the branch
      // because the ratios are far from the edges relative to f32 rounding (checked below).
      const tol = { rtol: 1e-5, atol: 1e-9 };
      assertClose(d, expected.dLogprob, tol, `dLogprob rows=${rows} β=${klBeta}`);
      assertClose(loss, expected.lossTerms, tol, `loss rows=${rows} β=${klBeta}`);
      assertClose(clip, expected.clipTerms, tol, `clip rows=${rows} β=${klBeta}`);
      for (const x of Object.values(out)) x.release();
    }
    for (const x of Object.values(t)) x.release();
  }
});

Deno.test("grpo_surrogate: the reference is clippedSurrogate row by row", () => {
  const rng = new Rng(4);
  const lengths = [3, 0, 5, 1, 4];
  const tokens = lengths.reduce((a, b) => a + b, 0);
  const host = randomRows(rng, tokens);
  const advantages = lengths.map(() => 2 * (rng.next() - 0.5));
  for (const aggregation of ["token_mean", "sequence_mean"] as const) {
    for (const klBeta of [0, 0.05]) {
      const expected = clippedSurrogate({
        newLogProbs: host.newLogprob,
        oldLogProbs: host.oldLogprob,
        refLogProbs: klBeta > 0 ? host.refLogprob : undefined,
        advantages,
        lengths,
      }, { clipEpsilon: CLIP, klBeta, aggregation });
      // Coefficients (A_i, a_j) as policy_loss.ts lays them out: a is constant per rollout.
      const coefficients = new Float64Array(2 * tokens);
      const nonEmpty = lengths.filter((n) => n > 0).length;
      let j = 0;
      lengths.forEach((n, i) => {
        for (let k = 0; k < n; k++, j++) {
          coefficients[2 * j] = advantages[i];
          coefficients[2 * j + 1] = aggregation === "token_mean" ? 1 / tokens : 1 / (nonEmpty * n);
        }
      });
      const rows = refSurrogate(
        host.newLogprob,
        host.oldLogprob,
        host.refLogprob,
        coefficients,
        { clipEpsilon: CLIP, klBeta },
      );
      const what = `${aggregation} β=${klBeta}`;
      assertClose(rows.dLogprob, expected.gradient, { rtol: 1e-12, atol: 1e-15 }, what);
      const loss = rows.lossTerms.reduce((a, b) => a + b, 0);
      assertClose([loss], [expected.loss], { rtol: 1e-12, atol: 1e-15 }, `${what} loss`);
      const clip = rows.clipTerms.reduce((a, b) => a + b, 0);
      assertClose([clip], [expected.clipFraction], { rtol: 1e-12, atol: 1e-15 }, `${what} clip`);
    }
  }
});

Deno.test("grpo_surrogate: the reference gradient matches finite differences", () => {
  const rng = new Rng(5);
  const rows = 12;
  const host = randomRows(rng, rows);
  for (let r = 0; r < rows; r++) host.coefficients[2 * r + 1] = r % 5 === 0 ? 0 : 0.1;
  // Keep every ratio at least 1e-3 away from a clip edge (the loss has a kink there).
  for (let r = 0; r < rows; r++) {
    const logRatio = host.newLogprob[r] - host.oldLogprob[r];
    for (const edge of [Math.log(1 - CLIP), Math.log(1 + CLIP)]) {
      if (Math.abs(logRatio - edge) < 1e-3) host.oldLogprob[r] -= 0.01;
    }
  }
  for (const klBeta of [0, 0.3]) {
    const settings = { clipEpsilon: CLIP, klBeta };
    const loss = (x: Float64Array) =>
      refSurrogate(x, host.oldLogprob, host.refLogprob, host.coefficients, settings)
        .lossTerms.reduce((a, b) => a + b, 0);
    const numeric = finiteDifference(loss, host.newLogprob, 1e-6);
    const analytic = refSurrogate(
      host.newLogprob,
      host.oldLogprob,
      host.refLogprob,
      host.coefficients,
      settings,
    ).dLogprob;
    assertClose(analytic, numeric, { rtol: 1e-6, atol: 1e-8 }, `finite differences β=${klBeta}`);
  }
});

Deno.test("grpo_surrogate: deterministic, and checks its shapes", async () => {
  const ctx = await testGpu();
  const host = randomRows(new Rng(6), 1000);
  const t = {
    newLogprob: ctx.f32(host.newLogprob),
    oldLogprob: ctx.f32(host.oldLogprob),
    coefficients: ctx.f32(host.coefficients, [1000, 2]),
  };
  const a = gpuSurrogate(ctx, t, { clipEpsilon: CLIP, klBeta: 0 });
  const b = gpuSurrogate(ctx, t, { clipEpsilon: CLIP, klBeta: 0 });
  const [a1, a2, b1, b2] = await ctx.readMany([a.dLogprob, a.lossTerms, b.dLogprob, b.lossTerms]);
  assertBitEqual(a1, b1, "dLogprob twice");
  assertBitEqual(a2, b2, "loss terms twice");
  let threw = "";
  try {
    gpuSurrogate(ctx, { ...t, coefficients: t.newLogprob }, { clipEpsilon: CLIP, klBeta: 0 });
  } catch (e) {
    threw = (e as Error).message;
  }
  assert(threw.includes("coefficients") && threw.includes("[1000, 2]"), `shape error: ${threw}`);
  try {
    gpuSurrogate(ctx, t, { clipEpsilon: CLIP, klBeta: 0.1 });
    threw = "";
  } catch (e) {
    threw = (e as Error).message;
  }
  assert(threw.includes("reference"), `β > 0 without a reference: ${threw}`);
  for (const x of [...Object.values(t), ...Object.values(a), ...Object.values(b)]) x.release();
});
