import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { createFileRegistry, fromBinary, ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { ListRulesResponse, Rule } from "@portcullis/sdk/gen/portcullis/v1/firewall.js";
import { decodeMessage } from "@portcullis/sdk/wire/decode.js";
import { withFastEncoding } from "@portcullis/sdk/wire/fast-services.js";
import { GEN, isMessageFns, random, tenThousandRules, type MessageFns } from "./helpers/generated-messages.js";

// decodeMessage(X, bytes) must return exactly what X.decode(bytes) returns (or throw the same error) for everything:
// checked on random wire bytes of every message type in sdk/src/gen (built from the descriptors in portcullis.binpb,
// with string fields holding any bytes at all, valid UTF-8 or not), on strings of every length up to 200 and of 16k,
// on every string of one and two bytes, on truncated and random input, and through withFastEncoding's deserializers.

const SEED = Number(process.env.FAST_READER_SEED ?? 20251126);

const pick = <T>(rand: () => number, values: readonly T[]): T => values[Math.floor(rand() * values.length)]!;
const int = (rand: () => number, below: number): number => Math.floor(rand() * below);
const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");

/** The same input three ways: a Uint8Array of its own, a Buffer, and a view into a bigger buffer between junk bytes. */
function inputsOf(bytes: Uint8Array): Array<[string, Uint8Array]> {
  const junk = [0xbf, 0x80, 0xbb, 0xef];
  const big = new Uint8Array(bytes.length + 7).fill(0xbf);
  big.set(junk.slice(0, 3), 0);
  big.set(bytes, 3);
  big.set(junk, bytes.length + 3);
  return [["Uint8Array", new Uint8Array(bytes)], ["Buffer", Buffer.from(bytes)], ["view at offset 3", big.subarray(3, 3 + bytes.length)]];
}

/** A Date as deepStrictEqual can compare it: two invalid Dates (NaN) are not deep-equal, these are. */
class DateValue {
  constructor(readonly time: string) {}
}

/** The value with its Dates (ts-proto's Timestamps, invalid ones too) replaced by DateValues; the rest as it is. */
function comparable(value: unknown): unknown {
  if (value instanceof Date) return new DateValue(String(value.getTime()));
  if (Array.isArray(value)) return value.map(comparable);
  if (typeof value !== "object" || value === null || ArrayBuffer.isView(value)) return value;
  assert.equal(Object.getPrototypeOf(value), Object.prototype, "decoded messages are plain objects");
  return Object.fromEntries(Object.entries(value).map(([key, field]) => [key, comparable(field)]));
}

/** decodeMessage must give X.decode's value (deepStrictEqual), or throw the same error; returns whether it decoded. */
function sameDecode(fns: MessageFns, bytes: Uint8Array, what: string): boolean {
  let ok = true;
  for (const [kind, input] of inputsOf(bytes)) {
    let expected: unknown;
    let expectedError: unknown;
    try {
      expected = fns.decode(input);
    } catch (error) {
      expectedError = error;
    }
    const label = `${what} (${kind}, ${bytes.length} bytes${bytes.length <= 64 ? ` ${hex(bytes)}` : ""})`;
    if (expectedError === undefined) {
      assert.deepEqual(comparable(decodeMessage(fns, input)), comparable(expected), label);
      continue;
    }
    ok = false;
    assert.throws(() => decodeMessage(fns, input), (error: unknown) => {
      assert.ok(error instanceof Error && expectedError instanceof Error, `${label}: ${String(error)} / ${String(expectedError)}`);
      assert.equal(error.constructor, expectedError.constructor, label);
      assert.equal(error.message, expectedError.message, label);
      return true;
    }, `${label}: expected ${String(expectedError)}`);
  }
  return ok;
}

// ---- string bytes -----------------------------------------------------------------------------------------------

const utf8 = (text: string): number[] => [...Buffer.from(text, "utf8")];

/** Byte sequences to build string fields from: valid UTF-8 of every width, and every kind of invalid UTF-8. */
const PIECES: Record<string, readonly number[][]> = {
  ascii: [..."abcxyzABC019 -/_.:\"'\\~"].map(utf8).concat([[0x00], [0x01], [0x0a], [0x7f]]),
  twoBytes: ["é", "ß", "ñ", "\u0080", "\u07ff"].map(utf8),
  threeBytes: ["€", "中", "✓", "\u0800", "\uffff", "\ufffd", "\ufeff"].map(utf8),
  fourBytes: ["😀", "🚀", "🧱", "\u{10000}", "\u{10ffff}"].map(utf8),
  // A byte order mark: text like any other (protobuf-es decodes with ignoreBOM since 2.11).
  bom: [[0xef, 0xbb, 0xbf], [0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf]],
  // What lone surrogates become: U+FFFD from TextEncoder (and Buffer), ED A0 80… from WTF-8/CESU-8 writers.
  surrogates: [utf8("\ud800"), utf8("a\udc00"), [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80], [0xed, 0x9f, 0xbf]],
  overlong: [[0xc0, 0x80], [0xc1, 0xbf], [0xe0, 0x80, 0x80], [0xe0, 0x9f, 0xbf], [0xf0, 0x80, 0x80, 0x80], [0xf0, 0x8f, 0xbf, 0xbf]],
  beyondUnicode: [[0xf4, 0x90, 0x80, 0x80], [0xf5, 0x80, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xfc, 0x84, 0x80, 0x80, 0x80, 0x80], [0xfe], [0xff], [0xff, 0xfe]],
  truncated: [[0xc3], [0xe2], [0xe2, 0x82], [0xf0], [0xf0, 0x9f], [0xf0, 0x9f, 0x98], [0xef, 0xbb], [0xef]],
  continuation: [[0x80], [0xbf], [0x80, 0x80], [0xbb, 0xbf]],
  nonCharacters: [[0xef, 0xbf, 0xbe], [0xef, 0xbf, 0xbf], [0xf4, 0x8f, 0xbf, 0xbf], [0xef, 0xb7, 0x90]],
};
const ALL_PIECES = Object.values(PIECES).flat();
const INVALID_PIECES = [...PIECES.overlong!, ...PIECES.beyondUnicode!, ...PIECES.truncated!, ...PIECES.continuation!, ...PIECES.surrogates!];

/** Exactly `length` bytes made of these pieces (the last one cut if it does not fit: more invalid UTF-8). */
function bytesOfLength(rand: () => number, length: number, pieces: readonly number[][]): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  while (at < length) {
    for (const byte of pick(rand, pieces)) {
      if (at === length) break;
      out[at++] = byte;
    }
  }
  return out;
}

