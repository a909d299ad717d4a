import * as gpuOps from "../../lib/ops/attention.ts";
import * as ref from "../../lib/ref/attention.ts";
import type { GpuContext } from "../../lib/gpu/context.ts";
import {
  assert,
  assertBitEqual,
  assertClose,
  assertUserError,
  finiteDifference,
  Rng,
  testGpu,
} from "../helpers.ts";

type Dims = ref.AttentionDims;

/** One attention case: sizes, which keys are padding, and an optional non-default scale. */
interface Case {
  name: string;
  dims: Dims;
  /** keyMask [B, Tk]; all ones when absent. */
  mask?: (b: number, j: number) => number;
  scale?: number;
}

function dims(
  batch: number,
  queryLen: number,
  keyLen: number,
  queryHeads: number,
  kvHeads: number,
  headDim: number,
): Dims {
  return { batch, queryLen, keyLen, queryHeads, kvHeads, headDim };
}

function keyMask(c: Case): Uint32Array {
  const { batch, keyLen } = c.dims;
  const mask = new Uint32Array(batch * keyLen);
  for (let b = 0; b < batch; b++) {
    for (let j = 0; j < keyLen; j++) mask[b * keyLen + j] = c.mask ? c.mask(b, j) : 1;
  }
  return mask;
}

/** Random inputs of a case: q, k, v and the upstream gradient dOut. */
function inputs(c: Case, seed: number) {
  const { batch, queryLen, keyLen, queryHeads, kvHeads, headDim } = c.dims;
  const rng = new Rng(seed);
  return {
    q: rng.normals(batch * queryLen * queryHeads * headDim),
    k: rng.normals(batch * keyLen * kvHeads * headDim),
    v: rng.normals(batch * keyLen * kvHeads * headDim),
    dOut: rng.normals(batch * queryLen * queryHeads * headDim),
    mask: keyMask(c),
  };
}

/** GPU forward and backward of a case: [out, lse, dQ, dK, dV] read back in one map. */
async function runGpu(
  ctx: GpuContext,
  c: Case,
  x: ReturnType<typeof inputs>,
  variant: gpuOps.AttentionVariant = "auto",
  blocksPerDispatch?: number,
) {
  const { batch, queryLen, keyLen, queryHeads, kvHeads, headDim } = c.dims;
  const q = ctx.f32(x.q, [batch, queryLen, queryHeads, headDim]);
  const k = ctx.f32(x.k, [batch, keyLen, kvHeads, headDim]);
  const v = ctx.f32(x.v, [batch, keyLen, kvHeads, headDim]);
  const dOut = ctx.f32(x.dOut, q.shape);
  const mask = ctx.u32(x.mask, [batch, keyLen]);
  const options = { scale: c.scale, variant, blocksPerDispatch };
  const { out, lse } = gpuOps.attentionForward(ctx, q, k, v, mask, options);
  const { dQ, dK, dV } = gpuOps.attentionBackward(ctx, dOut, q, k, v, out, lse, mask, options);
  const results = await ctx.readMany([out, lse, dQ, dK, dV]);
  for (const t of [q, k, v, dOut, mask, out, lse, dQ, dK, dV]) t.release();
  return results;
}

/** The message of what `f` throws or rejects with ("no error" when it does not). */
async function errorOf(f: () => unknown): Promise<string> {
  try {
    await f();
  } catch (e) {
    return String(e);
  }
  return "no error";
}

const CASES: Case[] = [
  { name: "T=1 D=1 single head", dims: dims(1, 1, 1, 1, 1, 1) },
  { name: "T=2 D=8 MHA", dims: dims(2, 2, 2, 2, 2, 8) },
  { name: "T=7 D=8 MQA", dims: dims(1, 7, 7, 4, 1, 8) },
  { name: "T=7 D=1 GQA 4:1 scale 0.7", dims: dims(2, 7, 7, 8, 2, 1), scale: 0.7 },
  { name: "T=33 D=64 GQA 4:1", dims: dims(1, 33, 33, 8, 2, 64) },
  { name: "T=33 D=128 GQA 2:1", dims: dims(1, 33, 33, 2, 1, 128) },
  {
    name: "decode Tq=1 Tk=19 D=8, left padding",
    dims: dims(2, 1, 19, 4, 2, 8),
    mask: (b, j) => (b === 1 && j < 5 ? 0 : 1),
  },
  {
    name: "chunk Tq=7 Tk=19 D=8, right padding",
    dims: dims(2, 7, 19, 4, 2, 8),
    mask: (b, j) => (b === 0 && j >= 16 ? 0 : 1),
  },
  {
    name: "chunk Tq=37 Tk=70 D=64 (several query and key blocks), left padding",
    dims: dims(2, 37, 70, 2, 1, 64),
    mask: (b, j) => (b === 0 && j < 9 ? 0 : 1),
  },
  {
    name: "T=7 D=8: left-padded, right-padded and fully padded sequences",
    dims: dims(3, 7, 7, 4, 2, 8),
    mask: (b, j) => (b === 0 ? Number(j >= 3) : b === 1 ? Number(j < 4) : 0),
  },
  {
    name: "large B=2 T=130 D=64 GQA 2:1, left padding",
    dims: dims(2, 130, 130, 4, 2, 64),
    mask: (b, j) => (b === 1 && j < 37 ? 0 : 1),
  },
];

