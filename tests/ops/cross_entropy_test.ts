import * as gpuOps from "../../lib/ops/cross_entropy.ts";
import * as ref from "../../lib/ref/cross_entropy.ts";
import { assertBitEqual, assertClose, finiteDifference, Rng, testGpu } from "../helpers.ts";
import type { GpuContext } from "../../lib/gpu/context.ts";

function randomIds(rng: Rng, count: number, vocab: number): Uint32Array<ArrayBuffer> {
  const ids = new Uint32Array(count);
  for (let i = 0; i < count; i++) ids[i] = rng.int(vocab);
  return ids;
}

// logprob and lse: f32 exp/log over the row, values up to ~log V + |z|.
const LSE_TOL = { rtol: 1e-5, atol: 2e-5 };
// entropy: up to 32 terms, log S − Σ e·z / S (a difference of O(1) values).
const ENTROPY_TOL = { rtol: 1e-4, atol: 2e-5 };

/** Runs the forward on the GPU and checks all three outputs against the reference. */
async function checkForward(
  ctx: GpuContext,
  logits: Float32Array,
  targets: Uint32Array<ArrayBuffer>,
  rows: number,
  vocab: number,
  options: { temperature?: number; k?: number },
  what: string,
): Promise<void> {
  const logitsT = ctx.f32(logits, [rows, vocab]);
  const targetsT = ctx.upload(targets, [rows], "u32");
  const out = gpuOps.crossEntropyForward(ctx, logitsT, targetsT, options);
  const [logprob, lse, entropy] = await ctx.readMany([out.logprob, out.lse, out.entropy!]);
  const expected = ref.crossEntropy(logits, targets, rows, vocab, options);
  assertClose(logprob, expected.logprob, LSE_TOL, `logprob ${what}`);
  assertClose(lse, expected.lse, LSE_TOL, `lse ${what}`);
  assertClose(entropy, expected.entropy, ENTROPY_TOL, `entropy ${what}`);
  for (const t of [logitsT, targetsT, out.logprob, out.lse, out.entropy!]) t.release();
}

Deno.test("cross_entropy: forward (logprob, lse, top-16 entropy) on awkward shapes", async () => {
  const ctx = await testGpu();
  const rng = new Rng(41);
  for (const rows of [1, 3, 37]) {
    for (const vocab of [1, 2, 15, 16, 17, 1000, 50_257]) {
      if (rows === 37 && vocab === 50_257) continue; // the big cases below cover long rows
      const logits = rng.normals(rows * vocab, 3);
      const targets = randomIds(rng, rows, vocab);
      await checkForward(ctx, logits, targets, rows, vocab, {}, `${rows}x${vocab}`);
    }
  }
  // Other k and a temperature.
  const logits = rng.normals(3 * 1000, 3);
  const targets = randomIds(rng, 3, 1000);
  for (const k of [1, 2, 31, 32]) {
    await checkForward(ctx, logits, targets, 3, 1000, { k }, `k=${k}`);
  }
  await checkForward(ctx, logits, targets, 3, 1000, { temperature: 0.6 }, "T=0.6");
});

Deno.test("cross_entropy: a Qwen-sized vocabulary (V = 151 936, 4 rows)", async () => {
  const ctx = await testGpu();
  const rng = new Rng(42);
  const rows = 4;
  const vocab = 151_936;
  const logits = rng.normals(rows * vocab, 2);
  // Make one row peaky, as trained models are: a few large logits.
  for (let j = 0; j < 20; j++) logits[vocab + rng.int(vocab)] = 12 + j * 0.1;
  const targets = randomIds(rng, rows, vocab);
  await checkForward(ctx, logits, targets, rows, vocab, {}, "V=151936");
});

