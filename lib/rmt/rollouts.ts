// The RL problems of a step and their rollouts: a prompt for each RL position, G sampled
// continuations of it, read back (parsed), rewarded, and turned into GRPO advantages
// (spec: "Prompt formats", "Definitions → Match reward / Length reward", "RL algorithm").
//
//   problem      position p of a corpus window: context x_<p (the last `contextLimit` tokens
//                of it), target x_p, and the true continuation x_p.. for the prefix reward
//   prompt       compact: context ids + <think>;  paper: RPT's template around the context text
//   generation   G rollouts per prompt at rl.temperature, at most cap + 1 + answer tokens each
//                (cap: the reasoning cap of budget.ts, 1: </think>, answer: 1 token in compact
//                format, rl.max_answer_tokens in paper format); stop on end-of-text
//   parse        compact: the token after the first </think> is the prediction; paper: the last
//                \boxed{...} after </think> (prompts.ts)
//   reward       rolloutReward(match, parseable, ℓ, B_t) with match = exact (token id) or prefix
//                (bytes) (rewards.ts); GRPO advantages per group of G (grpo.ts)
//
// Choices made here (documented, not config keys):
// - The reasoning cap is hard: a rollout whose reasoning ℓ exceeds the cap (possible: the
//   generation allows cap + 1 + answer tokens) counts as unparseable (r_pos = 0); its length
//   reward is what rewards.ts gives ℓ (0 beyond 2·B_t).
// - The scored response (what the policy loss trains) is the rollout up to and including the
//   prediction in compact format: the tokens sampled after it do not affect the reward, so
//   training on them would only add noise. An unparseable rollout is scored whole. Paper format:
//   the whole rollout (generation stops at end-of-text).
// - Exact match in paper format: the \boxed{} text must be the true next token's text (the
//   prefix rule with the single boundary |bytes(x_p)|, the same leading-space handling).
// - Randomness: rollout g of problem i at step t samples with the Philox row id t·R + i·G + g
//   (R = rows per step, fixed by the config: batch_size · positions_per_sequence · G) and
//   generate's rngStep 0, so the uniform of token j is keyed by (seed, j, t·R + i·G + g): unique
//   per step, problem, rollout and token, and independent of how the prompts are split into
//   generation calls. (rngStep = t would not do: generate keys token j by rngStep·maxNewTokens
//   + j, and maxNewTokens shrinks with the budget, so consecutive steps would overlap.)

import { UserError } from "../gpu/errors.ts";
import { bytesToUnicode } from "../model/bpe_train.ts";
import { END_OF_TEXT, type TextTokenizer, THINK_END } from "../model/tokenizer.ts";
import type { SelectedPosition } from "./curriculum.ts";
import { batchAdvantages, type StdKind } from "./grpo.ts";
import {
  buildCompactPrompt,
  type ChatTemplater,
  paperPromptText,
  type PaperTemplate,
  parseCompactRollout,
  type ParsedRollout,
  parsePaperRollout,
} from "./prompts.ts";
import {
  type DecodeBytes,
  exactMatchReward,
  type LeadingSpace,
  prefixMatchReward,
  type RewardSettings,
  type RolloutReward,
  rolloutReward,
} from "./rewards.ts";
import type { Tier } from "./tiers.ts";

// ---- generation, as the rollouts need it --------------------------------------------------

/** What a generation call is asked (lib/model/generate.ts GenerateOptions, the part used). */
export interface GeneratorOptions {
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  stopTokens: readonly number[];
  rowIds: readonly number[];
  rngStep: number;
}

/** What it returns: per prompt the generated ids and log π_old (log softmax(logits/T)) of each. */
export interface GeneratorResult {
  tokens: number[][];
  logprobs: number[][];
  /** Host readbacks the call made (for the metrics; 0 when unknown). */
  readbacks?: number;
}

/** lib/model/generate.ts bound to a context and model, or a stub in tests. */
export type Generator = (
  prompts: readonly (readonly number[])[],
  options: GeneratorOptions,
) => Promise<GeneratorResult>;

// ---- prompt formats -------------------------------------------------------------------------

/** How prompts are built and rollouts read back. */
export type RolloutFormat =
  | {
    kind: "compact";
    thinkStart: number;
    thinkEnd: number;
    endOfText: number;
    /** Bytes of token ids (prefix reward only). */
    decodeBytes?: DecodeBytes;
  }
  | {
    kind: "paper";
    thinkEnd: number;
    endOfText: number;
    /** Generation stops on these (end-of-text, the chat template's end-of-turn, ...). */
    stopTokens: readonly number[];
    encode: (text: string) => number[];
    decode: (ids: readonly number[]) => string;
    decodeBytes: DecodeBytes;
    /** The chat template, or null for the plain template. */
    chat: ChatTemplater | null;
    template: PaperTemplate;
    /** Tokens allowed after </think> (rl.max_answer_tokens). */
    maxAnswerTokens: number;
    /** Whether the prompt carries the budget sentence (a budget exists). */
    budgetInPrompt: boolean;
  };

