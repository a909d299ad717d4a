import type { GpuContext } from "../../lib/gpu/context.ts";
import * as gpuOps from "../../lib/ops/sampling.ts";
import * as ref from "../../lib/ref/sampling.ts";
import {
  assertBitEqual,
  assertClose,
  AssertionError,
  assertUserError,
  Rng,
  testGpu,
} from "../helpers.ts";

// logprobs: f32 GPU (s − max − log Σ) vs f64 reference.
const LOGPROB_TOL = { rtol: 1e-5, atol: 1e-5 };

function check(condition: boolean, message: string): void {
  if (!condition) throw new AssertionError({ message });
}

/** Logits [rows, V] as normals · scale; `quantum` > 0 rounds them to create many ties. */
function randomLogits(rng: Rng, rows: number, vocab: number, scale = 2, quantum = 0): Float32Array {
  const logits = rng.normals(rows * vocab, scale);
  if (quantum > 0) {
    for (let i = 0; i < logits.length; i++) {
      logits[i] = Math.round(logits[i] / quantum) * quantum;
    }
  }
  return logits;
}

async function sampleOnGpu(
  ctx: GpuContext,
  logits: Float32Array,
  rows: number,
  options: gpuOps.SamplingOptions & gpuOps.RngKey,
): Promise<{ ids: Uint32Array; logprobs: Float32Array }> {
  const t = ctx.f32(logits, [rows, logits.length / rows]);
  const out = gpuOps.sample(ctx, t, options);
  const [ids, logprobs] = await ctx.readMany([out.ids, out.logprobs]);
  for (const x of [t, out.ids, out.logprobs]) x.release();
  return { ids: ids as Uint32Array, logprobs: logprobs as Float32Array };
}

/**
 * GPU (f32) and reference (f64) may legitimately disagree when u falls within rounding of a
 * CDF boundary, or p·mass within rounding of a top-p cut: accept a different id only if the
 * reference picks it after such a nudge.
 */
function sameIdUpToRounding(
  row: Float32Array,
  u: number,
  options: ref.SamplingOptions,
  gpuId: number,
): boolean {
  const topP = options.topP ?? 1;
  for (const p of [topP, Math.min(1, topP * (1 + 1e-5)), topP * (1 - 1e-5)]) {
    const probs = ref.samplingDistribution(row, { ...options, topP: p });
    for (const v of [u, u - 1e-5, u + 1e-5]) {
      if (ref.drawFrom(probs, Math.min(Math.max(v, 0), 1 - 2 ** -24)) === gpuId) return true;
    }
  }
  return false;
}

// ---- chi-square p-values --------------------------------------------------------------------

function logGamma(x: number): number {
  // Lanczos approximation (g = 7, 9 terms), |error| < 1e-13 for x > 0.5.
  const c = [
    0.99999999999980993,
    676.5203681218851,
    -1259.1392167224028,
    771.32342877765313,
    -176.61502916214059,
    12.507343278686905,
    -0.13857109526572012,
    9.9843695780195716e-6,
    1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const y = x - 1;
  let a = c[0];
  for (let i = 1; i < 9; i++) a += c[i] / (y + i);
  const t = y + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (y + 0.5) * Math.log(t) - t + Math.log(a);
}

/** P(χ²_df ≥ x) = Q(df/2, x/2), the regularised upper incomplete gamma (Numerical Recipes). */
function chiSquareSurvival(x: number, df: number): number {
  const a = df / 2;
  const z = x / 2;
  if (z <= 0) return 1;
  const front = Math.exp(-z + a * Math.log(z) - logGamma(a));
  if (z < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < 10_000 && term > sum * 1e-16; n++) {
      term *= z / (a + n);
      sum += term;
    }
    return 1 - front * sum;
  }
  const tiny = 1e-300;
  let b = z + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 10_000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return front * h;
}

Deno.test("sampling: chi-square survival function matches tabulated values", () => {
  // scipy.stats.chi2.isf(1e-4, df) for df 1, 4, 9 and chi2.sf(10, df) for df 1, 5, 9.
  assertClose([chiSquareSurvival(15.136705226623397, 1)], [1e-4], { rtol: 1e-8, atol: 0 });
  assertClose([chiSquareSurvival(23.512742444990838, 4)], [1e-4], { rtol: 1e-8, atol: 0 });
  assertClose([chiSquareSurvival(33.719948438964636, 9)], [1e-4], { rtol: 1e-8, atol: 0 });
  assertClose([chiSquareSurvival(10, 1)], [0.001565402258002549], { rtol: 1e-8, atol: 0 });
  assertClose([chiSquareSurvival(10, 5)], [0.07523524614651217], { rtol: 1e-8, atol: 0 });
  assertClose([chiSquareSurvival(10, 9)], [0.3504852123233613], { rtol: 1e-8, atol: 0 });
});

