// safetensors fuzz: random byte flips and truncations of a valid file. Whatever the damage,
// reading the header and every tensor either succeeds (a flip in the data area, or one that
// happens to leave a valid header) or fails with a UserError — never another exception.

import { UserError } from "../../lib/model/errors.ts";
import {
  FLOAT_DTYPES,
  readHeader,
  readTensorBytes,
  readTensorF32,
  writeSafetensors,
} from "../../lib/model/safetensors.ts";
import { Rng } from "../helpers.ts";
import { assert, withTempDir } from "./model_helpers.ts";

const CASES = 240;

/** Reads everything in the file; returns "ok" or "user error", throws anything else. */
async function readEverything(path: string): Promise<"ok" | "user error"> {
  try {
    const header = await readHeader(path);
    for (const entry of header.tensors.values()) {
      if (FLOAT_DTYPES.includes(entry.dtype)) await readTensorF32(entry);
      else await readTensorBytes(entry);
    }
    return "ok";
  } catch (e) {
    if (e instanceof UserError && !e.message.includes("\n") && e.message.includes(path)) {
      return "user error";
    }
    throw new Error(`case ${path}: not a one-line UserError naming the file: ${e}`);
  }
}

Deno.test("safetensors fuzz: byte flips and truncations give a UserError or a valid read", async () => {
  await withTempDir(async (dir) => {
    const valid = `${dir}/valid.safetensors`;
    const rng = new Rng(2024);
    await writeSafetensors(valid, [
      { name: "model.embed_tokens.weight", shape: [13, 4], dtype: "BF16", data: rng.normals(52) },
      { name: "model.norm.weight", shape: [4], dtype: "F32", data: rng.normals(4) },
      { name: "lm_head.weight", shape: [3, 4], dtype: "F16", data: rng.normals(12) },
      { name: "scalar", shape: [], dtype: "F32", data: new Float32Array([1]) },
    ], { format: "pt", step: "12" });
    const original = await Deno.readFile(valid);
    const headerEnd = 8 + Number(new DataView(original.buffer).getBigUint64(0, true));

    const outcomes = { ok: 0, "user error": 0 };
    const path = `${dir}/mutant.safetensors`;
    for (let i = 0; i < CASES; i++) {
      let bytes: Uint8Array;
      const kind = i % 3;
      if (kind === 0) {
        // Truncate anywhere (including inside the length field and the header).
        bytes = original.slice(0, rng.int(original.length));
      } else {
        // Flip 1-4 random bits; most land in the length field and header, where it matters.
        bytes = original.slice();
        const flips = 1 + rng.int(4);
        for (let f = 0; f < flips; f++) {
          const inHeader = rng.next() < 0.85;
          const at = inHeader ? rng.int(headerEnd) : headerEnd + rng.int(bytes.length - headerEnd);
          bytes[at] ^= 1 << rng.int(8);
        }
      }
      await Deno.writeFile(path, bytes);
      outcomes[await readEverything(path)]++;
    }
    // The original is fine, and the mutants hit both outcomes.
    assert((await readEverything(valid)) === "ok", "the valid file reads");
    assert(outcomes["user error"] > CASES / 2, `user errors: ${JSON.stringify(outcomes)}`);
    assert(outcomes.ok > 0, `some mutants stay valid: ${JSON.stringify(outcomes)}`);
  });
});
