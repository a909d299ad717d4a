// safetensors: bit-exact round trips, a file written by PyTorch, and one clear UserError for
// every kind of bad file.

import {
  readHeader,
  readTensorBytes,
  readTensorF32,
  type TensorEntry,
  writeSafetensors,
} from "../../lib/model/safetensors.ts";
import { f32BitsToBf16Bits, f32BitsToF16Bits } from "../../lib/model/float16.ts";
import { assertBitEqual, Rng } from "../helpers.ts";
import { assert, assertEquals, assertUserError, withTempDir } from "./model_helpers.ts";

async function readAll(path: string): Promise<Map<string, Float32Array>> {
  const header = await readHeader(path);
  const out = new Map<string, Float32Array>();
  for (const [name, entry] of header.tensors) out.set(name, await readTensorF32(entry));
  return out;
}

function bitsOf(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

/** Values that exercise every path: NaN payloads, ±0, subnormals, ±inf, ties, big and small. */
function awkwardValues(count: number, seed: number): Float32Array {
  const values = new Rng(seed).normals(count, 3);
  const bits = new Uint32Array(values.buffer);
  const specials = [
    0x7fc00000,
    0x7f800001,
    0xffc12345,
    0x80000000,
    0x00000001,
    0x807fffff,
    0x7f800000,
    0xff800000,
    0x3f808000,
    0x3f818000,
    0x7f7fffff,
    0x477fe000,
  ];
  specials.forEach((b, i) => bits[i] = b);
  return values;
}

Deno.test("safetensors: F32 write → read is bit-exact, BF16/F16 round to nearest even", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/t.safetensors`;
    const a = awkwardValues(7 * 13, 1);
    const b = awkwardValues(257, 2);
    const c = awkwardValues(3 * 5 * 2, 3);
    // `b` is handed over in uneven pieces, as a GPU tensor split into row chunks would be.
    async function* pieces() {
      yield b.subarray(0, 100);
      yield b.subarray(100, 101);
      yield b.subarray(101);
    }
    await writeSafetensors(path, [
      { name: "a.f32", shape: [7, 13], dtype: "F32", data: a },
      { name: "b.bf16", shape: [257], dtype: "BF16", data: pieces },
      { name: "c.f16", shape: [3, 5, 2], dtype: "F16", data: c },
      { name: "empty", shape: [0, 4], dtype: "F32", data: new Float32Array(0) },
    ]);
    const header = await readHeader(path);
    assertEquals(header.metadata, { format: "pt" }, "metadata");
    assertEquals([...header.tensors.keys()], ["a.f32", "b.bf16", "c.f16", "empty"], "names");
    assertEquals(header.tensors.get("c.f16")!.shape, [3, 5, 2], "shape");
    assert(header.tensors.get("a.f32")!.start % 8 === 0, "data area starts 8-byte aligned");

    const read = await readAll(path);
    assertBitEqual(bitsOf(read.get("a.f32")!), bitsOf(a), "f32 bits");
    const bf16 = new Uint16Array((await readTensorBytes(header.tensors.get("b.bf16")!)).buffer);
    const f16 = new Uint16Array((await readTensorBytes(header.tensors.get("c.f16")!)).buffer);
    assertBitEqual(bf16, Array.from(bitsOf(b), f32BitsToBf16Bits), "bf16 bits");
    assertBitEqual(f16, Array.from(bitsOf(c), f32BitsToF16Bits), "f16 bits");
    // BF16 read back is the bf16 value exactly: the top half of the f32 bits.
    assertBitEqual(
      bitsOf(read.get("b.bf16")!),
      Array.from(bf16, (h) => (h << 16) >>> 0),
      "bf16 widened",
    );
    assert(read.get("empty")!.length === 0, "empty tensor");
    // Written twice → identical bytes (determinism), and no temp file left behind.
    const first = await Deno.readFile(path);
    await writeSafetensors(path, [
      { name: "a.f32", shape: [7, 13], dtype: "F32", data: a },
      { name: "b.bf16", shape: [257], dtype: "BF16", data: pieces },
      { name: "c.f16", shape: [3, 5, 2], dtype: "F16", data: c },
      { name: "empty", shape: [0, 4], dtype: "F32", data: new Float32Array(0) },
    ]);
    assertBitEqual(await Deno.readFile(path), first, "file bytes");
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assertEquals(names, ["t.safetensors"], "folder contents");
  });
});

Deno.test("safetensors: element ranges read just those elements (row chunks)", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/t.safetensors`;
    const values = awkwardValues(11 * 6, 4);
    await writeSafetensors(path, [
      { name: "m", shape: [11, 6], dtype: "F32", data: values },
      { name: "h", shape: [11, 6], dtype: "BF16", data: values },
    ]);
    const header = await readHeader(path);
    const whole = await readTensorF32(header.tensors.get("h")!);
    for (const [rowStart, rowEnd] of [[0, 4], [4, 10], [10, 11], [3, 3]]) {
      const range = { start: rowStart * 6, count: (rowEnd - rowStart) * 6 };
      const m = await readTensorF32(header.tensors.get("m")!, range);
      const h = await readTensorF32(header.tensors.get("h")!, range);
      assertBitEqual(
        bitsOf(m),
        bitsOf(values.subarray(range.start, range.start + range.count)),
        "m",
      );
      assertBitEqual(
        bitsOf(h),
        bitsOf(whole.subarray(range.start, range.start + range.count)),
        "h",
      );
    }
    let threw = false;
    try {
      await readTensorF32(header.tensors.get("m")!, { start: 60, count: 7 });
    } catch (e) {
      threw = (e as Error).message.includes("outside");
    }
    assert(threw, "a range past the end is refused");
  });
});

