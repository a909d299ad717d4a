import type { GpuContext } from "../../lib/gpu/context.ts";
import type { Tensor } from "../../lib/gpu/tensor.ts";
import * as gpuOps from "../../lib/ops/adamw.ts";
import * as ref from "../../lib/ref/adamw.ts";
import { assertBitEqual, assertClose, AssertionError, Rng, testGpu } from "../helpers.ts";

// Awkward sizes: 1, a prime below the workgroup (256), not a multiple of anything, and one large
// prime-ish size that spreads over many partial sums.
const SIZES = [1, 7, 1000, 100_003];
const STEPS = 3;
// f32 GPU state vs f64 reference math (state rounded to f32 between steps, like the GPU).
const STATE_TOL = { rtol: 1e-5, atol: 1e-7 };

function check(condition: boolean, message: string): void {
  if (!condition) throw new AssertionError({ message });
}

Deno.test("adamw: reference matches a hand computation of two steps", () => {
  // Element 0: p = 1, g = 0.5 then −0.25. Element 1: p = −2, g = 0 (only weight decay acts).
  // lr 0.1, wd 0.01, β (0.9, 0.999), eps 1e-8.
  // Step 1: p = 1 − 0.1·0.01·1 = 0.999;  m = 0.1·0.5 = 0.05;  v = 0.001·0.25 = 0.00025;
  //         m̂ = 0.05/0.1 = 0.5;  v̂ = 0.00025/0.001 = 0.25;  p = 0.999 − 0.1·0.5/(0.5 + 1e-8)
  //         = 0.899000002.   Element 1: p = −2·0.999 = −1.998.
  // Step 2: p = 0.899000002·0.999 = 0.898101001998;  m = 0.9·0.05 − 0.1·0.25 = 0.02;
  //         v = 0.999·0.00025 + 0.001·0.0625 = 0.00031225;  m̂ = 0.02/0.19 = 0.1052631579;
  //         v̂ = 0.00031225/0.001999 = 0.1562031016, sqrt = 0.3952253807;
  //         p = 0.898101001998 − 0.1·0.1052631579/0.3952253907 = 0.8714672987.
  //         Element 1: p = −1.998·0.999 = −1.996002.
  const h = { ...gpuOps.ADAMW_DEFAULTS, lr: 0.1, weightDecay: 0.01 };
  let state: ref.AdamwState = {
    param: Float32Array.of(1, -2),
    m: new Float32Array(2),
    v: new Float32Array(2),
  };
  state = ref.adamwStep(state, Float32Array.of(0.5, 0), { ...h, step: 1 });
  assertClose(state.param, [0.899000002, -1.998], { rtol: 1e-7, atol: 0 }, "step 1 param");
  assertClose(state.m, [0.05, 0], { rtol: 1e-7, atol: 0 }, "step 1 m");
  assertClose(state.v, [0.00025, 0], { rtol: 1e-7, atol: 0 }, "step 1 v");
  state = ref.adamwStep(state, Float32Array.of(-0.25, 0), { ...h, step: 2 });
  assertClose(state.param, [0.8714672987, -1.996002], { rtol: 1e-7, atol: 0 }, "step 2 param");
  assertClose(state.m, [0.02, 0], { rtol: 1e-6, atol: 0 }, "step 2 m");
  assertClose(state.v, [0.00031225, 0], { rtol: 1e-6, atol: 0 }, "step 2 v");
  // Clipping: norm of (3, 4) is 5; maxNorm 1 → scale 1/(5 + 1e-6).
  const { norm } = ref.gradNorm([Float32Array.of(3), Float32Array.of(4)]);
  check(norm === 5, `norm ${norm}`);
  const clip = ref.clipFactor(norm, 1);
  check(clip.apply && Math.abs(clip.scale - 1 / 5.000001) < 1e-15, `scale ${clip.scale}`);
  check(!ref.clipFactor(NaN, 1).apply && !ref.clipFactor(Infinity, 1).apply, "non-finite norm");
});

interface Model {
  params: Tensor<"f32">[];
  ms: Tensor<"f32">[];
  vs: Tensor<"f32">[];
  refs: ref.AdamwState[];
}

function newModel(ctx: GpuContext, rng: Rng): Model {
  const model: Model = { params: [], ms: [], vs: [], refs: [] };
  for (const n of SIZES) {
    const param = rng.normals(n);
    model.params.push(ctx.f32(param));
    model.ms.push(ctx.zeros([n], "f32"));
    model.vs.push(ctx.zeros([n], "f32"));
    model.refs.push({ param, m: new Float32Array(n), v: new Float32Array(n) });
  }
  return model;
}

function releaseModel(model: Model): void {
  for (const t of [...model.params, ...model.ms, ...model.vs]) t.release();
}

