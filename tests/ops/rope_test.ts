import { addBiasInPlace } from "../../lib/ops/bias.ts";
import * as gpuOps from "../../lib/ops/rope.ts";
import * as ref from "../../lib/ref/rope.ts";
import { assertBitEqual, assertClose, finiteDifference, Rng, testGpu } from "../helpers.ts";

// Tolerance against the f64 reference (which uses HF's f32 angle), positions < 4096:
// rtol 1e-4, atol 1e-5. The in-kernel cos/sin itself is accurate to ~1e-7 (9e-8 measured on
// lavapipe) up to position 200000 — checked directly below with atol 1e-6 — so the same
// bound holds there; beyond ~2e5 the argument reduction degrades (see kernels/rope.wgsl).
const TOLERANCE = { rtol: 1e-4, atol: 1e-5 };

type Shape = [batch: number, time: number, heads: number, headDim: number];

// Awkward shapes: size 1 everywhere, primes, D/2 odd (D = 6, 130), Qwen-like heads, one large.
const SHAPES: Shape[] = [
  [1, 1, 1, 2],
  [1, 3, 1, 6],
  [3, 17, 2, 64],
  [2, 5, 3, 130],
  [1, 129, 14, 64],
  [2, 7, 16, 128],
  [4, 500, 8, 64],
];

const shapeOf = ([batch, time, heads, headDim]: Shape) => ({ batch, time, heads, headDim });

/** Left-padded batches: row b starts at a negative offset (pad positions), then counts up. */
function positionsFor(rng: Rng, batch: number, time: number, maxStart: number): Int32Array {
  const out = new Int32Array(batch * time);
  for (let b = 0; b < batch; b++) {
    const start = rng.int(maxStart) - (b % 2) * 3;
    for (let t = 0; t < time; t++) out[b * time + t] = start + t;
  }
  return out;
}

Deno.test("rope: forward and backward match the reference (theta 1e4 and 1e6)", async () => {
  const ctx = await testGpu();
  const rng = new Rng(21);
  for (const theta of [1e4, 1e6]) {
    for (const shape of SHAPES) {
      const [batch, time, heads, headDim] = shape;
      const x = rng.normals(batch * time * heads * headDim);
      const dOut = rng.normals(x.length);
      const positions = positionsFor(rng, batch, time, 4096 - time);
      const tx = ctx.f32(x, shape);
      const tdOut = ctx.f32(dOut, shape);
      const tpos = ctx.i32(positions, [batch, time]);
      const out = gpuOps.rope(ctx, tx, tpos, { theta });
      const dx = gpuOps.ropeBackward(ctx, tdOut, tpos, { theta });
      const [gout, gdx] = await ctx.readMany([out, dx]);
      const at = `shape [${shape}] theta ${theta}`;
      assertClose(gout, ref.rope(x, positions, shapeOf(shape), theta), TOLERANCE, `rope ${at}`);
      assertClose(
        gdx,
        ref.ropeBackward(dOut, positions, shapeOf(shape), theta),
        TOLERANCE,
        `ropeBackward ${at}`,
      );
      for (const t of [tx, tdOut, tpos, out, dx]) t.release();
    }
  }
});

// x = (1, 0) in every pair makes the output (cos, sin) of each angle: a direct check of the
// in-kernel cos/sin against Math.cos/Math.sin of the same f32 angle, up to position 200000
// (the range where the kernel's argument reduction is exact; see kernels/rope.wgsl).
Deno.test("rope: cos/sin are accurate for large positions", async () => {
  const ctx = await testGpu();
  const [headDim, time] = [128, 512];
  const positions = new Int32Array(time);
  for (let t = 0; t < time; t++) positions[t] = Math.round((200_000 * t) / (time - 1));
  const x = new Float32Array(time * headDim);
  for (let t = 0; t < time; t++) x.fill(1, t * headDim, t * headDim + headDim / 2);
  const tx = ctx.f32(x, [1, time, 1, headDim]);
  const tpos = ctx.i32(positions, [1, time]);
  for (const theta of [1e4, 1e6]) {
    const out = gpuOps.rope(ctx, tx, tpos, { theta });
    const got = await ctx.read(out);
    let worst = 0;
    for (let t = 0; t < time; t++) {
      for (let i = 0; i < headDim / 2; i++) {
        const angle = ref.ropeAngle(positions[t], i, headDim, theta);
        const base = t * headDim;
        worst = Math.max(
          worst,
          Math.abs(got[base + i] - Math.cos(angle)),
          Math.abs(got[base + i + headDim / 2] - Math.sin(angle)),
        );
      }
    }
    if (!(worst < 1e-6)) throw new Error(`theta ${theta}: cos/sin error ${worst} ≥ 1e-6`);
    out.release();
  }
  tx.release();
  tpos.release();
});

