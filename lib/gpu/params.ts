// Kernel parameters: a WGSL uniform struct of 32-bit scalars, packed in declaration order.
//
//   WGSL:  struct Params { rows: u32, cols: u32, eps: f32 }
//   TS:    new Params().u32(rows).u32(cols).f32(eps)

export class Params {
  readonly #view = new DataView(new ArrayBuffer(256));
  #length = 0;

  #next(): number {
    if (this.#length + 4 > this.#view.byteLength) throw new Error("kernel params exceed 256 bytes");
    const at = this.#length;
    this.#length += 4;
    return at;
  }

  u32(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new Error(`param ${value} is not a u32`);
    }
    this.#view.setUint32(this.#next(), value, true);
    return this;
  }

  i32(value: number): this {
    if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) {
      throw new Error(`param ${value} is not an i32`);
    }
    this.#view.setInt32(this.#next(), value, true);
    return this;
  }

  f32(value: number): this {
    this.#view.setFloat32(this.#next(), value, true);
    return this;
  }

  /** The packed bytes, padded to 16 (WGSL uniform structs are 16-byte aligned in size). */
  bytes(): Uint8Array<ArrayBuffer> {
    const padded = Math.max(16, Math.ceil(this.#length / 16) * 16);
    return new Uint8Array(this.#view.buffer, 0, padded);
  }
}