/**
 * Text of generated ids. A model's vocabulary is often padded past its tokenizer's (rmt init pads
 * to a multiple of 64; Qwen's is padded too) and sampling may pick a padding id: it has no text
 * and is dropped, where the tokenizer's decode would refuse it.
 */
export function decodeGenerated(tokenizer: TextTokenizer, ids: readonly number[]): string {
  return tokenizer.decode(ids.filter((id) => id < tokenizer.vocabSize));
}

/**
 * The ids a generation stops at: eos, <|endoftext|>, <|im_end|> (those the vocabulary has);
 * refused when it has none. why: what needs them (for the error).
 */
export function stopTokenIds(tokenizer: TextTokenizer, why: string): number[] {
  const stops = [
    tokenizer.eosTokenId,
    tokenizer.tokenId(END_OF_TEXT),
    tokenizer.tokenId("<|im_end|>"),
  ].filter((id): id is number => id !== null && id !== undefined);
  if (stops.length === 0) {
    throw new UserError(`${tokenizer.source}: no end-of-text token to stop generation (${why})`);
  }
  return [...new Set(stops)];
}

/** The paper format of a tokenizer: needs </think> and an end-of-text id to stop at. */
export function paperFormat(
  tokenizer: TextTokenizer,
  settings: {
    chatTemplate: boolean;
    instruction: string;
    budgetSentence: string;
    maxAnswerTokens: number;
    budgetInPrompt: boolean;
  },
): Extract<RolloutFormat, { kind: "paper" }> {
  const why = "the paper prompt format";
  const thinkEnd = tokenizer.requireToken(THINK_END, why);
  const stops = stopTokenIds(tokenizer, why);
  return {
    kind: "paper",
    thinkEnd,
    endOfText: stops[0],
    stopTokens: stops,
    encode: (text) => tokenizer.encode(text),
    decode: (ids) => decodeGenerated(tokenizer, ids),
    decodeBytes: byteDecoder(tokenizer),
    chat: settings.chatTemplate && tokenizer.hasChatTemplate ? tokenizer : null,
    template: { instruction: settings.instruction, budgetSentence: settings.budgetSentence },
    maxAnswerTokens: settings.maxAnswerTokens,
    budgetInPrompt: settings.budgetInPrompt,
  };
}

/** Tokens generated after the reasoning: </think> and the answer. */
export function answerTokens(format: RolloutFormat): number {
  return 1 + (format.kind === "compact" ? 1 : format.maxAnswerTokens);
}

/** Tokens of the prompt besides the context (compact: <think>; paper: the template). */
export function promptOverhead(format: RolloutFormat, budget: number | null): number {
  if (format.kind === "compact") return 1;
  return format.encode(paperPrompt(format, "", budget)).length;
}

function paperPrompt(
  format: Extract<RolloutFormat, { kind: "paper" }>,
  contextText: string,
  budget: number | null,
): string {
  return paperPromptText(
    contextText,
    format.budgetInPrompt ? budget : null,
    format.chat,
    format.template,
  );
}

/**
 * How many context tokens fit: the prompt plus the generation, less its last token (never fed
 * back), must fit max_context positions: context + overhead + maxNewTokens − 1 ≤ maxContext.
 */
export function contextLimit(maxContext: number, overhead: number, maxNewTokens: number): number {
  return maxContext - overhead - maxNewTokens + 1;
}

// ---- problems -----------------------------------------------------------------------------

/** One RL position turned into a prompt. */
export interface RlProblem {
  /** The corpus sequence (index in the step's batch) and the position p in it. */
  sequence: number;
  position: number;
  /** The sampling tier it was drawn from (null: untiered). */
  tier: Tier | null;
  /** The prompt ids. */
  prompt: number[];
  /** Context tokens the prompt holds (after truncation). */
  contextLength: number;
  /** x_p. */
  target: number;
  /** x_p .. x_{p+K−1} (within the window): the prefix reward's true continuation. */
  continuation: number[];
}

export interface ProblemSettings {
  /** At most this many context tokens (contextLimit). */
  contextLimit: number;
  /** K of the prefix reward (rl.prefix_max_tokens). */
  prefixMaxTokens: number;
  /** B_t for the paper prompt's budget sentence (null: none). */
  budget: number | null;
}

