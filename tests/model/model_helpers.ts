// Helpers shared by the model-file tests: temp folders, and checks that bad input gives a
// UserError whose message names what is wrong.

export { assert, assertEquals, assertUserError, withTempDir } from "../helpers.ts";