Deno.test("cross_entropy: ties in the top k and k > V", async () => {
  const ctx = await testGpu();
  const rng = new Rng(43);
  // Logits from a tiny set of values: ties everywhere, including across the k-th place.
  const rows = 3;
  const vocab = 1000;
  const logits = new Float32Array(rows * vocab).map(() => rng.int(4) * 0.5);
  await checkForward(ctx, logits, randomIds(rng, rows, vocab), rows, vocab, {}, "ties");
  // Ties across the k-th place with mixed values: 10 × 2.0 (several in one thread's
  // columns, 256 apart) and 20 × 1.0, so the top 16 must be exactly 10 × 2.0 + 6 × 1.0.
  const mixed = rng.uniforms(5000, -3, -1);
  for (let m = 0; m < 10; m++) mixed[7 + 256 * m] = 2;
  for (let m = 0; m < 20; m++) mixed[4999 - 131 * m] = 1;
  // And a row whose whole top 16 lives in one thread's columns (3, 259, 515, …).
  const oneThread = rng.uniforms(5000, -3, -1);
  for (let m = 0; m < 16; m++) oneThread[3 + 256 * m] = 5 - m * 0.25;
  const both = new Float32Array([...mixed, ...oneThread]);
  await checkForward(ctx, both, new Uint32Array([7, 3]), 2, 5000, {}, "mixed ties");
  // All equal: q is uniform over the k picked, H = log k exactly in exact arithmetic.
  const flat = new Float32Array(2 * 300).fill(1.25);
  await checkForward(ctx, flat, new Uint32Array([0, 299]), 2, 300, {}, "flat");
  // k > V uses all the logits: V = 5 with k = 16 and 32.
  const small = rng.normals(3 * 5);
  for (const k of [16, 32]) {
    await checkForward(ctx, small, randomIds(rng, 3, 5), 3, 5, { k }, `k=${k} > V=5`);
  }
});

Deno.test("cross_entropy: huge logits (±1e4) stay finite", async () => {
  const ctx = await testGpu();
  const vocab = 17;
  const logits = new Float32Array(3 * vocab);
  for (let j = 0; j < logits.length; j++) logits[j] = j % 2 === 0 ? 1e4 : -1e4;
  logits[vocab + 3] = 3e4;
  logits[2 * vocab + 5] = -3e4;
  const targets = new Uint32Array([1, 3, 5]);
  const logitsT = ctx.f32(logits, [3, vocab]);
  const targetsT = ctx.upload(targets, [3], "u32");
  const out = gpuOps.crossEntropyForward(ctx, logitsT, targetsT);
  const dLogprob = ctx.f32([-1, -0.5, 2]);
  const dLogits = gpuOps.crossEntropyBackward(ctx, logitsT, targetsT, out.lse, dLogprob);
  const [logprob, lse, entropy, grad] = await ctx.readMany([
    out.logprob,
    out.lse,
    out.entropy!,
    dLogits,
  ]);
  for (const [name, v] of [["logprob", logprob], ["lse", lse], ["entropy", entropy]] as const) {
    if (v.some((x) => !Number.isFinite(x))) throw new Error(`${name} not finite: ${v}`);
  }
  if (grad.some((x) => !Number.isFinite(x))) throw new Error("dLogits not finite");
  const expected = ref.crossEntropy(logits, targets, 3, vocab);
  // logprob is computed as (x_t − max)/T − log s, so it is accurate even at this scale.
  assertClose(logprob, expected.logprob, { rtol: 1e-6, atol: 1e-5 }, "logprob ±1e4");
  assertClose(lse, expected.lse, { rtol: 1e-6, atol: 0 }, "lse ±1e4");
  assertClose(entropy, expected.entropy, ENTROPY_TOL, "entropy ±1e4");
  // The backward uses exp(z − lse): with |z| ~ 1e4 an f32 lse carries ~1e-3 absolute error,
  // so probabilities are good to ~1e-3 relative here (~1e-5 at realistic |z| ≲ 100).
  const expectedGrad = ref.crossEntropyBackward(logits, targets, [-1, -0.5, 2], 3, vocab);
  assertClose(grad, expectedGrad, { rtol: 3e-3, atol: 1e-6 }, "dLogits ±1e4");
  for (const t of [logitsT, targetsT, out.logprob, out.lse, out.entropy!, dLogprob, dLogits]) {
    t.release();
  }
});