/**
 * The problems of one step. windows[b]: the tokens x_0..x_N of corpus sequence b; positions[b]:
 * its RL positions (1 ≤ p ≤ N).
 */
export function buildProblems(
  windows: readonly ArrayLike<number>[],
  positions: readonly (readonly SelectedPosition[])[],
  format: RolloutFormat,
  settings: ProblemSettings,
): RlProblem[] {
  if (!(settings.contextLimit >= 1)) {
    throw new UserError(
      `RL prompts: no room for context (${settings.contextLimit} tokens): raise ` +
        "model.max_context or lower the reasoning cap (budget.initial, rl.max_reasoning_tokens)",
    );
  }
  const problems: RlProblem[] = [];
  windows.forEach((window, sequence) => {
    for (const { position: p, tier } of positions[sequence] ?? []) {
      if (!Number.isInteger(p) || p < 1 || p >= window.length) {
        throw new Error(`buildProblems: position ${p} of sequence ${sequence} is not in [1, N]`);
      }
      const start = Math.max(0, p - settings.contextLimit);
      const context = Array.from(Array.prototype.slice.call(window, start, p) as number[]);
      const end = Math.min(window.length, p + settings.prefixMaxTokens);
      const continuation = Array.prototype.slice.call(window, p, end) as number[];
      let prompt: number[];
      let from = 0; // context tokens dropped on the left
      if (format.kind === "compact") {
        prompt = buildCompactPrompt(context, format.thinkStart);
      } else {
        // The template's tokens are fixed; the context's text may encode to a few more
        // tokens than it came from (a cut character): drop context from the left until it fits.
        const room = settings.contextLimit + promptOverhead(format, settings.budget);
        for (;;) {
          const text = format.decode(context.slice(from));
          prompt = format.encode(paperPrompt(format, text, settings.budget));
          if (prompt.length <= room || from >= context.length) break;
          from = Math.min(context.length, from + prompt.length - room);
        }
      }
      problems.push({
        sequence,
        position: p,
        tier,
        prompt,
        contextLength: context.length - from,
        target: window[p],
        continuation,
      });
    }
  });
  return problems;
}

// ---- rollouts -----------------------------------------------------------------------------

export interface RolloutSettings {
  /** G. */
  groupSize: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  /** The optimizer step (it places the rollouts' Philox row ids). */
  step: number;
  /** R: rollouts per step at most (Philox row ids t·R + i·G + g); default problems · G. */
  rowsPerStep?: number;
  /** The reasoning cap (budget.ts StepBudget.cap). */
  cap: number;
  /** B_t, or null without a budget (no length reward). */
  budget: number | null;
  /** The match reward. */
  reward: "exact" | "prefix";
  leadingSpace: LeadingSpace;
  rewards: RewardSettings;
  /** δ and the std kind of the advantages. */
  delta: number;
  std: StdKind;
  /** Prompts per generation call at most (× G rows); default all at once. */
  problemsPerCall?: number;
}

/** One sampled continuation, read back and rewarded. */
export interface Rollout {
  /** Index of its problem. */
  problem: number;
  /** Every generated id (up to and including a stop id). */
  tokens: number[];
  /** log π_old of each generated id. */
  logprobs: number[];
  /** How many of `tokens` the policy loss scores (see the top of this file). */
  scored: number;
  parsed: ParsedRollout;
  reward: RolloutReward;
  /** A_i. */
  advantage: number;
}

export interface RolloutStats {
  /** Mean total reward r. */
  rewardMean: number;
  /** Fraction of rollouts with r_pos > 0 (the prediction matched). */
  matchRate: number;
  /** Fraction of rollouts with a parseable answer within the cap. */
  parseRate: number;
  /** Mean reasoning length ℓ. */
  reasoningLength: number;
  /** Tokens generated in total. */
  generatedTokens: number;
  /** Tokens the policy loss scores in total. */
  scoredTokens: number;
}

export interface RolloutBatch {
  rollouts: Rollout[];
  groups: number;
  zeroAdvantageGroups: number;
  stats: RolloutStats;
  /** Generation calls and the readbacks they reported. */
  calls: number;
  readbacks: number;
}

/** Generation length: the reasoning cap, </think>, and the answer. */
export function maxNewTokens(cap: number, format: RolloutFormat): number {
  return cap + answerTokens(format);
}