Deno.test("rope: reruns are bit-identical", async () => {
  const ctx = await testGpu();
  const rng = new Rng(22);
  const shape: Shape = [4, 500, 8, 64];
  const x = rng.normals(4 * 500 * 8 * 64);
  const tx = ctx.f32(x, shape);
  const tpos = ctx.i32(positionsFor(rng, 4, 500, 3000), [4, 500]);
  const outs = [
    gpuOps.rope(ctx, tx, tpos, { theta: 1e6 }),
    gpuOps.rope(ctx, tx, tpos, { theta: 1e6 }),
    gpuOps.ropeBackward(ctx, tx, tpos, { theta: 1e6 }),
    gpuOps.ropeBackward(ctx, tx, tpos, { theta: 1e6 }),
  ];
  const [a, b, c, d] = await ctx.readMany(outs);
  assertBitEqual(a, b, "rope");
  assertBitEqual(c, d, "ropeBackward");
  for (const t of [tx, tpos, ...outs]) t.release();
});

Deno.test("rope: reference backward matches finite differences and inverts the forward", () => {
  const rng = new Rng(23);
  const shape = { batch: 2, time: 3, heads: 2, headDim: 6 };
  const positions = [0, 1, 2, 4093, 4094, -1];
  const x = rng.normals(2 * 3 * 2 * 6);
  const dOut = rng.normals(x.length);
  // L = Σ dOut · rope(x): dL/dx = ropeBackward(dOut).
  const loss = (xv: ArrayLike<number>) => {
    const out = ref.rope(xv, positions, shape, 1e4);
    let s = 0;
    for (let i = 0; i < out.length; i++) s += out[i] * dOut[i];
    return s;
  };
  const tolerance = { rtol: 1e-7, atol: 1e-8 };
  assertClose(
    ref.ropeBackward(dOut, positions, shape, 1e4),
    finiteDifference(loss, x),
    tolerance,
    "ropeBackward vs finite differences",
  );
  const roundTrip = ref.ropeBackward(ref.rope(x, positions, shape, 1e6), positions, shape, 1e6);
  assertClose(roundTrip, x, { rtol: 1e-12, atol: 1e-12 }, "ropeBackward(rope(x)) = x");
});

Deno.test("rope: inverse frequencies follow HF's f32 arithmetic", () => {
  const table = gpuOps.ropeInverseFrequencies(128, 1e6);
  for (let i = 0; i < 64; i++) {
    assertBitEqual([ref.ropeAngle(1, i, 128, 1e6)], [table[i]], `inv_freq ${i}`);
  }
  // i = 0 is exactly 1; the last is about theta^(-(D-2)/D).
  assertBitEqual([table[0]], [1], "inv_freq 0");
  assertClose([table[63]], [1e6 ** (-126 / 128)], { rtol: 1e-6 }, "inv_freq 63");
});

Deno.test("rope: shape errors name the op and the shapes", async () => {
  const ctx = await testGpu();
  const x = ctx.zeros([2, 3, 4, 5], "f32");
  const positions = ctx.zeros([2, 3], "i32");
  let message = "";
  try {
    gpuOps.rope(ctx, x, positions, { theta: 1e4 });
  } catch (e) {
    message = (e as Error).message;
  }
  if (!message.includes("rope") || !message.includes("[2, 3, 4, 5]")) {
    throw new Error(`unexpected error message: "${message}"`);
  }
  x.release();
  positions.release();
});

