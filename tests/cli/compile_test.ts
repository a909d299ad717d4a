// `deno task compile` (tools/compile.ts) where Deno cannot download its denort runtime: one line
// saying so and naming DENORT_BIN, exit code 2; a DENORT_BIN that does not exist is one line
// too. (Where denort is already cached the compile succeeds: then the executable must run.)

import { gitShortCommit, VERSION } from "../../lib/version.ts";
import { assert, assertEquals, withTempDir } from "../helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

async function compile(output: string, env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "tools/compile.ts", output],
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

Deno.test("compile: no denort download and a missing DENORT_BIN are one line, exit code 2", () =>
  withTempDir(async (dir) => {
    const missing = await compile(`${dir}/rmt`, { DENORT_BIN: `${dir}/no-such-denort` });
    assertEquals(missing.code, 2, `exit code: ${missing.stderr}`);
    assertEquals(
      missing.stderr.trim(),
      `compile: DENORT_BIN=${dir}/no-such-denort does not exist`,
      "missing DENORT_BIN",
    );

    // A proxy that refuses every connection: the denort download fails as it does offline.
    const refused = "http://127.0.0.1:9";
    const offline = await compile(`${dir}/rmt`, { HTTPS_PROXY: refused, HTTP_PROXY: refused });
    if (offline.code === 0) {
      // denort was already in Deno's cache: the executable was built, and runs.
      const r = await new Deno.Command(`${dir}/rmt`, { args: ["--version"], stdout: "piped" })
        .output();
      const commit = (await gitShortCommit(ROOT)) ?? "unknown";
      assertEquals(
        new TextDecoder().decode(r.stdout).trim(),
        `rmt ${VERSION} (commit ${commit})`,
        "the executable's version",
      );
    } else {
      assertEquals(offline.code, 2, `exit code: ${offline.stderr}`);
      const lines = offline.stderr.trim().split("\n");
      assert(lines.length === 1, `one line:\n${offline.stderr}`);
      for (const fragment of ["denort", "DENORT_BIN", Deno.version.deno]) {
        assert(lines[0].includes(fragment), `"${lines[0]}" does not mention ${fragment}`);
      }
    }
  }));