Deno.test("cross_entropy: out-of-range targets are clamped to V − 1", async () => {
  const ctx = await testGpu();
  const logits = [0.5, -1, 2, 0.25, 3, -2];
  const logitsT = ctx.f32(logits, [2, 3]);
  const targetsT = ctx.u32([3, 0xffffffff]);
  const out = gpuOps.crossEntropyForward(ctx, logitsT, targetsT, { entropy: false });
  if (out.entropy !== null) throw new Error("entropy: false must skip the entropy");
  const expected = ref.crossEntropy(logits, [2, 2], 2, 3);
  assertClose(await ctx.read(out.logprob), expected.logprob, LSE_TOL, "clamped logprob");
  for (const t of [logitsT, targetsT, out.logprob, out.lse]) t.release();
});

Deno.test("cross_entropy: backward (new tensor and in place) matches the reference", async () => {
  const ctx = await testGpu();
  const rng = new Rng(44);
  for (const [rows, vocab] of [[1, 1], [3, 2], [37, 17], [3, 1000], [2, 50_257]]) {
    for (const temperature of [1, 0.8]) {
      const logits = rng.normals(rows * vocab, 3);
      const targets = randomIds(rng, rows, vocab);
      // Loss L = −Σ w_r logprob_r, so g = −w; weight 0 on row 0 must give zero gradient.
      const g = rng.normals(rows).map((v, r) => (r === 0 ? 0 : -Math.abs(v)));
      const logitsT = ctx.f32(logits, [rows, vocab]);
      const targetsT = ctx.upload(targets, [rows], "u32");
      const gT = ctx.f32(g);
      const fwd = gpuOps.crossEntropyForward(ctx, logitsT, targetsT, {
        temperature,
        entropy: false,
      });
      const opts = { temperature };
      const dLogits = gpuOps.crossEntropyBackward(ctx, logitsT, targetsT, fwd.lse, gT, opts);
      const again = gpuOps.crossEntropyBackward(ctx, logitsT, targetsT, fwd.lse, gT, opts);
      const inPlace = gpuOps.crossEntropyBackward(ctx, logitsT, targetsT, fwd.lse, gT, {
        temperature,
        inPlace: true,
      });
      if (inPlace !== logitsT) throw new Error("inPlace must return the logits tensor");
      const [d1, d2, d3] = await ctx.readMany([dLogits, again, inPlace]);
      const expected = ref.crossEntropyBackward(logits, targets, g, rows, vocab, temperature);
      // p = exp(z − lse) is good to a few ulp relative, but at the target 1 − p cancels
      // when p ≈ 1 (f32 z − lse carries ~1e-7 absolute error): hence an absolute term.
      assertClose(d1, expected, { rtol: 1e-4, atol: 1e-6 }, `dLogits ${rows}x${vocab}`);
      assertBitEqual(d2, d1, `rerun ${rows}x${vocab}`);
      assertBitEqual(d3, d1, `in place ${rows}x${vocab}`);
      if (d1.subarray(0, vocab).some((v) => v !== 0)) throw new Error("weight-0 row not zero");
      for (const t of [logitsT, targetsT, gT, fwd.logprob, fwd.lse, dLogits, again]) {
        t.release();
      }
    }
  }
});