// f32 kernels against the f64 reference: sums of up to a few hundred terms.
const TOLERANCE = { rtol: 1e-4, atol: 1e-5 };

Deno.test("attention: forward and backward match the reference; runs are bit-identical", async () => {
  const ctx = await testGpu();
  for (const [n, c] of CASES.entries()) {
    const x = inputs(c, 100 + n);
    const [out, lse, dQ, dK, dV] = await runGpu(ctx, c, x, "buffers");
    const options = { scale: c.scale };
    const want = ref.attentionForward(x.q, x.k, x.v, x.mask, c.dims, options);
    const grads = ref.attentionBackward(x.dOut, x.q, x.k, x.v, x.mask, c.dims, options);
    assertClose(out, want.out, TOLERANCE, `${c.name}: out`);
    assertClose(lse, want.lse, TOLERANCE, `${c.name}: lse`);
    assertClose(dQ, grads.dQ, TOLERANCE, `${c.name}: dQ`);
    assertClose(dK, grads.dK, TOLERANCE, `${c.name}: dK`);
    assertClose(dV, grads.dV, TOLERANCE, `${c.name}: dV`);
    for (const [what, a] of Object.entries({ out, lse, dQ, dK, dV })) {
      if (a.some((value) => !Number.isFinite(value))) throw new Error(`${c.name}: ${what} NaN`);
    }
    if (c.name.startsWith("large") || c.name.includes("fully padded")) {
      const again = await runGpu(ctx, c, x, "buffers");
      [out, lse, dQ, dK, dV].forEach((a, i) => assertBitEqual(again[i], a, `${c.name}: rerun`));
    }
    // The texture kernels do the same sums in the same order: the same bits.
    if (c.dims.headDim % 4 === 0) {
      const textures = await runGpu(ctx, c, x, "textures");
      [out, lse, dQ, dK, dV].forEach((a, i) =>
        assertBitEqual(textures[i], a, `${c.name}: textures, output ${i}`)
      );
    }
  }
});

Deno.test("attention: the textures variant refuses a head dim that is not a multiple of 4", async () => {
  const ctx = await testGpu();
  const c: Case = { name: "D=6", dims: dims(1, 3, 3, 2, 1, 6) };
  const x = inputs(c, 3);
  const message = await errorOf(() => runGpu(ctx, c, x, "textures"));
  assert(message.includes("attentionForward: the textures variant needs a head dim"), message);
  // "auto" falls back to the buffer kernels for it.
  const [out] = await runGpu(ctx, c, x, "auto");
  const want = ref.attentionForward(x.q, x.k, x.v, x.mask, c.dims, {});
  assertClose(out, want.out, TOLERANCE, "D=6 auto");
});

Deno.test("attention: a fully padded sequence gives zero output and zero gradients", async () => {
  const ctx = await testGpu();
  const c: Case = { name: "padded", dims: dims(2, 5, 5, 4, 2, 8), mask: (b) => (b === 0 ? 1 : 0) };
  const x = inputs(c, 7);
  const results = await runGpu(ctx, c, x);
  const half = (a: ArrayLike<number>) => Array.from(a).slice(a.length / 2);
  for (const a of results) assertBitEqual(half(a), new Array(a.length / 2).fill(0), "batch 1");
});

Deno.test("attention: split dispatches continue each other's sums (the same bits)", async () => {
  // On a software adapter a long shape runs as several dispatches (llvmpipe's loop limit);
  // forced here with one or two blocks per dispatch on the shapes above.
  const ctx = await testGpu();
  for (const [n, c] of CASES.entries()) {
    if (c.dims.headDim % 4 !== 0) continue;
    const x = inputs(c, 300 + n);
    const whole = await runGpu(ctx, c, x, "textures");
    for (const blocksPerDispatch of [1, 2]) {
      const split = await runGpu(ctx, c, x, "textures", blocksPerDispatch);
      whole.forEach((a, i) =>
        assertBitEqual(split[i], a, `${c.name}: ${blocksPerDispatch}/dispatch, ${i}`)
      );
    }
  }
});

