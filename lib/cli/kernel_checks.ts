// The cases `rmt selfcheck` runs: one small random case per kernel family, GPU against
// the TypeScript reference. Each returns its worst error relative to its tolerance.

import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import * as activation from "../ops/activation.ts";
import * as attention from "../ops/attention.ts";
import * as attentionDecode from "../ops/attention_decode.ts";
import * as crossEntropy from "../ops/cross_entropy.ts";
import * as elementwise from "../ops/elementwise.ts";
import * as embedding from "../ops/embedding.ts";
import * as matmul from "../ops/matmul.ts";
import * as norm from "../ops/norm.ts";
import * as reduce from "../ops/reduce.ts";
import * as rope from "../ops/rope.ts";
import * as sampling from "../ops/sampling.ts";
import * as softmax from "../ops/softmax.ts";
import * as activationRef from "../ref/activation.ts";
import * as attentionRef from "../ref/attention.ts";
import * as attentionDecodeRef from "../ref/attention_decode.ts";
import * as crossEntropyRef from "../ref/cross_entropy.ts";
import * as elementwiseRef from "../ref/elementwise.ts";
import * as embeddingRef from "../ref/embedding.ts";
import * as matmulRef from "../ref/matmul.ts";
import * as normRef from "../ref/norm.ts";
import { Rng } from "../ref/random.ts";
import * as reduceRef from "../ref/reduce.ts";
import * as ropeRef from "../ref/rope.ts";
import * as samplingRef from "../ref/sampling.ts";
import * as softmaxRef from "../ref/softmax.ts";

export interface KernelCheck {
  name: string;
  run: (ctx: GpuContext, seed: number) => Promise<number>;
}

/** max over i of |a − e| / (atol + rtol·|e|); NaN anywhere counts as infinitely wrong. */
export function worstError(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  rtol: number,
  atol: number,
): number {
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const diff = Math.abs(actual[i] - expected[i]);
    const e = diff === 0 ? 0 : diff / (atol + rtol * Math.abs(expected[i]));
    worst = Number.isNaN(e) ? Infinity : Math.max(worst, e);
  }
  return worst;
}

/** Reads the tensors in one map, releases them, and returns the data. */
async function readAndRelease(ctx: GpuContext, tensors: Tensor[]) {
  const data = await ctx.readMany(tensors);
  for (const t of tensors) t.release();
  return data;
}

