import { BinaryReader } from "@bufbuild/protobuf/wire";

/** The part of a ts-proto message's functions (`MessageFns<T>`) decodeMessage needs. */
export interface MessageDecoder<T> {
  decode(input: BinaryReader | Uint8Array, length?: number): T;
}

/** Node's Buffer has `utf8Slice` (what `toString("utf8", start, end)` calls after checking its arguments). */
type Utf8Sliceable = Buffer & { utf8Slice?: (start: number, end: number) => string };

const utf8Slice: (buffer: Buffer, start: number, end: number) => string =
  typeof (Buffer.prototype as Utf8Sliceable).utf8Slice === "function"
    ? (buffer, start, end) => (buffer as Utf8Sliceable).utf8Slice!(start, end)
    : (buffer, start, end) => buffer.toString("utf8", start, end);

const fromCharCode = String.fromCharCode;

/**
 * A BinaryReader whose string() decodes without TextDecoder: short ASCII strings are built in JavaScript, the others
 * are decoded by Buffer's utf8Slice straight from the input's memory (no subarray, no copy). The result is exactly
 * TextDecoder's (the one of `getTextEncoding()`: non-fatal, `ignoreBOM: true`): invalid sequences become U+FFFD the
 * same way (WHATWG's "maximal subpart" rule, which Node's UTF-8 decoding follows too), and a leading byte order mark
 * (EF BB BF) is text, U+FEFF, as Buffer decodes it.
 *
 * It is a subclass, not a look-alike: generated decode functions take `input instanceof BinaryReader ? input : new
 * BinaryReader(input)`, and nested messages are decoded with the reader passed in.
 */
class FastReader extends BinaryReader {
  private readonly text: Buffer;

  constructor(bytes: Uint8Array) {
    super(bytes);
    this.text = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** As BinaryReader's string() (`decodeUtf8(this.bytes())`): same position, same errors, same text. */
  override string(): string {
    const len = this.uint32();
    const start = this.pos;
    const end = start + len;
    this.pos = end;
    if (end > this.len) throw new RangeError("premature EOF"); // as BinaryReader's (private) assertBounds throws
    const b = this.text;
    // Up to 8 bytes, all ASCII (the OR of the bytes below 0x80): one String.fromCharCode, no call into C++.
    switch (len) {
      case 0:
        return "";
      case 1: {
        const c0 = b[start]!;
        if (c0 < 0x80) return fromCharCode(c0);
        break;
      }
      case 2: {
        const c0 = b[start]!, c1 = b[start + 1]!;
        if ((c0 | c1) < 0x80) return fromCharCode(c0, c1);
        break;
      }
      case 3: {
        const c0 = b[start]!, c1 = b[start + 1]!, c2 = b[start + 2]!;
        if ((c0 | c1 | c2) < 0x80) return fromCharCode(c0, c1, c2);
        break;
      }
      case 4: {
        const c0 = b[start]!, c1 = b[start + 1]!, c2 = b[start + 2]!, c3 = b[start + 3]!;
        if ((c0 | c1 | c2 | c3) < 0x80) return fromCharCode(c0, c1, c2, c3);
        break;
      }
      case 5: {
        const c0 = b[start]!, c1 = b[start + 1]!, c2 = b[start + 2]!, c3 = b[start + 3]!, c4 = b[start + 4]!;
        if ((c0 | c1 | c2 | c3 | c4) < 0x80) return fromCharCode(c0, c1, c2, c3, c4);
        break;
      }
      case 6: {
        const c0 = b[start]!, c1 = b[start + 1]!, c2 = b[start + 2]!, c3 = b[start + 3]!, c4 = b[start + 4]!, c5 = b[start + 5]!;
        if ((c0 | c1 | c2 | c3 | c4 | c5) < 0x80) return fromCharCode(c0, c1, c2, c3, c4, c5);
        break;
      }
      case 7: {
        const c0 = b[start]!, c1 = b[start + 1]!, c2 = b[start + 2]!, c3 = b[start + 3]!, c4 = b[start + 4]!, c5 = b[start + 5]!, c6 = b[start + 6]!;
        if ((c0 | c1 | c2 | c3 | c4 | c5 | c6) < 0x80) return fromCharCode(c0, c1, c2, c3, c4, c5, c6);
        break;
      }
      case 8: {
        const c0 = b[start]!, c1 = b[start + 1]!, c2 = b[start + 2]!, c3 = b[start + 3]!, c4 = b[start + 4]!, c5 = b[start + 5]!, c6 = b[start + 6]!, c7 = b[start + 7]!;
        if ((c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7) < 0x80) return fromCharCode(c0, c1, c2, c3, c4, c5, c6, c7);
        break;
      }
    }
    return utf8Slice(this.text, start, end);
  }
}

/**
 * Decodes a message the way `fns.decode(bytes)` does (the same value, the same errors for malformed input), faster:
 * with a BinaryReader whose strings are not decoded by TextDecoder (see FastReader). Everything but string() is
 * BinaryReader's own code. A 10k-rule ListRulesResponse (50k short strings) decodes in about two thirds of the time
 * (test/unit/fast-reader.test.ts prints both); most of what remains is building the objects and collecting garbage.
 *
 * Assumes @bufbuild/protobuf's default text encoding (TextDecoder); one set with configureTextEncoding() is not used.
 */
export function decodeMessage<T>(fns: MessageDecoder<T>, bytes: Uint8Array): T {
  return fns.decode(new FastReader(bytes));
}

/**
 * A repeated message field of a request whose items are decoded one at a time, when read (see LazyItems): for a
 * big request whose items are used in order and then dropped (ApplyRuleset's 10k rules), so that they are not all
 * decoded up front and then kept alive, and copied by the garbage collector, for the whole request.
 */
export interface LazyField {
  /** The field's name in the generated message type (e.g. "rules"). */
  readonly field: string;
  readonly number: number;
  /** The generated functions of the item message. */
  readonly item: MessageDecoder<unknown>;
}

/**
 * The items of a lazily decoded field: `length`, `at(i)` (a fresh decode on each call) and iteration, as an array
 * reader would use them; no other array method. A malformed item throws when it is read.
 */
export class LazyItems<T> implements Iterable<T> {
  readonly #bytes: Uint8Array;
  readonly #bounds: readonly number[];
  readonly #item: MessageDecoder<T>;

