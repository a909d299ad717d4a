// Empty think blocks in a pre-training stream: only between tokens of one document, at about
// the asked rate, the same for the same seed, and the text otherwise unchanged.

import { insertThinkBlocks } from "../../lib/data/think_blocks.ts";
import { resolveConfigText } from "../../lib/train/config.ts";
import { UserError } from "../../lib/gpu/errors.ts";
import { assert, assertEquals, Rng } from "../helpers.ts";

const THINK = 1000;
const END_THINK = 1001;
const EOT = 0;

/** Documents of random ids in [1, 50) joined by EOT: [len0] EOT [len1] EOT ... */
function stream(lengths: number[], seed: number): Uint32Array {
  const rng = new Rng(seed);
  const out: number[] = [];
  lengths.forEach((n, d) => {
    for (let i = 0; i < n; i++) out.push(1 + rng.int(49));
    if (d < lengths.length - 1) out.push(EOT);
  });
  return Uint32Array.from(out);
}

const options = (rate: number, seed = 7) => ({
  rate,
  seed,
  thinkStart: THINK,
  thinkEnd: END_THINK,
  endOfText: EOT,
});

Deno.test("think blocks: rate 0 changes nothing; blocks sit inside documents, pairs only", () => {
  const tokens = stream([40, 1, 300, 25, 2], 3);
  assertEquals([...insertThinkBlocks(tokens, options(0))], [...tokens], "rate 0");
  const out = insertThinkBlocks(tokens, options(0.3));
  const kept = out.filter((t) => t !== THINK && t !== END_THINK);
  assertEquals([...kept], [...tokens], "removing the blocks gives the stream back");
  for (let i = 0; i < out.length; i++) {
    if (out[i] !== THINK) continue;
    assertEquals(out[i + 1], END_THINK, `an empty block at ${i}`);
    assert(
      i > 0 && out[i - 1] !== EOT && out[i - 1] !== END_THINK,
      `not at a document start (${i})`,
    );
    assert(out[i + 2] !== EOT && out[i + 2] !== THINK, `followed by a text token (${i})`);
  }
});

Deno.test("think blocks: about the asked rate, and the same positions for the same seed", () => {
  const tokens = stream([5000, 5000], 4);
  const eligible = tokens.length - 3; // the two document starts and the EOT
  for (const rate of [0.05, 0.2]) {
    const blocks = (insertThinkBlocks(tokens, options(rate)).length - tokens.length) / 2;
    const expected = rate * eligible;
    assert(Math.abs(blocks - expected) < 5 * Math.sqrt(expected), `rate ${rate}: ${blocks} blocks`);
  }
  const a = insertThinkBlocks(tokens, options(0.1, 1));
  assertEquals([...insertThinkBlocks(tokens, options(0.1, 1))], [...a], "same seed, same stream");
  const b = insertThinkBlocks(tokens, options(0.1, 2));
  assert(a.length !== b.length || a.some((t, i) => t !== b[i]), "another seed, other positions");
});

Deno.test("think blocks: data.think_blocks is refused for methods other than ntp", async () => {
  const yaml = (method: string) =>
    `method: ${method}\nmodel: {path: m}\ndata: {train: t.jsonl, think_blocks: 0.1}\n`;
  await resolveConfigText(yaml("ntp"), "ok.yaml");
  let message = "";
  try {
    await resolveConfigText(yaml("rmt"), "bad.yaml");
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    message = e.message;
  }
  assert(message.includes("data.think_blocks") && message.includes("only method ntp"), message);
});