/** Random string field contents: mostly valid UTF-8 (short ASCII above all), often not. */
function randomStringBytes(rand: () => number): Uint8Array {
  const length = rand() < 0.97 ? int(rand, 201) : pick(rand, [16383, 16384, 16385]);
  const r = rand();
  let bytes: Uint8Array;
  if (r < 0.25) bytes = bytesOfLength(rand, int(rand, 13), PIECES.ascii!); // decodeMessage's JS path (up to 8 bytes)
  else if (r < 0.45) bytes = bytesOfLength(rand, length, PIECES.ascii!);
  else if (r < 0.6) bytes = Buffer.from(Buffer.from(bytesOfLength(rand, length, [...PIECES.ascii!, ...PIECES.twoBytes!, ...PIECES.threeBytes!, ...PIECES.fourBytes!])).toString("utf8"));
  else if (r < 0.9) bytes = bytesOfLength(rand, length, rand() < 0.5 ? ALL_PIECES : [...PIECES.ascii!, ...INVALID_PIECES]);
  else bytes = Uint8Array.from({ length: int(rand, 24) }, () => int(rand, 256));
  if (rand() < 0.1) bytes = Uint8Array.from([...pick(rand, PIECES.bom!), ...bytes]);
  return bytes;
}

// ---- random wire bytes from the descriptors ---------------------------------------------------------------------

const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(join(GEN, "portcullis.binpb"))));

type Write = (w: BinaryWriter, rand: () => number) => void;

