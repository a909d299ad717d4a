// The command line as a user meets it: run as a child process, exit codes and output.

import { assert } from "../helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

export async function runDeno(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: options.cwd ?? ROOT,
    env: options.env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

Deno.test("cli: rmt info --json describes the adapter", async () => {
  const r = await runDeno(["run", "-A", "main.ts", "info", "--json"]);
  assert(r.code === 0, `exit ${r.code}: ${r.stderr}`);
  const info = JSON.parse(r.stdout);
  assert(typeof info.adapter.name === "string" && info.adapter.name.length > 0, "adapter name");
  assert(info.adapter.limits.maxBufferSize > 0, "limits present");
  assert(Array.isArray(info.adapter.features), "features present");
});

Deno.test("cli: unknown command and unknown option are one line and exit code 2", async () => {
  const unknown = await runDeno(["run", "-A", "main.ts", "frobnicate"]);
  assert(unknown.code === 2, `exit ${unknown.code}`);
  assert(unknown.stderr.trim().split("\n").length === 1, `one line: ${unknown.stderr}`);
  const badOption = await runDeno(["run", "-A", "main.ts", "info", "--bogus"]);
  assert(badOption.code === 2, `exit ${badOption.code}`);
  assert(/--bogus/.test(badOption.stderr) && !/\n\s+at /.test(badOption.stderr), badOption.stderr);
});

Deno.test("cli: no adapter → one line saying what to install, exit code 2", async () => {
  // dx12 does not exist on Linux, so wgpu finds no adapter at all.
  const r = await runDeno(["run", "-A", "main.ts", "info"], {
    env: { DENO_WEBGPU_BACKEND: "dx12" },
  });
  assert(r.code === 2, `exit ${r.code}: ${r.stderr}`);
  const lines = r.stderr.trim().split("\n").filter((l) => l.startsWith("rmt"));
  assert(lines.length === 1 && /mesa-vulkan-drivers/.test(lines[0]), r.stderr);
});

Deno.test("cli: the single-file bundle runs from an empty directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rmt-bundle-" });
  try {
    const bundled = await runDeno(["bundle", "--quiet", "-o", `${dir}/rmt.js`, "main.ts"]);
    assert(bundled.code === 0, `deno bundle failed: ${bundled.stderr}`);
    const info = await runDeno(["run", "-A", "rmt.js", "info", "--json"], { cwd: dir });
    assert(info.code === 0, `bundled rmt info: exit ${info.code}: ${info.stderr}`);
    assert(JSON.parse(info.stdout).adapter.name.length > 0, "bundled info prints the adapter");
    const self = await runDeno(["run", "-A", "rmt.js", "selfcheck"], { cwd: dir });
    assert(self.code === 0, `bundled selfcheck: exit ${self.code}: ${self.stdout}${self.stderr}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
