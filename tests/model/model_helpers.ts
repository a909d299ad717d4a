// Helpers shared by the model-file tests: temp folders, and checks that bad input gives a
// UserError whose message names what is wrong.

import type { Architecture } from "../../lib/model/config.ts";
import type { TinyConfigOptions } from "../../lib/ref/transformer.ts";

export { assert, assertEquals, assertUserError, withTempDir } from "../helpers.ts";

/** A tiny decoder variant the model tests run over, and its name in test output. */
export interface Variant {
  arch: Architecture;
  options: TinyConfigOptions;
}

export const variantLabel = ({ arch, options }: Variant): string =>
  `${arch.replace("ForCausalLM", "")}${options.tied ? " tied" : ""}${
    options.attentionBias ? " attention_bias" : ""
  }`;