/** 64-bit values: mostly what fits a JS number (ts-proto's longToNumber), now and then past 2^53 (it throws). */
function random64(rand: () => number, signed: boolean): bigint {
  const r = rand();
  if (r < 0.02) return signed ? pick(rand, [2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n]) : pick(rand, [2n ** 64n - 1n, 2n ** 53n]);
  const value = r < 0.5 ? BigInt(int(rand, 300)) : r < 0.8 ? BigInt(int(rand, 2 ** 32)) * 1000n : BigInt(Number.MAX_SAFE_INTEGER) - BigInt(int(rand, 3));
  return signed && rand() < 0.4 ? -value : value;
}

function random32(rand: () => number, signed: boolean): number {
  const value = pick(rand, [0, 1, 127, 128, 16384, 0x7fffffff, int(rand, 2 ** 31)]);
  return signed && rand() < 0.4 ? -value : value;
}

/** How to write one value of a scalar type (wire type, and a random value). */
const SCALARS: Record<ScalarType, [WireType, Write]> = {
  [ScalarType.DOUBLE]: [WireType.Bit64, (w, rand) => void w.double(pick(rand, [0, -0, 1.5, -1e300, NaN, Infinity, rand()]))],
  [ScalarType.FLOAT]: [WireType.Bit32, (w, rand) => void w.float(pick(rand, [0, -0, 1.5, -3.4e38, NaN, -Infinity, Math.fround(rand())]))],
  [ScalarType.INT64]: [WireType.Varint, (w, rand) => void w.int64(random64(rand, true))],
  [ScalarType.UINT64]: [WireType.Varint, (w, rand) => void w.uint64(random64(rand, false))],
  [ScalarType.INT32]: [WireType.Varint, (w, rand) => void w.int32(random32(rand, true))],
  [ScalarType.FIXED64]: [WireType.Bit64, (w, rand) => void w.fixed64(random64(rand, false))],
  [ScalarType.FIXED32]: [WireType.Bit32, (w, rand) => void w.fixed32(random32(rand, false))],
  [ScalarType.BOOL]: [WireType.Varint, (w, rand) => void w.uint32(pick(rand, [0, 1, 2, 300]))],
  [ScalarType.STRING]: [WireType.LengthDelimited, (w, rand) => void w.bytes(randomStringBytes(rand))],
  [ScalarType.BYTES]: [WireType.LengthDelimited, (w, rand) => void w.bytes(Uint8Array.from({ length: pick(rand, [0, 1, 5, 200]) }, () => int(rand, 256)))],
  [ScalarType.UINT32]: [WireType.Varint, (w, rand) => void w.uint32(pick(rand, [0, 1, 0xffffffff, int(rand, 2 ** 32)]))],
  [ScalarType.SFIXED32]: [WireType.Bit32, (w, rand) => void w.sfixed32(random32(rand, true))],
  [ScalarType.SFIXED64]: [WireType.Bit64, (w, rand) => void w.sfixed64(random64(rand, true))],
  [ScalarType.SINT32]: [WireType.Varint, (w, rand) => void w.sint32(random32(rand, true))],
  [ScalarType.SINT64]: [WireType.Varint, (w, rand) => void w.sint64(random64(rand, true))],
};

const writeEnum: Write = (w, rand) => void w.int32(rand() < 0.1 ? pick(rand, [99, -1]) : int(rand, 4));

function writeNested(w: BinaryWriter, rand: () => number, message: DescMessage, depth: number): void {
  w.fork();
  writeMessage(w, rand, message, depth);
  w.join();
}

/** One value of a singular, list or map field (lists of numbers packed or not, as decoders must accept both). */
function writeField(w: BinaryWriter, rand: () => number, field: DescField, depth: number): void {
  const no = field.number;
  switch (field.fieldKind) {
    case "scalar": {
      const [wireType, write] = SCALARS[field.scalar];
      write(w.tag(no, wireType), rand);
      return;
    }
    case "enum":
      writeEnum(w.tag(no, WireType.Varint), rand);
      return;
    case "message":
      writeNested(w.tag(no, WireType.LengthDelimited), rand, field.message, depth + 1);
      return;
    case "list": {
      const count = pick(rand, [0, 1, 1, 2, 3, 8, depth === 0 ? 40 : 4]);
      if (field.listKind === "message") {
        for (let i = 0; i < count; i++) writeNested(w.tag(no, WireType.LengthDelimited), rand, field.message, depth + 1);
        return;
      }
      const [wireType, write] = field.listKind === "enum" ? [WireType.Varint, writeEnum] : SCALARS[field.scalar];
      if (wireType !== WireType.LengthDelimited && rand() < 0.5) {
        w.tag(no, WireType.LengthDelimited).fork();
        for (let i = 0; i < count; i++) write(w, rand);
        w.join();
      } else {
        for (let i = 0; i < count; i++) write(w.tag(no, wireType), rand);
      }
      return;
    }
    case "map": {
      const count = pick(rand, [0, 1, 2, 5]);
      for (let i = 0; i < count; i++) {
        w.tag(no, WireType.LengthDelimited).fork();
        writeMapEntry(w, rand, field, depth + 1);
        w.join();
      }
      return;
    }
  }
}

