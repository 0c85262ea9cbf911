// A fast drop-in for @bufbuild/protobuf's BinaryWriter, for the code ts-proto generates into sdk/src/gen.
//
// Since 2.11 BinaryWriter also writes into one growable buffer (before, a number array plus a chunk per string and
// fork took well over 100 ms for a 2 MB ListRulesResponse); FastWriter still encodes that message in about half its
// time (test/unit/fast-writer.test.ts prints both) and a GetJail with 1,000 bans ≈ 1 ms sooner end to end (jail
// bench, measured with and without it):
//   - fork() remembers where the length goes and reserves 1 byte for it; join() writes the length there, first
//     moving the content forward (copyWithin) in the rare case the length needs more than 1 byte;
//   - strings are encoded straight into the buffer (short ones in JS, longer ones with Buffer's native UTF-8 writer),
//     without measuring them first: the length goes in front afterwards (moving the text in the rare case its varint
//     is longer or shorter than guessed);
//   - finish() copies the written bytes out into a Buffer of exactly that size and keeps the scratch buffer, so a
//     writer can be reused (see encodeMessage in ./encode.ts).
// The bytes are identical to BinaryWriter's, and so are the errors for invalid values (same checks, same messages;
// 64-bit values outside the fast path go through the same protoInt64 conversion).
import { protoInt64 } from "@bufbuild/protobuf";

const UINT32_MAX = 0xffffffff;
const INT32_MAX = 0x7fffffff;
const INT32_MIN = -0x80000000;
const FLOAT32_MAX = 3.4028234663852886e38;
const FLOAT32_MIN = -3.4028234663852886e38;
const TWO_PWR_32 = 0x100000000;

/** Strings up to this many UTF-16 units are encoded in JS (calling into C++ costs more than it saves for them). */
const JS_UTF8_MAX = 24;
/** A string of fewer than this many UTF-16 units has at most 3 * 42 = 126 UTF-8 bytes: its length fits in 1 byte. */
const SHORT_STRING = 43;
/** Scratch buffers bigger than this are dropped by finish() rather than kept for the next message. */
const MAX_RETAINED = 8 * 1024 * 1024;
const DEFAULT_INITIAL_SIZE = 1024;

type Utf8Write = (this: Buffer, string: string, offset: number, length: number) => number;
const nativeUtf8Write: Utf8Write =
  typeof (Buffer.prototype as unknown as { utf8Write?: Utf8Write }).utf8Write === "function"
    ? (Buffer.prototype as unknown as { utf8Write: Utf8Write }).utf8Write
    : function (this: Buffer, string: string, offset: number, length: number): number {
        return this.write(string, offset, length, "utf8");
      };

// For float/double/fixed64: the same DataView operations BinaryWriter performs, on 8 scratch bytes.
const scratchBytes = new Uint8Array(8);
const scratchView = new DataView(scratchBytes.buffer);

export class FastWriter {
  private buf: Buffer;
  private pos = 0;
  /** Positions of the length byte reserved by each open fork(). */
  private readonly stack: number[] = [];
  private readonly initialSize: number;

  constructor(initialSize = DEFAULT_INITIAL_SIZE) {
    this.initialSize = Math.max(16, initialSize | 0);
    this.buf = Buffer.allocUnsafe(this.initialSize);
  }

  /**
   * Returns all bytes written as a new Buffer of exactly that length and resets this writer for reuse (open forks
   * are forgotten, as BinaryWriter forgets them).
   */
  finish(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    this.reset();
    return out;
  }

  /** Forgets everything written and every open fork (e.g. after an encode threw half-way). */
  reset(): void {
    this.pos = 0;
    this.stack.length = 0;
    if (this.buf.length > MAX_RETAINED) this.buf = Buffer.allocUnsafe(this.initialSize);
  }

