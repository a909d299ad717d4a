// The model-file layer reports bad input (a truncated file, a wrong shape, a missing token) with
// the runtime's UserError: one line for the user, exit code 2, no stack trace.

export { UserError } from "../gpu/errors.ts";
