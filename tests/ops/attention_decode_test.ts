import { attentionForward } from "../../lib/ops/attention.ts";
import * as gpuOps from "../../lib/ops/attention_decode.ts";
import { readTimeSlice } from "../../lib/ops/kv_cache.ts";
import * as ref from "../../lib/ref/attention_decode.ts";
import type { GpuContext } from "../../lib/gpu/context.ts";
import {
  assert,
  assertBitEqual,
  assertClose,
  assertUserError,
  Rng,
  testGpu,
  type Tolerance,
} from "../helpers.ts";

type Dims = ref.AttentionDecodeDims;

/** One decode case: sizes, which keys are real, and options. */
interface Case {
  name: string;
  dims: Dims;
  /** keyMask[b, j] for j < maskLen; all ones when absent. */
  mask?: (b: number, j: number) => number;
  scale?: number;
  threads?: number;
  variant?: gpuOps.AttentionDecodeVariant;
  /** Masked cache rows (below length) hold NaN: the kernel must not read them into the sum. */
  nanInMaskedRows?: boolean;
  /** q given as [B, Hq, D] rather than [B, 1, Hq, D]. */
  flatQuery?: boolean;
  /** No attentionForward to compare with (shapes its buffer kernels refuse on lavapipe). */
  skipForward?: boolean;
  /** Instead of TOLERANCE. */
  tolerance?: Tolerance;
}

function dims(
  batch: number,
  maxLen: number,
  length: number,
  queryHeads: number,
  kvHeads: number,
  headDim: number,
  maskLen = maxLen,
): Dims {
  return { batch, maxLen, maskLen, length, queryHeads, kvHeads, headDim };
}

/**
 * Random inputs: q, the caches (rows at and past length hold NaN, which must be ignored) and
 * the key mask.
 */
function inputs(c: Case, seed: number) {
  const { batch, maxLen, maskLen, length, queryHeads, kvHeads, headDim } = c.dims;
  const rng = new Rng(seed);
  const row = kvHeads * headDim;
  const mask = new Uint32Array(batch * maskLen);
  for (let b = 0; b < batch; b++) {
    for (let j = 0; j < maskLen; j++) mask[b * maskLen + j] = c.mask ? c.mask(b, j) : 1;
  }
  const cache = () => {
    const x = rng.normals(batch * maxLen * row);
    for (let b = 0; b < batch; b++) {
      for (let j = 0; j < maxLen; j++) {
        const garbage = j >= length || (c.nanInMaskedRows && mask[b * maskLen + j] === 0);
        if (garbage) x.fill(NaN, (b * maxLen + j) * row, (b * maxLen + j + 1) * row);
      }
    }
    return x;
  };
  return { q: rng.normals(batch * queryHeads * headDim), k: cache(), v: cache(), mask };
}

/**
 * The GPU decode output of a case, and attentionForward's on the copied prefix (Tq = 1,
 * Tk = length; skipped when masked rows hold NaN, which attentionForward multiplies by 0).
 */
async function runGpu(ctx: GpuContext, c: Case, x: ReturnType<typeof inputs>) {
  const { batch, maxLen, maskLen, length, queryHeads, kvHeads, headDim } = c.dims;
  const qShape = c.flatQuery ? [batch, queryHeads, headDim] : [batch, 1, queryHeads, headDim];
  const q = ctx.f32(x.q, qShape);
  const k = ctx.f32(x.k, [batch, maxLen, kvHeads, headDim]);
  const v = ctx.f32(x.v, [batch, maxLen, kvHeads, headDim]);
  const mask = ctx.u32(x.mask, [batch, maskLen]);
  let out;
  try {
    out = gpuOps.attentionDecode(ctx, q, k, v, mask, {
      length,
      scale: c.scale,
      threads: c.threads,
      variant: c.variant,
    });
  } catch (e) {
    for (const t of [q, k, v, mask]) t.release();
    throw e;
  }
  const temporaries = [q, k, v, mask, out];
  const read = [out];
  if (!c.nanInMaskedRows && !c.skipForward) {
    const keys = readTimeSlice(ctx, k, 0, length);
    const values = readTimeSlice(ctx, v, 0, length);
    const keyMask = readTimeSlice(ctx, mask, 0, length);
    const q4 = q.reshape([batch, 1, queryHeads, headDim]);
    const full = attentionForward(ctx, q4, keys, values, keyMask, { scale: c.scale });
    temporaries.push(keys, values, keyMask, full.out, full.lse);
    read.push(full.out);
  }
  const [got, forward] = await ctx.readMany(read);
  for (const t of temporaries) t.release();
  return { got, forward };
}

