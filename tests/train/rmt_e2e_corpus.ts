// The synthetic corpora of the end-to-end RMT test (rmt_e2e_test.ts): text over a four-letter
// alphabet "abcd" whose rule is "the next letter is the successor of the last one"
// (a → b → c → d → a), small enough that the tiny model learns it in seconds on lavapipe.
//
//   pre-training (format) corpus   the rule holds 70% of the time: each letter is the
//                                  successor with probability 0.6, else uniform over the four
//                                  (which may again be the successor: 0.6 + 0.4/4 = 0.7).
//                                  Before a letter X, with probability 0.3, a reasoning segment
//                                  <think>X</think>: the "reasoning" is one token, the answer
//                                  itself, and the token after </think> is X again. NTP on it
//                                  teaches the compact format: after <think>, reason briefly,
//                                  close </think>, and predict the next letter.
//   mid-training corpus            long plain documents (no <think>) where the rule always
//                                  holds. The pre-trained model predicts its letters with
//                                  entropy above 1 nat (medium tier, some hard): it expects
//                                  <think> 30% of the time and the successor only 70% of the
//                                  rest. RMT can improve both ways: NTP learns that there is no
//                                  <think> and that the rule is exact (loss_ntp falls), and RL
//                                  sharpens the sampled reasoning and prediction towards the
//                                  successor (match_rate rises from the 0.6-0.75 that sampling
//                                  at temperature 1 gives at the start, towards 1).
//
// Every character is one token (the tokenizer is trained with the smallest vocabulary: the 256
// bytes plus <|endoftext|>, <think>, </think>; no merges), so the texts read as token ids.

import { Rng } from "../../lib/ref/random.ts";

export const ALPHABET = "abcd";

export interface LetterCorpusOptions {
  documents: number;
  /** Letters per document. */
  letters: number;
  /** Probability that a letter is drawn by the rule (else uniformly). */
  ruleProbability: number;
  /** Probability of a <think>X</think> segment before each letter X after the first. */
  thinkProbability: number;
  seed: number;
}

/** The successor of letter index i. */
function successor(i: number): number {
  return (i + 1) % ALPHABET.length;
}

/** Documents as described at the top of this file. */
export function letterCorpus(options: LetterCorpusOptions): string[] {
  const rng = new Rng(options.seed);
  const documents: string[] = [];
  for (let d = 0; d < options.documents; d++) {
    let letter = rng.int(ALPHABET.length);
    let text = ALPHABET[letter];
    for (let i = 1; i < options.letters; i++) {
      letter = rng.next() < options.ruleProbability ? successor(letter) : rng.int(ALPHABET.length);
      if (rng.next() < options.thinkProbability) text += `<think>${ALPHABET[letter]}</think>`;
      text += ALPHABET[letter];
    }
    documents.push(text);
  }
  return documents;
}

/** The pre-training corpus: the noisy rule with short reasoning segments. */
export function formatCorpus(seed: number): string[] {
  return letterCorpus({
    documents: 200,
    letters: 40,
    ruleProbability: 0.6,
    thinkProbability: 0.3,
    seed,
  });
}

/** The mid-training corpus: long plain documents where the rule always holds. */
export function midTrainingCorpus(seed: number): string[] {
  return letterCorpus({
    documents: 50,
    letters: 200,
    ruleProbability: 1,
    thinkProbability: 0,
    seed,
  });
}

/** A JSONL corpus file (one {"text": ...} per line). */
export async function writeJsonl(path: string, documents: readonly string[]): Promise<void> {
  await Deno.writeTextFile(
    path,
    documents.map((text) => JSON.stringify({ text })).join("\n") + "\n",
  );
}
