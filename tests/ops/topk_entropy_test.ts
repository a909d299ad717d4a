import { crossEntropyForward } from "../../lib/ops/cross_entropy.ts";
import {
  MAX_TOP_K,
  threadsPerRowFor,
  topKEntropy,
  type TopKEntropyOptions,
} from "../../lib/ops/topk_entropy.ts";
import * as ref from "../../lib/ref/topk_entropy.ts";
import { assertBitEqual, assertClose, Rng, testGpu } from "../helpers.ts";
import type { GpuContext } from "../../lib/gpu/context.ts";

// Up to 32 terms, log S − Σ e·z / S in f32 (a difference of O(1) values). A wrong count of
// tied values at the k-th place moves H by far more (≥ 1e-2 in the tie tests below).
const ENTROPY_TOL = { rtol: 1e-4, atol: 2e-5 };

/** Every threads-per-row the kernel takes. */
const ALL_THREADS = [1, 2, 4, 8, 16, 32, 64];

/** topKEntropy on the GPU for each option set, read back together. */
async function entropies(
  ctx: GpuContext,
  logits: Float32Array,
  rows: number,
  vocab: number,
  optionSets: TopKEntropyOptions[],
): Promise<Float32Array[]> {
  const logitsT = ctx.f32(logits, [rows, vocab]);
  const outs = optionSets.map((options) => topKEntropy(ctx, logitsT, options));
  const read = await ctx.readMany(outs);
  for (const t of [logitsT, ...outs]) t.release();
  return read as Float32Array[];
}

/**
 * Checks the GPU against the reference with the default layout and with every threads-per-row
 * that keeps a thread's share short enough: all must agree bit for bit (the result depends
 * on the row's top-k values only), and with the reference within ENTROPY_TOL.
 */
async function checkEntropy(
  ctx: GpuContext,
  logits: Float32Array,
  rows: number,
  vocab: number,
  options: { temperature?: number; k?: number },
  what: string,
  threadCounts = ALL_THREADS,
): Promise<Float32Array> {
  const sets = [options, ...threadCounts.map((threadsPerRow) => ({ ...options, threadsPerRow }))];
  const [first, ...others] = await entropies(ctx, logits, rows, vocab, sets);
  const expected = ref.topKEntropyRows(logits, rows, vocab, options);
  assertClose(first, expected, ENTROPY_TOL, `entropy ${what}`);
  others.forEach((h, i) => assertBitEqual(h, first, `${what}, ${threadCounts[i]} threads a row`));
  return first;
}

Deno.test("topk_entropy: awkward shapes, every threads-per-row, against the reference", async () => {
  const ctx = await testGpu();
  const rng = new Rng(51);
  // V: 1, below/at/above k, not multiples of 4 or of the threads, the tiny preset's 1088.
  for (const vocab of [1, 2, 3, 5, 15, 16, 17, 63, 65, 1088, 5003]) {
    for (const rows of [1, 3, 70]) { // 70 > 64: a second, partly empty workgroup at 1 thread a row
      if (rows === 70 && vocab === 5003) continue;
      const logits = rng.normals(rows * vocab, 3);
      await checkEntropy(ctx, logits, rows, vocab, {}, `${rows}x${vocab}`);
    }
  }
});

Deno.test("topk_entropy: every k from 1 to 32, k = V, k > V, and a temperature", async () => {
  const ctx = await testGpu();
  const rng = new Rng(52);
  const rows = 5;
  const vocab = 301;
  const logits = rng.normals(rows * vocab, 2);
  for (let k = 1; k <= MAX_TOP_K; k++) {
    const h = await checkEntropy(ctx, logits, rows, vocab, { k }, `k=${k}`, [1, 4, 64]);
    // k = 1: q = (1), H = log 1 − 0 = 0 exactly.
    if (k === 1) assertBitEqual(h, new Float32Array(rows), "k=1 gives 0");
  }
  for (const k of [16, 32]) {
    const square = rng.normals(3 * k, 2); // k = V
    await checkEntropy(ctx, square, 3, k, { k }, `k=V=${k}`);
    const short = rng.normals(3 * 7, 2); // k > V: all 7
    await checkEntropy(ctx, short, 3, 7, { k }, `k=${k} > V=7`);
  }
  for (const temperature of [0.6, 1.7]) {
    await checkEntropy(ctx, logits, rows, vocab, { temperature }, `T=${temperature}`, [1, 64]);
  }
});