Deno.test("ropeQueriesKeys: the bits of bias adds then two ropes, forward and backward", async () => {
  const ctx = await testGpu();
  const rng = new Rng(5);
  // [B, T, Hq, Hkv, D]: size 1, D/2 odd, GQA 3:1 and 7:1 (Qwen), more kv heads than query
  // heads (allowed by the op), and a large one.
  const shapes: [number, number, number, number, number][] = [
    [1, 1, 1, 1, 2],
    [2, 3, 3, 1, 6],
    [3, 17, 14, 2, 64],
    [1, 5, 2, 3, 130],
    [4, 300, 6, 2, 64],
  ];
  for (const [batch, time, hq, hkv, headDim] of shapes) {
    const at = `[B ${batch}, T ${time}, Hq ${hq}, Hkv ${hkv}, D ${headDim}]`;
    const q = ctx.f32(rng.normals(batch * time * hq * headDim), [batch, time, hq, headDim]);
    const k = ctx.f32(rng.normals(batch * time * hkv * headDim), [batch, time, hkv, headDim]);
    const qBias = ctx.f32(rng.normals(hq * headDim), [hq * headDim]);
    const kBias = ctx.f32(rng.normals(hkv * headDim), [hkv * headDim]);
    const positions = ctx.i32(positionsFor(rng, batch, time, 4096 - time), [batch, time]);
    const theta = 1e6;

    // One at a time: bias adds on copies (as linear does), then rope each.
    const withBias = (x: typeof q, bias: typeof qBias) => {
      const rows = x.reshape([x.size / bias.size, bias.size]);
      const copy = ctx.empty(rows.shape, "f32");
      ctx.copy(rows, copy);
      addBiasInPlace(ctx, copy, bias);
      return copy.reshape(x.shape);
    };
    const qb = withBias(q, qBias);
    const kb = withBias(k, kBias);
    const expected = [
      gpuOps.rope(ctx, qb, positions, { theta }),
      gpuOps.rope(ctx, kb, positions, { theta }),
      gpuOps.rope(ctx, q, positions, { theta }),
      gpuOps.rope(ctx, k, positions, { theta }),
      gpuOps.ropeBackward(ctx, q, positions, { theta }),
      gpuOps.ropeBackward(ctx, k, positions, { theta }),
    ];
    const biased = gpuOps.ropeQueriesKeys(ctx, { q, k }, positions, { theta }, {
      q: qBias,
      k: kBias,
    });
    const plain = gpuOps.ropeQueriesKeys(ctx, { q, k }, positions, { theta });
    const back = gpuOps.ropeQueriesKeysBackward(ctx, { q, k }, positions, { theta });
    const got = [biased.q, biased.k, plain.q, plain.k, back.q, back.k];
    const values = await ctx.readMany([...expected, ...got]);
    const names = ["q + bias", "k + bias", "q", "k", "backward q", "backward k"];
    names.forEach((name, i) => assertBitEqual(values[6 + i], values[i], `${name} ${at}`));
    for (const t of [q, k, qBias, kBias, positions, qb, kb, ...expected, ...got]) t.release();
  }
});

Deno.test("ropeQueriesKeys: mismatched q, k or biases are refused with their shapes", async () => {
  const ctx = await testGpu();
  const q = ctx.zeros([2, 3, 4, 8], "f32");
  const k = ctx.zeros([2, 3, 2, 8], "f32");
  const kOther = ctx.zeros([2, 4, 2, 8], "f32");
  const bias = ctx.zeros([8], "f32");
  const positions = ctx.zeros([2, 3], "i32");
  const messages: string[] = [];
  const attempts = [
    () => gpuOps.ropeQueriesKeys(ctx, { q, k: kOther }, positions, { theta: 1e4 }),
    () => gpuOps.ropeQueriesKeys(ctx, { q, k }, positions, { theta: 1e4 }, { q: bias, k: bias }),
    () =>
      gpuOps.ropeQueriesKeysBackward(ctx, { q, k: q.reshape([2, 3, 8, 4]) }, positions, {
        theta: 1e4,
      }),
  ];
  for (const attempt of attempts) {
    try {
      attempt();
    } catch (e) {
      messages.push((e as Error).message);
    }
  }
  if (messages.length !== 3) throw new Error(`expected 3 errors, got ${messages.length}`);
  const expectations = ["[2, 4, 2, 8]", "biases [8]", "ropeQueriesKeysBackward"];
  expectations.forEach((part, i) => {
    if (!messages[i].includes(part)) throw new Error(`"${messages[i]}" lacks "${part}"`);
  });
  for (const t of [q, k, kOther, bias, positions]) t.release();
});
