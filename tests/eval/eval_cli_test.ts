// `rmt eval` as a user runs it: the JSON shape (--json) and the table, from a child process.

import { initModel } from "../../lib/model/init.ts";
import { writeModelFolder } from "../../lib/model/model_folder.ts";
import { assert, assertEquals, withTempDir } from "../helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

async function rmt(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}main.ts`, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

Deno.test("eval cli: --json has every measure; the table has the tier columns", async () => {
  await withTempDir(async (dir) => {
    const m = initModel({ arch: "qwen2", preset: "tiny", seed: 3, maxPositionEmbeddings: 64 });
    await writeModelFolder(`${dir}/model`, {
      config: m.config,
      weights: m.weights,
      tokenizerFiles: m.tokenizerFiles,
    });
    const lines = (await Deno.readTextFile(`${ROOT}data/math/heldout.jsonl`)).split("\n");
    await Deno.writeTextFile(`${dir}/heldout.jsonl`, lines.slice(0, 4).join("\n") + "\n");
    const common = ["eval", "--model", `${dir}/model`, "--data", `${dir}/heldout.jsonl`];
    const options = ["--samples", "6", "--max-reasoning", "2", "--seed", "4"];

    const json = await rmt([...common, ...options, "--json"]);
    assert(json.code === 0, `exit ${json.code}: ${json.stderr}`);
    const r = JSON.parse(json.stdout);
    assertEquals(
      Object.keys(r).sort(),
      [
        "data",
        "model",
        "perplexity",
        "plain",
        "positions",
        "proxy",
        "samples",
        "seconds",
        "settings",
        "withReasoning",
      ],
      "top-level keys",
    );
    for (const tier of ["all", "easy", "medium", "hard"]) {
      assertEquals(Object.keys(r.withReasoning[tier]), ["count", "correct", "accuracy"], tier);
      assertEquals(Object.keys(r.plain[tier]), ["count", "correct", "accuracy"], `plain ${tier}`);
    }
    for (const key of ["average", "parseRate", "reasoningTokens"]) {
      assert(key in r.withReasoning, `withReasoning.${key}`);
    }
    assertEquals(r.positions, 6, "positions");
    assertEquals(r.samples.length, 6, "one entry per position");
    assertEquals(r.settings.maxReasoning, 2, "settings");
    assertEquals(r.perplexity.scope, "file", "perplexity scope");
    assert(r.perplexity.perplexity > 1, `perplexity ${r.perplexity.perplexity}`);
    assertEquals(r.proxy, r.model, "the model is its own proxy by default");

    const table = await rmt([...common, ...options]);
    assert(table.code === 0, `exit ${table.code}: ${table.stderr}`);
    for (const column of ["easy", "medium", "hard", "avg", "think", "parse", "argmax", "ppl"]) {
      assert(table.stdout.includes(column), `table column ${column}: ${table.stdout}`);
    }

    const missing = await rmt(["eval", "--model", `${dir}/model`]);
    assert(missing.code === 2 && /--data is required/.test(missing.stderr), missing.stderr);
  });
});
