// `deno task compile`: builds the single `rmt` executable with `deno compile`.
//
// deno compile needs Deno's `denort` runtime for the target, which it downloads on first
// use. Where that download is impossible (machines without internet), point DENORT_BIN at
// a denort binary of the same Deno version (from the denort-<target>.zip release asset):
//   DENORT_BIN=/path/to/denort deno task compile

import { withBuildEntry } from "./build_entry.ts";

const output = Deno.args[0] ?? "dist/rmt";
const denort = Deno.env.get("DENORT_BIN");
if (denort) {
  try {
    Deno.statSync(denort);
  } catch {
    console.error(`compile: DENORT_BIN=${denort} does not exist`);
    Deno.exit(2);
  }
}

// The entry point is main.ts plus the commit of this checkout (`rmt --version`).
const { result, commit } = await withBuildEntry(async (entry, commit) => {
  const result = await new Deno.Command(Deno.execPath(), {
    args: ["compile", "-A", "--output", output, entry],
    stdout: "inherit",
    stderr: "piped",
  }).output();
  return { result, commit };
});

if (result.code === 0) {
  console.log(`compile: wrote ${output} (commit ${commit})`);
  Deno.exit(0);
}
const stderr = new TextDecoder().decode(result.stderr);
if (!denort && /dns error|failed to lookup|error sending request|denort/i.test(stderr)) {
  console.error(
    `compile: deno compile could not download its denort runtime (no internet?); ` +
      `set DENORT_BIN to a denort binary of Deno ${Deno.version.deno} and run again`,
  );
} else {
  console.error(`compile: deno compile failed:\n${stderr.trim()}`);
}
Deno.exit(2);
