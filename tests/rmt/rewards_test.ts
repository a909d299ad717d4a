// Rewards: exact match, RPT's byte-prefix match (leading space, multi-token prefixes, characters
// split across tokens), the triangular length reward and the combined reward.

import {
  combinedReward,
  exactMatchReward,
  lengthReward,
  prefixBoundaries,
  prefixMatchReward,
  rolloutReward,
} from "../../lib/rmt/rewards.ts";
import { assertEquals, assertNear, FakeTokenizer } from "./rmt_helpers.ts";

// Ids: 0 " cat", 1 "s", 2 " sat", 3 "é"'s first byte, 4 "é"'s second byte, 5 "x", 6 "" (empty)
const tok = new FakeTokenizer([" cat", "s", " sat", [0xc3], [0xa9], "x", ""]);
const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("rewards: exact match compares token ids", () => {
  assertEquals(exactMatchReward(5, 5), 1, "match");
  assertEquals(exactMatchReward(4, 5), 0, "mismatch");
  assertEquals(exactMatchReward(null, 5), 0, "unparseable");
});

Deno.test("rewards: prefix boundaries are the cumulative byte lengths", () => {
  assertEquals(prefixBoundaries([0, 1, 2], tok.decodeBytes), [4, 5, 9], "' cat' 's' ' sat'");
  assertEquals(prefixBoundaries([3, 4, 5], tok.decodeBytes), [1, 2, 3], "split é");
  assertEquals(prefixBoundaries([6, 5], tok.decodeBytes), [1], "empty token: no boundary 0");
});

Deno.test("rewards: byte-prefix match", () => {
  const truth = [0, 1, 2]; // " cats sat"
  const reward = (s: string, mode: "optional" | "exact" = "exact") =>
    prefixMatchReward(bytes(s), truth, tok.decodeBytes, mode);
  assertEquals(reward(" cat"), 1, "the first token");
  assertEquals(reward(" cats"), 1, "two tokens");
  assertEquals(reward(" cats sat"), 1, "three tokens");
  assertEquals(reward(" ca"), 0, "not a token boundary");
  assertEquals(reward(" cats s"), 0, "inside the third token");
  assertEquals(reward(" cats sat!"), 0, "longer than the continuation");
  assertEquals(reward(" dog"), 0, "wrong");
  assertEquals(reward(""), 0, "empty");
  assertEquals(prefixMatchReward(null, truth, tok.decodeBytes), 0, "unparseable");
  // Leading space: the true token starts with a space, the answer does not.
  assertEquals(reward("cat", "exact"), 0, "exact: the space is required");
  assertEquals(reward("cat", "optional"), 1, "optional: without the space");
  assertEquals(reward("cats", "optional"), 1, "optional: two tokens without the space");
  assertEquals(reward("cats sat", "optional"), 1, "optional: three tokens");
  assertEquals(reward(" cats", "optional"), 1, "optional: with the space still fine");
  assertEquals(reward("ca", "optional"), 0, "optional: still needs a boundary");
  // A character split across two tokens: only whole-token prefixes count (1 byte is one).
  const split = [3, 4, 5]; // "é" as two byte tokens, then "x"
  const r = (b: number[]) => prefixMatchReward(Uint8Array.from(b), split, tok.decodeBytes);
  assertEquals(r([0xc3]), 1, "the first byte token");
  assertEquals(r([0xc3, 0xa9]), 1, "é");
  assertEquals(r([0xc3, 0xa9, 0x78]), 1, "éx");
  assertEquals(r([0xa9]), 0, "the second byte alone");
});

Deno.test("rewards: triangular length reward", () => {
  const B = 10;
  const cases: [number, number][] = [
    [0, 0],
    [1, 0.1],
    [5, 0.5],
    [10, 1],
    [11, 0.9],
    [15, 0.5],
    [19, 0.1],
    [20, 0],
    [21, 0],
    [1000, 0],
  ];
  for (const [l, r] of cases) assertNear(lengthReward(l, B, 1), r, 1e-15, `ℓ = ${l}`);
  for (let l = 0; l <= 30; l++) {
    // The spec's formula with r_max = 2, B = 7.
    const expected = l <= 7 ? (2 * l) / 7 : l <= 14 ? (2 * (14 - l)) / 7 : 0;
    assertEquals(lengthReward(l, 7, 2), expected, `r_max 2, ℓ = ${l}`);
  }
  assertEquals(lengthReward(1, 1, 1), 1, "B = 1, ℓ = 1");
  assertEquals(lengthReward(2, 1, 1), 0, "B = 1, ℓ = 2");
});

Deno.test("rewards: combined reward r = (1 − w)·r_pos + w·r_len", () => {
  assertNear(combinedReward(1, 0.5, 0.2), 0.9, 1e-15, "match + half length");
  assertNear(combinedReward(0, 1, 0.2), 0.2, 1e-15, "length only");
  const s = { lengthWeight: 0.2, rMax: 1, lengthRewardRequiresAnswer: false };
  assertEquals(rolloutReward(1, true, 10, 10, s), { reward: 1, match: 1, length: 1 }, "perfect");
  const missing = rolloutReward(1, false, 5, 10, s);
  assertEquals([missing.match, missing.length], [0, 0.5], "unparseable: r_pos = 0, r_len kept");
  assertNear(missing.reward, 0.1, 1e-15, "unparseable total");
  const strict = rolloutReward(1, false, 5, 10, { ...s, lengthRewardRequiresAnswer: true });
  assertEquals(strict, { reward: 0, match: 0, length: 0 }, "requires answer");
  assertEquals(
    rolloutReward(1, true, 500, null, s),
    { reward: 1, match: 1, length: 0 },
    "no budget",
  );
});