// Written by Python: safetensors.torch.save_file({"w.f32": x.reshape(2, 7), "w.bf16":
// x.to(bfloat16), "w.f16": x.to(float16), "ids": int64 [1, -2, 3], "empty": zeros(0, 3)},
// metadata={"format": "pt"}) with x = [0, -0, 1, -1.5, 65504, 65520, 5.96e-8, 3e-5, inf, -inf,
// 1.00390625, 1.01171875, 3.4e38, 1e-40]. Note the reference writer's order: I64 first.
const TORCH_FILE =
  "UAEAAAAAAAB7Il9fbWV0YWRhdGFfXyI6eyJmb3JtYXQiOiJwdCJ9LCJpZHMiOnsiZHR5cGUiOiJJNjQi" +
  "LCJzaGFwZSI6WzNdLCJkYXRhX29mZnNldHMiOlswLDI0XX0sImVtcHR5Ijp7ImR0eXBlIjoiRjMyIiwic2hhcGUiOlsw" +
  "LDNdLCJkYXRhX29mZnNldHMiOlsyNCwyNF19LCJ3LmYzMiI6eyJkdHlwZSI6IkYzMiIsInNoYXBlIjpbMiw3XSwiZGF0" +
  "YV9vZmZzZXRzIjpbMjQsODBdfSwidy5iZjE2Ijp7ImR0eXBlIjoiQkYxNiIsInNoYXBlIjpbMTRdLCJkYXRhX29mZnNl" +
  "dHMiOls4MCwxMDhdfSwidy5mMTYiOnsiZHR5cGUiOiJGMTYiLCJzaGFwZSI6WzE0XSwiZGF0YV9vZmZzZXRzIjpbMTA4" +
  "LDEzNl19fSABAAAAAAAAAP7/////////AwAAAAAAAAAAAAAAAAAAgAAAgD8AAMC/AOB/RwDwf0fl+n8zgqj7NwAAgH8A" +
  "AID/AICAPwCAgT+eyX9/whYBAAAAAICAP8C/gEeAR4Az/DeAf4D/gD+CP4B/AQAAAACAADwAvv97AHwBAPcBAHwA/AQ8" +
  "DDwAfAAA";
// PyTorch's own conversions of x: .to(bfloat16) and .to(float16) bit patterns (as uint16).
const TORCH_BF16 = [
  0,
  32768,
  16256,
  49088,
  18304,
  18304,
  13184,
  14332,
  32640,
  65408,
  16256,
  16258,
  32640,
  1,
];
const TORCH_F16 = [
  0,
  32768,
  15360,
  48640,
  31743,
  31744,
  1,
  503,
  31744,
  64512,
  15364,
  15372,
  31744,
  0,
];