/** Runs STEPS optimizer steps on GPU and reference; compares norms, params and moments. */
async function runSteps(
  ctx: GpuContext,
  seed: number,
  { maxNorm, weightDecay, clipped }: { maxNorm: number; weightDecay: number; clipped: boolean },
): Promise<{ expectClipActive: boolean[] }> {
  const rng = new Rng(seed);
  const model = newModel(ctx, rng);
  const norms: Tensor<"f32">[] = [];
  const clips: Tensor<"f32">[] = [];
  const refNorms: number[] = [];
  const refClips: { scale: number; apply: boolean }[] = [];
  const expectClipActive: boolean[] = [];
  for (let step = 1; step <= STEPS; step++) {
    const lr = 0.01 / step; // a host-side schedule: lr changes per call
    const grads = SIZES.map((n) => rng.normals(n, 0.5));
    const gradTensors = grads.map((g) => ctx.f32(g));
    const norm = gpuOps.gradNorm(ctx, gradTensors);
    const clip = clipped ? gpuOps.clipFactor(ctx, norm, maxNorm) : undefined;
    const refNorm = ref.gradNorm(grads).norm;
    const refClip = clipped ? ref.clipFactor(refNorm, maxNorm) : { scale: 1, apply: true };
    expectClipActive.push(refClip.scale < 1);
    const h = { ...gpuOps.ADAMW_DEFAULTS, lr, step, weightDecay };
    SIZES.forEach((_, i) => {
      gpuOps.adamwStep(ctx, {
        param: model.params[i],
        grad: gradTensors[i],
        m: model.ms[i],
        v: model.vs[i],
        lr,
        step,
        weightDecay,
        clip,
      });
      model.refs[i] = ref.adamwStep(model.refs[i], grads[i], h, refClip);
    });
    norms.push(norm);
    refNorms.push(refNorm);
    if (clip) clips.push(clip);
    refClips.push(refClip);
    // Submit before releasing: `ctx.f32` uploads through queue.writeBuffer, which runs before
    // any unsubmitted recorded work, so a released buffer must not be refilled by an upload
    // while dispatches that read it are still only recorded.
    ctx.submit();
    for (const g of gradTensors) g.release();
  }
  const got = await ctx.readMany([...norms, ...model.params, ...model.ms, ...model.vs]);
  const gotClips = await ctx.readMany(clips);
  gotClips.forEach((c, s) => {
    const expected = [refClips[s].scale, refClips[s].apply ? 1 : 0];
    assertClose(c, expected, { rtol: 1e-5, atol: 0 }, `clip step ${s}`);
  });
  norms.forEach((_, s) => {
    const [sumsq, norm] = got[s];
    assertClose([sumsq, norm], [refNorms[s] ** 2, refNorms[s]], { rtol: 1e-5 }, `norm step ${s}`);
  });
  const k = SIZES.length;
  SIZES.forEach((n, i) => {
    const what = `n=${n} wd=${weightDecay} maxNorm=${maxNorm}`;
    assertClose(got[STEPS + i], model.refs[i].param, STATE_TOL, `param ${what}`);
    assertClose(got[STEPS + k + i], model.refs[i].m, STATE_TOL, `m ${what}`);
    assertClose(got[STEPS + 2 * k + i], model.refs[i].v, STATE_TOL, `v ${what}`);
  });
  for (const t of [...norms, ...clips]) t.release();
  releaseModel(model);
  return { expectClipActive };
}

Deno.test("adamw: several steps match the reference, clipping active and inactive", async () => {
  const ctx = await testGpu();
  // The global norm here is about 0.5·sqrt(101011) ≈ 159.
  const active = await runSteps(ctx, 1, { maxNorm: 20, weightDecay: 0, clipped: true });
  check(active.expectClipActive.every((a) => a), "clipping should be active");
  const inactive = await runSteps(ctx, 2, { maxNorm: 1e4, weightDecay: 0.01, clipped: true });
  check(inactive.expectClipActive.every((a) => !a), "clipping should be inactive");
  await runSteps(ctx, 3, { maxNorm: Infinity, weightDecay: 0.01, clipped: true });
  await runSteps(ctx, 4, { maxNorm: Infinity, weightDecay: 0.1, clipped: false });
});