/** r_pos of a parsed rollout (0 when unparseable). */
export function matchReward(
  parsed: ParsedRollout,
  problem: RlProblem,
  format: RolloutFormat,
  reward: "exact" | "prefix",
  leadingSpace: LeadingSpace,
): number {
  if (!parsed.parseable) return 0;
  if (format.kind === "compact") {
    if (reward === "exact") return exactMatchReward(parsed.predictionId, problem.target);
    if (!format.decodeBytes) throw new Error("matchReward: the prefix reward needs decodeBytes");
    return prefixMatchReward(
      format.decodeBytes([parsed.predictionId!]),
      problem.continuation,
      format.decodeBytes,
      leadingSpace,
    );
  }
  const answer = new TextEncoder().encode(parsed.answerText ?? "");
  const trueIds = reward === "exact" ? [problem.target] : problem.continuation;
  return prefixMatchReward(answer, trueIds, format.decodeBytes, leadingSpace);
}

/** Parses one generated rollout and applies the hard reasoning cap. */
export function parseRollout(tokens: readonly number[], format: RolloutFormat, cap: number) {
  const parsed = format.kind === "compact"
    ? parseCompactRollout(tokens, format.thinkEnd, format.endOfText)
    : parsePaperRollout(tokens, format.thinkEnd, format.decode, format.endOfText);
  const withinCap = parsed.reasoningLength <= cap;
  const scored = format.kind === "compact" && parsed.parseable
    ? parsed.reasoningLength + 2 // reasoning, </think>, the prediction
    : tokens.length;
  return { parsed: withinCap ? parsed : { ...parsed, parseable: false }, scored };
}

/** One generated row of a group: its prompt's index, the ids and their log π_old. */
export interface GroupRow {
  problem: number;
  tokens: number[];
  logprobs: number[];
}

/** How generateGroups samples: the generation settings and how rows get their Philox ids. */
export interface GroupSampling {
  /** G: rows per prompt. */
  groupSize: number;
  /** Prompts per generation call (default all). */
  problemsPerCall?: number;
  /** R: rows per step at most (default prompts · G). */
  rowsPerStep?: number;
  /** The optimizer step t. */
  step: number;
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  stopTokens: readonly number[];
}

/**
 * G rows per prompt (the corpus rollouts' and the math responses' groups), generated in calls
 * of `problemsPerCall` prompts; row g of prompt i samples with Philox row t·R + i·G + g (see the
 * top of this file), so the rows do not depend on how the prompts are split into calls.
 * Returns the rows prompt-major, and the calls and readbacks made.
 */
export async function generateGroups(
  generator: Generator,
  prompts: readonly (readonly number[])[],
  s: GroupSampling,
): Promise<{ rows: GroupRow[]; calls: number; readbacks: number }> {
  const G = s.groupSize;
  const perCall = Math.max(1, s.problemsPerCall ?? prompts.length);
  const rowsPerStep = s.rowsPerStep ?? prompts.length * G;
  if (prompts.length * G > rowsPerStep || (s.step + 1) * rowsPerStep > 2 ** 32) {
    throw new Error(
      `generateGroups: ${prompts.length} × ${G} rows at step ${s.step} do not fit the ` +
        `32-bit Philox row ids (R = ${rowsPerStep} per step)`,
    );
  }
  const rows: GroupRow[] = [];
  let calls = 0;
  let readbacks = 0;
  for (let first = 0; first < prompts.length; first += perCall) {
    const count = Math.min(perCall, prompts.length - first);
    const callPrompts: (readonly number[])[] = [];
    const rowIds: number[] = [];
    for (let k = 0; k < count; k++) {
      for (let g = 0; g < G; g++) {
        callPrompts.push(prompts[first + k]);
        rowIds.push(s.step * rowsPerStep + (first + k) * G + g);
      }
    }
    const result = await generator(callPrompts, {
      maxNewTokens: s.maxNewTokens,
      temperature: s.temperature,
      topK: s.topK,
      topP: s.topP,
      seed: s.seed,
      stopTokens: s.stopTokens,
      rowIds,
      rngStep: 0,
    });
    calls++;
    readbacks += result.readbacks ?? 0;
    if (
      result.tokens.length !== callPrompts.length || result.logprobs.length !== callPrompts.length
    ) {
      throw new Error(
        `generateGroups: the generator returned ${result.tokens.length} rows for ` +
          `${callPrompts.length} prompts`,
      );
    }
    result.tokens.forEach((tokens, row) => {
      const logprobs = result.logprobs[row];
      if (logprobs.length !== tokens.length) {
        throw new Error(
          `generateGroups: row ${row}: ${tokens.length} ids, ${logprobs.length} log-probs`,
        );
      }
      rows.push({ problem: first + Math.floor(row / G), tokens, logprobs });
    });
  }
  return { rows, calls, readbacks };
}

