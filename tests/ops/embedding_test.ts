import * as gpuOps from "../../lib/ops/embedding.ts";
import * as ref from "../../lib/ref/embedding.ts";
import { assertBitEqual, assertClose, finiteDifference, Rng, testGpu } from "../helpers.ts";

function randomIds(rng: Rng, count: number, vocab: number): Uint32Array<ArrayBuffer> {
  const ids = new Uint32Array(count);
  for (let i = 0; i < count; i++) ids[i] = rng.int(vocab);
  return ids;
}

// (N positions, V vocab, D dim): sizes 1, primes, heavy repetition (V = 2), a big vocab.
const CASES: [number, number, number][] = [
  [1, 1, 1],
  [3, 2, 7],
  [37, 17, 64],
  [1000, 2, 7],
  [1000, 50_257, 1],
  [257, 151_936, 7],
  [4096, 1000, 64],
];

Deno.test("embedding: forward gathers rows exactly", async () => {
  const ctx = await testGpu();
  const rng = new Rng(31);
  for (const [n, vocab, dim] of CASES) {
    const ids = randomIds(rng, n, vocab);
    const table = rng.normals(vocab * dim);
    const idsT = ctx.u32(ids);
    const tableT = ctx.f32(table, [vocab, dim]);
    const out = gpuOps.embedding(ctx, idsT, tableT);
    if (out.shape.join() !== `${n},${dim}`) throw new Error(`shape ${out.shape}`);
    assertBitEqual(await ctx.read(out), ref.embedding(ids, table, dim), `N=${n} V=${vocab}`);
    for (const t of [idsT, tableT, out]) t.release();
  }
});

Deno.test("embedding: ids keep their shape; out-of-range ids read the last row", async () => {
  const ctx = await testGpu();
  const table = [0, 1, 10, 11, 20, 21]; // V = 3, D = 2
  const idsT = ctx.u32([2, 0, 3, 0xffffffff], [2, 2]);
  const tableT = ctx.f32(table, [3, 2]);
  const out = gpuOps.embedding(ctx, idsT, tableT);
  if (out.shape.join() !== "2,2,2") throw new Error(`shape ${out.shape}`);
  assertBitEqual(await ctx.read(out), [20, 21, 0, 1, 20, 21, 20, 21], "clamped gather");
  for (const t of [idsT, tableT, out]) t.release();
});

Deno.test("embedding: the inverse index groups positions by id, in order", () => {
  const index = gpuOps.buildEmbeddingGradIndex([5, 1, 5, 0, 1, 5], 6);
  assertBitEqual(index.uniqueIds, [0, 1, 5], "unique ids");
  assertBitEqual(index.offsets, [0, 1, 3, 6], "offsets");
  assertBitEqual(index.positions, [3, 1, 4, 0, 2, 5], "positions");

  const empty = gpuOps.buildEmbeddingGradIndex([], 10);
  assertBitEqual(empty.uniqueIds, [], "empty unique");
  assertBitEqual(empty.offsets, [0], "empty offsets");

  // Against a naive grouping on random ids with a big vocabulary.
  const rng = new Rng(32);
  const ids = randomIds(rng, 5000, 151_936);
  const big = gpuOps.buildEmbeddingGradIndex(ids, 151_936);
  const groups = new Map<number, number[]>();
  ids.forEach((id, p) => groups.set(id, [...(groups.get(id) ?? []), p]));
  const sortedIds = [...groups.keys()].sort((a, b) => a - b);
  assertBitEqual(big.uniqueIds, sortedIds, "unique ids (random)");
  assertBitEqual(big.positions, sortedIds.flatMap((id) => groups.get(id)!), "positions");
  assertBitEqual(
    big.offsets.slice(1).map((o, u) => o - big.offsets[u]),
    sortedIds.map((id) => groups.get(id)!.length),
    "group sizes",
  );

  for (const bad of [[3, 10], [-1], [1.5]]) {
    let threw = false;
    try {
      gpuOps.buildEmbeddingGradIndex(bad, 10);
    } catch {
      threw = true;
    }
    if (!threw) throw new Error(`ids ${bad} must be rejected`);
  }
});

