// `rmt --help`, `rmt COMMAND --help` and `rmt --version`: the help of every command lists every
// option its parseArgs accepts, each with its default (or saying it is required), and nothing
// else; the version line carries the git commit.

import { COMMANDS, main } from "../../lib/cli/main.ts";
import { gitShortCommit, VERSION } from "../../lib/version.ts";
import { assert, assertEquals } from "../helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/**
 * The option names of the parseArgs call in a CLI file: the keys of its `options: { ... }`
 * object literal (read from the source, so that every command is checked the same way, whether
 * or not its file exports the table).
 */
export function parseArgsOptions(source: string, file: string): string[] {
  const call = source.indexOf("parseArgs({");
  const open = call < 0 ? -1 : source.indexOf("options: {", call);
  assert(open >= 0, `${file}: no parseArgs({ ... options: { ... } }) call`);
  const names: string[] = [];
  let depth = 0;
  for (let i = source.indexOf("{", open); i < source.length; i++) {
    const c = source[i];
    if (c === "{") depth++;
    else if (c === "}" && --depth === 0) return names;
    else if (depth === 1 && /[\s{,]/.test(source[i - 1])) {
      const key = /^(?:"([\w-]+)"|(\w+))\s*:/.exec(source.slice(i, i + 100));
      if (key) {
        names.push(key[1] ?? key[2]);
        i += key[0].length - 1;
      }
    }
  }
  throw new Error(`${file}: the options object of parseArgs does not close`);
}

/** Runs `fn` with console.log collected; returns what it printed and its result. */
async function captured<T>(fn: () => Promise<T>): Promise<{ out: string; result: T }> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => lines.push(args.join(" "));
  try {
    const result = await fn();
    return { out: lines.join("\n"), result };
  } finally {
    console.log = log;
  }
}

/** The help text's entry of `--name`: its line and the continuation lines under it. */
function optionEntry(help: string, name: string): string | null {
  const lines = help.split("\n");
  const start = lines.findIndex((l) => new RegExp(`^\\s+--${name}(?![\\w-])`).test(l));
  if (start < 0) return null;
  const entry = [lines[start]];
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === "" || /^\s+-/.test(line) || !/^\s{4,}/.test(line)) break;
    entry.push(line);
  }
  return entry.join("\n");
}

Deno.test("help: rmt COMMAND --help lists every option parseArgs knows, with its default", async () => {
  const problems: string[] = [];
  for (const [name, command] of Object.entries(COMMANDS)) {
    const file = `lib/cli/${name}.ts`;
    const options = parseArgsOptions(await Deno.readTextFile(`${ROOT}${file}`), file);
    assert(options.includes("help"), `${file}: --help is an option`);

    const { out, result } = await captured(() => main([name, "--help"]));
    assertEquals(result, 0, `rmt ${name} --help exit code`);
    assertEquals(out, command.help, `rmt ${name} --help prints the command's help`);

    for (const option of options) {
      const entry = optionEntry(out, option);
      if (entry === null) problems.push(`rmt ${name} --help does not list --${option}`);
      else if (option !== "help" && !/default|required/.test(entry)) {
        problems.push(
          `rmt ${name} --help: --${option} states no default (nor "required"): ${entry}`,
        );
      }
    }
    // And no option the command does not have.
    for (const [, option] of out.matchAll(/^\s+--([\w-]+)/gm)) {
      if (!options.includes(option)) problems.push(`rmt ${name} --help lists --${option}`);
    }
  }
  assert(problems.length === 0, `${problems.length} problems:\n${problems.join("\n")}`);
});

Deno.test("help: rmt --help lists every command and --version", async () => {
  const { out, result } = await captured(() => main(["--help"]));
  assertEquals(result, 0, "exit code");
  for (const name of Object.keys(COMMANDS)) {
    assert(new RegExp(`^\\s+${name}\\s`, "m").test(out), `rmt --help lists ${name}:\n${out}`);
  }
  assert(out.includes("--version"), "rmt --help lists --version");
  const bare = await captured(() => main([]));
  assertEquals(bare.result, 2, "rmt without a command: usage and exit code 2");
});

Deno.test("help: rmt --version prints the version and the checkout's commit", async () => {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", "--version"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(r.stdout);
  assertEquals(r.code, 0, `exit code (${new TextDecoder().decode(r.stderr)})`);
  const commit = (await gitShortCommit(ROOT)) ?? "unknown";
  assertEquals(stdout.trim(), `rmt ${VERSION} (commit ${commit})`, "version line");
});