/** Runs case c on the inputs of `seed` and checks it against the reference. */
async function assertMatchesReference(ctx: GpuContext, c: Case, seed: number) {
  const x = inputs(c, seed);
  const { got } = await runGpu(ctx, c, x);
  const want = ref.attentionDecode(x.q, x.k, x.v, x.mask, c.dims, { scale: c.scale });
  assertClose(got, want, c.tolerance ?? TOLERANCE, `${c.name}: vs reference`);
}

const CASES: Case[] = [
  { name: "B=1 length=1 maxLen=1 D=4 single head", dims: dims(1, 1, 1, 1, 1, 4) },
  { name: "B=1 length=1 of maxLen=6, D=8 MHA", dims: dims(1, 6, 1, 2, 2, 8) },
  { name: "length=13 of 20 (partial block), D=64, Hq=Hkv", dims: dims(3, 20, 13, 2, 2, 64) },
  {
    name: "length=37 of 50, D=128, GQA 4:1, left padding, scale 0.7",
    dims: dims(2, 50, 37, 8, 2, 128),
    mask: (b, j) => (b === 1 && j < 11 ? 0 : 1),
    scale: 0.7,
    // Scores of standard deviation ~8: exp turns their f32 rounding (~1e-6) into output errors
    // of ~2e-6 here (attentionForward's are ~5e-6).
    tolerance: { rtol: 1e-5, atol: 1e-5 },
  },
  {
    name: "length=29, D=12, GQA 3:1, scattered padding, mask only length wide",
    dims: dims(2, 31, 29, 3, 1, 12, 29),
    mask: (b, j) => ((j * 7 + b) % 5 === 0 ? 0 : 1),
  },
  {
    name: "length=9, D=6 (not a multiple of 4: the copying fallback)",
    dims: dims(2, 11, 9, 4, 2, 6),
    mask: (b, j) => (b === 0 && j < 3 ? 0 : 1),
  },
  {
    name: "masked rows hold NaN, D=16, GQA 2:1",
    dims: dims(2, 24, 21, 4, 2, 16),
    mask: (b, j) => (j < 4 + b || j === 17 ? 0 : 1),
    nanInMaskedRows: true,
  },
  { name: "GQA 16:1 (two head slices of 8), D=8", dims: dims(2, 19, 17, 16, 1, 8) },
  {
    name: "GQA 9:1 (three head slices of 3), D=8, q [B, Hq, D]",
    dims: dims(2, 9, 9, 9, 1, 8),
    flatQuery: true,
  },
  { name: "GQA 5:1, D=20, 1 thread", dims: dims(2, 30, 23, 10, 2, 20), threads: 1 },
  { name: "length=45, D=64, 3 threads", dims: dims(2, 45, 45, 6, 2, 64), threads: 3 },
  {
    name: "length=70, D=64, 32 threads (more threads than 4-key blocks)",
    dims: dims(2, 80, 70, 6, 2, 64),
    mask: (b, j) => (b === 0 && j < 9 ? 0 : 1),
    threads: 32,
  },
  {
    name: "sequences that see no key (all padding; only keys past length)",
    dims: dims(3, 12, 7, 4, 2, 8),
    mask: (b, j) => (b === 0 ? 0 : b === 1 ? Number(j >= 7) : 1),
  },
  {
    name: "large B=64 length=300 of 320, D=64, GQA 3:1, left padding",
    dims: dims(64, 320, 300, 6, 2, 64),
    mask: (b, j) => (j < b % 13 ? 0 : 1),
  },
];

// f32 kernel against the f64 reference: sums of up to a few hundred terms of size ~1 (the
// worst errors seen are ~2.5e-7); the same against attentionForward (f32 too).
const TOLERANCE: Tolerance = { rtol: 1e-5, atol: 1e-6 };