Deno.test("adamw: a non-finite gradient makes the step a no-op", async () => {
  const ctx = await testGpu();
  for (const bad of [NaN, Infinity, -Infinity]) {
    const rng = new Rng(5);
    const model = newModel(ctx, rng);
    // One good step first, so that m and v are non-zero.
    for (let step = 1; step <= 2; step++) {
      const grads = SIZES.map((n) => rng.normals(n));
      if (step === 2) grads[2][123] = bad;
      const gradTensors = grads.map((g) => ctx.f32(g));
      const norm = gpuOps.gradNorm(ctx, gradTensors);
      const clip = gpuOps.clipFactor(ctx, norm, 1);
      const before = step === 2
        ? await ctx.readMany([...model.params, ...model.ms, ...model.vs])
        : [];
      SIZES.forEach((_, i) => {
        gpuOps.adamwStep(ctx, {
          param: model.params[i],
          grad: gradTensors[i],
          m: model.ms[i],
          v: model.vs[i],
          lr: 0.01,
          step,
          clip,
        });
      });
      if (step === 2) {
        const [normValues, clipValues, ...after] = await ctx.readMany([
          norm,
          clip,
          ...model.params,
          ...model.ms,
          ...model.vs,
        ]);
        check(!Number.isFinite(normValues[1]), `norm should be non-finite, got ${normValues[1]}`);
        assertBitEqual(clipValues, [0, 0], `clip for gradient ${bad}`);
        after.forEach((a, i) => assertBitEqual(a, before[i], `state ${i} after ${bad} gradient`));
        check(before[8].some((x) => x !== 0), "v was non-zero before the skipped step");
      }
      ctx.submit(); // see runSteps: uploads must not refill buffers that recorded work reads
      norm.release();
      clip.release();
      for (const g of gradTensors) g.release();
    }
    releaseModel(model);
  }
});

Deno.test("adamw: reruns are bit-identical", async () => {
  const ctx = await testGpu();
  const rng = new Rng(9);
  const grads = SIZES.map((n) => rng.normals(n));
  const param0 = SIZES.map((n) => rng.normals(n));
  const results: Float32Array[][] = [];
  for (let run = 0; run < 2; run++) {
    const gradTensors = grads.map((g) => ctx.f32(g));
    const params = param0.map((p) => ctx.f32(p));
    const ms = SIZES.map((n) => ctx.zeros([n], "f32"));
    const vs = SIZES.map((n) => ctx.zeros([n], "f32"));
    const norm = gpuOps.gradNorm(ctx, gradTensors);
    const clip = gpuOps.clipFactor(ctx, norm, 10);
    SIZES.forEach((_, i) => {
      gpuOps.adamwStep(ctx, {
        param: params[i],
        grad: gradTensors[i],
        m: ms[i],
        v: vs[i],
        lr: 1e-3,
        step: 1,
        clip,
      });
    });
    results.push(await ctx.readMany([norm, clip, ...params, ...ms, ...vs]) as Float32Array[]);
    for (const t of [norm, clip, ...gradTensors, ...params, ...ms, ...vs]) t.release();
  }
  results[0].forEach((a, i) => assertBitEqual(results[1][i], a, `output ${i}`));
});

Deno.test("adamw: the vec4 step (size % 4 = 0) and the scalar step give the same bits", async () => {
  // 1000 elements go through adamw_step4*, 1001 (the same 1000 and one more) through
  // adamw_step*: the shared 1000 must come out bit for bit the same, clipped or not.
  const ctx = await testGpu();
  const rng = new Rng(21);
  const grad = rng.normals(1001);
  const param = rng.normals(1001);
  const m = rng.normals(1001).map((x) => 0.1 * x);
  const v = rng.normals(1001).map((x) => 0.01 * x * x);
  for (const clipped of [false, true]) {
    const outputs: Float32Array[][] = [];
    for (const n of [1000, 1001]) {
      const t = [param, grad, m, v].map((x) => ctx.f32(x.slice(0, n)));
      const clip = clipped ? ctx.f32([0.5, 1]) : undefined;
      gpuOps.adamwStep(ctx, {
        param: t[0],
        grad: t[1],
        m: t[2],
        v: t[3],
        lr: 1e-2,
        step: 3,
        weightDecay: 0.1,
        clip,
      });
      outputs.push(await ctx.readMany([t[0], t[2], t[3]]) as Float32Array[]);
      for (const x of [...t, ...(clip ? [clip] : [])]) x.release();
    }
    outputs[0].forEach((a, i) =>
      assertBitEqual(outputs[1][i].subarray(0, 1000), a, `clipped=${clipped} output ${i}`)
    );
  }
});

Deno.test("adamw: shape errors name the op and the shapes", async () => {
  const ctx = await testGpu();
  const a = ctx.zeros([3], "f32");
  const b = ctx.zeros([4], "f32");
  let message = "";
  try {
    gpuOps.adamwStep(ctx, { param: a, grad: b, m: a, v: a, lr: 0.1, step: 1 });
  } catch (e) {
    message = (e as Error).message;
  }
  check(message.includes("adamwStep") && message.includes("[4]"), `message: ${message}`);
  a.release();
  b.release();
});
