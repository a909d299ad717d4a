// The rmt version, read from deno.json at build time (a JSON import is bundled in), and the git
// commit rmt was built from (`rmt --version` prints both):
//   - a bundle or executable made by `deno task bundle` / `deno task compile` carries the commit
//     in its generated entry point (tools/build_entry.ts), which calls setBuildCommit;
//   - run from a checkout (`deno run main.ts`), it is `git rev-parse --short HEAD` there, asked
//     only when needed;
//   - otherwise (no git, not a checkout, no permission to run git) "unknown".
import denoJson from "../deno.json" with { type: "json" };

export const VERSION: string = denoJson.version;

let buildCommit: string | null = null;

/** Called first thing by a build's generated entry point (tools/build_entry.ts). */
export function setBuildCommit(commit: string): void {
  buildCommit = commit;
}

/** Whether this module runs from the source tree (not from a bundle or an executable). */
function sourceRoot(): string | null {
  const url = new URL("../", import.meta.url);
  if (url.protocol !== "file:") return null;
  try {
    // In a bundle, import.meta.url is the bundle's own file: no lib/version.ts next to it.
    Deno.statSync(new URL("lib/version.ts", url));
    Deno.statSync(new URL("main.ts", url));
    return decodeURIComponent(url.pathname);
  } catch {
    return null;
  }
}

/** `git rev-parse --short HEAD` in `dir`, or null where git cannot say. */
export async function gitShortCommit(dir: string): Promise<string | null> {
  try {
    const out = await new Deno.Command("git", {
      args: ["-C", dir, "rev-parse", "--short", "HEAD"],
      stdout: "piped",
      stderr: "null",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    return out.success && /^[0-9a-f]{4,64}$/.test(text) ? text : null;
  } catch {
    return null; // no git, or no permission to run it
  }
}

/** The commit this rmt was built from (short hash), or "unknown". */
export async function commit(): Promise<string> {
  if (buildCommit !== null) return buildCommit;
  const root = sourceRoot();
  return (root !== null ? await gitShortCommit(root) : null) ?? "unknown";
}

/** `rmt 0.1.0 (commit 1a2b3c4)`. */
export async function versionLine(): Promise<string> {
  return `rmt ${VERSION} (commit ${await commit()})`;
}