Deno.test("topk_entropy: ties at the k-th place count exactly k values", async () => {
  const ctx = await testGpu();
  const rng = new Rng(53);
  // Logits from a tiny set of values: ties everywhere, across the k-th place too.
  const coarse = new Float32Array(6 * 1000).map(() => rng.int(4) * 0.5);
  await checkEntropy(ctx, coarse, 6, 1000, {}, "coarse ties");
  await checkEntropy(ctx, coarse, 6, 1000, { k: 5 }, "coarse ties, k=5");
  // 10 × 2.0 and 20 × 1.0 in a row of lower values: the top 16 is 10 × 2.0 + 6 × 1.0 (one
  // more or one fewer 1.0 moves H by ~1e-2). Spread over columns that different threads own,
  // and one row whose whole top 16 sits in the columns of one thread at 64 threads a row.
  const vocab = 5000;
  const mixed = rng.uniforms(vocab, -3, -1);
  for (let m = 0; m < 10; m++) mixed[7 + 256 * m] = 2;
  for (let m = 0; m < 20; m++) mixed[vocab - 1 - 131 * m] = 1;
  const oneThread = rng.uniforms(vocab, -3, -1);
  for (let m = 0; m < 16; m++) oneThread[3 + 64 * m] = 5 - m * 0.25;
  const consecutive = rng.uniforms(vocab, -3, -1); // the k-th tie in one 4-column block
  for (let m = 0; m < 14; m++) consecutive[100 + m] = 4;
  for (let m = 0; m < 4; m++) consecutive[200 + m] = 3;
  const rows = new Float32Array([...mixed, ...oneThread, ...consecutive]);
  await checkEntropy(ctx, rows, 3, vocab, {}, "mixed ties");
  // All equal: q uniform over the k taken, H = log k (up to f32 rounding).
  const flat = new Float32Array(2 * 300).fill(1.25);
  const h = await checkEntropy(ctx, flat, 2, 300, {}, "flat");
  assertClose(h, [Math.log(16), Math.log(16)], { rtol: 1e-6 }, "flat = log 16");
});

Deno.test("topk_entropy: −inf and very negative logits", async () => {
  const ctx = await testGpu();
  const rng = new Rng(54);
  const vocab = 203;
  const rows = 5;
  const logits = rng.normals(rows * vocab, 2);
  const row = (r: number) => logits.subarray(r * vocab, (r + 1) * vocab);
  row(0).fill(-Infinity).set([0.5, -1, 2], 40); // 3 finite values, k = 16: the rest is −inf
  row(1).fill(-Infinity)[vocab - 1] = -7; // a single finite value: H = 0
  for (let j = 0; j < vocab; j += 2) row(2)[j] = -3e38; // half near the lowest f32
  row(3).fill(-3e38).set([1, 1, 0], 100); // 3 values, then ties at −3e38 (weight 0)
  for (let j = 0; j < vocab; j += 3) row(4)[j] = -Infinity; // −inf between finite values
  await checkEntropy(ctx, logits, rows, vocab, {}, "−inf");
  await checkEntropy(ctx, logits, rows, vocab, { temperature: 0.5 }, "−inf, T=0.5");
  // A row whose largest logit is ±inf has no distribution: NaN, as the merged-list kernel
  // before this one gave (the reference's q > 0 guard gives 0 for −inf; the spec leaves it).
  const infinite = new Float32Array(3 * 20).fill(-Infinity);
  infinite[40] = Infinity;
  const [h, k1] = await entropies(ctx, infinite, 3, 20, [{}, { k: 1 }]);
  const [single] = await entropies(ctx, new Float32Array([-Infinity]), 1, 1, [{}]);
  for (const [what, v] of [["k=16", h], ["k=1", k1], ["V=1", single]] as const) {
    if (!v.every(Number.isNaN)) throw new Error(`infinite rows, ${what}: got ${v}, expected NaN`);
  }
});

