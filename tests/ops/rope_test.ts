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
