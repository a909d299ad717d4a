// `rmt generate`: continues a prompt with a model folder's model (lib/model/generate.ts),
// stopping at <|endoftext|> (and the tokenizer's eos token). Also the helpers the model
// commands share: loading a model folder onto the GPU and parsing numeric options.

import { parseArgs } from "node:util";
import { gpu, type GpuContext } from "../gpu/context.ts";
import { UserError } from "../gpu/errors.ts";
import { generate } from "../model/generate.ts";
import { type GpuModel, loadGpuWeights } from "../model/gpu_weights.ts";
import { type ModelFolder, readModelFolder } from "../model/model_folder.ts";
import { END_OF_TEXT } from "../model/tokenizer.ts";

export const generateHelp = `rmt generate --model DIR --prompt STR [options]

Continues the prompt with the model of a model folder: temperature, top-k and top-p
sampling from a seeded counter-based RNG (the same seed gives the same text), with a KV
cache. Generation stops at <|endoftext|> (or the tokenizer's eos token). Prints each
continuation; the token count and speed go to stderr.

Options:
  --model DIR         the model folder (required)
  --prompt STR        the text to continue (required; "" starts from <|endoftext|>)
  --max-tokens N      tokens to generate at most, 1..1000000 (default: 64)
  --temperature T     0 = greedy, else logits / T (default: 0.8)
  --top-k K           keep the K most likely tokens; 0 = off (default: 0)
  --top-p P           nucleus sampling mass in (0, 1]; 1 = off (default: 1)
  --seed S            RNG seed, 0..${Number.MAX_SAFE_INTEGER} (default: 0)
  --n N               continuations of the prompt, sampled together, 1..1024 (default: 1)
  --help              this help`;

/** Parses a whole non-negative integer option; a UserError naming the option otherwise. */
export function integerOption(option: string, text: string, min: number, max: number): number {
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UserError(`${option}: expected an integer in [${min}, ${max}], got '${text}'`);
  }
  return value;
}

/** Parses a finite number option within [min, max] (minExclusive: (min, max]). */
export function numberOption(
  option: string,
  text: string,
  min: number,
  max: number,
  minExclusive = false,
): number {
  const value = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text.trim()) ? Number(text) : NaN;
  const aboveMin = minExclusive ? value > min : value >= min;
  if (!Number.isFinite(value) || !aboveMin || value > max) {
    const range = `${minExclusive ? "(" : "["}${min}, ${max}]`;
    throw new UserError(`${option}: expected a number in ${range}, got '${text}'`);
  }
  return value;
}

export interface LoadedModel {
  ctx: GpuContext;
  folder: ModelFolder;
  model: GpuModel;
}

/** Opens a model folder (UserError naming what is wrong) and uploads its weights. */
export async function loadModel(dir: string | undefined): Promise<LoadedModel> {
  if (dir === undefined || dir === "") throw new UserError("--model is required (a model folder)");
  const folder = await readModelFolder(dir);
  const ctx = await gpu();
  const model = await loadGpuWeights(ctx, folder.config, folder.weights);
  return { ctx, folder, model };
}

/** The ids that end a continuation: <|endoftext|> and the eos token, where the vocab has them. */
export function stopIds(folder: ModelFolder): number[] {
  const ids = new Set<number>();
  const endOfText = folder.tokenizer.tokenId(END_OF_TEXT);
  if (endOfText !== undefined) ids.add(endOfText);
  const eos = folder.tokenizer.eosTokenId;
  if (eos !== null) ids.add(eos);
  return [...ids];
}

export async function generateCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: "string" },
      prompt: { type: "string" },
      "max-tokens": { type: "string", default: "64" },
      temperature: { type: "string", default: "0.8" },
      "top-k": { type: "string", default: "0" },
      "top-p": { type: "string", default: "1" },
      seed: { type: "string", default: "0" },
      n: { type: "string", default: "1" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    console.log(generateHelp);
    return 0;
  }
  if (values.prompt === undefined) {
    throw new UserError("--prompt is required (the text to continue)");
  }
  const maxNewTokens = integerOption("--max-tokens", values["max-tokens"], 1, 1_000_000);
  const temperature = numberOption("--temperature", values.temperature, 0, 1e6);
  const topK = integerOption("--top-k", values["top-k"], 0, Number.MAX_SAFE_INTEGER);
  const topP = numberOption("--top-p", values["top-p"], 0, 1, true);
  const seed = integerOption("--seed", values.seed, 0, Number.MAX_SAFE_INTEGER);
  const n = integerOption("--n", values.n, 1, 1024);

  const { ctx, folder, model } = await loadModel(values.model);
  const { tokenizer } = folder;
  const stopTokens = stopIds(folder);
  let prompt = tokenizer.encode(values.prompt);
  if (prompt.length === 0) {
    const start = folder.config.bosTokenId ?? tokenizer.tokenId(END_OF_TEXT);
    if (start === undefined || start === null) {
      throw new UserError(`--prompt is empty and ${folder.dir} has no bos or ${END_OF_TEXT} token`);
    }
    prompt = [start];
  }

  const began = performance.now();
  const result = await generate(ctx, model, new Array(n).fill(prompt), {
    maxNewTokens,
    temperature,
    topK,
    topP,
    seed,
    stopTokens,
  });
  const seconds = (performance.now() - began) / 1000;
  // Printed without the stop token, and without ids past the tokenizer's vocabulary (a
  // vocab_size padded to a multiple of 64 has rows no token uses; an untrained model may
  // still sample them — they are not masked, so that the log-probs stay those of the full
  // softmax that training uses).
  const stops = new Set(stopTokens);
  const printable = (id: number) => !stops.has(id) && id < tokenizer.vocabSize;
  result.tokens.forEach((ids, i) => {
    if (n > 1) console.log(`--- continuation ${i + 1} of ${n} ---`);
    console.log(tokenizer.decode(ids.filter(printable)));
  });
  const count = result.tokens.reduce((sum, ids) => sum + ids.length, 0);
  console.error(
    `${count} tokens in ${seconds.toFixed(2)} s (${(count / seconds).toFixed(1)} tokens/s, ` +
      `${result.readbacks} readback${result.readbacks === 1 ? "" : "s"})`,
  );
  return 0;
}