Deno.test("attention_decode: matches the reference and attentionForward; reruns are bit-identical", async () => {
  const ctx = await testGpu();
  for (const [n, c] of CASES.entries()) {
    const x = inputs(c, 200 + n);
    const { got, forward } = await runGpu(ctx, c, x);
    const want = ref.attentionDecode(x.q, x.k, x.v, x.mask, c.dims, { scale: c.scale });
    assert(got.every(Number.isFinite), `${c.name}: non-finite output`);
    const tolerance = c.tolerance ?? TOLERANCE;
    assertClose(got, want, tolerance, `${c.name}: vs reference`);
    if (forward) assertClose(got, forward, tolerance, `${c.name}: vs attentionForward`);
    if (c.name.startsWith("large") || c.name.includes("NaN") || c.name.includes("32 threads")) {
      const again = await runGpu(ctx, c, x);
      assertBitEqual(again.got, got, `${c.name}: rerun`);
    }
  }
});

Deno.test("attention_decode: the rows variant matches the reference on every case it takes", async () => {
  const ctx = await testGpu();
  for (const [n, base] of CASES.entries()) {
    if (base.dims.headDim % 4 !== 0 || base.threads !== undefined) continue; // split-only cases
    const c: Case = { ...base, name: `${base.name} (rows)`, variant: "rows" };
    const x = inputs(c, 200 + n);
    const { got } = await runGpu(ctx, c, x);
    const want = ref.attentionDecode(x.q, x.k, x.v, x.mask, c.dims, { scale: c.scale });
    assert(got.every(Number.isFinite), `${c.name}: non-finite output`);
    assertClose(got, want, c.tolerance ?? TOLERANCE, `${c.name}: vs reference`);
    const again = await runGpu(ctx, c, x);
    assertBitEqual(again.got, got, `${c.name}: rerun`);
  }
});

Deno.test("attention_decode: auto takes rows for many short rows on the software kernels, split otherwise", async () => {
  const ctx = await testGpu();
  const software = ctx.adapter.kernels === "software";
  const cases: [Case, boolean][] = [
    // 64 × 2 items of the tiny preset's shape at a decode step's length: rows (software).
    [{ name: "B=64 length 48", dims: dims(64, 79, 48, 4, 2, 16) }, software],
    // Too few items (2 · 1 · 2 slices), or too many keys: split.
    [{ name: "B=1", dims: dims(1, 40, 37, 16, 1, 8) }, false],
    [{ name: "length 300", dims: dims(16, 320, 300, 6, 2, 64) }, false],
    // threads asked for: split.
    [{ name: "threads 8", dims: dims(64, 20, 20, 4, 2, 16), threads: 8 }, false],
  ];
  for (const [n, [c, rows]] of cases.entries()) {
    const x = inputs(c, 300 + n);
    const { got } = await runGpu(ctx, c, x);
    const split = await runGpu(ctx, { ...c, threads: undefined, variant: "split" }, x);
    const row = await runGpu(ctx, { ...c, threads: undefined, variant: "rows" }, x);
    assert(
      !split.got.every((v, i) => v === row.got[i]),
      `${c.name}: the two variants should differ in some last bit`,
    );
    assertBitEqual(
      got,
      rows ? row.got : split.got,
      `${c.name}: auto is ${rows ? "rows" : "split"}`,
    );
  }
});

Deno.test("attention_decode: explicit variants refuse what they cannot run, allocating nothing", async () => {
  const ctx = await testGpu();
  const refuse = async (c: Case, text: string) => {
    const live = ctx.pool.stats.bytesLive;
    let error: unknown = null;
    try {
      await runGpu(ctx, c, inputs(c, 1));
    } catch (e) {
      error = e;
    }
    assert(error instanceof Error && error.message.includes(text), `${c.name}: ${error}`);
    assert(ctx.pool.stats.bytesLive === live, `${c.name}: tensors left behind`);
  };
  await refuse({ name: "D=132", dims: dims(2, 5, 5, 2, 1, 132), variant: "rows" }, "up to 128");
  await refuse(
    { name: "D=6 rows", dims: dims(2, 5, 5, 2, 1, 6), variant: "rows" },
    "rows variant needs a head dim that is a multiple of 4, not 6",
  );
  await refuse(
    { name: "rows with threads", dims: dims(2, 5, 5, 2, 1, 8), variant: "rows", threads: 8 },
    "threads only shape the split variant",
  );
  const most = ctx.limits.maxComputeInvocationsPerWorkgroup;
  for (const threads of [0, 2.5, most + 1]) {
    await refuse(
      { name: `threads ${threads}`, dims: dims(2, 5, 5, 2, 1, 8), threads },
      `threads ${threads} must be an integer in 1..${most}`,
    );
  }
});

