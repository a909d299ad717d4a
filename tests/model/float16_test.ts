// f16 / bf16 ↔ f32 conversions: exhaustive where cheap, checked against independent oracles
// (V8's Float16Array / Math.f16round for f16, a nearest-value search for bf16), plus the
// edge cases spelled out: subnormals, infinities, NaN, rounding ties, overflow.

import {
  bf16BitsToF32Bits,
  bitsToF32,
  decodeBf16,
  decodeF16,
  encodeBf16,
  encodeF16,
  f16BitsToF32Bits,
  f16ToNumber,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  f32ToBits,
} from "../../lib/model/float16.ts";
import { Rng } from "../helpers.ts";
import { assert } from "./model_helpers.ts";

const hex = (n: number) => `0x${n.toString(16)}`;

function assertSameValue(actual: number, expected: number, what: string): void {
  assert(Object.is(actual, expected), `${what}: got ${actual}, expected ${expected}`);
}

Deno.test("float16: every f16 widens to the value Float16Array gives", () => {
  const oracle = new Float16Array(new Uint16Array(65536).map((_, i) => i).buffer);
  for (let h = 0; h < 65536; h++) {
    assertSameValue(f16ToNumber(h), oracle[h], `f16 ${hex(h)}`);
  }
});

Deno.test("float16: f16 widening keeps NaN payloads, signs and subnormals exactly", () => {
  assert(f16BitsToF32Bits(0x7e00) === 0x7fc00000, "quiet NaN");
  assert(f16BitsToF32Bits(0x7c01) === 0x7f802000, "signalling NaN payload");
  assert(f16BitsToF32Bits(0xfe00) === 0xffc00000, "negative NaN");
  assert(f16BitsToF32Bits(0x8000) === 0x80000000, "-0");
  assertSameValue(f16ToNumber(0x0001), 2 ** -24, "smallest subnormal");
  assertSameValue(f16ToNumber(0x03ff), 1023 * 2 ** -24, "largest subnormal");
  assertSameValue(f16ToNumber(0x0400), 2 ** -14, "smallest normal");
  assertSameValue(f16ToNumber(0x7bff), 65504, "largest finite");
  assertSameValue(f16ToNumber(0xfc00), -Infinity, "-inf");
});

Deno.test("float16: f32 → f16 rounds like Math.f16round (edge cases and 200k random)", () => {
  const cases = [
    0,
    -0,
    1,
    -1,
    65504,
    65519.99,
    65520,
    65536,
    1e6,
    -1e6,
    Infinity,
    -Infinity,
    1 + 2 ** -11, // tie → 1 (even)
    1 + 3 * 2 ** -11, // tie → 1 + 2^-9 (even)
    2 ** -25, // tie between 0 and the smallest subnormal → 0
    3 * 2 ** -25, // tie between 1 and 2 units → 2
    2 ** -25 * 1.0000001, // just above the tie → smallest subnormal
    1023.5 * 2 ** -24, // tie between the largest subnormal and the smallest normal → normal
    2 ** -26,
    1e-45, // an f32 subnormal → 0
    -5.96e-8,
  ];
  const rng = new Rng(16);
  const bits: number[] = cases.map(f32ToBits);
  for (let i = 0; i < 100_000; i++) bits.push(Math.floor(rng.next() * 2 ** 32)); // any pattern
  for (let i = 0; i < 100_000; i++) {
    // Mostly the f16 range, where the interesting rounding happens.
    bits.push(f32ToBits((rng.next() - 0.5) * 2 ** (rng.int(50) - 30)));
  }
  for (const b of bits) {
    const x = bitsToF32(b);
    const got = f16ToNumber(f32BitsToF16Bits(b));
    if (Number.isNaN(x)) {
      assert(Number.isNaN(got), `f32 ${hex(b)} (NaN) must stay NaN`);
    } else {
      assertSameValue(got, Math.f16round(x), `f32 ${hex(b)} = ${x}`);
    }
  }
  assert(f32BitsToF16Bits(0x7fc00000) === 0x7e00, "quiet NaN → 0x7e00");
  assert(f32BitsToF16Bits(0x7f800001) !== 0x7c00, "a NaN with a low payload must not become inf");
  assert(f32BitsToF16Bits(0xff800000) === 0xfc00, "-inf");
});

