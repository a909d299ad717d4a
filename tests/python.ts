// The Python the Hugging Face comparisons run (RMT_PYTHON, e.g. .ci/run's venv, else python3),
// and whether it has torch and transformers. Tests that need them are ignored with a loud name
// without them, and fail instead when RMT_REQUIRE_HF=1 (as .ci/run sets).

export const PYTHON = Deno.env.get("RMT_PYTHON") ?? "python3";
export const HF_REQUIRED = Deno.env.get("RMT_REQUIRE_HF") === "1";

/** Whether PYTHON can find torch and transformers (without importing them: fast). */
export async function hfAvailable(): Promise<boolean> {
  const probe = "import importlib.util as u, sys; " +
    "sys.exit(0 if all(u.find_spec(m) for m in ('torch', 'transformers')) else 1)";
  try {
    const r = await new Deno.Command(PYTHON, {
      args: ["-c", probe],
      stdout: "null",
      stderr: "null",
    }).output();
    return r.success;
  } catch {
    return false; // no python3 at all
  }
}