/** Generates, parses and rewards G rollouts per problem; advantages per group. */
export async function runRollouts(
  generator: Generator,
  problems: readonly RlProblem[],
  format: RolloutFormat,
  s: RolloutSettings,
): Promise<RolloutBatch> {
  const G = s.groupSize;
  const stopTokens = format.kind === "compact" ? [format.endOfText] : [...format.stopTokens];
  const generated = await generateGroups(generator, problems.map((p) => p.prompt), {
    groupSize: G,
    problemsPerCall: s.problemsPerCall,
    rowsPerStep: s.rowsPerStep,
    step: s.step,
    maxNewTokens: maxNewTokens(s.cap, format),
    temperature: s.temperature,
    topK: s.topK,
    topP: s.topP,
    seed: s.seed,
    stopTokens,
  });
  const { calls, readbacks } = generated;
  const rollouts: Rollout[] = generated.rows.map(({ problem: problemIndex, tokens, logprobs }) => {
    const problem = problems[problemIndex];
    const { parsed, scored } = parseRollout(tokens, format, s.cap);
    const match = matchReward(parsed, problem, format, s.reward, s.leadingSpace);
    const reward = rolloutReward(
      match,
      parsed.parseable,
      parsed.reasoningLength,
      s.budget,
      s.rewards,
    );
    return { problem: problemIndex, tokens, logprobs, scored, parsed, reward, advantage: 0 };
  });
  const { advantages, zeroAdvantageGroups, groups } = problems.length === 0
    ? { advantages: new Float64Array(0), zeroAdvantageGroups: 0, groups: 0 }
    : batchAdvantages(rollouts.map((r) => r.reward.reward), G, s.delta, s.std);
  rollouts.forEach((r, i) => r.advantage = advantages[i]);
  return { rollouts, groups, zeroAdvantageGroups, stats: rolloutStats(rollouts), calls, readbacks };
}

/** Means over rollouts (0 for none). */
export function rolloutStats(rollouts: readonly Rollout[]): RolloutStats {
  const n = rollouts.length;
  const mean = (f: (r: Rollout) => number) =>
    n === 0 ? 0 : rollouts.reduce((a, r) => a + f(r), 0) / n;
  return {
    rewardMean: mean((r) => r.reward.reward),
    matchRate: mean((r) => (r.reward.match > 0 ? 1 : 0)),
    parseRate: mean((r) => (r.parsed.parseable ? 1 : 0)),
    reasoningLength: mean((r) => r.parsed.reasoningLength),
    generatedTokens: rollouts.reduce((a, r) => a + r.tokens.length, 0),
    scoredTokens: rollouts.reduce((a, r) => a + r.scored, 0),
  };
}

// ---- tokenizer bytes ------------------------------------------------------------------------

/** What byteDecoder needs from a tokenizer (TextTokenizer has it). */
export interface TokenStrings {
  tokenOf(id: number): string | undefined;
  decode(ids: readonly number[]): string;
}

/**
 * The bytes of token ids, for the prefix reward. A byte-level BPE vocabulary (GPT-2, Qwen, the
 * models rmt init makes) spells each byte as one character of GPT-2's bytes_to_unicode table,
 * so a token's exact bytes are its characters mapped back, even when it holds half of a UTF-8
 * character. Other vocabularies (a character outside the table): UTF-8 of the decoded text.
 * An id the tokenizer does not have (vocabulary padding) has no bytes.
 */
export function byteDecoder(tokenizer: TokenStrings): DecodeBytes {
  const byteOf = new Map<string, number>();
  bytesToUnicode().forEach((char, byte) => byteOf.set(char, byte));
  const encoder = new TextEncoder();
  const cache = new Map<number, Uint8Array>();
  const bytesOf = (id: number): Uint8Array => {
    let bytes = cache.get(id);
    if (bytes) return bytes;
    const piece = tokenizer.tokenOf(id);
    const chars = piece === undefined ? [] : [...piece];
    if (piece === undefined) {
      bytes = new Uint8Array(0); // a padding id past the tokenizer's vocabulary: no text
    } else if (chars.every((c) => byteOf.has(c))) {
      bytes = Uint8Array.from(chars, (c) => byteOf.get(c)!);
    } else {
      bytes = encoder.encode(tokenizer.decode([id]));
    }
    cache.set(id, bytes);
    return bytes;
  };
  return (ids) => {
    const parts = ids.map(bytesOf);
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };
}
