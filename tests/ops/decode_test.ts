// The decode-step bookkeeping (lib/ops/decode.ts) against its reference (lib/ref/decode.ts):
// several chained steps on awkward batch sizes, with and without stop ids; bit-exact, since
// it only moves integers and copies floats.

import type { GpuContext } from "../../lib/gpu/context.ts";
import { type DecodeState, decodeStep } from "../../lib/ops/decode.ts";
import * as ref from "../../lib/ref/decode.ts";
import { assert, assertBitEqual, Rng, testGpu } from "../helpers.ts";

interface Case {
  rows: number;
  columns: number;
  stop: number[];
}

// Size 1, primes, a size that is not a multiple of the workgroup (64), and one large case.
const CASES: Case[] = [
  { rows: 1, columns: 1, stop: [] },
  { rows: 1, columns: 5, stop: [3] },
  { rows: 7, columns: 3, stop: [2, 5, 0] },
  { rows: 67, columns: 11, stop: [1] },
  { rows: 4099, columns: 6, stop: [4, 9] },
];

function randomState(rng: Rng, rows: number, columns: number): ref.HostDecodeState {
  return {
    finished: Uint32Array.from({ length: rows }, () => (rng.int(4) === 0 ? 1 : 0)),
    nextIds: Uint32Array.from({ length: rows }, () => rng.int(10)),
    positions: Int32Array.from({ length: rows }, () => rng.int(50)),
    tokens: Uint32Array.from({ length: rows * columns }, () => rng.int(10)),
    logprobs: Float32Array.from(rng.normals(rows * columns)),
  };
}

function upload(ctx: GpuContext, s: ref.HostDecodeState, columns: number): DecodeState {
  const rows = s.finished.length;
  return {
    finished: ctx.upload(s.finished.slice(), [rows], "u32"),
    nextIds: ctx.upload(s.nextIds.slice(), [rows], "u32"),
    positions: ctx.upload(s.positions.slice(), [rows], "i32"),
    tokens: ctx.upload(s.tokens.slice(), [rows, columns], "u32"),
    logprobs: ctx.upload(s.logprobs.slice(), [rows, columns], "f32"),
  };
}

async function readState(ctx: GpuContext, s: DecodeState): Promise<ref.HostDecodeState> {
  const [finished, nextIds, positions, tokens, logprobs] = await ctx.readMany([
    s.finished,
    s.nextIds,
    s.positions,
    s.tokens,
    s.logprobs,
  ]);
  return {
    finished: finished as Uint32Array,
    nextIds: nextIds as Uint32Array,
    positions: positions as Int32Array,
    tokens: tokens as Uint32Array,
    logprobs: logprobs as Float32Array,
  };
}

function releaseState(s: DecodeState): void {
  for (const t of [s.finished, s.nextIds, s.positions, s.tokens, s.logprobs]) t.release();
}

/** Runs every column of a case on the GPU and the reference; returns the GPU's final state. */
async function runCase(ctx: GpuContext, c: Case, seed: number): Promise<ref.HostDecodeState> {
  const rng = new Rng(seed);
  let expected = randomState(rng, c.rows, c.columns);
  const state = upload(ctx, expected, c.columns);
  const stop = c.stop.length > 0 ? ctx.u32(c.stop) : null;
  const padId = 9;
  const temporaries = [];
  for (let column = 0; column < c.columns; column++) {
    const ids = Uint32Array.from({ length: c.rows }, () => rng.int(10));
    const logprobs = Float32Array.from(rng.normals(c.rows));
    const idsGpu = ctx.upload(ids, [c.rows], "u32");
    const logprobsGpu = ctx.upload(logprobs, [c.rows], "f32");
    decodeStep(ctx, idsGpu, logprobsGpu, stop, state, { column, padId });
    temporaries.push(idsGpu, logprobsGpu);
    expected = ref.decodeStep(ids, logprobs, c.stop, expected, c.columns, column, padId);
  }
  const got = await readState(ctx, state);
  const what = `[${c.rows}, ${c.columns}] stop [${c.stop}]`;
  assertBitEqual(got.finished, expected.finished, `${what}: finished`);
  assertBitEqual(got.nextIds, expected.nextIds, `${what}: nextIds`);
  assertBitEqual(got.positions, expected.positions, `${what}: positions`);
  assertBitEqual(got.tokens, expected.tokens, `${what}: tokens`);
  assertBitEqual(got.logprobs, expected.logprobs, `${what}: logprobs`);
  releaseState(state);
  stop?.release();
  for (const t of temporaries) t.release();
  return got;
}

Deno.test("decode: chained steps match the reference (bit-exact)", async () => {
  const ctx = await testGpu();
  for (const [i, c] of CASES.entries()) await runCase(ctx, c, 10 + i);
});

Deno.test("decode: a row stops at its first stop id and pads afterwards", async () => {
  const ctx = await testGpu();
  const state = upload(ctx, {
    finished: new Uint32Array(2),
    nextIds: new Uint32Array(2),
    positions: Int32Array.from([3, 0]),
    tokens: new Uint32Array(6),
    logprobs: new Float32Array(6),
  }, 3);
  const stop = ctx.u32([7]);
  const steps = [[5, 7], [7, 4], [6, 3]];
  const temporaries = [];
  for (const [column, ids] of steps.entries()) {
    const idsGpu = ctx.u32(ids);
    const logprobsGpu = ctx.f32([-1 - column, -2 - column]);
    decodeStep(ctx, idsGpu, logprobsGpu, stop, state, { column, padId: 0 });
    temporaries.push(idsGpu, logprobsGpu);
  }
  const got = await readState(ctx, state);
  assertBitEqual(got.tokens, Uint32Array.from([5, 7, 0, 7, 0, 0]), "tokens");
  assertBitEqual(got.logprobs, Float32Array.from([-1, -2, 0, -2, 0, 0]), "logprobs");
  assertBitEqual(got.finished, Uint32Array.from([1, 1]), "finished");
  assertBitEqual(got.positions, Int32Array.from([6, 3]), "positions");
  releaseState(state);
  stop.release();
  for (const t of temporaries) t.release();
});

Deno.test("decode: reruns are bit-identical", async () => {
  const ctx = await testGpu();
  const a = await runCase(ctx, CASES[3], 5);
  const b = await runCase(ctx, CASES[3], 5);
  assertBitEqual(a.tokens, b.tokens, "tokens");
  assertBitEqual(a.logprobs, b.logprobs, "logprobs");
});

Deno.test("decode: bad shapes are refused with the shapes in the message", async () => {
  const ctx = await testGpu();
  const state = upload(ctx, randomState(new Rng(1), 3, 2), 2);
  const ids = ctx.u32([1, 2, 3]);
  const logprobs = ctx.f32([0, 0]);
  const good = ctx.f32([0, 0, 0]);
  const expectThrow = (fn: () => unknown, fragment: string) => {
    try {
      fn();
    } catch (e) {
      assert((e as Error).message.includes(fragment), `${(e as Error).message} ∌ ${fragment}`);
      return;
    }
    throw new Error(`expected an error mentioning ${fragment}`);
  };
  expectThrow(
    () => decodeStep(ctx, ids, logprobs, null, state, { column: 0, padId: 0 }),
    "sampledLogprobs is f32 [2]",
  );
  expectThrow(
    () => decodeStep(ctx, ids, good, null, state, { column: 2, padId: 0 }),
    "column 2 is outside tokens [3, 2]",
  );
  releaseState(state);
  for (const t of [ids, logprobs, good]) t.release();
});