/** The fields of a map entry message: key (1) and value (2), either missing now and then. */
function writeMapEntry(w: BinaryWriter, rand: () => number, field: Extract<DescField, { fieldKind: "map" }>, depth: number): void {
  if (rand() < 0.9) {
    const [keyWireType, writeKey] = SCALARS[field.mapKey];
    writeKey(w.tag(1, keyWireType), rand);
  }
  if (rand() < 0.9) {
    if (field.mapKind === "message") writeNested(w.tag(2, WireType.LengthDelimited), rand, field.message, depth + 1);
    else if (field.mapKind === "enum") writeEnum(w.tag(2, WireType.Varint), rand);
    else SCALARS[field.scalar][1](w.tag(2, SCALARS[field.scalar][0]), rand);
  }
}

/** Random fields of a message (in random order, some twice, some with the wrong wire type, some unknown). */
function writeMessage(w: BinaryWriter, rand: () => number, message: DescMessage, depth: number): void {
  if (depth > 4) return;
  const fields = [...message.fields].sort(() => rand() - 0.5);
  for (const field of fields) {
    if (rand() < 0.25) continue;
    writeField(w, rand, field, depth);
    if (rand() < 0.05) writeField(w, rand, field, depth); // a singular field twice: the last one wins
    if (rand() < 0.03) w.tag(field.number, field.fieldKind === "scalar" && field.scalar === ScalarType.STRING ? WireType.Varint : WireType.Bit32).fixed32(7);
  }
  if (rand() < 0.15) {
    const no = 1000 + int(rand, 1000);
    switch (int(rand, 4)) {
      case 0: w.tag(no, WireType.Varint).uint64(random64(rand, false)); break;
      case 1: w.tag(no, WireType.Bit64).fixed64(3n); break;
      case 2: w.tag(no, WireType.LengthDelimited).bytes(randomStringBytes(rand)); break;
      default: w.tag(no, WireType.Bit32).fixed32(5); break;
    }
  }
}

// ---- message types ----------------------------------------------------------------------------------------------

interface MessageType {
  name: string;
  fns: MessageFns;
  /** Writes a random message of this type (its fields, no length prefix). */
  write: (w: BinaryWriter, rand: () => number) => void;
}

/** Every .ts file under gen, with its protobuf package (the folder: gen/google/rpc → google.rpc). */
function generatedFiles(dir = GEN): Array<{ path: string; pkg: string }> {
  return readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name)).flatMap((entry) =>
    entry.isDirectory() ? generatedFiles(join(dir, entry.name))
      : entry.name.endsWith(".ts") ? [{ path: join(dir, entry.name), pkg: relative(GEN, dir).replaceAll("/", ".") }] : []);
}

/** Every message type every generated module exports (map entries too, e.g. Event_AttributesEntry), with a generator. */
async function loadMessageTypes(): Promise<MessageType[]> {
  const types: MessageType[] = [];
  for (const { path, pkg } of generatedFiles()) {
    const module = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
    for (const [exportName, fns] of Object.entries(module)) {
      if (!isMessageFns(fns)) continue;
      const typeName = `${pkg}.${exportName.replaceAll("_", ".")}`;
      const name = `${relative(GEN, path)}:${exportName}`;
      const message = registry.getMessage(typeName);
      if (message !== undefined) {
        types.push({ name, fns, write: (w, rand) => writeMessage(w, rand, message, 0) });
        continue;
      }
      // A map entry: find the map field whose entry type it is.
      const parent = registry.getMessage(typeName.slice(0, typeName.lastIndexOf(".")));
      const field = parent?.fields.find((f) => f.fieldKind === "map" && f.proto.typeName === `.${typeName}`);
      assert.ok(field !== undefined && field.fieldKind === "map", `no descriptor for ${exportName} (${typeName})`);
      types.push({ name, fns, write: (w, rand) => writeMapEntry(w, rand, field, 1) });
    }
  }
  return types;
}