Deno.test("embedding: backward accumulates into dTable; reruns are bit-identical", async () => {
  const ctx = await testGpu();
  const rng = new Rng(33);
  for (const [n, vocab, dim] of CASES) {
    const ids = randomIds(rng, n, vocab);
    const dOut = rng.normals(n * dim);
    const dTableIn = rng.normals(vocab * dim, 0.1);
    const dOutT = ctx.f32(dOut, [n, dim]);
    const dTable = ctx.f32(dTableIn, [vocab, dim]);
    const fresh1 = ctx.zeros([vocab, dim], "f32");
    const fresh2 = ctx.zeros([vocab, dim], "f32");
    const index = gpuOps.uploadEmbeddingGradIndex(ctx, ids, vocab);
    gpuOps.embeddingBackward(ctx, dOutT, index, dTable);
    gpuOps.embeddingBackward(ctx, dOutT, index, fresh1);
    gpuOps.embeddingBackward(ctx, dOutT, index, fresh2);
    const [acc, g1, g2] = await ctx.readMany([dTable, fresh1, fresh2]);
    index.release();
    // Each row sums at most N values in f32 (sequentially): tolerance from Σ|dOut|.
    const tol = { rtol: 1e-5, atol: 2e-7 * Math.sqrt(n) * Math.max(1, n / vocab) };
    assertClose(acc, ref.embeddingBackward(dOut, ids, dTableIn, dim), tol, `N=${n} V=${vocab}`);
    assertClose(g1, ref.embeddingBackward(dOut, ids, new Float32Array(vocab * dim), dim), tol);
    assertBitEqual(g2, g1, `rerun N=${n} V=${vocab} D=${dim}`);
    for (const t of [dOutT, dTable, fresh1, fresh2]) t.release();
  }
});

Deno.test("embedding: an id with more positions than llvmpipe's loops allow still sums right", async () => {
  // One invocation sums one id's positions, ceil(D / 64) loop iterations each: 25,000
  // positions of D = 384 pass llvmpipe's limit of 65,535 (lib/gpu/loop_limit.ts), so on a
  // software adapter they go through several dispatches (elsewhere: one).
  const ctx = await testGpu();
  const rng = new Rng(35);
  const [n, vocab, dim] = [25_000, 3, 384];
  const ids = Array.from({ length: n }, (_, p) => (p % 50 === 0 ? 2 : 1)); // id 1: 24,500 times
  const dOut = rng.normals(n * dim);
  const dOutT = ctx.f32(dOut, [n, dim]);
  const dTable = ctx.zeros([vocab, dim], "f32");
  const index = gpuOps.uploadEmbeddingGradIndex(ctx, ids, vocab);
  gpuOps.embeddingBackward(ctx, dOutT, index, dTable);
  const [got] = await ctx.readMany([dTable]);
  index.release();
  const want = ref.embeddingBackward(dOut, ids, new Float32Array(vocab * dim), dim);
  assertClose(got, want, { rtol: 1e-4, atol: 2e-7 * n }, "24,500 positions of one id");
  for (const t of [dOutT, dTable]) t.release();
});

Deno.test("embedding: backward checks its shapes", async () => {
  const ctx = await testGpu();
  const index = gpuOps.uploadEmbeddingGradIndex(ctx, [1, 2, 3], 4);
  const bad: [number[], number[]][] = [
    [[3, 5], [5, 5]], // vocab 5 ≠ index's 4
    [[3, 4], [4, 5]], // D differs
    [[2, 5], [4, 5]], // 2 rows for 3 positions
  ];
  for (const [dOutShape, tableShape] of bad) {
    const dOut = ctx.zeros(dOutShape, "f32");
    const dTable = ctx.zeros(tableShape, "f32");
    let threw = false;
    try {
      gpuOps.embeddingBackward(ctx, dOut, index, dTable);
    } catch {
      threw = true;
    }
    if (!threw) throw new Error(`dOut ${dOutShape}, dTable ${tableShape} must be rejected`);
    dOut.release();
    dTable.release();
  }
  await ctx.sync();
  index.release();
});

/** Uneven row chunks [rowStart, rowEnd) of a V-row table. */
function rowChunks(vocab: number, sizes: number[]): [number, number][] {
  const chunks: [number, number][] = [];
  let start = 0;
  for (const size of sizes) {
    chunks.push([start, start + size]);
    start += size;
  }
  if (start !== vocab) throw new Error(`chunks cover ${start} of ${vocab} rows`);
  return chunks;
}

// (N, V, D, chunk sizes): one row per chunk, uneven chunks, a chunk no id falls in (the ids
// are drawn below V / 2 there), a big vocabulary.
const CHUNK_CASES: [number, number, number, number[], boolean][] = [
  [5, 3, 4, [1, 1, 1], false],
  [37, 67, 32, [24, 24, 19], false],
  [40, 67, 7, [20, 20, 27], true],
  [257, 151_936, 7, [30_388, 30_388, 30_388, 30_388, 30_384], false],
];

