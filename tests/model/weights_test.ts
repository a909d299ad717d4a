// Model folders: single-file and sharded checkpoints written like save_pretrained, read back
// exactly, and clear errors when the index and the shards disagree.

import { readHeader, type TensorSource } from "../../lib/model/safetensors.ts";
import {
  ModelWeights,
  planShards,
  WEIGHTS_FILE,
  WEIGHTS_INDEX_FILE,
  writeWeights,
} from "../../lib/model/weights.ts";
import { assertBitEqual, Rng } from "../helpers.ts";
import { assert, assertEquals, assertUserError, withTempDir } from "./model_helpers.ts";

/** A small model-like tensor list: 400 + 4·(64+16) … bytes of f32 each. */
function tensors(seed: number): TensorSource[] {
  const rng = new Rng(seed);
  const shapes: [string, number[]][] = [
    ["model.embed_tokens.weight", [50, 8]],
    ["model.layers.0.self_attn.q_proj.weight", [8, 8]],
    ["model.layers.0.self_attn.q_proj.bias", [8]],
    ["model.layers.0.mlp.down_proj.weight", [8, 16]],
    ["model.layers.1.self_attn.q_proj.weight", [8, 8]],
    ["model.norm.weight", [8]],
  ];
  return shapes.map(([name, shape]) => ({
    name,
    shape,
    dtype: "F32" as const,
    data: rng.normals(shape.reduce((a, b) => a * b, 1)),
  }));
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

async function assertReadsBack(dir: string, written: TensorSource[]): Promise<void> {
  const weights = await ModelWeights.open(dir);
  assertEquals([...weights.tensors.keys()].sort(), written.map((t) => t.name).sort(), "names");
  for (const t of written) {
    assertBitEqual(await weights.readF32(t.name), t.data as Float32Array, t.name);
  }
}

Deno.test("weights: shards are planned in order, a new shard when the limit would be passed", () => {
  const sized = (bytes: number[]) => bytes.map((b) => ({ shape: [b / 4], dtype: "F32" as const }));
  const plan = (bytes: number[], limit: number) =>
    planShards(sized(bytes), limit).map((shard) => shard.map((t) => t.shape[0] * 4));
  assertEquals(plan([40, 40, 40], 100), [[40, 40], [40]], "fill then split");
  assertEquals(plan([40, 400, 40], 100), [[40], [400], [40]], "an oversized tensor alone");
  assertEquals(plan([100, 100], 100), [[100], [100]], "exactly full");
  assertEquals(plan([], 100), [[]], "no tensors: one empty file");
});

Deno.test("weights: a sharded checkpoint is written like save_pretrained and reads back", async () => {
  await withTempDir(async (dir) => {
    const written = tensors(1);
    const result = await writeWeights(dir, written, { maxShardBytes: 800 });
    const shards = [
      "model-00001-of-00003.safetensors",
      "model-00002-of-00003.safetensors",
      "model-00003-of-00003.safetensors",
    ];
    assertEquals(result.files, [...shards, WEIGHTS_INDEX_FILE], "files");
    assertEquals(await listDir(dir), [...shards, WEIGHTS_INDEX_FILE], "folder");
    const index = JSON.parse(await Deno.readTextFile(`${dir}/${WEIGHTS_INDEX_FILE}`));
    const totalBytes = written.reduce((s, t) => s + (t.data as Float32Array).byteLength, 0);
    assertEquals(
      index.metadata,
      { total_parameters: totalBytes / 4, total_size: totalBytes },
      "meta",
    );
    assertEquals(Object.keys(index.weight_map), written.map((t) => t.name).sort(), "sorted map");
    assertEquals(index.weight_map["model.embed_tokens.weight"], shards[0], "first shard");
    assertEquals(index.weight_map["model.norm.weight"], shards[2], "last shard");
    for (const shard of shards) {
      assertEquals((await readHeader(`${dir}/${shard}`)).metadata, { format: "pt" }, shard);
    }
    await assertReadsBack(dir, written);
  });
});

Deno.test("weights: saving again replaces the earlier checkpoint's files, never mixes", async () => {
  await withTempDir(async (dir) => {
    await writeWeights(dir, tensors(1), { maxShardBytes: 800 });
    await Deno.writeTextFile(`${dir}/config.json`, "{}"); // not a weight file: kept
    const single = tensors(2);
    assertEquals((await writeWeights(dir, single)).files, [WEIGHTS_FILE], "single file");
    assertEquals(await listDir(dir), ["config.json", WEIGHTS_FILE], "shards and index removed");
    await assertReadsBack(dir, single);
    const sharded = tensors(3);
    await writeWeights(dir, sharded, { maxShardBytes: 1200 });
    assertEquals(await listDir(dir), [
      "config.json",
      "model-00001-of-00002.safetensors",
      "model-00002-of-00002.safetensors",
      WEIGHTS_INDEX_FILE,
    ], "single file removed");
    await assertReadsBack(dir, sharded);
    // A single .safetensors file opens directly too.
    const file = `${dir}/model-00002-of-00002.safetensors`;
    const weights = await ModelWeights.open(file);
    assertEquals(weights.files, [file], "one file");
  });
});

Deno.test("weights: index and shards that disagree give a clear UserError", async () => {
  await withTempDir(async (dir) => {
    await writeWeights(dir, tensors(1), { maxShardBytes: 800 });
    const indexPath = `${dir}/${WEIGHTS_INDEX_FILE}`;
    const index = JSON.parse(await Deno.readTextFile(indexPath));
    const withMap = async (change: (map: Record<string, string>) => void) => {
      const copy = structuredClone(index);
      change(copy.weight_map);
      await Deno.writeTextFile(indexPath, JSON.stringify(copy));
    };

    await withMap((map) => map["model.norm.weight"] = "model-00009-of-00009.safetensors");
    await assertUserError(() => ModelWeights.open(dir), [
      indexPath,
      "model-00009-of-00009.safetensors",
      "does not exist",
    ], "missing shard");

    await withMap((map) => map["model.extra.weight"] = "model-00001-of-00003.safetensors");
    await assertUserError(() => ModelWeights.open(dir), [
      '"model.extra.weight"',
      "does not hold it",
    ], "listed tensor missing from its shard");

    await withMap((map) => delete map["model.norm.weight"]);
    await assertUserError(() => ModelWeights.open(dir), [
      "model-00003-of-00003.safetensors",
      '"model.norm.weight"',
      "does not list",
    ], "unlisted tensor");

    await withMap((map) => map["model.norm.weight"] = "model-00001-of-00003.safetensors");
    await assertUserError(() => ModelWeights.open(dir), [
      '"model.norm.weight"',
      "places in",
    ], "tensor in the wrong shard");

    await withMap((map) => map["model.norm.weight"] = "../model-00003-of-00003.safetensors");
    await assertUserError(() => ModelWeights.open(dir), ["bad shard name"], "path escape");

    await Deno.writeTextFile(indexPath, "{ not json");
    await assertUserError(() => ModelWeights.open(dir), [indexPath, "index"], "bad JSON");
    await Deno.writeTextFile(indexPath, JSON.stringify({ metadata: {} }));
    await assertUserError(() => ModelWeights.open(dir), [indexPath, "weight_map"], "no map");

    await withMap(() => {});
    const weights = await ModelWeights.open(dir);
    assert(weights.files.length === 3, "the restored index opens");
    await assertUserError(() => weights.readF32("lm_head.weight"), [
      dir,
      '"lm_head.weight"',
    ], "unknown tensor");

    const empty = `${dir}/empty`;
    await Deno.mkdir(empty);
    await assertUserError(() => ModelWeights.open(empty), [empty, WEIGHTS_FILE], "no weights");
    await assertUserError(() => ModelWeights.open(`${dir}/nope`), ["nope"], "no folder");
  });
});