Deno.test("attention: on a software adapter, shapes past llvmpipe's loop limit still come out right", async () => {
  // llvmpipe stops every loop of an invocation after 65,535 iterations in all and returns wrong
  // values: in one dispatch dK, dV were wrong at 1,024 queries with 3 query heads per kv head
  // (D = 64), the forward from ~1,770 keys. The texture kernels split such shapes; the buffer
  // kernels refuse them with one line.
  const ctx = await testGpu();
  if (!ctx.adapter.isFallback) return;
  const c: Case = { name: "long", dims: dims(1, 1024, 1024, 3, 1, 64) };
  const x = inputs(c, 5);
  const [out, lse, dQ, dK, dV] = await runGpu(ctx, c, x, "textures");
  const want = ref.attentionForward(x.q, x.k, x.v, x.mask, c.dims, {});
  const grads = ref.attentionBackward(x.dOut, x.q, x.k, x.v, x.mask, c.dims, {});
  assertClose(out, want.out, TOLERANCE, "long: out");
  assertClose(lse, want.lse, TOLERANCE, "long: lse");
  assertClose(dQ, grads.dQ, TOLERANCE, "long: dQ");
  assertClose(dK, grads.dK, TOLERANCE, "long: dK");
  assertClose(dV, grads.dV, TOLERANCE, "long: dV");
  await assertUserError(
    () => runGpu(ctx, c, x, "buffers"),
    ["attentionBackward: 1024 queries", "llvmpipe stops every loop after 65535"],
    "long shape, buffer kernels",
  );
});

Deno.test("attention: reference backward matches finite differences", () => {
  const cases: Case[] = [
    { name: "B=1 T=3 D=3", dims: dims(1, 3, 3, 4, 2, 3) },
    {
      name: "B=2 Tq=3 Tk=5 D=8, padded keys",
      dims: dims(2, 3, 5, 4, 2, 8),
      mask: (b, j) => (b === 0 && j === 1) || (b === 1 && j === 4) ? 0 : 1,
      scale: 0.6,
    },
    { name: "B=1 T=4 D=5 MQA", dims: dims(1, 4, 4, 4, 1, 5), mask: (_b, j) => Number(j > 0) },
  ];
  for (const [n, c] of cases.entries()) {
    const x = inputs(c, 40 + n);
    const options = { scale: c.scale };
    // loss = Σ out ⊙ dOut, so d loss / d out = dOut.
    const loss = (q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>) => {
      const { out } = ref.attentionForwardF64(q, k, v, x.mask, c.dims, options);
      let s = 0;
      for (let i = 0; i < out.length; i++) s += out[i] * x.dOut[i];
      return s;
    };
    const grads = ref.attentionBackward(x.dOut, x.q, x.k, x.v, x.mask, c.dims, options);
    const tol = { rtol: 1e-5, atol: 1e-6 };
    assertClose(grads.dQ, finiteDifference((q) => loss(q, x.k, x.v), x.q), tol, `${c.name}: dQ`);
    assertClose(grads.dK, finiteDifference((k) => loss(x.q, k, x.v), x.k), tol, `${c.name}: dK`);
    assertClose(grads.dV, finiteDifference((v) => loss(x.q, x.k, v), x.v), tol, `${c.name}: dV`);
  }
});

Deno.test("attention: shape errors name the op and the shapes", async () => {
  const ctx = await testGpu();
  const q = ctx.empty([1, 4, 3, 8], "f32");
  const k = ctx.empty([1, 4, 2, 8], "f32");
  const mask = ctx.u32([1, 1, 1, 1], [1, 4]);
  const expectError = (f: () => unknown, text: string) => {
    try {
      f();
    } catch (e) {
      if (!(e instanceof Error) || !e.message.includes(text)) throw e;
      return;
    }
    throw new Error(`expected an error mentioning "${text}"`);
  };
  // 3 query heads are not a multiple of 2 kv heads.
  expectError(() => gpuOps.attentionForward(ctx, q, k, k, mask), "attentionForward: 3 query heads");
  const q4 = ctx.empty([1, 5, 2, 8], "f32"); // more queries than keys
  expectError(() => gpuOps.attentionForward(ctx, q4, k, k, mask), "5 queries but only 4 keys");
  for (const t of [q, k, mask, q4]) t.release();
});
