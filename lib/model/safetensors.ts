// The safetensors file format (https://github.com/huggingface/safetensors), read and written.
//
//   bytes 0..8        u64 little-endian N: the header length
//   bytes 8..8+N      JSON header: { "<tensor name>": { "dtype": "BF16", "shape": [rows, cols],
//                                    "data_offsets": [begin, end] }, ...,
//                                    "__metadata__": { "<key>": "<string>" } }   (optional)
//   bytes 8+N..       the data area; offsets are relative to its start, row-major, little-endian
//
// Reading is strict, like the reference implementation: every tensor's byte range must match
// its shape and dtype, lie inside the data area, and the ranges must tile the data area with
// no overlap, gap or trailing bytes. Any violation is a UserError naming the file and tensor.
// Reading is lazy: opening parses only the header; tensor bytes are read on demand, one tensor
// (or one element range of it) at a time, so multi-GB files never sit in memory whole.

import { UserError } from "./errors.ts";
import { decodeBf16, decodeF16, encodeBf16, encodeF16 } from "./float16.ts";

/** Bytes per element of every dtype the format defines. */
export const DTYPE_BYTES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
} as const;

export type SafetensorsDtype = keyof typeof DTYPE_BYTES;

/** The dtypes `readTensorF32` converts from. */
export const FLOAT_DTYPES: readonly SafetensorsDtype[] = ["F32", "F16", "BF16", "F64"];

/** The dtypes we write: f32 exactly, or rounded to a 16-bit float (nearest even). */
export type WriteDtype = "F32" | "BF16" | "F16";

/** One tensor of a safetensors file, located in that file. */
export interface TensorEntry {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** The file that holds it. */
  readonly file: string;
  /** Absolute byte range in the file: [start, end). */
  readonly start: number;
  readonly end: number;
}

/** A parsed header: the tensors (in data order) and the string metadata. */
export interface SafetensorsHeader {
  readonly tensors: ReadonlyMap<string, TensorEntry>;
  readonly metadata: Readonly<Record<string, string>>;
}

/** The reference implementation's limit on the header size. */
export const MAX_HEADER_BYTES = 100_000_000;

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/** A short, printable rendering of an arbitrary JSON value for error messages. */
function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Parses and validates a header. `headerBytes` is the JSON text; `dataBytes` the size of the data
 * area that follows it; `dataStart` its absolute offset (8 + header length). Pure: no file I/O.
 */