  /** Starts a length-delimited part (a message or a packed repeated field); end it with join(). */
  fork(): this {
    this.ensure(1);
    this.stack.push(this.pos);
    this.buf[this.pos++] = 0; // the length's place holds 0 until join() (what a finish() in between returns, as BinaryWriter)
    return this;
  }

  /** Ends the last fork(): writes the length of what was written since in front of it. */
  join(): this {
    const start = this.stack.pop();
    if (start === undefined) throw new Error("invalid state, fork stack empty");
    const length = this.pos - start - 1;
    if (length < 0x80) {
      this.buf[start] = length;
      return this;
    }
    const size = varintSize(length);
    this.ensure(size - 1);
    const buf = this.buf;
    buf.copyWithin(start + size, start + 1, this.pos);
    let p = start;
    let value = length;
    while (value > 0x7f) {
      buf[p++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    buf[p] = value;
    this.pos += size - 1;
    return this;
  }

  /** Writes a tag (field number and wire type); generated code computes tags ahead of time and calls uint32(). */
  tag(fieldNo: number, type: number): this {
    return this.uint32(((fieldNo << 3) | type) >>> 0);
  }

  /** Writes raw bytes. */
  raw(chunk: Uint8Array): this {
    const length = chunk.length;
    this.ensure(length);
    this.buf.set(chunk, this.pos);
    this.pos += length;
    return this;
  }

  /** Writes a `uint32`, an unsigned 32-bit varint. */
  uint32(value: number): this {
    if (typeof value !== "number" || value >>> 0 !== value) value = assertUInt32(value);
    this.ensure(5);
    const buf = this.buf;
    let p = this.pos;
    while (value > 0x7f) {
      buf[p++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    buf[p++] = value;
    this.pos = p;
    return this;
  }

  /** Writes an `int32`, a signed 32-bit varint (negative values take 10 bytes). */
  int32(value: number): this {
    if (typeof value !== "number" || (value | 0) !== value) value = assertInt32(value);
    this.writeVarint32(value);
    return this;
  }

  /** Writes a `sint32`, a zigzag-encoded signed 32-bit varint. */
  sint32(value: number): this {
    if (typeof value !== "number" || (value | 0) !== value) value = assertInt32(value);
    this.writeVarint32(((value << 1) ^ (value >> 31)) >>> 0);
    return this;
  }

  /** Writes an `int64`, a signed 64-bit varint. */
  int64(value: bigint | number | string): this {
    if (typeof value === "number" && Number.isSafeInteger(value)) {
      if (value >= 0 && value <= UINT32_MAX) return this.uint32(value);
      const hi = Math.floor(value / TWO_PWR_32);
      this.writeVarint64((value - hi * TWO_PWR_32) | 0, hi | 0);
      return this;
    }
    const tc = protoInt64.enc(value);
    this.writeVarint64(tc.lo, tc.hi);
    return this;
  }

  /** Writes a `uint64`, an unsigned 64-bit varint. */
  uint64(value: bigint | number | string): this {
    if (typeof value === "number" && value >= 0 && Number.isSafeInteger(value)) {
      if (value <= UINT32_MAX) return this.uint32(value);
      const hi = Math.floor(value / TWO_PWR_32);
      this.writeVarint64((value - hi * TWO_PWR_32) | 0, hi | 0);
      return this;
    }
    const tc = protoInt64.uEnc(value);
    this.writeVarint64(tc.lo, tc.hi);
    return this;
  }

  /** Writes a `sint64`, a zigzag-encoded signed 64-bit varint. */
  sint64(value: bigint | number | string): this {
    const tc = protoInt64.enc(value);
    const sign = tc.hi >> 31;
    this.writeVarint64((tc.lo << 1) ^ sign, ((tc.hi << 1) | (tc.lo >>> 31)) ^ sign);
    return this;
  }

  /** Writes a `bool`. */
  bool(value: boolean): this {
    this.ensure(1);
    this.buf[this.pos++] = value ? 1 : 0;
    return this;
  }

  /** Writes a `bytes` value: its length, then the bytes. */
  bytes(value: Uint8Array): this {
    this.uint32(value.byteLength);
    return this.raw(value);
  }

  /** Writes a `string` as UTF-8 (lone surrogates become U+FFFD, as with TextEncoder): its length, then the bytes. */
  string(value: string): this {
    // What BinaryWriter does with a non-string: String() of it.
    if (typeof value !== "string") value = String(value);
    const units = value.length;
    if (units < SHORT_STRING) {
      // At most 126 bytes: reserve 1 length byte, write the text, then its real length.
      this.ensure(1 + units * 3);
      const start = this.pos;
      const end = units <= JS_UTF8_MAX ? writeUtf8(value, this.buf, start + 1) : start + 1 + nativeUtf8Write.call(this.buf, value, start + 1, units * 3);
      this.buf[start] = end - start - 1;
      this.pos = end;
      return this;
    }
    // Longer: guess the text is ASCII (length = units) and reserve room for that length's varint; write the text
    // after it, then move it if the real length's varint is longer. Cheaper than Buffer.byteLength first.
    const max = units * 3;
    this.ensure(5 + max);
    const start = this.pos;
    const reserved = varintSize(units);
    const length = nativeUtf8Write.call(this.buf, value, start + reserved, max);
    const size = varintSize(length);
    if (size !== reserved) this.buf.copyWithin(start + size, start + reserved, start + reserved + length);
    this.pos = start;
    this.uint32(length);
    this.pos = start + size + length;
    return this;
  }

  /** Writes a `float`, a 32-bit little-endian IEEE 754 number. */
  float(value: number): this {
    assertFloat32(value);
    scratchView.setFloat32(0, value, true);
    return this.copyScratch(4);
  }

  /** Writes a `double`, a 64-bit little-endian IEEE 754 number. */
  double(value: number): this {
    scratchView.setFloat64(0, value, true);
    return this.copyScratch(8);
  }

  /** Writes a `fixed32`, an unsigned little-endian 32-bit integer. */
  fixed32(value: number): this {
    value = assertUInt32(value);
    scratchView.setUint32(0, value, true);
    return this.copyScratch(4);
  }

  /** Writes a `sfixed32`, a signed little-endian 32-bit integer. */
  sfixed32(value: number): this {
    value = assertInt32(value);
    scratchView.setInt32(0, value, true);
    return this.copyScratch(4);
  }

  /** Writes a `fixed64`, an unsigned little-endian 64-bit integer. */
  fixed64(value: bigint | number | string): this {
    const tc = protoInt64.uEnc(value);
    scratchView.setInt32(0, tc.lo, true);
    scratchView.setInt32(4, tc.hi, true);
    return this.copyScratch(8);
  }

  /** Writes a `sfixed64`, a signed little-endian 64-bit integer. */
  sfixed64(value: bigint | number | string): this {
    const tc = protoInt64.enc(value);
    scratchView.setInt32(0, tc.lo, true);
    scratchView.setInt32(4, tc.hi, true);
    return this.copyScratch(8);
  }

  private copyScratch(length: number): this {
    this.ensure(length);
    for (let i = 0; i < length; i++) this.buf[this.pos++] = scratchBytes[i]!;
    return this;
  }

  /** varint32write from @bufbuild/protobuf: negative values are sign-extended to 10 bytes. */
  private writeVarint32(value: number): void {
    this.ensure(10);
    const buf = this.buf;
    let p = this.pos;
    if (value >= 0) {
      while (value > 0x7f) {
        buf[p++] = (value & 0x7f) | 0x80;
        value >>>= 7;
      }
      buf[p++] = value;
    } else {
      for (let i = 0; i < 9; i++) {
        buf[p++] = (value & 0x7f) | 0x80;
        value >>= 7;
      }
      buf[p++] = 1;
    }
    this.pos = p;
  }

  /** varint64write from @bufbuild/protobuf, writing into the buffer. */
  private writeVarint64(lo: number, hi: number): void {
    this.ensure(10);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < 28; i += 7) {
      const shift = lo >>> i;
      const hasNext = !(shift >>> 7 === 0 && hi === 0);
      buf[p++] = (hasNext ? shift | 0x80 : shift) & 0xff;
      if (!hasNext) {
        this.pos = p;
        return;
      }
    }
    const splitBits = ((lo >>> 28) & 0x0f) | ((hi & 0x07) << 4);
    const hasMoreBits = !(hi >> 3 === 0);
    buf[p++] = (hasMoreBits ? splitBits | 0x80 : splitBits) & 0xff;
    if (hasMoreBits) {
      let i = 3;
      for (; i < 31; i += 7) {
        const shift = hi >>> i;
        const hasNext = !(shift >>> 7 === 0);
        buf[p++] = (hasNext ? shift | 0x80 : shift) & 0xff;
        if (!hasNext) break;
      }
      if (i >= 31) buf[p++] = (hi >>> 31) & 0x01;
    }
    this.pos = p;
  }

  private ensure(extra: number): void {
    if (this.pos + extra > this.buf.length) this.grow(extra);
  }

  private grow(extra: number): void {
    const needed = this.pos + extra;
    let size = this.buf.length * 2;
    while (size < needed) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
}

/** Bytes in the varint of a uint32. */
function varintSize(value: number): number {
  return value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : value < 0x10000000 ? 4 : 5;
}

/** UTF-8 encodes a (short) string into buf at p, exactly as TextEncoder does; returns the position after it. */
function writeUtf8(value: string, buf: Buffer, p: number): number {
  const length = value.length;
  for (let i = 0; i < length; i++) {
    let c = value.charCodeAt(i);
    if (c < 0x80) {
      buf[p++] = c;
    } else if (c < 0x800) {
      buf[p++] = 0xc0 | (c >> 6);
      buf[p++] = 0x80 | (c & 0x3f);
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const next = i + 1 < length ? value.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
          i++;
          buf[p++] = 0xf0 | (c >> 18);
          buf[p++] = 0x80 | ((c >> 12) & 0x3f);
          buf[p++] = 0x80 | ((c >> 6) & 0x3f);
          buf[p++] = 0x80 | (c & 0x3f);
          continue;
        }
        c = 0xfffd; // a lone surrogate
      }
      buf[p++] = 0xe0 | (c >> 12);
      buf[p++] = 0x80 | ((c >> 6) & 0x3f);
      buf[p++] = 0x80 | (c & 0x3f);
    }
  }
  return p;
}

// The checks BinaryWriter makes (same messages); they return the value as a number.
function assertInt32(arg: unknown): number {
  if (typeof arg == "string") arg = Number(arg);
  else if (typeof arg != "number") throw new Error("invalid int32: " + typeof arg);
  const n = arg as number;
  if (!Number.isInteger(n) || n > INT32_MAX || n < INT32_MIN) throw new Error("invalid int32: " + n);
  return n;
}

function assertUInt32(arg: unknown): number {
  if (typeof arg == "string") arg = Number(arg);
  else if (typeof arg != "number") throw new Error("invalid uint32: " + typeof arg);
  const n = arg as number;
  if (!Number.isInteger(n) || n > UINT32_MAX || n < 0) throw new Error("invalid uint32: " + n);
  return n;
}

function assertFloat32(arg: unknown): void {
  if (typeof arg == "string") {
    const o = arg;
    arg = Number(arg);
    if (Number.isNaN(arg) && o !== "NaN") throw new Error("invalid float32: " + o);
  } else if (typeof arg != "number") {
    throw new Error("invalid float32: " + typeof arg);
  }
  const n = arg as number;
  if (Number.isFinite(n) && (n > FLOAT32_MAX || n < FLOAT32_MIN)) throw new Error("invalid float32: " + n);
}
