// The training corpus of a run (data.train), tokenised once with the model's tokenizer and
// cached: what the NTP step and the RL step both read their sequences from.

import { UserError } from "../gpu/errors.ts";
import { loadCorpus } from "../data/corpus.ts";
import { type CachedTokenStream, tokenizeCorpusCached } from "../data/token_cache.ts";
import type { StepSetup } from "./train_step.ts";

/** Loads and tokenises data.train; checks model.max_context against the model. */
export async function loadTrainingTokens(setup: StepSetup): Promise<CachedTokenStream> {
  const { config, folder } = setup;
  if (config.data.train === null) {
    throw new UserError(
      `data.train: method ${config.method} needs a training corpus (set data.train)`,
    );
  }
  const seqLen = config.model.max_context;
  if (seqLen > folder.config.maxPositionEmbeddings) {
    throw new UserError(
      `model.max_context: ${seqLen} is more than the model's max_position_embeddings ` +
        `(${folder.config.maxPositionEmbeddings})`,
    );
  }
  const corpus = await loadCorpus(config.data.train);
  const stream = await tokenizeCorpusCached({
    corpus,
    tokenizerDir: folder.dir,
    tokenizer: folder.tokenizer,
    cacheDir: setup.cacheDir,
  });
  setup.log(
    `data: ${corpus.documents.length} documents, ${stream.tokens.length} tokens ` +
      `(${stream.fromCache ? "from the token cache" : "tokenised and cached"})`,
  );
  return stream;
}