  constructor(bytes: Uint8Array, bounds: readonly number[], item: MessageDecoder<T>) {
    this.#bytes = bytes;
    this.#bounds = bounds;
    this.#item = item;
  }

  get length(): number {
    return this.#bounds.length / 2;
  }

  at(index: number): T | undefined {
    const i = index < 0 ? index + this.length : index;
    if (!Number.isInteger(i) || i < 0 || i >= this.length) return undefined;
    return decodeMessage(this.#item, this.#bytes.subarray(this.#bounds[2 * i], this.#bounds[2 * i + 1]));
  }

  *[Symbol.iterator](): Iterator<T> {
    for (let i = 0; i < this.length; i++) yield this.at(i)!;
  }
}

/** decodeMessage, with one repeated message field left as LazyItems (see LazyField). */
export function decodeWithLazyField<T>(fns: MessageDecoder<T>, bytes: Uint8Array, lazy: LazyField): T {
  const reader = new BinaryReader(bytes);
  const bounds: number[] = [];
  const rest: Uint8Array[] = [];
  while (reader.pos < reader.len) {
    const start = reader.pos;
    const [number, wireType] = reader.tag();
    if (number === lazy.number && wireType === 2) {
      const length = reader.uint32();
      if (reader.pos + length > reader.len) throw new RangeError("premature EOF");
      bounds.push(reader.pos, reader.pos + length);
      reader.pos += length;
    } else {
      reader.skip(wireType, number);
      rest.push(bytes.subarray(start, reader.pos));
    }
  }
  const message = decodeMessage(fns, rest.length === 1 ? rest[0]! : Buffer.concat(rest));
  (message as Record<string, unknown>)[lazy.field] = new LazyItems(bytes, bounds, lazy.item);
  return message;
}
