// `rmt score`: how a model sees a text, token by token (lib/model/score.ts): the log-prob it
// gives each actual token and the top-k entropy of its prediction there, then the mean NLL
// and the perplexity.

import { parseArgs } from "node:util";
import { UserError } from "../gpu/errors.ts";
import { DEFAULT_TOP_K, MAX_TOP_K } from "../ops/cross_entropy.ts";
import { scoreLimits, scoreTokens } from "../model/score.ts";
import { integerOption, loadModel } from "./generate.ts";

export const scoreHelp = `rmt score --model DIR (--text STR | --text-file FILE) [options]

Scores a text with the model of a model folder. For every token p: its id, its text,
the log-prob the model gives it after the tokens before it (log π(x_p | x_<p)) and the
top-k entropy of that prediction (the RMT difficulty measure, nats); the first token has
no context and no score. Ends with the mean negative log-likelihood and the perplexity.
Texts longer than the model's context are scored in consecutive windows of it.

Options:
  --model DIR        the model folder (required)
  --text STR         the text to score (this or --text-file is required)
  --text-file FILE   or read it from a file (this or --text is required)
  --k K              k of the top-k entropy, 1..${MAX_TOP_K} (default: ${DEFAULT_TOP_K})
  --window N         longest context in tokens (default: the model's
                     max_position_embeddings)
  --json             one JSON object instead of a table (default: off)
  --help             this help`;

/** A number for the table: fixed decimals, "—" where there is none. */
const cell = (x: number, width: number) =>
  (Number.isFinite(x) ? x.toFixed(4) : "—").padStart(width);

/** The mean NLL (nats) of the scored positions and exp of it; null without any. */
export function perplexityOf(logprobs: ArrayLike<number>): {
  count: number;
  meanNll: number | null;
  perplexity: number | null;
} {
  let sum = 0;
  let count = 0;
  for (let p = 0; p < logprobs.length; p++) {
    if (Number.isNaN(logprobs[p])) continue;
    sum -= logprobs[p];
    count++;
  }
  if (count === 0) return { count, meanNll: null, perplexity: null };
  return { count, meanNll: sum / count, perplexity: Math.exp(sum / count) };
}

export async function scoreCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: "string" },
      text: { type: "string" },
      "text-file": { type: "string" },
      k: { type: "string", default: String(DEFAULT_TOP_K) },
      window: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    console.log(scoreHelp);
    return 0;
  }
  if ((values.text === undefined) === (values["text-file"] === undefined)) {
    throw new UserError("give exactly one of --text STR and --text-file FILE");
  }
  const k = integerOption("--k", values.k, 1, MAX_TOP_K);
  const window = values.window === undefined
    ? undefined
    : integerOption("--window", values.window, 1, 1 << 30);
  let text = values.text;
  if (text === undefined) {
    const file = values["text-file"]!;
    try {
      text = await Deno.readTextFile(file);
    } catch (e) {
      throw new UserError(`--text-file ${file}: cannot read it: ${(e as Error).message}`);
    }
  }

  const { ctx, folder, model } = await loadModel(values.model);
  const ids = folder.tokenizer.encode(text);
  if (ids.length === 0) throw new UserError("the text is empty: nothing to score");
  const scores = await scoreTokens(ctx, model, ids, { k, window });
  const summary = perplexityOf(scores.logprobs);
  const texts = ids.map((id) => folder.tokenizer.decode([id]));
  const value = (x: number) => (Number.isFinite(x) ? x : null);

  if (values.json) {
    console.log(JSON.stringify({
      model: folder.dir,
      k,
      window: scoreLimits(ctx, model.config, { window }).window,
      tokens: ids.map((id, p) => ({
        position: p,
        id,
        text: texts[p],
        logprob: value(scores.logprobs[p]),
        entropy: value(scores.entropies[p]),
      })),
      ...summary,
    }));
    return 0;
  }
  const shown = texts.map((t) => JSON.stringify(t));
  const textWidth = Math.min(24, Math.max(5, ...shown.map((t) => t.length)));
  console.log(
    `${"pos".padStart(6)} ${"id".padStart(7)}  ${"token".padEnd(textWidth)} ` +
      `${"logprob".padStart(10)} ${`H(top-${k})`.padStart(10)}`,
  );
  ids.forEach((id, p) => {
    const t = shown[p].length > textWidth ? shown[p].slice(0, textWidth - 1) + "…" : shown[p];
    console.log(
      `${String(p).padStart(6)} ${String(id).padStart(7)}  ${t.padEnd(textWidth)} ` +
        `${cell(scores.logprobs[p], 10)} ${cell(scores.entropies[p], 10)}`,
    );
  });
  console.log(
    summary.meanNll === null
      ? "one token: nothing to predict (no mean NLL or perplexity)"
      : `mean NLL ${summary.meanNll.toFixed(4)} nats over ${summary.count} predicted tokens, ` +
        `perplexity ${summary.perplexity!.toFixed(3)}`,
  );
  return 0;
}