export const KERNEL_CHECKS: KernelCheck[] = [
  {
    name: "matmul (all transposes, three kernels)",
    run: async (ctx, seed) => {
      const rng = new Rng(seed);
      const [M, K, N] = [36, 68, 52]; // 4-aligned, so the vec4 kernel can run too
      let worst = 0;
      for (const variant of ["registers-vec4", "tiled", "textures"] as const) {
        for (const transposeA of [false, true]) {
          for (const transposeB of [false, true]) {
            const aShape = transposeA ? [K, M] : [M, K];
            const bShape = transposeB ? [N, K] : [K, N];
            const a = rng.normals(M * K);
            const b = rng.normals(K * N);
            const ta = ctx.f32(a, aShape);
            const tb = ctx.f32(b, bShape);
            const c = matmul.matmul(ctx, ta, tb, { transposeA, transposeB, variant });
            const [got] = await readAndRelease(ctx, [c, ta, tb]);
            const expected = matmulRef.matmul({ data: a, shape: aShape }, {
              data: b,
              shape: bShape,
            }, {
              transposeA,
              transposeB,
            });
            worst = Math.max(worst, worstError(got, expected, 1e-4, 1e-4));
          }
        }
      }
      return worst;
    },
  },
  {
    name: "elementwise (add, scale)",
    run: async (ctx, seed) => {
      const rng = new Rng(seed);
      const a = rng.normals(1031);
      const b = rng.normals(1031);
      const ta = ctx.f32(a);
      const tb = ctx.f32(b);
      const sum = elementwise.add(ctx, ta, tb);
      const scaled = elementwise.scale(ctx, ta, 0.5);
      const [gotSum, gotScaled] = await ctx.readMany([sum, scaled]);
      for (const t of [ta, tb, sum, scaled]) t.release();
      return Math.max(
        worstError(gotSum, elementwiseRef.add(a, b), 1e-6, 1e-7),
        worstError(gotScaled, elementwiseRef.scale(a, 0.5), 1e-6, 1e-7),
      );
    },
  },
  {
    name: "rmsnorm forward + backward (a workgroup per row, and by rows)",
    run: async (ctx, seed) => {
      const rng = new Rng(seed);
      let worst = 0;
      for (const variant of ["workgroup", "rows"] as const) {
        const [rows, dim] = [37, variant === "rows" ? 132 : 131]; // rows: dim % 4 = 0
        const x = rng.normals(rows * dim);
        const w = rng.normals(dim);
        const dy = rng.normals(rows * dim);
        const tx = ctx.f32(x, [rows, dim]);
        const tw = ctx.f32(w);
        const tdy = ctx.f32(dy, [rows, dim]);
        const fwd = norm.rmsNorm(ctx, tx, tw, 1e-6, { variant });
        const bwd = norm.rmsNormBackward(ctx, tx, tw, fwd.rstd, tdy, { variant });
        const [y, dx, dw] = await readAndRelease(ctx, [
          fwd.y,
          fwd.rstd,
          bwd.dx,
          bwd.dWeight,
          tx,
          tw,
          tdy,
        ])
          .then((d) => [d[0], d[2], d[3]]);
        const ref = normRef.rmsNorm(x, w, rows, dim, 1e-6);
        const grads = normRef.rmsNormBackward(x, w, dy, rows, dim, 1e-6);
        worst = Math.max(
          worst,
          worstError(y, ref.y, 1e-4, 1e-5),
          worstError(dx, grads.dx, 1e-4, 1e-5),
          worstError(dw, grads.dWeight, 1e-4, 1e-4),
        );
      }
      return worst;
    },
  },
  {
    name: "rope (theta 1e6)",
    run: async (ctx, seed) => {
      const rng = new Rng(seed);
      const shape = { batch: 2, time: 13, heads: 3, headDim: 64 };
      const x = rng.normals(2 * 13 * 3 * 64);
      const positions = Int32Array.from({ length: 26 }, (_, i) => (i % 13) * 37);
      const tx = ctx.f32(x, [2, 13, 3, 64]);
      const tp = ctx.i32(positions, [2, 13]);
      const out = rope.rope(ctx, tx, tp, { theta: 1e6 });
      const [got] = await readAndRelease(ctx, [out, tx, tp]);
      return worstError(got, ropeRef.rope(x, positions, shape, 1e6), 1e-4, 1e-5);
    },
  },
  {
    name: "swiglu + gelu",
    run: async (ctx, seed) => {
      const rng = new Rng(seed);
      const gate = rng.normals(1003, 3);
      const up = rng.normals(1003);
      const tg = ctx.f32(gate);
      const tu = ctx.f32(up);
      const sw = activation.swiglu(ctx, tg, tu);
      const ge = activation.gelu(ctx, tg, "erf");
      const [gotSw, gotGe] = await readAndRelease(ctx, [sw, ge, tg, tu]);
      return Math.max(
        worstError(gotSw, activationRef.swiglu(gate, up), 1e-5, 1e-6),
        worstError(gotGe, activationRef.gelu(gate, "erf"), 1e-5, 1e-6),
      );
    },
  },
  {
    name: "embedding forward",
    run: async (ctx, seed) => {
      const rng = new Rng(seed);
      const [vocab, dim] = [97, 33];
      const table = rng.normals(vocab * dim);
      const ids = Uint32Array.from({ length: 41 }, () => rng.int(vocab));
      const tt = ctx.f32(table, [vocab, dim]);
      const ti = ctx.u32(ids);
      const out = embedding.embedding(ctx, ti, tt);
      const [got] = await readAndRelease(ctx, [out, tt, ti]);
      return worstError(got, embeddingRef.embedding(ids, table, dim), 0, 0);
    },
  },
  {
    name: "softmax + cross-entropy + top-16 entropy",
    run: async (ctx, seed) => {
      const rng = new Rng(seed);
      const [rows, vocab] = [5, 1009];
      const logits = rng.normals(rows * vocab, 3);
      const targets = Uint32Array.from({ length: rows }, () => rng.int(vocab));
      const tl = ctx.f32(logits, [rows, vocab]);
      const tt = ctx.u32(targets);
      const probs = softmax.softmax(ctx, tl);
      const ce = crossEntropy.crossEntropyForward(ctx, tl, tt);
      const [p, logprob, entropy] = await readAndRelease(
        ctx,
        [probs, ce.logprob, ce.entropy!, ce.lse, tl, tt],
      );
      const ref = crossEntropyRef.crossEntropy(logits, targets, rows, vocab);
      return Math.max(
        worstError(p, softmaxRef.softmax(logits, rows, vocab), 1e-4, 1e-6),
        worstError(logprob, ref.logprob, 1e-4, 1e-5),
        worstError(entropy, ref.entropy, 1e-4, 1e-5),
      );
    },
  },
  {
    name: "reductions (sum, row mean)",
    run: async (ctx, seed) => {
      const rng = new Rng(seed);
      const x = rng.normals(7 * 1429);
      const tx = ctx.f32(x, [7, 1429]);
      const total = reduce.sum(ctx, tx);
      const rows = reduce.rowMean(ctx, tx);
      const [gotTotal, gotRows] = await readAndRelease(ctx, [total, rows, tx]);
      return Math.max(
        worstError(gotTotal, [reduceRef.sum(x)], 1e-4, 1e-4),
        worstError(gotRows, reduceRef.rowMean(x, 7, 1429), 1e-4, 1e-5),
      );
    },
  },
  {
    name: "sampling (Philox, top-k, top-p)",
    run: async (ctx, seed) => {
      const rng = new Rng(seed);
      const [rows, vocab] = [6, 503];
      const logits = rng.normals(rows * vocab, 2);
      const options = { temperature: 0.8, topK: 40, topP: 0.9 };
      const tl = ctx.f32(logits, [rows, vocab]);
      const drawn = sampling.sample(ctx, tl, { ...options, seed, step: 3 });
      const [ids] = await readAndRelease(ctx, [drawn.ids, drawn.logprobs, tl]);
      const expected = samplingRef.sample(logits, rows, { ...options, seed, step: 3 });
      // Ids are discrete: a mismatch is a failure (error/tolerance = infinity).
      return ids.every((id, r) => id === expected.ids[r]) ? 0 : Infinity;
    },
  },
  {
    name: "attention forward + backward (GQA, padded)",
    run: async (ctx, seed) => {
      const rng = new Rng(seed);
      const dims = { batch: 2, queryLen: 11, keyLen: 11, queryHeads: 4, kvHeads: 2, headDim: 16 };
      const qSize = 2 * 11 * 4 * 16;
      const kvSize = 2 * 11 * 2 * 16;
      const [q, k, v, dOut] = [qSize, kvSize, kvSize, qSize].map((n) => rng.normals(n));
      const mask = Uint32Array.from({ length: 22 }, (_, i) => (i < 11 || i >= 14 ? 1 : 0));
      const tq = ctx.f32(q, [2, 11, 4, 16]);
      const tk = ctx.f32(k, [2, 11, 2, 16]);
      const tv = ctx.f32(v, [2, 11, 2, 16]);
      const tm = ctx.u32(mask, [2, 11]);
      const td = ctx.f32(dOut, [2, 11, 4, 16]);
      const fwd = attention.attentionForward(ctx, tq, tk, tv, tm);
      const bwd = attention.attentionBackward(ctx, td, tq, tk, tv, fwd.out, fwd.lse, tm);
      const [out, dQ, dK, dV] = await readAndRelease(
        ctx,
        [fwd.out, bwd.dQ, bwd.dK, bwd.dV, fwd.lse, tq, tk, tv, tm, td],
      );
      const ref = attentionRef.attentionForward(q, k, v, mask, dims);
      const grads = attentionRef.attentionBackward(dOut, q, k, v, mask, dims);
      return Math.max(
        worstError(out, ref.out, 1e-4, 1e-5),
        worstError(dQ, grads.dQ, 1e-4, 1e-5),
        worstError(dK, grads.dK, 1e-4, 1e-5),
        worstError(dV, grads.dV, 1e-4, 1e-5),
      );
    },
  },
  {
    name: "attention decode (GQA, KV cache read in place, padded; split and rows)",
    run: async (ctx, seed) => {
      const rng = new Rng(seed);
      // A cache of 23 rows of which 19 are attended; sequence 1 is left-padded by 5.
      const dims = {
        batch: 2,
        maxLen: 23,
        maskLen: 23,
        length: 19,
        queryHeads: 6,
        kvHeads: 2,
        headDim: 16,
      };
      const q = rng.normals(2 * 6 * 16);
      const [k, v] = [0, 1].map(() => rng.normals(2 * 23 * 2 * 16));
      const mask = Uint32Array.from({ length: 46 }, (_, i) => (i >= 23 && i < 28 ? 0 : 1));
      const tq = ctx.f32(q, [2, 1, 6, 16]);
      const tk = ctx.f32(k, [2, 23, 2, 16]);
      const tv = ctx.f32(v, [2, 23, 2, 16]);
      const tm = ctx.u32(mask, [2, 23]);
      const outs = (["split", "rows"] as const).map((variant) =>
        attentionDecode.attentionDecode(ctx, tq, tk, tv, tm, { length: 19, variant })
      );
      const got = await readAndRelease(ctx, [...outs, tq, tk, tv, tm]);
      const expected = attentionDecodeRef.attentionDecode(q, k, v, mask, dims);
      return Math.max(
        worstError(got[0], expected, 1e-5, 1e-6),
        worstError(got[1], expected, 1e-5, 1e-6),
      );
    },
  },
];