export function parseHeader(
  file: string,
  headerBytes: Uint8Array,
  dataStart: number,
  dataBytes: number,
): SafetensorsHeader {
  const fail = (message: string): never => {
    throw new UserError(`${file}: ${message}`);
  };
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(headerBytes);
  } catch {
    return fail("safetensors header is not valid UTF-8");
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail(`safetensors header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return fail("safetensors header is not a JSON object");
  }

  const metadata: Record<string, string> = {};
  const entries: TensorEntry[] = [];
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        fail(`"__metadata__" must be an object of strings, got ${show(value)}`);
      }
      for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`"__metadata__" key "${key}" is not a string: ${show(v)}`);
        metadata[key] = v as string;
      }
      continue;
    }
    entries.push(parseEntry(file, name, value, dataStart, dataBytes));
  }

  // The byte ranges must tile the data area exactly: sorted by start, each begins where the
  // previous one ended, and the last ends at the end of the file.
  const sorted = [...entries].sort((a, b) => a.start - b.start || a.end - b.end);
  let position = dataStart;
  let previous: TensorEntry | undefined;
  for (const entry of sorted) {
    if (entry.start < position) {
      fail(
        `tensor "${entry.name}": bytes [${entry.start - dataStart}, ${entry.end - dataStart}) ` +
          `overlap tensor "${previous!.name}" (which ends at ${position - dataStart})`,
      );
    }
    if (entry.start > position) {
      fail(
        `tensor "${entry.name}": data area bytes [${position - dataStart}, ` +
          `${entry.start - dataStart}) before it belong to no tensor`,
      );
    }
    position = entry.end;
    previous = entry;
  }
  if (position !== dataStart + dataBytes) {
    fail(
      `${dataStart + dataBytes - position} trailing bytes after the last tensor ` +
        `(data area ${dataBytes} bytes, tensors use ${position - dataStart})`,
    );
  }
  return { tensors: new Map(sorted.map((e) => [e.name, e])), metadata };
}

function parseEntry(
  file: string,
  name: string,
  value: unknown,
  dataStart: number,
  dataBytes: number,
): TensorEntry {
  const fail = (message: string): never => {
    throw new UserError(`${file}: tensor "${name}": ${message}`);
  };
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return fail(`header entry is not an object: ${show(value)}`);
  }
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (typeof dtype !== "string" || !Object.hasOwn(DTYPE_BYTES, dtype)) {
    return fail(`unknown dtype ${show(dtype)} (known: ${Object.keys(DTYPE_BYTES).join(", ")})`);
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    return fail(`shape must be a list of non-negative integers, got ${show(shape)}`);
  }
  if (
    !Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) ||
    offsets[0] > offsets[1]
  ) {
    return fail(`data_offsets must be [begin, end] with 0 <= begin <= end, got ${show(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  const needed = elementCount(shape) * DTYPE_BYTES[dtype as SafetensorsDtype];
  if (!Number.isSafeInteger(needed) || end - begin !== needed) {
    fail(
      `data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but shape ` +
        `${shapeText(shape)} of ${dtype} needs ${needed}`,
    );
  }
  if (end > dataBytes) {
    fail(
      `data_offsets [${begin}, ${end}] lie outside the data area (${dataBytes} bytes): ` +
        `the file is truncated or the header is wrong`,
    );
  }
  return {
    name,
    dtype: dtype as SafetensorsDtype,
    shape,
    file,
    start: dataStart + begin,
    end: dataStart + end,
  };
}

/** Opens a file for reading, turning "not found" and friends into a UserError. */
async function openForReading(path: string): Promise<Deno.FsFile> {
  try {
    return await Deno.open(path, { read: true });
  } catch (e) {
    throw new UserError(`${path}: cannot open: ${(e as Error).message}`);
  }
}

/** Reads exactly `length` bytes at `offset` of an open file, or fails with a UserError. */
async function readExactly(
  file: Deno.FsFile,
  path: string,
  offset: number,
  length: number,
  what: string,
): Promise<Uint8Array<ArrayBuffer>> {
  const out = new Uint8Array(length);
  await file.seek(offset, Deno.SeekMode.Start);
  let got = 0;
  while (got < length) {
    const n = await file.read(out.subarray(got));
    if (n === null) {
      throw new UserError(
        `${path}: file ended at byte ${offset + got} while reading ${what} ` +
          `(needed bytes up to ${offset + length}): truncated?`,
      );
    }
    got += n;
  }
  return out;
}

/** Reads and validates the header of a safetensors file (the data stays on disk). */
export async function readHeader(path: string): Promise<SafetensorsHeader> {
  const file = await openForReading(path);
  try {
    const size = (await file.stat()).size;
    if (size < 8) {
      throw new UserError(`${path}: truncated safetensors file: ${size} bytes, need at least 8`);
    }
    const prefix = await readExactly(file, path, 0, 8, "the header length");
    const headerLength = new DataView(prefix.buffer).getBigUint64(0, true);
    if (headerLength > BigInt(size - 8)) {
      throw new UserError(
        `${path}: safetensors header length ${headerLength} is beyond the file size ${size} ` +
          `(truncated, or not a safetensors file)`,
      );
    }
    const n = Number(headerLength);
    if (n > MAX_HEADER_BYTES) {
      throw new UserError(`${path}: safetensors header of ${n} bytes exceeds the 100 MB limit`);
    }
    const headerBytes = await readExactly(file, path, 8, n, "the header");
    return parseHeader(path, headerBytes, 8 + n, size - 8 - n);
  } finally {
    file.close();
  }
}

/** An element range of a tensor (flat, row-major). Default: the whole tensor. */
export interface ElementRange {
  start: number;
  count: number;
}

function checkRange(entry: TensorEntry, range: ElementRange | undefined): ElementRange {
  const total = elementCount(entry.shape);
  const r = range ?? { start: 0, count: total };
  if (!isCount(r.start) || !isCount(r.count) || r.start + r.count > total) {
    throw new Error(
      `tensor "${entry.name}" ${shapeText(entry.shape)}: element range ` +
        `[${r.start}, ${r.start + r.count}) is outside [0, ${total})`,
    );
  }
  return r;
}

/** The raw little-endian bytes of a tensor (or of an element range of it). */
export async function readTensorBytes(
  entry: TensorEntry,
  range?: ElementRange,
): Promise<Uint8Array<ArrayBuffer>> {
  const { start, count } = checkRange(entry, range);
  const size = DTYPE_BYTES[entry.dtype];
  const file = await openForReading(entry.file);
  try {
    return await readExactly(
      file,
      entry.file,
      entry.start + start * size,
      count * size,
      `tensor "${entry.name}"`,
    );
  } finally {
    file.close();
  }
}

/** A tensor's values (or an element range of them) as f32, converted from F16/BF16/F64. */
export async function readTensorF32(
  entry: TensorEntry,
  range?: ElementRange,
): Promise<Float32Array<ArrayBuffer>> {
  if (!FLOAT_DTYPES.includes(entry.dtype)) {
    throw new UserError(
      `${entry.file}: tensor "${entry.name}" has dtype ${entry.dtype}; ` +
        `only ${FLOAT_DTYPES.join(", ")} can be read as floats`,
    );
  }
  const bytes = await readTensorBytes(entry, range);
  switch (entry.dtype) {
    case "F32":
      return new Float32Array(bytes.buffer);
    case "F16":
      return decodeF16(bytes);
    case "BF16":
      return decodeBf16(bytes);
    default:
      return Float32Array.from(new Float64Array(bytes.buffer));
  }
}

/** One tensor to write: its values in f32, whole or as consecutive pieces (row chunks). */
export interface TensorSource {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: WriteDtype;
  readonly data: Float32Array | (() => AsyncIterable<Float32Array>);
}

/** Bytes a tensor takes when written. */
export function storedBytes(tensor: Pick<TensorSource, "shape" | "dtype">): number {
  return elementCount(tensor.shape) * DTYPE_BYTES[tensor.dtype];
}

/** The header JSON for `tensors` stored in the given order, padded to 8 bytes with spaces. */
export function encodeHeader(
  tensors: readonly Pick<TensorSource, "name" | "shape" | "dtype">[],
  metadata: Readonly<Record<string, string>>,
): Uint8Array {
  // No prototype: a tensor named "__proto__" must stay an ordinary key.
  const header: Record<string, unknown> = Object.create(null);
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    if (t.name === "__metadata__" || t.name === "" || Object.hasOwn(header, t.name)) {
      throw new Error(`safetensors: bad or duplicate tensor name "${t.name}"`);
    }
    const bytes = storedBytes(t);
    header[t.name] = {
      dtype: t.dtype,
      shape: [...t.shape],
      data_offsets: [offset, offset + bytes],
    };
    offset += bytes;
  }
  const json = JSON.stringify(header);
  // The data area starts 8-byte aligned, as the reference writer does.
  const padded = json + " ".repeat((8 - (new TextEncoder().encode(json).length % 8)) % 8);
  return new TextEncoder().encode(padded);
}

function encodeValues(values: Float32Array, dtype: WriteDtype): Uint8Array {
  switch (dtype) {
    case "F32":
      return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    case "BF16":
      return encodeBf16(values);
    case "F16":
      return encodeF16(values);
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
}

/**
 * Writes a safetensors file: to `<path>.tmp` first, renamed over `path` once complete, so a
 * crash never leaves a half-written file under the real name. Tensors are stored in the order
 * given; pieces are converted and written one at a time. Returns the file size.
 * `metadata` defaults to {format: "pt"}, which transformers requires to load the file.
 */
export async function writeSafetensors(
  path: string,
  tensors: readonly TensorSource[],
  metadata: Readonly<Record<string, string>> = { format: "pt" },
): Promise<number> {
  const header = encodeHeader(tensors, metadata);
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(header.length), true);
  const temp = `${path}.tmp`;
  const file = await Deno.open(temp, { write: true, create: true, truncate: true });
  let size = 8 + header.length;
  try {
    await writeAll(file, prefix);
    await writeAll(file, header);
    for (const tensor of tensors) {
      const expected = elementCount(tensor.shape);
      let count = 0;
      const pieces = tensor.data instanceof Float32Array ? [tensor.data] : tensor.data();
      for await (const piece of pieces) {
        count += piece.length;
        if (count > expected) break;
        await writeAll(file, encodeValues(piece, tensor.dtype));
      }
      if (count !== expected) {
        throw new Error(
          `safetensors: tensor "${tensor.name}" ${shapeText(tensor.shape)} needs ${expected} ` +
            `values, its data gave ${count > expected ? "more" : count}`,
        );
      }
      size += storedBytes(tensor);
    }
  } catch (e) {
    file.close();
    await Deno.remove(temp).catch(() => {});
    throw e;
  }
  file.close();
  await Deno.rename(temp, path);
  return size;
}
