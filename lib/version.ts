// The rmt version, read from deno.json at build time (a JSON import is bundled in).
import denoJson from "../deno.json" with { type: "json" };

export const VERSION: string = denoJson.version;
