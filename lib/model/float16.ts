// 16-bit float formats to and from f32, bit-exact, written out here rather than trusting a
// platform conversion (Float16Array is not everywhere, and bfloat16 is nowhere).
//
//   f16  (IEEE binary16): sign 1 | exponent 5 (bias 15)  | mantissa 10
//   bf16 (bfloat16):      sign 1 | exponent 8 (bias 127) | mantissa 7   = the top half of an f32
//   f32  (IEEE binary32): sign 1 | exponent 8 (bias 127) | mantissa 23
//
// Widening (f16/bf16 → f32) is exact for every input, NaN payloads included. Narrowing
// (f32 → f16/bf16) rounds to nearest, ties to even, as PyTorch and the hardware do; NaN stays
// NaN (quiet bit set, sign and top payload bits kept), overflow goes to ±inf. Everything works
// on bit patterns (u32 / u16 as numbers), never through a JS number, so NaN payloads survive.
// Byte order: little-endian, the order of safetensors and of every machine we run on.

/** f16 bit pattern (0..0xffff) → f32 bit pattern (u32). */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0; // inf, NaN
  if (exponent !== 0) return (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0;
  if (mantissa === 0) return sign >>> 0; // ±0
  // Subnormal: mantissa · 2^-24. Shift the leading 1 up to the implicit-bit position.
  let biased = 113;
  let m = mantissa;
  while ((m & 0x400) === 0) {
    m <<= 1;
    biased--;
  }
  return (sign | (biased << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

/** bf16 bit pattern → f32 bit pattern: bf16 is the top half of an f32. */
export function bf16BitsToF32Bits(b: number): number {
  return (b << 16) >>> 0;
}

/** f32 bit pattern → bf16 bit pattern, round to nearest even. */
export function f32BitsToBf16Bits(bits: number): number {
  bits >>>= 0;
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x0040; // NaN: stay NaN
  // Adding 0x7fff plus the lowest kept bit rounds half-way cases to the even neighbour.
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** f32 bit pattern → f16 bit pattern, round to nearest even (subnormals and overflow too). */
export function f32BitsToF16Bits(bits: number): number {
  bits >>>= 0;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) {
    return mantissa === 0 ? sign | 0x7c00 : sign | 0x7c00 | 0x200 | (mantissa >>> 13); // inf, NaN
  }
  const e = exponent - 127 + 15; // the f16 biased exponent, before rounding
  if (e >= 0x1f) return sign | 0x7c00; // too large even before rounding: inf
  if (e <= 0) {
    // f16 subnormal (or zero): count units of 2^-24, rounding the dropped bits.
    if (e < -10) return sign; // below half the smallest subnormal: ±0
    const m = mantissa | 0x800000; // the 24-bit significand with its implicit 1
    const shift = 14 - e;
    let half = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (half & 1) === 1)) half++; // may carry to normal
    return sign | half;
  }
  let half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++; // may carry to inf
  return sign | half;
}

// Scalar conveniences over JS numbers (for tests and small values; NaN payloads not kept).
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

export function f32ToBits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0];
}

export function bitsToF32(bits: number): number {
  scratchU32[0] = bits;
  return scratchF32[0];
}

/** The value of an f16 bit pattern. */
export function f16ToNumber(h: number): number {
  return bitsToF32(f16BitsToF32Bits(h));
}

/** The value of a bf16 bit pattern. */
export function bf16ToNumber(b: number): number {
  return bitsToF32(bf16BitsToF32Bits(b));
}

// Bulk conversions on byte buffers, as stored in a file.

let f16Table: Uint32Array | undefined;

/** All 65,536 f16 → f32 widenings, built on first use (256 KiB). */
function f16ToF32Table(): Uint32Array {
  if (!f16Table) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32Bits(h);
  }
  return f16Table;
}

/** A Uint16Array over `bytes` (copied when the view would be misaligned). */
function halves(bytes: Uint8Array): Uint16Array {
  if (bytes.byteLength % 2 !== 0) throw new Error(`16-bit data of odd length ${bytes.byteLength}`);
  const aligned = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
  return new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
}

/** Little-endian f16 bytes → f32 values (exact). */
export function decodeF16(bytes: Uint8Array): Float32Array<ArrayBuffer> {
  const src = halves(bytes);
  const table = f16ToF32Table();
  const out = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]];
  return new Float32Array(out.buffer);
}

/** Little-endian bf16 bytes → f32 values (exact). */
export function decodeBf16(bytes: Uint8Array): Float32Array<ArrayBuffer> {
  const src = halves(bytes);
  const out = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i] << 16;
  return new Float32Array(out.buffer);
}

/** f32 values → little-endian bf16 bytes, round to nearest even. */
export function encodeBf16(values: Float32Array): Uint8Array<ArrayBuffer> {
  const src = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToBf16Bits(src[i]);
  return new Uint8Array(out.buffer);
}

/** f32 values → little-endian f16 bytes, round to nearest even. */
export function encodeF16(values: Float32Array): Uint8Array<ArrayBuffer> {
  const src = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToF16Bits(src[i]);
  return new Uint8Array(out.buffer);
}