/** bf16 oracle: the nearer of the two bf16 values around x, ties to the even mantissa. */
function bf16Oracle(bits: number): number {
  const lower = bits >>> 16;
  const upper = (lower + 1) & 0xffff;
  const x = bitsToF32(bits);
  const a = bitsToF32(lower << 16);
  // Past the largest finite value, IEEE rounding treats inf as if it were 2^128.
  const b = (upper & 0x7fff) === 0x7f80 ? Math.sign(x) * 2 ** 128 : bitsToF32(upper << 16);
  const da = Math.abs(x - a); // exact in f64
  const db = Math.abs(x - b);
  if (da < db) return lower;
  if (db < da) return upper;
  return (lower & 1) === 0 ? lower : upper;
}

Deno.test("float16: f32 → bf16 rounds to nearest even (edge cases and 200k random)", () => {
  const rng = new Rng(17);
  const bits: number[] = [
    f32ToBits(1 + 2 ** -8), // tie → 1
    f32ToBits(1 + 3 * 2 ** -8), // tie → 1 + 2^-6
    f32ToBits(3.4e38), // rounds past the largest bf16 → inf
    0x7f7fffff, // largest f32 → inf
    0x00000001, // the smallest f32 subnormal → 0
    0x00008000, // tie at a subnormal → 0 (even)
    0x00018000, // tie → 0x0002 (even)
    0x007fffff, // largest f32 subnormal → smallest normal
  ];
  for (let i = 0; i < 200_000; i++) bits.push(Math.floor(rng.next() * 2 ** 32));
  for (const b of bits) {
    if (Number.isNaN(bitsToF32(b))) continue;
    const got = f32BitsToBf16Bits(b);
    const want = bf16Oracle(b);
    assert(got === want, `f32 ${hex(b)}: bf16 ${hex(got)}, expected ${hex(want)}`);
  }
  assert(f32BitsToBf16Bits(f32ToBits(1 + 2 ** -8)) === 0x3f80, "tie to even (down)");
  assert(f32BitsToBf16Bits(f32ToBits(1 + 3 * 2 ** -8)) === 0x3f82, "tie to even (up)");
  assert(f32BitsToBf16Bits(0x7f800000) === 0x7f80, "inf");
  assert(f32BitsToBf16Bits(0xff800000) === 0xff80, "-inf");
  assert(f32BitsToBf16Bits(0x7fc00000) === 0x7fc0, "quiet NaN");
  assert(f32BitsToBf16Bits(0x7f800001) === 0x7fc0, "NaN with a low payload stays NaN");
  assert(f32BitsToBf16Bits(0xffc00001) === 0xffc0, "negative NaN keeps its sign");
  assert(f32BitsToBf16Bits(0x80000000) === 0x8000, "-0");
  for (let b = 0; b < 65536; b++) {
    assert(bf16BitsToF32Bits(b) === (b << 16) >>> 0, `bf16 ${hex(b)} widening`);
    // Every bf16 value survives f32 → bf16 unchanged (NaN patterns are quieted, not kept).
    const isNaN = (b & 0x7fff) > 0x7f80;
    if (!isNaN) assert(f32BitsToBf16Bits(bf16BitsToF32Bits(b)) === b, `bf16 ${hex(b)} round trip`);
  }
});

Deno.test("float16: bulk byte conversions match the scalar ones (and unaligned input)", () => {
  const rng = new Rng(18);
  const values = rng.normals(1001, 100);
  values[0] = NaN;
  values[1] = -0;
  values[2] = 1e-42;
  const asBits = new Uint32Array(values.buffer);
  const bf16 = encodeBf16(values);
  const f16 = encodeF16(values);
  const bf16Halves = new Uint16Array(bf16.buffer);
  const f16Halves = new Uint16Array(f16.buffer);
  for (let i = 0; i < values.length; i++) {
    assert(bf16Halves[i] === f32BitsToBf16Bits(asBits[i]), `bf16 bulk ${i}`);
    assert(f16Halves[i] === f32BitsToF16Bits(asBits[i]), `f16 bulk ${i}`);
  }
  // Decode from an odd byte offset: the decoder must copy rather than misread.
  const shifted = new Uint8Array(bf16.length + 1);
  shifted.set(bf16, 1);
  const widened = decodeBf16(shifted.subarray(1));
  const widenedBits = new Uint32Array(widened.buffer);
  for (let i = 0; i < values.length; i++) {
    assert(widenedBits[i] === bf16BitsToF32Bits(bf16Halves[i]), `bf16 decode ${i}`);
  }
  const f16Widened = new Uint32Array(decodeF16(f16).buffer);
  for (let i = 0; i < values.length; i++) {
    assert(f16Widened[i] === f16BitsToF32Bits(f16Halves[i]), `f16 decode ${i}`);
  }
});