Deno.test("attention_decode: long caches stay inside llvmpipe's loop limit or are refused", async () => {
  const ctx = await testGpu();
  if (!ctx.adapter.isFallback) return;
  // The rows variant at D = 128 loops ~70 times per 4-key block: 3,424 keys fit the budget
  // (and were measured right up to ~3,900), 3,440 are refused.
  const fits: Case = {
    name: "rows, 3,424 keys",
    dims: dims(1, 3424, 3424, 1, 1, 128),
    variant: "rows",
    skipForward: true,
  };
  await assertMatchesReference(ctx, fits, 3);
  const long: Case = {
    name: "rows, 3,440 keys",
    dims: dims(1, 3440, 3440, 1, 1, 128),
    variant: "rows",
  };
  await assertUserError(
    () => runGpu(ctx, long, inputs(long, 2)),
    ["attentionDecode: the rows variant over 3440 keys", "llvmpipe stops every loop"],
    "rows over 3,440 keys",
  );
  // The split variant: 40,000 keys are more than 8 threads may loop over; auto doubles them.
  const split: Case = {
    name: "split, 40,000 keys",
    dims: dims(1, 40000, 40000, 2, 1, 128),
    skipForward: true,
  };
  await assertMatchesReference(ctx, split, 4);
  await assertUserError(
    () => runGpu(ctx, { ...split, threads: 8 }, inputs(split, 4)),
    ["attentionDecode: a cache of 40000 keys at head dim 128 (8 threads)", "llvmpipe stops"],
    "split over 40,000 keys with 8 threads",
  );
});

Deno.test("attention_decode: the rows variant's grid spills into y past 65,535 workgroups", async () => {
  const ctx = await testGpu();
  // 65,536 sequences × 8 kv heads = 524,288 items of 8 per workgroup: 65,536 workgroups.
  const c: Case = {
    name: "524,288 items",
    dims: dims(65536, 2, 2, 8, 8, 4),
    variant: "rows",
    skipForward: true,
  };
  await assertMatchesReference(ctx, c, 5);
});

Deno.test("attention_decode: a query that sees no key outputs zeros", async () => {
  const ctx = await testGpu();
  const c: Case = {
    name: "no keys",
    dims: dims(3, 10, 6, 4, 2, 8),
    mask: (b, j) => (b === 0 ? 0 : b === 1 ? Number(j >= 6) : 1),
  };
  const { got } = await runGpu(ctx, c, inputs(c, 9));
  const perSequence = 4 * 8;
  const zeros = new Array(2 * perSequence).fill(0);
  assertBitEqual(Array.from(got.subarray(0, 2 * perSequence)), zeros, "sequences 0 and 1");
  assert(got.subarray(2 * perSequence).some((value) => value !== 0), "sequence 2 sees keys");
});

Deno.test("attention_decode: shape errors name the op and the shapes", async () => {
  const ctx = await testGpu();
  const q = ctx.empty([2, 1, 3, 8], "f32");
  const cache = ctx.empty([2, 5, 2, 8], "f32");
  const q4 = ctx.empty([2, 1, 4, 8], "f32");
  const mask = ctx.u32(new Array(10).fill(1), [2, 5]);
  const narrowMask = ctx.u32(new Array(6).fill(1), [2, 3]);
  const expectError = (f: () => unknown, text: string) => {
    try {
      f();
    } catch (e) {
      if (!(e instanceof Error) || !e.message.includes(text)) throw e;
      assert(e.message.includes("[2, 5, 2, 8]"), `"${e.message}" names the cache shape`);
      return;
    }
    throw new Error(`expected an error mentioning "${text}"`);
  };
  const decode = (qt = q4, m = mask, length = 4) =>
    gpuOps.attentionDecode(ctx, qt, cache, cache, m, { length });
  expectError(() => decode(q), "attentionDecode: 3 query heads is not a multiple of 2");
  expectError(() => decode(q4, mask, 0), "length 0 must be an integer in 1..5");
  expectError(() => decode(q4, mask, 6), "length 6");
  expectError(() => decode(q4, narrowMask, 4), "keyMask has fewer than length 4 columns");
  for (const t of [q, cache, q4, mask, narrowMask]) t.release();
});