Deno.test("safetensors: reads a file written by PyTorch; our rounding matches PyTorch's", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/torch.safetensors`;
    await Deno.writeFile(path, Uint8Array.from(atob(TORCH_FILE), (c) => c.charCodeAt(0)));
    const header = await readHeader(path);
    assertEquals(header.metadata, { format: "pt" }, "metadata");
    const get = (name: string): TensorEntry => header.tensors.get(name)!;
    assertEquals(get("w.f32").shape, [2, 7], "w.f32 shape");
    assertEquals(get("empty").shape, [0, 3], "empty shape");
    const ids = new BigInt64Array((await readTensorBytes(get("ids"))).buffer);
    assertEquals(Array.from(ids, Number), [1, -2, 3], "I64 values");
    const x = await readTensorF32(get("w.f32"));
    const xBits = bitsOf(x);
    assertBitEqual(
      new Uint16Array((await readTensorBytes(get("w.bf16"))).buffer),
      TORCH_BF16,
      "bf16",
    );
    assertBitEqual(new Uint16Array((await readTensorBytes(get("w.f16"))).buffer), TORCH_F16, "f16");
    assertBitEqual(Array.from(xBits, f32BitsToBf16Bits), TORCH_BF16, "our bf16 rounding");
    assertBitEqual(Array.from(xBits, f32BitsToF16Bits), TORCH_F16, "our f16 rounding");
    const f16 = await readTensorF32(get("w.f16"));
    assertBitEqual(f16, TORCH_F16.map((h) => new Float16Array(Uint16Array.of(h).buffer)[0]), "f16");
    await assertUserError(() => readTensorF32(get("ids")), [path, '"ids"', "I64"], "int as float");
  });
});

/** A safetensors file from parts: a header (object or raw text), data bytes, a length field. */
function fileBytes(
  header: unknown,
  data: Uint8Array = new Uint8Array(0),
  lengthField?: bigint,
): Uint8Array {
  const headerBytes = header instanceof Uint8Array
    ? header
    : new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + headerBytes.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthField ?? BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  out.set(data, 8 + headerBytes.length);
  return out;
}

const entry = (dtype: string, shape: unknown, offsets: unknown) => ({
  dtype,
  shape,
  data_offsets: offsets,
});

Deno.test("safetensors: every kind of bad file is one UserError naming file and tensor", async () => {
  await withTempDir(async (dir) => {
    const good = { a: entry("F32", [2, 2], [0, 16]), b: entry("BF16", [3], [16, 22]) };
    const cases: [string, Uint8Array | string, string[]][] = [
      ["empty file", new Uint8Array(0), ["truncated", "0 bytes"]],
      ["shorter than the length field", new Uint8Array(5), ["truncated", "5 bytes"]],
      ["header length beyond the file", fileBytes(good, new Uint8Array(22), 5000n), [
        "header length 5000",
        "beyond",
      ]],
      ["huge header length", fileBytes(good, new Uint8Array(22), 2n ** 63n), ["beyond"]],
      ["invalid JSON", fileBytes('{"a": {"dtype": "F32",', new Uint8Array(0)), ["not valid JSON"]],
      ["not UTF-8", fileBytes(Uint8Array.of(0x7b, 0xff, 0x7d)), ["not valid UTF-8"]],
      ["JSON array", fileBytes([1, 2]), ["not a JSON object"]],
      ["unknown dtype", fileBytes({ w: entry("F99", [2], [0, 8]) }, new Uint8Array(8)), [
        '"w"',
        "unknown dtype",
        "F99",
      ]],
      ["negative dimension", fileBytes({ w: entry("F32", [-2], [0, 8]) }, new Uint8Array(8)), [
        '"w"',
        "shape",
      ]],
      ["offsets not two numbers", fileBytes({ w: entry("F32", [2], [0]) }, new Uint8Array(8)), [
        '"w"',
        "data_offsets",
      ]],
      ["begin after end", fileBytes({ w: entry("F32", [2], [8, 0]) }, new Uint8Array(8)), [
        '"w"',
        "data_offsets",
      ]],
      ["size not shape × dtype", fileBytes({ w: entry("F32", [3], [0, 8]) }, new Uint8Array(8)), [
        '"w"',
        "hold 8 bytes",
        "needs 12",
      ]],
      ["truncated data", fileBytes(good, new Uint8Array(20)), ['"b"', "outside the data area"]],
      [
        "overlap",
        fileBytes(
          { a: entry("F32", [2], [0, 8]), b: entry("F32", [2], [4, 12]) },
          new Uint8Array(12),
        ),
        ['"a"', '"b"', "overlap"],
      ],
      [
        "gap",
        fileBytes(
          { a: entry("F32", [1], [0, 4]), b: entry("F32", [1], [8, 12]) },
          new Uint8Array(12),
        ),
        ['"b"', "belong to no tensor"],
      ],
      ["trailing bytes", fileBytes(good, new Uint8Array(30)), ["8 trailing bytes"]],
      ["metadata not strings", fileBytes({ __metadata__: { step: 3 } }), ["__metadata__", "step"]],
      ["entry not an object", fileBytes({ w: 7 }), ['"w"', "not an object"]],
    ];
    for (const [what, bytes, fragments] of cases) {
      const path = `${dir}/${what.replaceAll(" ", "_")}.safetensors`;
      await Deno.writeFile(
        path,
        typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes,
      );
      await assertUserError(() => readHeader(path), [path, ...fragments], what);
    }
    await assertUserError(() => readHeader(`${dir}/missing.safetensors`), [
      `${dir}/missing.safetensors`,
      "cannot open",
    ], "missing file");

    // A file that shrinks after its header was read: the tensor read fails clearly.
    const path = `${dir}/shrinks.safetensors`;
    await Deno.writeFile(path, fileBytes(good, new Uint8Array(22)));
    const header = await readHeader(path);
    await Deno.truncate(path, (await Deno.stat(path)).size - 4);
    await assertUserError(() => readTensorF32(header.tensors.get("b")!), [
      path,
      '"b"',
      "file ended",
    ], "shrunk file");
  });
});

Deno.test("safetensors: a writer given the wrong number of values fails and leaves no file", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/t.safetensors`;
    for (const data of [new Float32Array(5), new Float32Array(7)]) {
      let message = "";
      try {
        await writeSafetensors(path, [{ name: "w", shape: [2, 3], dtype: "F32", data }]);
      } catch (e) {
        message = (e as Error).message;
      }
      assert(message.includes('"w"') && message.includes("6 values"), `error: ${message}`);
    }
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assertEquals(names, [], "folder contents");
  });
});
