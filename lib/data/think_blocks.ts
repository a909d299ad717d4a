// Empty think blocks inserted into a pre-training token stream (config data.think_blocks), so
// that a model trained here from scratch learns the compact reasoning format before RL:
//
//   ... x_{p−1}  <think> </think>  x_p ...
//
// RMT's compact prompt is a context, <think>, the reasoning, </think>, and the prediction of
// x_p. A reasoning model (the paper's R1-Distill or Qwen3) knows how to close its reasoning and
// answer; a 0.16M-parameter model pre-trained on plain text does not, and its RL rollouts then
// score nothing (the prediction after </think> is never the next token, so every reward is 0).
// With blocks inserted at a small rate, "after </think> comes the next token of the text" is
// part of pre-training, as format SFT is for chat models; what to put between the tags is left
// to RL. The positions are drawn with a seeded RNG (the same stream for the same seed); no
// block is put at a document start or before an end-of-text.

import { Rng } from "../ref/random.ts";
import { stepSeed } from "./batches.ts";

export interface ThinkBlockOptions {
  /** Probability that a position gets a block before it, in [0, 1). */
  rate: number;
  seed: number;
  thinkStart: number;
  thinkEnd: number;
  endOfText: number;
}

/** The stream with empty think blocks inserted (a new array; `tokens` unchanged). */
export function insertThinkBlocks(
  tokens: ArrayLike<number>,
  o: ThinkBlockOptions,
): Uint32Array<ArrayBuffer> {
  if (!(o.rate >= 0 && o.rate < 1)) {
    throw new Error(`insertThinkBlocks: rate must be in [0, 1), got ${o.rate}`);
  }
  const rng = new Rng(stepSeed(o.seed, 0x7468696e)); // "thin": its own stream
  const out: number[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    const documentStart = i === 0 || tokens[i - 1] === o.endOfText;
    if (!documentStart && token !== o.endOfText && rng.next() < o.rate) {
      out.push(o.thinkStart, o.thinkEnd);
    }
    out.push(token);
  }
  return Uint32Array.from(out);
}