// ---- the RNG --------------------------------------------------------------------------------

Deno.test("sampling: reference Philox4x32-10 matches Random123's known answers", () => {
  // Random123 tests/kat_vectors, the three "philox4x32 10" lines: counter, key → output.
  const cases: [number[], number[], number[]][] = [
    [[0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]],
    [
      [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
      [0xffffffff, 0xffffffff],
      [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
    ],
    [
      [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
      [0xa4093822, 0x299f31d0],
      [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
    ],
  ];
  for (const [counter, key, expected] of cases) {
    assertBitEqual(ref.philox4x32_10(counter, key), expected, `philox(${counter}, ${key})`);
  }
});

Deno.test("sampling: GPU uniforms equal the reference bit for bit", async () => {
  const ctx = await testGpu();
  const keys: gpuOps.RngKey[] = [
    { seed: 0, step: 0 },
    { seed: 12345, step: 3, firstRow: 17 },
    { seed: 2 ** 40 + 7, step: 2 ** 32 - 1, firstRow: 2 ** 32 - 1000 },
  ];
  const rows = 1000;
  const tensors = keys.map((key) => gpuOps.philoxUniforms(ctx, rows, key));
  const got = await ctx.readMany(tensors);
  keys.forEach((key, k) => {
    const expected = Array.from(
      { length: rows },
      (_, r) => ref.philoxUniform(key.seed, key.step, (key.firstRow ?? 0) + r),
    );
    assertBitEqual(got[k], expected, `uniforms seed=${key.seed} step=${key.step}`);
    check(got[k].every((u) => u >= 0 && u < 1), "uniforms in [0, 1)");
  });
  for (const t of tensors) t.release();
});

// ---- GPU vs reference -------------------------------------------------------------------------

for (const threads of [undefined, 8, 16, 64, 256]) {
  const name = `sampling: for the same uniforms, GPU and reference choose the same ids (${
    threads ?? "default"
  } threads per row)`;
  Deno.test(name, () => sameIdsAsReference(threads));
}

async function sameIdsAsReference(threads: number | undefined): Promise<void> {
  const ctx = await testGpu();
  const rng = new Rng(7);
  // [rows, V]: V = 1, a prime below the 64-thread workgroup, not a multiple of it, and one
  // above 4096 (the 256-thread workgroup); the last one with ties (logits rounded to 0.5).
  const shapes: [number, number, number][] = [[5, 1, 0], [37, 7, 0], [16, 1000, 0], [8, 4099, 0.5]];
  const optionSets: ref.SamplingOptions[] = [
    { temperature: 1 },
    { temperature: 0.7, topK: 5 },
    { temperature: 1, topK: 1 },
    { temperature: 1.3, topP: 0.9 },
    { temperature: 0.7, topK: 50, topP: 0.3 },
    { temperature: 1, topK: 3, topP: 0.999 },
  ];
  let mismatches = 0;
  let draws = 0;
  for (const [rows, vocab, quantum] of shapes) {
    const logits = randomLogits(rng, rows, vocab, 2, quantum);
    const uniforms = Array.from({ length: rows }, () => Math.floor(rng.next() * 2 ** 24) / 2 ** 24);
    uniforms[0] = 0;
    uniforms[rows - 1] = 1 - 2 ** -24;
    const tLogits = ctx.f32(logits, [rows, vocab]);
    const tUniforms = ctx.f32(uniforms);
    const outs = optionSets.map((o) =>
      gpuOps.sampleWithUniforms(ctx, tLogits, tUniforms, { ...o, threads })
    );
    const got = await ctx.readMany(outs.flatMap((o) => [o.ids, o.logprobs]));
    optionSets.forEach((options, k) => {
      const what = `[${rows}, ${vocab}] ${JSON.stringify(options)}`;
      const expected = ref.sampleWithUniforms(logits, rows, uniforms, options);
      const ids = got[2 * k];
      for (let r = 0; r < rows; r++) {
        draws++;
        if (ids[r] === expected.ids[r]) continue;
        mismatches++;
        const row = logits.subarray(r * vocab, (r + 1) * vocab);
        check(
          sameIdUpToRounding(row, uniforms[r], options, ids[r]),
          `${what} row ${r}: GPU id ${ids[r]}, reference ${expected.ids[r]}`,
        );
      }
      // logprobs of the GPU's ids (equal to the reference's, except at a rounding boundary).
      const expectedLogprobs = Array.from(
        ids,
        (id, r) =>
          ref.logProbability(logits.subarray(r * vocab, (r + 1) * vocab), id, options.temperature),
      );
      assertClose(got[2 * k + 1], expectedLogprobs, LOGPROB_TOL, `logprobs ${what}`);
    });
    for (const t of [tLogits, tUniforms, ...outs.flatMap((o) => [o.ids, o.logprobs])]) t.release();
  }
  check(mismatches <= draws / 100, `${mismatches} of ${draws} draws differ at rounding boundaries`);
}

Deno.test("sampling: temperature 0 is argmax, ties to the smallest index; V = 1", async () => {
  const ctx = await testGpu();
  const rng = new Rng(3);
  const vocab = 5000;
  const rows = 4;
  const logits = randomLogits(rng, rows, vocab);
  // Row 1: a tie for the max at 4000 and 17 → 17. Row 2: all equal → 0. Row 3: max at the end.
  logits[vocab + 4000] = 50;
  logits[vocab + 17] = 50;
  logits.fill(-3, 2 * vocab, 3 * vocab);
  logits[4 * vocab - 1] = 60;
  const greedy = await sampleOnGpu(ctx, logits, rows, { temperature: 0, seed: 1, step: 0 });
  const expected = Array.from(
    { length: rows },
    (_, r) => ref.argmax(logits.subarray(r * vocab, (r + 1) * vocab)),
  );
  assertBitEqual(greedy.ids, expected, "greedy ids");
  assertBitEqual(expected.slice(1), [17, 0, vocab - 1], "reference argmax");
  assertBitEqual(greedy.logprobs, [0, 0, 0, 0], "greedy logprobs");
  // V = 1: the only id, with log-probability 0, whatever the options.
  for (const options of [{ temperature: 0 }, { temperature: 1 }, { temperature: 2, topK: 1 }]) {
    const single = await sampleOnGpu(ctx, Float32Array.of(0.5, -7, 1e30), 3, {
      ...options,
      topP: 0.5,
      seed: 4,
      step: 1,
    });
    assertBitEqual(single.ids, [0, 0, 0], `V=1 ids ${JSON.stringify(options)}`);
    assertBitEqual(single.logprobs, [0, 0, 0], `V=1 logprobs ${JSON.stringify(options)}`);
  }
});

// ---- the distribution ---------------------------------------------------------------------

Deno.test("sampling: frequencies match the distribution (chi-square, p > 1e-4)", async () => {
  const ctx = await testGpu();
  const vocab = 10;
  const rows = 20_000;
  const row = Float32Array.of(1.0, 0.2, -0.5, 2.0, 0.0, -1.5, 1.2, 0.7, -0.2, 0.4);
  const logits = new Float32Array(rows * vocab);
  for (let r = 0; r < rows; r++) logits.set(row, r * vocab);
  const optionSets: ref.SamplingOptions[] = [
    { temperature: 1 },
    { temperature: 0.6 },
    { temperature: 1.5, topK: 6 },
    { temperature: 0.8, topP: 0.8 },
    { temperature: 1, topK: 7, topP: 0.7 },
  ];
  const tLogits = ctx.f32(logits, [rows, vocab]);
  const outs = optionSets.map((o, k) => gpuOps.sample(ctx, tLogits, { ...o, seed: 11, step: k }));
  const got = await ctx.readMany(outs.map((o) => o.ids));
  optionSets.forEach((options, k) => {
    const probs = ref.samplingDistribution(row, options);
    const counts = new Array<number>(vocab).fill(0);
    for (const id of got[k]) counts[id]++;
    let statistic = 0;
    let categories = 0;
    for (let j = 0; j < vocab; j++) {
      if (probs[j] === 0) {
        check(counts[j] === 0, `${JSON.stringify(options)}: excluded id ${j} drawn ${counts[j]}×`);
        continue;
      }
      const expected = rows * probs[j];
      statistic += (counts[j] - expected) ** 2 / expected;
      categories++;
    }
    const pValue = chiSquareSurvival(statistic, categories - 1);
    check(
      pValue > 1e-4,
      `${JSON.stringify(options)}: χ² = ${statistic.toFixed(2)} with ${categories - 1} ` +
        `degrees of freedom, p = ${pValue.toExponential(2)}; counts ${counts}`,
    );
  });
  for (const t of [tLogits, ...outs.flatMap((o) => [o.ids, o.logprobs])]) t.release();
});

Deno.test("sampling: top-k and top-p never emit excluded ids", async () => {
  const ctx = await testGpu();
  const rng = new Rng(21);
  const vocab = 5003;
  const rows = 512;
  // One logits row repeated, drawn with 512 different uniforms; cuts chosen away from rounding.
  const row = randomLogits(rng, 1, vocab, 3);
  const logits = new Float32Array(rows * vocab);
  for (let r = 0; r < rows; r++) logits.set(row, r * vocab);
  const tLogits = ctx.f32(logits, [rows, vocab]);
  const optionSets: ref.SamplingOptions[] = [
    { temperature: 1, topK: 20 },
    { temperature: 1, topP: 0.5 },
    { temperature: 2, topK: 200, topP: 0.3 },
  ];
  const outs = optionSets.map((o, k) => gpuOps.sample(ctx, tLogits, { ...o, seed: 5, step: k }));
  const got = await ctx.readMany(outs.map((o) => o.ids));
  optionSets.forEach((options, k) => {
    const probs = ref.samplingDistribution(row, options);
    // The test is well posed only if a slightly different p keeps the same set.
    for (const p of [(options.topP ?? 1) * (1 - 1e-4), Math.min(1, (options.topP ?? 1) * 1.0001)]) {
      const nudged = ref.samplingDistribution(row, { ...options, topP: p });
      check(nudged.every((q, j) => (q > 0) === (probs[j] > 0)), "kept set sensitive to p");
    }
    const keptCount = probs.filter((q) => q > 0).length;
    const distinct = new Set(got[k]);
    for (const id of distinct) {
      check(probs[id] > 0, `${JSON.stringify(options)}: drew excluded id ${id}`);
    }
    check(distinct.size > 1 && keptCount > 1, `${JSON.stringify(options)}: degenerate test`);
  });
  for (const t of [tLogits, ...outs.flatMap((o) => [o.ids, o.logprobs])]) t.release();
});

Deno.test("sampling: V = 151,936 matches the reference", async () => {
  const ctx = await testGpu();
  const rng = new Rng(13);
  const vocab = 151_936;
  const rows = 3;
  const logits = randomLogits(rng, rows, vocab, 3);
  const optionSets: ref.SamplingOptions[] = [
    { temperature: 0 },
    { temperature: 1 },
    { temperature: 0.8, topK: 50, topP: 0.9 },
    { temperature: 1.2, topP: 0.95 },
  ];
  for (const [k, options] of optionSets.entries()) {
    const key = { seed: 99, step: k };
    const got = await sampleOnGpu(ctx, logits, rows, { ...options, ...key });
    const expected = ref.sample(logits, rows, { ...options, ...key });
    for (let r = 0; r < rows; r++) {
      if (got.ids[r] === expected.ids[r]) continue;
      const u = ref.philoxUniform(key.seed, key.step, r);
      check(
        sameIdUpToRounding(logits.subarray(r * vocab, (r + 1) * vocab), u, options, got.ids[r]),
        `${JSON.stringify(options)} row ${r}: GPU id ${got.ids[r]}, reference ${expected.ids[r]}`,
      );
    }
    const expectedLogprobs = Array.from(
      got.ids,
      (id, r) =>
        ref.logProbability(logits.subarray(r * vocab, (r + 1) * vocab), id, options.temperature),
    );
    assertClose(got.logprobs, expectedLogprobs, LOGPROB_TOL, `logprobs ${JSON.stringify(options)}`);
  }
});

// ---- seeds, batches, reruns ---------------------------------------------------------------------

Deno.test("sampling: seeds, batch independence and bit-identical reruns", async () => {
  const ctx = await testGpu();
  const rng = new Rng(17);
  const vocab = 1000;
  const rows = 64;
  const logits = randomLogits(rng, rows, vocab, 0.5); // flat-ish: many plausible ids per row
  const options = { temperature: 1, topK: 100, topP: 0.95, step: 7 };
  const first = await sampleOnGpu(ctx, logits, rows, { ...options, seed: 1 });
  const again = await sampleOnGpu(ctx, logits, rows, { ...options, seed: 1 });
  assertBitEqual(again.ids, first.ids, "same seed: ids");
  assertBitEqual(again.logprobs, first.logprobs, "same seed: logprobs");
  const other = await sampleOnGpu(ctx, logits, rows, { ...options, seed: 2 });
  const differing = first.ids.filter((id, r) => id !== other.ids[r]).length;
  check(differing > rows / 2, `different seed: only ${differing} of ${rows} ids differ`);
  const nextStep = await sampleOnGpu(ctx, logits, rows, { ...options, seed: 1, step: 8 });
  const differingStep = first.ids.filter((id, r) => id !== nextStep.ids[r]).length;
  check(differingStep > rows / 2, `different step: only ${differingStep} of ${rows} ids differ`);
  // Writing into given tensors (e.g. the decode step's input ids) gives the same result.
  const tLogits = ctx.f32(logits, [rows, vocab]);
  const into = { ids: ctx.empty([rows], "u32"), logprobs: ctx.empty([rows], "f32") };
  check(gpuOps.sample(ctx, tLogits, { ...options, seed: 1 }, into) === into, "into returned");
  const [intoIds, intoLogprobs] = await ctx.readMany([into.ids, into.logprobs]);
  assertBitEqual(intoIds, first.ids, "into: ids");
  assertBitEqual(intoLogprobs, first.logprobs, "into: logprobs");
  for (const t of [tLogits, into.ids, into.logprobs]) t.release();
  // Rows drawn alone (or in another batch), keyed by their global row index.
  for (const [start, count] of [[0, 1], [13, 1], [63, 1], [20, 9]]) {
    const part = logits.subarray(start * vocab, (start + count) * vocab);
    const alone = await sampleOnGpu(ctx, part, count, { ...options, seed: 1, firstRow: start });
    assertBitEqual(alone.ids, first.ids.subarray(start, start + count), `rows ${start}+${count}`);
    assertBitEqual(
      alone.logprobs,
      first.logprobs.subarray(start, start + count),
      `logprobs ${start}+${count}`,
    );
  }
});

Deno.test("sampling: bad arguments name the op and the shapes", async () => {
  const ctx = await testGpu();
  const logits = ctx.zeros([6], "f32");
  const messages: string[] = [];
  const attempts = [
    () => gpuOps.sample(ctx, logits, { temperature: 1, seed: 1, step: 0 }),
    () => gpuOps.sample(ctx, logits.reshape([2, 3]), { temperature: 1, topP: 0, seed: 1, step: 0 }),
    () => gpuOps.sample(ctx, logits.reshape([2, 3]), { temperature: -1, seed: 1, step: 0 }),
    () =>
      gpuOps.sample(ctx, logits.reshape([2, 3]), { temperature: 0, threads: 12, seed: 1, step: 0 }),
  ];
  for (const attempt of attempts) {
    try {
      attempt();
    } catch (e) {
      messages.push((e as Error).message);
    }
  }
  check(messages.length === 4, `expected 4 errors, got ${messages.length}`);
  check(messages[3].includes("threads"), messages[3]);
  check(messages[0].includes("[6]"), messages[0]);
  check(messages.every((m) => m.startsWith("sample")), messages.join("; "));
  logits.release();
});

Deno.test("sampling: on a software adapter, rows past llvmpipe's loop limit are refused", async () => {
  // A sampling invocation sweeps its share of the row ~18 times; llvmpipe ends its loops after
  // 65,535 iterations in all (lib/gpu/loop_limit.ts), which made 16–32 threads per row wrong at
  // V = 151,936. At 256 threads a row of 900,000 logits is past that: refused in one line.
  const ctx = await testGpu();
  if (!ctx.adapter.isFallback) return;
  const logits = ctx.zeros([1, 900_000], "f32");
  await assertUserError(
    () => gpuOps.sample(ctx, logits, { temperature: 1, seed: 1, step: 0 }),
    ["sample: a vocabulary of 900000", "llvmpipe stops every loop after 65535"],
    "sampling 900,000 logits",
  );
  logits.release();
});
