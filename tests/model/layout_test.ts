// GPU layout plans for the real model shapes under small and large device limits: every chunk
// fits, chunks tile their tensor's rows, big tensors are split evenly, nothing is allocated.

import { expectedTensors, loadConfig, parameterCount } from "../../lib/model/config.ts";
import {
  type DeviceLimits,
  formatBytes,
  type LayoutPlan,
  planLayout,
  trainingMemory,
} from "../../lib/model/layout.ts";
import { assert, assertEquals, assertUserError } from "./model_helpers.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const SMALL: DeviceLimits = { maxStorageBufferBindingSize: 128 * MiB, maxBufferSize: 2 * GiB };
const LARGE: DeviceLimits = { maxStorageBufferBindingSize: 4 * GiB - 4, maxBufferSize: 4 * GiB };

async function plan(name: string, limits: DeviceLimits): Promise<LayoutPlan> {
  return planLayout(expectedTensors(await loadConfig(`${FIXTURES}${name}.json`)), limits);
}

/** Invariants of any plan: chunks fit, tile the rows in order, and add up. */
function checkPlan(p: LayoutPlan, limit: number, what: string): void {
  let total = 0;
  for (const t of p.tensors.values()) {
    let row = 0;
    let bytes = 0;
    for (const c of t.chunks) {
      assert(c.rowStart === row && c.rowEnd > c.rowStart, `${what} ${t.name}: chunks tile rows`);
      assert(c.bytes <= limit, `${what} ${t.name}: chunk of ${c.bytes} bytes over ${limit}`);
      assert(c.bytes === (c.rowEnd - c.rowStart) * t.rowElements * 4, `${what}: chunk bytes`);
      row = c.rowEnd;
      bytes += c.bytes;
    }
    assert(row === t.rows && bytes === t.bytes, `${what} ${t.name}: chunks cover the tensor`);
    const sizes = t.chunks.map((c) => c.rowEnd - c.rowStart);
    assert(Math.max(...sizes) - Math.min(...sizes) <= 1, `${what} ${t.name}: balanced`);
    total += t.bytes;
  }
  assert(total === p.totalBytes, `${what}: total`);
}

Deno.test("layout: R1-Distill-Qwen-14B under a 128 MiB binding limit", async () => {
  const p = await plan("deepseek-r1-distill-qwen-14b", SMALL);
  checkPlan(p, 128 * MiB, "14B small");
  assertEquals(p.totalBytes, 14_770_033_664 * 4, "f32 bytes");
  const embedding = p.tensors.get("model.embed_tokens.weight")!;
  // 152,064 × 5,120 f32 = 3.1 GB; 6,553 rows fit 128 MiB → 24 chunks of 6,336 rows.
  assertEquals([embedding.bytes, embedding.chunks.length], [3_114_270_720, 24], "embedding");
  assert(embedding.chunks.every((c) => c.rowEnd - c.rowStart === 6336), "even embedding chunks");
  assertEquals(p.tensors.get("lm_head.weight")!.chunks.length, 24, "lm_head");
  const gate = p.tensors.get("model.layers.0.mlp.gate_proj.weight")!; // 13,824 × 5,120: 283 MB
  assertEquals(gate.chunks.map((c) => c.rowEnd - c.rowStart), [4608, 4608, 4608], "gate");
  const down = p.tensors.get("model.layers.0.mlp.down_proj.weight")!; // 5,120 × 13,824
  assertEquals(down.chunks.map((c) => c.rowEnd - c.rowStart), [1707, 1707, 1706], "down");
  const q = p.tensors.get("model.layers.0.self_attn.q_proj.weight")!; // 104.9 MB: fits
  assertEquals(q.chunks.length, 1, "q fits one binding");
  // 24 + 24 (embedding, lm_head) + 48 layers × 3 MLP matrices × 3 chunks + the rest at 1 each.
  assertEquals(p.chunkCount, 48 + 48 * 9 + (579 - 2 - 48 * 3), "chunk count");
});

Deno.test("layout: under a 4 GiB binding limit every tensor is one buffer", async () => {
  for (const name of ["deepseek-r1-distill-qwen-14b", "qwen2.5-1.5b", "qwen3-0.6b"]) {
    const p = await plan(name, LARGE);
    checkPlan(p, 4 * GiB - 4, name);
    assertEquals(p.chunkCount, p.tensors.size, `${name}: one chunk each`);
  }
  const p = await plan("deepseek-r1-distill-qwen-14b", LARGE);
  assertEquals(p.largestChunkBytes, 3_114_270_720, "the embedding is the largest");
});

Deno.test("layout: the small models under a 128 MiB limit split only the embedding", async () => {
  const p = await plan("qwen2.5-0.5b", SMALL);
  checkPlan(p, 128 * MiB, "0.5B");
  const split = [...p.tensors.values()].filter((t) => t.chunks.length > 1).map((t) => t.name);
  assertEquals(split, ["model.embed_tokens.weight"], "only the embedding is split");
  // 151,936 × 896 f32 = 545 MB → 5 chunks of 30,387-30,388 rows.
  const sizes = p.tensors.get("model.embed_tokens.weight")!.chunks.map((c) =>
    c.rowEnd - c.rowStart
  );
  assertEquals(sizes, [30388, 30387, 30387, 30387, 30387], "embedding chunks");
  const q3 = await plan("qwen3-0.6b", { maxStorageBufferBindingSize: 8 * MiB, maxBufferSize: GiB });
  checkPlan(q3, 8 * MiB, "Qwen3 at 8 MiB");
  assertEquals(q3.tensors.get("model.layers.0.self_attn.q_norm.weight")!.chunks.length, 1, "norm");
  // The smaller of the two limits decides.
  const tight = planLayout(new Map([["w", [10, 4]]]), {
    maxStorageBufferBindingSize: 1024,
    maxBufferSize: 64,
  });
  assertEquals(tight.chunkLimitBytes, 64, "buffer limit wins");
  assertEquals(tight.tensors.get("w")!.chunks.length, 3, "4 rows of 16 bytes per chunk");
});

Deno.test("layout: a row wider than one binding is a clear error", async () => {
  await assertUserError(
    () =>
      planLayout(new Map([["wide", [2, 1000]]]), {
        maxStorageBufferBindingSize: 256,
        maxBufferSize: GiB,
      }),
    ['"wide" [2, 1000]', "4000 bytes", "256 bytes"],
    "wide row",
  );
});

Deno.test("layout: the training memory bill is parameters + gradients + two AdamW moments", async () => {
  const config = await loadConfig(`${FIXTURES}deepseek-r1-distill-qwen-14b.json`);
  const bytes = parameterCount(config) * 4;
  const memory = trainingMemory(bytes);
  assertEquals(
    [memory.parameters, memory.gradients, memory.adamMoments, memory.total],
    [bytes, bytes, 2 * bytes, 4 * bytes],
    "bill",
  );
  assertEquals(formatBytes(memory.total), "236.32 GB", "14B f32 AdamW");
  const small = trainingMemory(
    parameterCount(await loadConfig(`${FIXTURES}qwen2.5-0.5b.json`)) * 4,
  );
  assertEquals(formatBytes(small.total), "7.90 GB", "0.5B f32 AdamW");
  assertEquals(formatBytes(512), "512 B", "bytes");
});
