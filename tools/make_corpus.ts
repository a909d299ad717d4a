// Writes the shipped math corpus (data/math/) from its fixed seed:
//   ./rmtw run -A tools/make_corpus.ts [OUTPUT_DIR]
// tests/data/shipped_corpus_test.ts checks that the files in the repository are exactly what
// this produces, so run it after any change to the generator and ship the new files.

import { SHIPPED_MATH_CORPUS, shippedCorpusFiles } from "../lib/data/shipped_corpus.ts";

// Default: data/math/ of this repository, wherever the command runs from.
const repoRoot = decodeURIComponent(new URL("../", import.meta.url).pathname);
const dir = (Deno.args[0] ?? `${repoRoot}${SHIPPED_MATH_CORPUS.dir}`).replace(/\/$/, "");
await Deno.mkdir(dir, { recursive: true });
for (const [name, contents] of Object.entries(shippedCorpusFiles())) {
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(`${path}.tmp`, contents);
  await Deno.rename(`${path}.tmp`, path);
  const bytes = new TextEncoder().encode(contents).length;
  console.log(`make_corpus: wrote ${path} (${bytes} bytes)`);
}