Deno.test("embedding: row chunks gather and scatter exactly what the whole table does", async () => {
  const ctx = await testGpu();
  const rng = new Rng(35);
  for (const [n, vocab, dim, sizes, lowIds] of CHUNK_CASES) {
    const ids = randomIds(rng, n, lowIds ? vocab >> 1 : vocab);
    const table = rng.normals(vocab * dim);
    const dOut = rng.normals(n * dim);
    const idsT = ctx.u32(ids);
    const dOutT = ctx.f32(dOut, [n, dim]);
    const index = gpuOps.uploadEmbeddingGradIndex(ctx, ids, vocab);
    const tableT = ctx.f32(table, [vocab, dim]);
    const whole = gpuOps.embedding(ctx, idsT, tableT);
    const dWhole = ctx.zeros([vocab, dim], "f32");
    gpuOps.embeddingBackward(ctx, dOutT, index, dWhole);

    const chunks = rowChunks(vocab, sizes);
    const out = ctx.empty([n, dim], "f32");
    const chunkTables = chunks.map(([a, b]) =>
      ctx.f32(table.subarray(a * dim, b * dim), [b - a, dim])
    );
    const dChunks = chunks.map(([a, b]) => ctx.zeros([b - a, dim], "f32"));
    chunks.forEach(([rowStart], c) => {
      gpuOps.embeddingRowsInto(ctx, idsT, chunkTables[c], rowStart, vocab, out);
      gpuOps.embeddingBackwardRows(ctx, dOutT, index, dChunks[c], rowStart);
    });
    const [gotWhole, gotOut, gotDWhole, ...gotDChunks] = await ctx.readMany([
      whole,
      out,
      dWhole,
      ...dChunks,
    ]);
    const what = `N=${n} V=${vocab} chunks ${sizes}`;
    assertBitEqual(gotOut, gotWhole, `gather ${what}`);
    chunks.forEach(([a, b], c) => {
      assertBitEqual(gotDChunks[c], gotDWhole.subarray(a * dim, b * dim), `scatter ${what} #${c}`);
      // The reference of one chunk, on its own.
      const expected = ref.embeddingBackwardRows(
        dOut,
        ids,
        new Float64Array((b - a) * dim),
        a,
        dim,
      );
      assertClose(gotDChunks[c], expected, { rtol: 1e-5, atol: 1e-6 }, `reference ${what} #${c}`);
    });
    // The reference gather, chunk by chunk, is the whole gather.
    let expected: Float64Array = new Float64Array(n * dim);
    for (const [a, b] of chunks) {
      expected = ref.embeddingRows(ids, table.subarray(a * dim, b * dim), a, dim, expected);
    }
    assertBitEqual(gotOut, expected, `reference gather ${what}`);
    index.release();
    for (const t of [idsT, dOutT, tableT, whole, dWhole, out, ...chunkTables, ...dChunks]) {
      t.release();
    }
  }
});

Deno.test("embedding: a row chunk outside the table is rejected", async () => {
  const ctx = await testGpu();
  const ids = ctx.u32([0, 1, 2]);
  const index = gpuOps.uploadEmbeddingGradIndex(ctx, [0, 1, 2], 5);
  const rows = ctx.zeros([3, 4], "f32");
  const out = ctx.zeros([3, 4], "f32");
  const short = ctx.zeros([2, 4], "f32");
  const attempts: [string, () => void][] = [
    ["gather rows [3, 6) of 5", () => gpuOps.embeddingRowsInto(ctx, ids, rows, 3, 5, out)],
    ["gather into a misshapen out", () => gpuOps.embeddingRowsInto(ctx, ids, rows, 0, 5, short)],
    ["scatter rows [3, 6) of 5", () => gpuOps.embeddingBackwardRows(ctx, out, index, rows, 3)],
    ["negative start", () => gpuOps.embeddingBackwardRows(ctx, out, index, rows, -1)],
  ];
  for (const [what, attempt] of attempts) {
    let threw = false;
    try {
      attempt();
    } catch {
      threw = true;
    }
    if (!threw) throw new Error(`${what} must be rejected`);
  }
  await ctx.sync();
  index.release();
  for (const t of [ids, rows, out, short]) t.release();
});

Deno.test("embedding: reference backward agrees with finite differences", () => {
  const rng = new Rng(34);
  const ids = [2, 0, 2, 3, 2];
  const vocab = 4;
  const dim = 3;
  const table = rng.normals(vocab * dim);
  const w = rng.normals(ids.length * dim);
  // f(table) = Σ w ⊙ embedding(ids, table); its gradient is the scatter-add of w.
  const f = (t: Float64Array) => ref.embedding(ids, t, dim).reduce((a, v, i) => a + v * w[i], 0);
  const numeric = finiteDifference(f, table);
  const analytic = ref.embeddingBackward(w, ids, new Float64Array(vocab * dim), dim);
  assertClose(analytic, numeric, { rtol: 1e-6, atol: 1e-8 }, "embedding FD");
});