const messageTypes = await loadMessageTypes();

describe("decodeMessage", () => {
  it("finds every message type of gen", () => {
    const declared = generatedFiles().flatMap(({ path }) =>
      [...readFileSync(path, "utf8").matchAll(/^export const (\w+): MessageFns</gm)].map((match) => `${relative(GEN, path)}:${match[1]}`));
    assert.deepEqual(messageTypes.map((t) => t.name).sort(), declared.sort());
    assert.ok(messageTypes.length > 60, `only ${messageTypes.length} message types`);
    for (const name of ["portcullis/v1/events.ts:Event_AttributesEntry", "portcullis/v1/firewall.ts:ListRulesResponse", "google/rpc/status.ts:Status", "google/protobuf/timestamp.ts:Timestamp"]) {
      assert.ok(messageTypes.some((t) => t.name === name), name);
    }
  });

  it("decodes random wire bytes of every type like X.decode, invalid UTF-8 in strings included", () => {
    const rand = random(SEED);
    for (const type of messageTypes) {
      let decoded = 0;
      for (let i = 0; i < 40; i++) {
        const writer = new BinaryWriter();
        type.write(writer, rand);
        if (sameDecode(type.fns, writer.finish(), `${type.name} #${i} (seed ${SEED})`)) decoded++;
      }
      // Most must decode (64-bit values past 2^53 make ts-proto throw, and then only the errors are compared).
      assert.ok(decoded >= 20, `${type.name}: only ${decoded} of 40 decoded`);
    }
  });

  it("decodes messages made by X.encode like X.decode", () => {
    const rand = random(SEED + 1);
    let compared = 0;
    for (const type of messageTypes) {
      for (let i = 0; i < 10; i++) {
        const writer = new BinaryWriter();
        type.write(writer, rand);
        const bytes = writer.finish();
        let encoded: Uint8Array;
        try {
          encoded = type.fns.encode(type.fns.decode(bytes)).finish();
        } catch {
          continue; // not decodable (64-bit values past 2^53), or not encodable (a Timestamp beyond what a Date holds)
        }
        sameDecode(type.fns, encoded, `${type.name} #${i} re-encoded`);
        compared++;
      }
    }
    // Most were compared: skipping them all would pass without comparing anything.
    assert.ok(compared >= messageTypes.length * 5, `only ${compared} of ${messageTypes.length * 10} compared`);
  });

  it("throws X.decode's errors for truncated and random bytes", () => {
    const rand = random(SEED + 2);
    for (const type of messageTypes) {
      for (let i = 0; i < 10; i++) {
        const writer = new BinaryWriter();
        type.write(writer, rand);
        const bytes = writer.finish();
        sameDecode(type.fns, bytes.subarray(0, int(rand, bytes.length + 1)), `${type.name} #${i} truncated`);
        sameDecode(type.fns, Uint8Array.from({ length: int(rand, 40) }, () => int(rand, 256)), `${type.name} #${i} random bytes`);
      }
    }
  });

  it("decodes every string of 0 to 200 bytes, and of 16k, like TextDecoder", () => {
    const rand = random(SEED + 3);
    const textDecoder = new TextDecoder("utf-8", { ignoreBOM: true });
    const kinds: Record<string, readonly number[][]> = {
      ascii: PIECES.ascii!,
      "two bytes": PIECES.twoBytes!,
      "three bytes": PIECES.threeBytes!,
      emoji: PIECES.fourBytes!,
      "lone surrogates": PIECES.surrogates!,
      invalid: INVALID_PIECES,
      anything: ALL_PIECES,
    };
    const lengths = [...Array.from({ length: 201 }, (_, i) => i), 16383, 16384, 16385];
    for (const length of lengths) {
      for (const [kind, pieces] of Object.entries(kinds)) {
        for (const bom of [false, true]) {
          if (bom && length < 3) continue;
          const text = bytesOfLength(rand, length, pieces);
          if (bom) text.set([0xef, 0xbb, 0xbf]);
          const what = `${length} bytes of ${kind}${bom ? " after a BOM" : ""}`;
          // Alone in a Rule (the string is the input's last byte: nothing of the next field to read by mistake)…
          const rule = new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(text).finish();
          sameDecode(Rule as unknown as MessageFns, rule, what);
          assert.equal((decodeMessage(Rule, rule) as Rule).name, textDecoder.decode(text), `${what}: TextDecoder's text`);
          // …and inside rules inside a ListRulesResponse, between other fields.
          const list = ListRulesResponse.encode(ListRulesResponse.fromPartial({ rules: [{ id: "r1", position: 3 }], nextPageToken: "t" })).finish();
          const w = new BinaryWriter().raw(list);
          w.tag(1, WireType.LengthDelimited).fork().tag(3, WireType.LengthDelimited).bytes(text).tag(1, WireType.LengthDelimited).bytes(text).tag(4, WireType.Varint).uint32(9).join();
          w.tag(2, WireType.LengthDelimited).bytes(text);
          sameDecode(ListRulesResponse as unknown as MessageFns, w.finish(), `${what}, nested`);
        }
      }
    }
  });

  it("decodes every string of one and two bytes, and many of three and four, like TextDecoder", () => {
    const rand = random(SEED + 4);
    const textDecoder = new TextDecoder("utf-8", { ignoreBOM: true });
    const check = (text: number[]): void => {
      const bytes = Uint8Array.from([0x0a, text.length, ...text]);
      const expected = textDecoder.decode(Uint8Array.from(text));
      for (const [kind, input] of inputsOf(bytes)) {
        const actual = (decodeMessage(Rule, input) as Rule).name;
        if (actual !== expected) assert.fail(`${hex(Uint8Array.from(text))} (${kind}): ${JSON.stringify(actual)} instead of ${JSON.stringify(expected)}`);
        assert.equal(Rule.decode(input).name, expected);
      }
    };
    for (let a = 0; a < 256; a++) {
      check([a]);
      for (let b = 0; b < 256; b++) check([a, b]);
    }
    const lead = (): number => pick(rand, [0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf4, 0xf5, 0xff, int(rand, 256)]);
    const next = (): number => pick(rand, [0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbb, 0xbf, 0xc0, 0x41, int(rand, 256)]);
    for (let i = 0; i < 30_000; i++) check(Array.from({ length: 3 + int(rand, 6) }, (_, j) => (j === 0 || rand() < 0.2 ? lead() : next())));
  });

  it("reads strings followed by any bytes like BinaryReader (string() directly, back to back)", () => {
    const rand = random(SEED + 6);
    // A decode function of our own: reads length-prefixed strings to the end (so a string is followed by the next one's
    // length, any byte at all: in a message it is always a tag).
    const strings = {
      decode(input: BinaryReader | Uint8Array): string[] {
        const reader = input instanceof BinaryReader ? input : new BinaryReader(input);
        const out: string[] = [];
        while (reader.pos < reader.len) out.push(reader.string());
        return out;
      },
    };
    const crafted = [[[0xef, 0xbb], [0xbf]], [[0xef], [0xbb, 0xbf]], [[0xef, 0xbb, 0xbf], [0xef, 0xbb, 0xbf, 0x61]], [[0xe2, 0x82], [0xac]], [[0xf0, 0x9f, 0x98], [0x80]], [[0x61], [0x80, 0x80]]];
    // …and with a second string of 191 bytes: its length is BF 01 (a BOM's last byte right after EF BB, say).
    const cases: number[][][] = [...crafted, ...crafted.map(([first, second]) => [first!, Array.from({ length: 191 }, (_, i) => second![i % second!.length]!)])];
    for (let i = 0; i < 5000; i++) cases.push(Array.from({ length: 1 + int(rand, 5) }, () => [...randomStringBytes(rand)]));
    for (const texts of cases) {
      const writer = new BinaryWriter();
      for (const text of texts) writer.bytes(Uint8Array.from(text));
      const bytes = writer.finish();
      sameDecode(strings as unknown as MessageFns, bytes, `strings ${texts.map((text) => hex(Uint8Array.from(text.slice(0, 8)))).join(" ")}`);
      // A string cut short: premature EOF, as BinaryReader throws it.
      if (bytes.length > 1) sameDecode(strings as unknown as MessageFns, bytes.subarray(0, bytes.length - 1), "strings, truncated");
    }
  });

  it("is what withFastEncoding's deserializers decode with, giving the generated deserializers' values", async () => {
    const rand = random(SEED + 5);
    interface Method {
      path: string;
      requestSerialize: (value: never) => Buffer;
      responseSerialize: (value: never) => Buffer;
      requestDeserialize: (bytes: Buffer) => unknown;
      responseDeserialize: (bytes: Buffer) => unknown;
    }
    const services: Array<[string, Record<string, Method>]> = [];
    for (const { path } of generatedFiles()) {
      const module = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
      for (const [name, value] of Object.entries(module)) {
        if (typeof value === "object" && value !== null && !isMessageFns(value) && Object.values(value).length > 0 &&
          Object.values(value).every((method) => typeof (method as { path?: unknown }).path === "string")) services.push([name, value as (typeof services)[number][1]]);
      }
    }
    assert.deepEqual(services.map(([name]) => name).sort(), ["BouncerServiceService", "EventServiceService", "FeedServiceService", "FirewallServiceService", "FleetServiceService", "HostServiceService", "IpsetServiceService", "JailServiceService"]);
    // Strings the fast path decodes do not go through BinaryReader.prototype.string (TextDecoder): counted here.
    const original = Object.getOwnPropertyDescriptor(BinaryReader.prototype, "string")!;
    let slowStrings = 0;
    Object.defineProperty(BinaryReader.prototype, "string", { ...original, value(this: BinaryReader) { slowStrings++; return (original.value as () => string).call(this); } });
    try {
      let methods = 0;
      for (const [, definition] of services) {
        const fast = withFastEncoding(definition);
        for (const [key, method] of Object.entries(definition)) {
          const [, serviceName, methodName] = method.path.split("/");
          const descriptor = registry.getService(serviceName!)?.methods.find((m) => m.name === methodName);
          assert.ok(descriptor !== undefined, method.path);
          for (const [side, message] of [["request", descriptor.input], ["response", descriptor.output]] as const) {
            for (let i = 0; i < 10; i++) {
              const writer = new BinaryWriter();
              writeMessage(writer, rand, message, 0);
              const bytes = Buffer.from(writer.finish());
              const deserialize = side === "request" ? "requestDeserialize" : "responseDeserialize";
              let expected: unknown;
              try {
                expected = method[deserialize](bytes);
              } catch (error) {
                assert.throws(() => fast[key]![deserialize](bytes), { message: (error as Error).message }, `${method.path} ${side}`);
                continue;
              }
              const before = slowStrings;
              assert.deepEqual(comparable(fast[key]![deserialize](bytes)), comparable(expected), `${method.path} ${side} #${i}`);
              assert.equal(slowStrings, before, `${method.path} ${side}: decoded strings with TextDecoder`);
            }
          }
          methods++;
        }
      }
      assert.ok(methods > 40, `only ${methods} methods`);
      assert.ok(slowStrings > 100, "the generated deserializers were expected to read strings with BinaryReader.prototype.string");
    } finally {
      Object.defineProperty(BinaryReader.prototype, "string", original);
    }
  });

  // How fast is the benchmark's business (bench/), not a unit test's.
  it("decodes a 10,000-rule ListRulesResponse like X.decode", () => {
    const rules = tenThousandRules();
    const bytes = Buffer.from(ListRulesResponse.encode(ListRulesResponse.fromPartial({ rules, nextPageToken: "next" })).finish());
    assert.deepEqual(decodeMessage(ListRulesResponse, bytes), ListRulesResponse.decode(bytes));
  });
});