Deno.test("topk_entropy: order-free (shuffled rows give the same bits), reruns bit-identical", async () => {
  const ctx = await testGpu();
  const rng = new Rng(55);
  const rows = 9;
  const vocab = 1088;
  const logits = new Float32Array(rows * vocab).map(() => Math.round(rng.normals(1, 4)[0] * 4) / 4);
  const shuffled = logits.slice();
  for (let r = 0; r < rows; r++) {
    const row = shuffled.subarray(r * vocab, (r + 1) * vocab);
    for (let j = vocab - 1; j > 0; j--) {
      const i = rng.int(j + 1);
      [row[i], row[j]] = [row[j], row[i]];
    }
  }
  const sets = [{}, { threadsPerRow: 1 }, { threadsPerRow: 64 }];
  const [a, a1, a64] = await entropies(ctx, logits, rows, vocab, sets);
  const [b, b1, b64] = await entropies(ctx, shuffled, rows, vocab, sets);
  const [again] = await entropies(ctx, logits, rows, vocab, [{}]);
  assertBitEqual(again, a, "rerun");
  for (const [name, h] of [["1", a1], ["64", a64], ["shuffled", b], ["s1", b1], ["s64", b64]]) {
    assertBitEqual(h as Float32Array, a, `${name} vs default`);
  }
});

Deno.test("topk_entropy: a Qwen-sized vocabulary (V = 151 936) and long shares", async () => {
  const ctx = await testGpu();
  const rng = new Rng(56);
  const rows = 3;
  const vocab = 151_936;
  const logits = rng.normals(rows * vocab, 2);
  // Peaky rows, as trained models give: a few large logits, two of them tied at the k-th.
  for (let j = 0; j < 20; j++) logits[vocab + rng.int(vocab)] = 12 + j * 0.1;
  for (let j = 0; j < 16; j++) logits[2 * vocab + 4 * j + 1] = 9 + Math.floor(j / 2);
  logits[2 * vocab + 77_777] = 9;
  // 4 threads a row: 37,984 columns each, the longest share allowed at this V.
  await checkEntropy(ctx, logits, rows, vocab, {}, "V=151936", [4, 16, 64]);
  // A share over lavapipe's 65,535 loop iterations is refused, not silently cut short.
  const logitsT = ctx.f32(logits, [rows, vocab]);
  for (const threadsPerRow of [1, 2]) {
    let message = "";
    try {
      topKEntropy(ctx, logitsT, { threadsPerRow });
    } catch (e) {
      message = (e as Error).message;
    }
    if (!message.includes("65535 columns a thread")) {
      throw new Error(`threadsPerRow ${threadsPerRow}: expected a refusal, got "${message}"`);
    }
  }
  logitsT.release();
});

Deno.test("topk_entropy: crossEntropyForward's entropy is topKEntropy; options checked", async () => {
  const ctx = await testGpu();
  const rng = new Rng(57);
  const rows = 4;
  const vocab = 777;
  const logitsT = ctx.f32(rng.normals(rows * vocab, 3), [rows, vocab]);
  const targetsT = ctx.u32([1, 2, 3, 776]);
  const fused = crossEntropyForward(ctx, logitsT, targetsT, { k: 7, temperature: 0.9 });
  const direct = topKEntropy(ctx, logitsT, { k: 7, temperature: 0.9 });
  const [h1, h2] = await ctx.readMany([fused.entropy!, direct]);
  assertBitEqual(h1, h2, "crossEntropyForward entropy");
  const bad: TopKEntropyOptions[] = [
    { k: 0 },
    { k: 33 },
    { k: 2.5 },
    { temperature: 0 },
    { temperature: NaN },
    { threadsPerRow: 3 },
    { threadsPerRow: 128 },
  ];
  for (const options of bad) {
    let threw = false;
    try {
      topKEntropy(ctx, logitsT, options);
    } catch (e) {
      threw = (e as Error).message.startsWith("topKEntropy:");
    }
    if (!threw) throw new Error(`options ${JSON.stringify(options)} must be refused`);
  }
  for (const t of [logitsT, targetsT, fused.logprob, fused.lse, fused.entropy!, direct]) {
    t.release();
  }
  // The layout heuristic: one thread a row for short rows in bulk, more for long or few rows.
  const layouts = [[8192, 1088], [1024, 32_000], [64, 151_936], [1, 1], [3, 50_257]]
    .map(([r, v]) => threadsPerRowFor(r, v));
  assertBitEqual(layouts, [1, 2, 16, 1, 64], "threadsPerRowFor");
});
