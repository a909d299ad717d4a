// NTP batches: windows of T + 1 tokens (inputs, then targets shifted by one), drawn from an
// RNG seeded by (seed, step) only, so any step's batch can be recomputed exactly on resume.

import { ntpBatch } from "../../lib/data/batches.ts";
import { assert, assertEquals, assertUserError } from "../model/model_helpers.ts";

/** A stream whose token at position i is 1000 + i: a token tells where it came from. */
const stream = Uint32Array.from({ length: 5000 }, (_, i) => 1000 + i);
const options = { batchSize: 4, seqLen: 16, seed: 42 };

Deno.test("batches: each row is a window of the stream, targets shifted by one", () => {
  for (let step = 0; step < 20; step++) {
    const { ids, targets, starts } = ntpBatch(stream, options, step);
    assertEquals(ids.length, 4 * 16, "ids length");
    assertEquals(targets.length, 4 * 16, "targets length");
    assertEquals(starts.length, 4, "starts");
    for (let b = 0; b < 4; b++) {
      assert(starts[b] >= 0 && starts[b] + 16 < stream.length, `start ${starts[b]} out of range`);
      for (let t = 0; t < 16; t++) {
        assertEquals(ids[b * 16 + t], stream[starts[b] + t], `ids[${b}, ${t}]`);
        assertEquals(targets[b * 16 + t], stream[starts[b] + t + 1], `targets[${b}, ${t}]`);
      }
    }
  }
});

Deno.test("batches: (seed, step) alone decides the batch", () => {
  const forward = Array.from({ length: 10 }, (_, step) => ntpBatch(stream, options, step));
  // Any order, any gap: a resumed run gets the same batches.
  for (const step of [7, 3, 9, 0, 5]) {
    const again = ntpBatch(stream, options, step);
    assertEquals([...again.ids], [...forward[step].ids], `step ${step} ids`);
    assertEquals([...again.targets], [...forward[step].targets], `step ${step} targets`);
  }
  const distinctSteps = new Set(forward.map((b) => b.starts.join(","))).size;
  assertEquals(distinctSteps, 10, "different steps, different batches");
  const reseeded = ntpBatch(stream, { ...options, seed: 43 }, 0);
  assert(reseeded.starts.join() !== forward[0].starts.join(), "another seed, another batch");
  // The batch size only adds rows: a larger batch starts with the smaller one's rows.
  const wider = ntpBatch(stream, { ...options, batchSize: 6 }, 4);
  assertEquals(wider.starts.slice(0, 4), forward[4].starts, "rows of a larger batch");
});

Deno.test("batches: every start is reachable, including both ends", () => {
  const short = Uint32Array.from({ length: 19 }, (_, i) => i); // T = 16: starts 0, 1, 2
  const seen = new Set<number>();
  for (let step = 0; step < 200; step++) {
    for (const s of ntpBatch(short, { batchSize: 2, seqLen: 16, seed: 1 }, step).starts) {
      seen.add(s);
    }
  }
  assertEquals([...seen].sort(), [0, 1, 2], "starts seen");
  // Exactly T + 1 tokens: one possible window.
  const exact = ntpBatch(short.subarray(0, 17), { batchSize: 3, seqLen: 16, seed: 1 }, 0);
  assertEquals(exact.starts, [0, 0, 0], "the only window");
});

Deno.test("batches: a stream shorter than T + 1 or bad sizes are refused", async () => {
  await assertUserError(
    () => ntpBatch(stream.subarray(0, 16), options, 0),
    ["16 tokens", "seqLen + 1 = 17"],
    "short stream",
  );
  await assertUserError(
    () => ntpBatch(stream, { ...options, batchSize: 0 }, 0),
    ["batchSize", "positive integer"],
    "batch size 0",
  );
  await assertUserError(
    () => ntpBatch(stream, { ...options, seqLen: 2.5 }, 0),
    ["seqLen", "2.5"],
    "fractional seqLen",
  );
});
