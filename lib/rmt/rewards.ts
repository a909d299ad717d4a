// Rewards of one rollout (spec: "Definitions → Length reward / Match reward / Total reward").
//
//   match, RMT:   "r_pos = 1[prediction == x_p]"                      (token ids)
//   match, RPT:   "the predicted bytes equal the first l bytes of the true continuation, where
//                  l is one of the cumulative byte lengths of the true tokens"
//   length:       "r_len(ℓ) = r_max · ℓ / B_t for ℓ ≤ B_t; r_max · (2B_t − ℓ) / B_t for
//                  B_t < ℓ ≤ 2B_t; 0 beyond"
//   total:        "r = (1 − w) · r_pos + w · r_len";  "an unparseable / missing answer gets
//                  r_pos = 0"
//
// Choices the spec leaves open (config keys in brackets):
// - Without a budget (RPT's fixed mode, budget.ts) there is no length reward: r = r_pos.
// - An unparseable rollout still gets its length reward, as the spec's wording reads
//   (only r_pos is zeroed) [rl.length_reward_requires_answer: false; true zeroes r_len too].
// - Prefix match: a boundary l = 0 (a true token that decodes to no bytes) never matches, so an
//   empty prediction gets 0. Boundaries come from decodeBytes of each prefix of the true
//   tokens, so the rule does not depend on how a tokenizer splits multi-byte characters.
// - Leading space [rl.prefix_leading_space: optional | exact]: a paper-format answer inside
//   \boxed{...} rarely reproduces the space that starts most word tokens (" cat"). With
//   `optional`, when the true continuation starts with a space and the prediction does not,
//   both the continuation and the boundaries are taken without that one space.

/** UTF-8 bytes of the concatenated text of token ids (a tokenizer's byte-level decode). */
export type DecodeBytes = (ids: readonly number[]) => Uint8Array;

/** RMT's exact match: 1 when the predicted token id is the true next token, else 0. */
export function exactMatchReward(predicted: number | null, target: number): number {
  return predicted !== null && predicted === target ? 1 : 0;
}

export const LEADING_SPACE = ["optional", "exact"] as const;
export type LeadingSpace = typeof LEADING_SPACE[number];

const SPACE = 0x20;

function bytesEqual(a: Uint8Array, b: Uint8Array, length: number): boolean {
  if (a.length < length || b.length < length) return false;
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The byte lengths l_1 < l_2 < ... at which a prediction may end: l_k = |bytes(x_p..x_{p+k−1})|
 * for k = 1..K (trueIds = x_p..x_{p+K−1}). Zero lengths are dropped.
 */
export function prefixBoundaries(trueIds: readonly number[], decodeBytes: DecodeBytes): number[] {
  const lengths: number[] = [];
  for (let k = 1; k <= trueIds.length; k++) {
    const l = decodeBytes(trueIds.slice(0, k)).length;
    if (l > 0 && (lengths.length === 0 || l > lengths[lengths.length - 1])) lengths.push(l);
  }
  return lengths;
}

/**
 * RPT's byte-prefix reward: 1 when `predicted` equals the first l bytes of the true
 * continuation for one of the boundaries l (prefixBoundaries), else 0; null (unparseable) → 0.
 * trueIds: the true next tokens x_p.. (rl.prefix_max_tokens of them, fewer at the end of a
 * sequence).
 */
export function prefixMatchReward(
  predicted: Uint8Array | null,
  trueIds: readonly number[],
  decodeBytes: DecodeBytes,
  leadingSpace: LeadingSpace = "optional",
): number {
  if (predicted === null || predicted.length === 0 || trueIds.length === 0) return 0;
  let continuation = decodeBytes(trueIds);
  let boundaries = prefixBoundaries(trueIds, decodeBytes);
  if (leadingSpace === "optional" && continuation[0] === SPACE && predicted[0] !== SPACE) {
    continuation = continuation.subarray(1);
    boundaries = boundaries.map((l) => l - 1).filter((l) => l > 0);
  }
  for (const l of boundaries) {
    if (predicted.length === l && bytesEqual(predicted, continuation, l)) return 1;
  }
  return 0;
}

/**
 * The triangular length reward: r_max·ℓ/B for ℓ ≤ B, r_max·(2B − ℓ)/B for B < ℓ ≤ 2B, 0 beyond.
 * ℓ: reasoning tokens generated; B = B_t ≥ 1.
 */
export function lengthReward(reasoningLength: number, budget: number, rMax: number): number {
  if (!(budget > 0)) throw new Error(`lengthReward: budget must be > 0, got ${budget}`);
  const l = reasoningLength;
  if (l < 0) throw new Error(`lengthReward: reasoning length must be ≥ 0, got ${l}`);
  if (l <= budget) return (rMax * l) / budget;
  if (l <= 2 * budget) return (rMax * (2 * budget - l)) / budget;
  return 0;
}

/** "r = (1 − w) · r_pos + w · r_len". */
export function combinedReward(matchReward: number, lenReward: number, weight: number): number {
  return (1 - weight) * matchReward + weight * lenReward;
}

export interface RewardSettings {
  /** w, the length reward's share. */
  lengthWeight: number;
  /** r_max. */
  rMax: number;
  /** Zero the length reward of an unparseable rollout too (spec wording: false). */
  lengthRewardRequiresAnswer: boolean;
}

export interface RolloutReward {
  /** r, what GRPO normalises. */
  reward: number;
  /** r_pos (0 when unparseable). */
  match: number;
  /** r_len (0 without a budget). */
  length: number;
}

/**
 * The total reward of one rollout. match: r_pos from exactMatchReward / prefixMatchReward (0
 * for an unparseable rollout); parseable: whether an answer was found; reasoningLength: ℓ;
 * budget: B_t, or null without a budget (then r = r_pos).
 */
export function rolloutReward(
  match: number,
  parseable: boolean,
  reasoningLength: number,
  budget: number | null,
  s: RewardSettings,
): RolloutReward {
  const rPos = parseable ? match : 0;
  if (budget === null) return { reward: rPos, match: rPos, length: 0 };
  const rLen = !parseable && s.lengthRewardRequiresAnswer
    ? 0
    : lengthReward(reasoningLength, budget, s.rMax);
  return { reward: combinedReward(rPos, rLen, s.lengthWeight), match: rPos, length: rLen };
}
