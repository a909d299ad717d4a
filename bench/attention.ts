// Benchmark of causal attention: milliseconds per forward and per forward + backward, each
// averaged over several repetitions recorded into one submission (one ctx.sync() per timing).
//   ./rmtw run -A bench/attention.ts [--quick]

import { gpu, type GpuContext } from "../lib/gpu/context.ts";
import { attentionBackward, attentionForward } from "../lib/ops/attention.ts";
import { Rng } from "../lib/ref/random.ts";

interface Size {
  batch: number;
  seqLen: number;
  queryHeads: number;
  kvHeads: number;
  headDim: number;
}

function label(s: Size): string {
  return `B=${s.batch} T=${s.seqLen} Hq=${s.queryHeads} Hkv=${s.kvHeads} D=${s.headDim}`;
}

async function benchSize(ctx: GpuContext, s: Size, reps: number) {
  const rng = new Rng(1);
  const qShape = [s.batch, s.seqLen, s.queryHeads, s.headDim];
  const kShape = [s.batch, s.seqLen, s.kvHeads, s.headDim];
  const q = ctx.f32(rng.normals(qShape.reduce((a, b) => a * b)), qShape);
  const k = ctx.f32(rng.normals(kShape.reduce((a, b) => a * b)), kShape);
  const v = ctx.f32(rng.normals(kShape.reduce((a, b) => a * b)), kShape);
  const dOut = ctx.f32(rng.normals(q.size), qShape);
  const mask = ctx.u32(new Uint32Array(s.batch * s.seqLen).fill(1), [s.batch, s.seqLen]);

  const forward = () => {
    const { out, lse } = attentionForward(ctx, q, k, v, mask);
    out.release();
    lse.release();
  };
  const forwardBackward = () => {
    const { out, lse } = attentionForward(ctx, q, k, v, mask);
    const grads = attentionBackward(ctx, dOut, q, k, v, out, lse, mask);
    for (const t of [out, lse, grads.dQ, grads.dK, grads.dV]) t.release();
  };
  const time = async (step: () => void) => {
    step(); // compiles the pipelines and fills the buffer pool
    await ctx.sync();
    const start = performance.now();
    for (let i = 0; i < reps; i++) step();
    await ctx.sync();
    return (performance.now() - start) / reps;
  };
  const forwardMs = await time(forward);
  const forwardBackwardMs = await time(forwardBackward);
  for (const t of [q, k, v, dOut, mask]) t.release();
  return { size: label(s), reps, forwardMs, forwardBackwardMs };
}

export async function benchAttention(
  ctx: GpuContext,
  { quick }: { quick: boolean },
): Promise<object> {
  const heads = { queryHeads: 8, kvHeads: 2, headDim: 64 };
  const sizes: Size[] = quick
    ? [{ batch: 1, seqLen: 64, ...heads }, { batch: 1, seqLen: 256, ...heads }]
    : [{ batch: 1, seqLen: 256, ...heads }, { batch: 1, seqLen: 1024, ...heads }];
  const reps = quick ? 2 : 3;
  const results = [];
  for (const s of sizes) results.push(await benchSize(ctx, s, reps));
  return { adapter: ctx.adapter.name, attention: results };
}

if (import.meta.main) {
  const ctx = await gpu();
  const result = await benchAttention(ctx, { quick: Deno.args.includes("--quick") });
  console.log(JSON.stringify(result, null, 2));
}
