// `deno task bundle`: writes dist/rmt.js (or the path given), the single-file rmt: every module,
// kernel, embedded config and the shipped corpus in one JavaScript file, plus the git commit it
// was built from (`rmt --version`). It runs from any folder: `deno run -A rmt.js info`.

import { withBuildEntry } from "./build_entry.ts";

const output = Deno.args[0] ?? "dist/rmt.js";

const code = await withBuildEntry(async (entry, commit) => {
  const result = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "-o", output, entry],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (result.success) console.log(`bundle: wrote ${output} (commit ${commit})`);
  else console.error(`bundle: deno bundle failed (exit ${result.code})`);
  return result.success ? 0 : 2;
});
Deno.exit(code);
