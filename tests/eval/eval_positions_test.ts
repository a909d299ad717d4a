// Held-out positions: deterministic from the seed, never a document start, an EOT target or a
// position with too little context; contexts cut to the limit within the document.

import {
  eligiblePositions,
  evalPositions,
  positionContext,
} from "../../lib/eval/eval_positions.ts";
import { joinDocuments } from "../../lib/data/token_cache.ts";
import { assert, assertEquals } from "../helpers.ts";

const EOT = 99;

/** Documents of lengths 5, 12, 3, 20 with distinct token values (doc d, index i → 100d + i). */
function stream() {
  const docs = [5, 12, 3, 20].map((n, d) => Array.from({ length: n }, (_, i) => 100 * (d + 1) + i));
  return joinDocuments(docs, EOT);
}

Deno.test("eval positions: eligible ones have enough context and a text target", () => {
  const s = stream();
  const eligible = eligiblePositions(s, 4);
  // doc 0: offsets 4; doc 1: 4..11; doc 2: none; doc 3: 4..19.
  assertEquals(eligible.map((p) => p.offset), [
    4,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
    ...Array.from({ length: 16 }, (_, i) => i + 4),
  ], "offsets");
  for (const p of eligible) {
    assert(s.tokens[p.position] !== EOT, `position ${p.position} targets the EOT`);
    assert(p.position - p.offset === s.docOffsets[p.document], `document start of ${p.position}`);
    assert(p.offset >= 4, `offset ${p.offset}`);
  }
});

Deno.test("eval positions: the same seed gives the same positions, another seed others", () => {
  const s = stream();
  const a = evalPositions(s, { samples: 10, seed: 7, minContext: 2 });
  const b = evalPositions(stream(), { samples: 10, seed: 7, minContext: 2 });
  const c = evalPositions(s, { samples: 10, seed: 8, minContext: 2 });
  assertEquals(a, b, "same seed");
  assert(JSON.stringify(a) !== JSON.stringify(c), "another seed draws other positions");
  assertEquals(
    a.map((p) => p.position),
    [...a.map((p) => p.position)].sort((x, y) => x - y),
    "sorted",
  );
  assertEquals(new Set(a.map((p) => p.position)).size, 10, "distinct");
});

Deno.test("eval positions: asking for more than there are gives all of them", () => {
  const s = stream();
  const all = evalPositions(s, { samples: 1000, seed: 1, minContext: 4 });
  assertEquals(all, eligiblePositions(s, 4), "every eligible position");
});

Deno.test("eval positions: the context is the document before p, its last `limit` tokens", () => {
  const s = stream();
  const p = eligiblePositions(s, 4).find((e) => e.document === 3 && e.offset === 10)!;
  assertEquals(positionContext(s, p, 100), Array.from({ length: 10 }, (_, i) => 400 + i), "whole");
  assertEquals(positionContext(s, p, 3), [407, 408, 409], "cut to 3");
  assertEquals(s.tokens[p.position], 410, "target");
});