Deno.test("cross_entropy: forward reruns are bit-identical", async () => {
  const ctx = await testGpu();
  const rng = new Rng(45);
  const rows = 37;
  const vocab = 5003;
  const logitsT = ctx.f32(rng.normals(rows * vocab, 3), [rows, vocab]);
  const targetsT = ctx.upload(randomIds(rng, rows, vocab), [rows], "u32");
  const a = gpuOps.crossEntropyForward(ctx, logitsT, targetsT);
  const b = gpuOps.crossEntropyForward(ctx, logitsT, targetsT);
  const c = gpuOps.crossEntropyForward(ctx, logitsT, targetsT, { entropy: false });
  const outs = [a.logprob, a.lse, a.entropy!, b.logprob, b.lse, b.entropy!, c.logprob, c.lse];
  const [lp1, lse1, h1, lp2, lse2, h2, lp3, lse3] = await ctx.readMany(outs);
  assertBitEqual(lp2, lp1, "logprob rerun");
  assertBitEqual(lse2, lse1, "lse rerun");
  assertBitEqual(h2, h1, "entropy rerun");
  // The entropy-free kernel computes logprob and lse identically.
  assertBitEqual(lp3, lp1, "logprob without entropy");
  assertBitEqual(lse3, lse1, "lse without entropy");
  for (const t of [logitsT, targetsT, ...outs]) t.release();
});

Deno.test("cross_entropy: gatherLogprobs at a temperature, and its backward", async () => {
  const ctx = await testGpu();
  const rng = new Rng(46);
  const rows = 5;
  const vocab = 777;
  const logits = rng.normals(rows * vocab, 2);
  const ids = randomIds(rng, rows, vocab);
  const logitsT = ctx.f32(logits, [rows, vocab]);
  const idsT = ctx.upload(ids, [rows], "u32");
  const { logprob, lse } = gpuOps.gatherLogprobs(ctx, logitsT, idsT, { temperature: 0.7 });
  const g = rng.normals(rows);
  const gT = ctx.f32(g);
  const grad = gpuOps.gatherLogprobsBackward(ctx, logitsT, idsT, lse, gT, { temperature: 0.7 });
  const [lp, d] = await ctx.readMany([logprob, grad]);
  const expected = ref.crossEntropy(logits, ids, rows, vocab, { temperature: 0.7 });
  assertClose(lp, expected.logprob, LSE_TOL, "gathered logprob");
  const expectedGrad = ref.crossEntropyBackward(logits, ids, g, rows, vocab, 0.7);
  assertClose(d, expectedGrad, { rtol: 1e-4, atol: 1e-7 }, "gathered backward");
  for (const t of [logitsT, idsT, logprob, lse, gT, grad]) t.release();
});

Deno.test("cross_entropy: reference backward agrees with finite differences", () => {
  const rng = new Rng(47);
  const rows = 3;
  const vocab = 6;
  const logits = rng.normals(rows * vocab);
  const targets = [4, 0, 9]; // 9 ≥ V: clamped to 5
  const g = [-1, 0.5, -0.25];
  for (const temperature of [1, 0.7]) {
    const f = (x: Float64Array) =>
      ref.crossEntropy(x, targets, rows, vocab, { temperature }).logprob
        .reduce((acc, v, r) => acc + g[r] * v, 0);
    const numeric = finiteDifference(f, logits);
    const analytic = ref.crossEntropyBackward(logits, targets, g, rows, vocab, temperature);
    assertClose(analytic, numeric, { rtol: 1e-5, atol: 1e-8 }, `CE FD T=${temperature}`);
  }
});

Deno.test("cross_entropy: reference top-k entropy of known distributions", () => {
  // k equal logits: uniform over k → log k.
  assertClose([ref.topKEntropy(new Array(100).fill(0), 16)], [Math.log(16)], {}, "uniform");
  // One dominant logit: entropy → 0; k = 1 always 0.
  assertClose([ref.topKEntropy([50, 0, 0, 0], 16)], [0], { atol: 1e-18 }, "peaked");
  assertClose([ref.topKEntropy([1, 2, 3], 1)], [0], {}, "k=1");
  // Two logits differing by log 3: q = (3/4, 1/4).
  const h = -(0.75 * Math.log(0.75) + 0.25 * Math.log(0.25));
  assertClose([ref.topKEntropy([Math.log(3), 0, -50, -60], 2)], [h], { rtol: 1e-12 }, "pair");
});
