import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { createFileRegistry, fromBinary, ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { ListRulesResponse, Rule, TargetKind, ApplyRulesetRequest } from "@portcullis/sdk/gen/portcullis/v1/firewall.js";
import { encodeMessage } from "@portcullis/sdk/wire/encode.js";
import { FastWriter } from "@portcullis/sdk/wire/fast-writer.js";
import { GEN, isMessageFns, random, tenThousandRules, type MessageFns } from "./helpers/generated-messages.js";

// FastWriter must produce exactly BinaryWriter's bytes for everything ts-proto generates: checked here on randomized
// messages of every type in sdk/src/gen/portcullis/v1 (built from the descriptors in portcullis.binpb), on strings
// and nested messages at the sizes where length prefixes grow, and on the writer's methods called directly
// (including invalid values, which must fail with the same errors).

const SEED = Number(process.env.FAST_WRITER_SEED ?? 20251125);

/** Asserts equal bytes, naming the first difference (instead of printing megabytes). */
function assertSameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  if (Buffer.compare(Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength), Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength)) === 0) return;
  let i = 0;
  while (i < actual.length && i < expected.length && actual[i] === expected[i]) i++;
  assert.fail(`${what}: ${actual.length} bytes instead of ${expected.length}, first difference at ${i}: ` +
    `${Buffer.from(actual.subarray(i, i + 16)).toString("hex")} instead of ${Buffer.from(expected.subarray(i, i + 16)).toString("hex")}`);
}

/** Runs both; they must return the same bytes or throw the same error. Returns the bytes (undefined if thrown). */
function sameOutcome(fast: () => Uint8Array, reference: () => Uint8Array, what: string): Uint8Array | undefined {
  let expected: Uint8Array | undefined;
  let expectedError: unknown;
  try {
    expected = reference();
  } catch (error) {
    expectedError = error;
  }
  if (expected !== undefined) {
    const actual = fast();
    assertSameBytes(actual, expected, what);
    return actual;
  }
  assert.throws(fast, (error: unknown) => {
    assert.ok(error instanceof Error && expectedError instanceof Error, `${what}: ${String(error)} / ${String(expectedError)}`);
    assert.equal(error.constructor, expectedError.constructor, what);
    assert.equal(error.message, expectedError.message, what);
    return true;
  }, `${what}: expected ${String(expectedError)}`);
  return undefined;
}

// ---- strings ----------------------------------------------------------------------------------------------------

const CHAR_CLASSES: Record<string, readonly string[]> = {
  ascii: [..."abcxyzABC019 -/_.:\"'\\~"],
  latin: ["é", "ß", "ñ", "Ø", "ÿ", "\u0080", "\u07ff"], // 2 bytes
  bmp: ["€", "中", "文", "✓", "\u0800", "\uffff", "\ufffd"], // 3 bytes
  emoji: ["😀", "🚀", "👍", "🧱", "\u{10ffff}", "\u{10000}"], // 4 bytes, surrogate pairs
  control: ["\u0000", "\u0001", "\n", "\t", "\u007f"],
};
const MIXED = Object.values(CHAR_CLASSES).flat();
const LENGTHS = [0, 1, 2, 3, 5, 20, 23, 24, 25, 26, 41, 42, 43, 44, 63, 64, 100, 126, 127, 128, 129, 255, 256, 1000, 5461, 5462, 16382, 16383, 16384, 16385, 70000];

/** A string of exactly `units` UTF-16 code units from these characters (ASCII where a pair would not fit). */
function makeString(rand: () => number, units: number, chars: readonly string[]): string {
  let out = "";
  while (out.length < units) {
    const c = chars[Math.floor(rand() * chars.length)]!;
    out += out.length + c.length <= units ? c : "a";
  }
  return out;
}

function randomString(rand: () => number): string {
  const r = rand();
  const units = r < 0.6 ? Math.floor(rand() * 50) : r < 0.97 ? LENGTHS[Math.floor(rand() * 24)]! : LENGTHS[24 + Math.floor(rand() * (LENGTHS.length - 24))]!;
  const classes = Object.values(CHAR_CLASSES);
  const chars = rand() < 0.5 ? CHAR_CLASSES.ascii! : rand() < 0.5 ? MIXED : classes[Math.floor(rand() * classes.length)]!;
  return makeString(rand, units, chars);
}

// ---- random messages from the descriptors -------------------------------------------------------------------------

const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(join(GEN, "portcullis.binpb"))));

const pick = <T>(rand: () => number, values: readonly T[]): T => values[Math.floor(rand() * values.length)]!;

/** Random values for 32/64-bit integers, with the edges (as proto3 JSON values: numbers). */
function randomInteger(rand: () => number, type: ScalarType, unsafe64: boolean): number {
  const small = Math.floor(rand() * 300);
  switch (type) {
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return pick(rand, [0, 1, small, 127, 128, 16383, 16384, 2097151, 2097152, 268435455, 268435456, 0x7fffffff, 0x80000000, 0xffffffff, Math.floor(rand() * 0x100000000)]);
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return pick(rand, [0, 1, -1, small, -small || 0, 127, 128, -128, 0x7fffffff, -0x80000000, Math.floor(rand() * 0x100000000) - 0x80000000]);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return pick(rand, [0, 1, small, 127, 128, 0xffffffff, 0x100000000, 2 ** 35 + small, 2 ** 49 - 1, Number.MAX_SAFE_INTEGER, Math.floor(rand() * Number.MAX_SAFE_INTEGER),
        ...(unsafe64 ? [2 ** 53, 2 ** 60, 2 ** 63, 2 ** 64 - 2048] : [])]);
    default: // INT64, SINT64, SFIXED64
      // No -0: it encodes as 0 and decodes as 0, so the round trip could not compare equal (BinaryWriter does the same).
      return pick(rand, [0, 1, -1, small, -small || 0, 0xffffffff, -0xffffffff, 0x100000000, -0x100000000, -0x80000000, -0x80000001, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER,
        Math.floor(rand() * Number.MAX_SAFE_INTEGER) * (rand() < 0.5 ? -1 : 1) || 0, ...(unsafe64 ? [2 ** 53, -(2 ** 60), 2 ** 63 - 1024, -(2 ** 63)] : [])]);
  }
}

function randomScalar(rand: () => number, type: ScalarType, unsafe64: boolean): unknown {
  switch (type) {
    case ScalarType.STRING:
      return randomString(rand);
    case ScalarType.BOOL:
      return rand() < 0.5;
    case ScalarType.BYTES:
      return Buffer.from(Array.from({ length: pick(rand, [0, 1, 5, 127, 128, 300, 16384]) }, () => Math.floor(rand() * 256))).toString("base64");
    case ScalarType.DOUBLE:
      return pick(rand, [0, -1.5, 1e300, rand() * 1e6]);
    case ScalarType.FLOAT:
      return pick(rand, [0, -1.5, 3.4e38, Math.fround(rand() * 1e6)]);
    default:
      return randomInteger(rand, type, unsafe64);
  }
}

interface Generator {
  rand: () => number;
  unsafe64: boolean;
}

/** A random value of a singular field, as proto3 JSON (what ts-proto's fromJSON reads). */
function randomSingular(g: Generator, field: DescField, depth: number): unknown {
  switch (field.fieldKind) {
    case "scalar":
      return randomScalar(g.rand, field.scalar, g.unsafe64);
    case "enum":
      // Now and then a number the enum does not know (ts-proto makes it UNRECOGNIZED, -1: a negative int32).
      return g.rand() < 0.1 ? 99 : pick(g.rand, field.enum.values).number;
    case "message":
      return randomMessageJSON(g, field.message, depth + 1);
    default:
      throw new Error(`unexpected field kind ${field.fieldKind}`);
  }
}

function randomRepeated(g: Generator, field: Extract<DescField, { fieldKind: "list" }>, depth: number): unknown[] {
  const count = pick(g.rand, [0, 0, 1, 1, 2, 3, 8, depth === 0 ? 40 : 4]);
  return Array.from({ length: count }, () =>
    field.listKind === "scalar" ? randomScalar(g.rand, field.scalar, g.unsafe64)
      : field.listKind === "enum" ? (g.rand() < 0.1 ? 99 : pick(g.rand, field.enum.values).number)
        : randomMessageJSON(g, field.message, depth + 1));
}

function randomMap(g: Generator, field: Extract<DescField, { fieldKind: "map" }>, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const count = pick(g.rand, [0, 1, 2, 5]);
  for (let i = 0; i < count; i++) {
    const key = field.mapKey === ScalarType.STRING ? randomString(g.rand) : field.mapKey === ScalarType.BOOL ? String(g.rand() < 0.5) : String(randomInteger(g.rand, field.mapKey, false));
    out[key] = field.mapKind === "scalar" ? randomScalar(g.rand, field.scalar, g.unsafe64)
      : field.mapKind === "enum" ? pick(g.rand, field.enum.values).number
        : randomMessageJSON(g, field.message, depth + 1);
  }
  return out;
}

function randomMessageJSON(g: Generator, message: DescMessage, depth: number): unknown {
  if (message.typeName === "google.protobuf.Timestamp") {
    // ts-proto turns it into a Date: millisecond precision, before and after 1970 (negative seconds and nanos).
    return new Date(Math.floor((g.rand() - 0.4) * 2 ** 42)).toISOString();
  }
  const json: Record<string, unknown> = {};
  if (depth > 4) return json;
  const oneofsDone = new Set<string>();
  for (const field of message.fields) {
    if (field.oneof !== undefined) {
      if (oneofsDone.has(field.oneof.name) || g.rand() < 0.5) continue;
      oneofsDone.add(field.oneof.name);
    } else if (g.rand() < 0.2) {
      continue; // unset (proto3 optional fields stay undefined, the others default)
    }
    if (field.fieldKind === "list") json[field.jsonName] = randomRepeated(g, field, depth);
    else if (field.fieldKind === "map") json[field.jsonName] = randomMap(g, field, depth);
    else json[field.jsonName] = randomSingular(g, field, depth);
  }
  return json;
}

/** The JSON of a map entry message (ts-proto exports them, e.g. Event_AttributesEntry): `key` and `value`. */
function randomMapEntryJSON(g: Generator, field: Extract<DescField, { fieldKind: "map" }>, depth: number): unknown {
  const map = randomMap(g, field, depth);
  const [key, value] = Object.entries(map)[0] ?? [randomString(g.rand), undefined];
  const json: Record<string, unknown> = { key: field.mapKey === ScalarType.BOOL ? key === "true" : field.mapKey === ScalarType.STRING ? key : Number(key) };
  if (value !== undefined) json.value = value;
  return json;
}

interface MessageType {
  name: string;
  fns: MessageFns;
  fieldCount: number;
  randomJSON: (g: Generator) => unknown;
}

/** Every message type every module under gen/portcullis/v1 exports, with a generator from its descriptor. */
async function loadMessageTypes(): Promise<MessageType[]> {
  const types: MessageType[] = [];
  const dir = join(GEN, "portcullis/v1");
  for (const file of readdirSync(dir).filter((name) => name.endsWith(".ts")).sort()) {
    const module = (await import(pathToFileURL(join(dir, file)).href)) as Record<string, unknown>;
    for (const [exportName, fns] of Object.entries(module)) {
      if (!isMessageFns(fns)) continue;
      const typeName = `portcullis.v1.${exportName.replaceAll("_", ".")}`;
      const message = registry.getMessage(typeName);
      if (message !== undefined) {
        types.push({ name: `${file}:${exportName}`, fns, fieldCount: message.fields.length, randomJSON: (g) => randomMessageJSON(g, message, 0) });
        continue;
      }
      // A map entry: find the map field whose entry type it is.
      const parent = registry.getMessage(typeName.slice(0, typeName.lastIndexOf(".")));
      const field = parent?.fields.find((f) => f.fieldKind === "map" && f.proto.typeName === `.${typeName}`);
      assert.ok(field !== undefined && field.fieldKind === "map", `no descriptor for ${exportName} (${typeName})`);
      types.push({ name: `${file}:${exportName}`, fns, fieldCount: 2, randomJSON: (g) => randomMapEntryJSON(g, field, 1) });
    }
  }
  return types;
}

const messageTypes = await loadMessageTypes();

/** encodeMessage must match X.encode(m).finish() byte for byte; and decode back to m (when it can: ±2^53). */
function checkMessage(fns: MessageFns, message: unknown, what: string, options: { decode?: boolean } = {}): Uint8Array | undefined {
  const bytes = sameOutcome(() => encodeMessage(fns, message), () => fns.encode(message).finish(), what);
  if (bytes !== undefined && options.decode !== false) assert.deepEqual(fns.decode(bytes), message, `${what}: decoded`);
  // Directly through a fresh FastWriter too (as a drop-in).
  sameOutcome(() => fns.encode(message, new FastWriter(16) as unknown as BinaryWriter).finish(), () => fns.encode(message).finish(), `${what} (fresh writer)`);
  return bytes;
}

describe("FastWriter through encodeMessage", () => {
  it("finds every message type of gen/portcullis/v1", () => {
    // What the sources declare (`export const X: MessageFns<X> = {`) is what iterating the modules found.
    const dir = join(GEN, "portcullis/v1");
    const declared = readdirSync(dir).filter((name) => name.endsWith(".ts")).flatMap((file) =>
      [...readFileSync(join(dir, file), "utf8").matchAll(/^export const (\w+): MessageFns</gm)].map((match) => `${file}:${match[1]}`));
    assert.deepEqual(messageTypes.map((t) => t.name).sort(), declared.sort());
    assert.ok(messageTypes.length > 50, `only ${messageTypes.length} message types`);
    assert.ok(messageTypes.some((t) => t.name === "events.ts:Event_AttributesEntry"));
  });

  it("encodes randomized messages of every type exactly like BinaryWriter", () => {
    const rand = random(SEED);
    for (const type of messageTypes) {
      let nonEmpty = 0;
      for (let i = 0; i < 40; i++) {
        const unsafe64 = i % 4 === 3; // 64-bit values past 2^53: fine to encode, but ts-proto cannot decode them
        const json = type.randomJSON({ rand, unsafe64 });
        const message = type.fns.fromJSON(json);
        const bytes = checkMessage(type.fns, message, `${type.name} #${i} (seed ${SEED})`, { decode: !unsafe64 });
        if (bytes !== undefined && bytes.length > 0) nonEmpty++;
      }
      // The generator must really fill the fields (else this would test nothing).
      if (type.fieldCount > 0) assert.ok(nonEmpty >= 10, `${type.name}: only ${nonEmpty} of 40 messages had bytes`);
    }
  });

  it("encodes every string length and kind of character exactly like BinaryWriter", () => {
    const rand = random(SEED + 1);
    const crafted = [
      "", "a", "é", "€", "😀", "a".repeat(42), "€".repeat(42), "😀".repeat(21), "é".repeat(43), "€".repeat(43),
      "a".repeat(127), "a".repeat(128), "a".repeat(126) + "é", "é".repeat(63) + "a", "é".repeat(64), "€".repeat(42) + "a",
      "a".repeat(16383), "a".repeat(16384), "a".repeat(16382) + "é", "€".repeat(5461), "€".repeat(5462), "😀".repeat(4096), "a".repeat(16383) + "😀",
      // Lone surrogates: U+FFFD, like TextEncoder (they do not survive a round trip, so no decode check below).
      "\ud800", "\udc00", "a\ud83d", "\ud83da", "\ude00\ud83d", "x".repeat(30) + "\ud800", "x".repeat(50) + "\udfff" + "y", "\ud800".repeat(43),
    ];
    const cases: string[] = [...crafted];
    for (const units of LENGTHS) for (const chars of [...Object.values(CHAR_CLASSES), MIXED]) cases.push(makeString(rand, units, chars));
    for (const text of cases) {
      const lone = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text);
      const what = `string of ${text.length} units (${Buffer.byteLength(text)} bytes) ${JSON.stringify(text.slice(0, 12))}`;
      checkMessage(Rule as unknown as MessageFns, Rule.fromPartial({ comment: text }), what, { decode: !lone });
      checkMessage(ListRulesResponse as unknown as MessageFns, ListRulesResponse.fromPartial({ rules: [{ name: text, text, target: { chain: text } }], nextPageToken: text }), `${what} nested`, { decode: !lone });
    }
  });

  it("writes the lengths of nested messages around 127, 16383 and 2097151 bytes exactly like BinaryWriter", () => {
    for (const boundary of [127, 16383, 2097151]) {
      for (let k = boundary - 12; k <= boundary + 4; k++) {
        // Rule crosses the boundary in ListRulesResponse; in ApplyRulesetRequest a Target inside the Rule crosses it.
        checkMessage(ListRulesResponse as unknown as MessageFns, ListRulesResponse.fromPartial({ rules: [{ comment: "x".repeat(k) }, { chain: "INPUT" }] }), `rule with comment of ${k}`);
        checkMessage(ApplyRulesetRequest as unknown as MessageFns,
          ApplyRulesetRequest.fromPartial({ parent: "p", rules: [{ chain: "c", target: { kind: TargetKind.TARGET_KIND_JUMP, chain: "é".repeat(k >> 1) + "y".repeat(k & 1) } }] }), `target of ${k}`);
      }
    }
  });

  it("returns a buffer of its own, never overwritten by later calls", () => {
    const first = Rule.fromPartial({ name: "first", text: "a".repeat(300), packets: 7 });
    const firstBytes = encodeMessage(Rule, first);
    const copy = Buffer.from(firstBytes);
    for (let i = 0; i < 20; i++) encodeMessage(Rule, Rule.fromPartial({ name: `other ${i}`, text: "b".repeat(100 * i), bytes: i }));
    assert.deepEqual(firstBytes, copy);
    assert.equal(firstBytes.length, Rule.encode(first).finish().length);
  });

  it("throws BinaryWriter's errors for invalid values, and works normally afterwards", () => {
    const invalid: Array<[string, () => Uint8Array, () => Uint8Array]> = [];
    const add = (what: string, message: unknown, fns: MessageFns = Rule as unknown as MessageFns): void => void invalid.push([what, () => encodeMessage(fns, message), () => fns.encode(message).finish()]);
    add("negative uint32", { ...Rule.fromPartial({ name: "n" }), position: -1 });
    add("fractional uint32", { ...Rule.fromPartial({}), position: 1.5 });
    add("uint32 past 2^32", { ...Rule.fromPartial({}), position: 2 ** 32 });
    add("NaN uint32", { ...Rule.fromPartial({}), position: NaN });
    add("negative uint64", { ...Rule.fromPartial({ text: "t".repeat(200) }), packets: -1 });
    add("fractional uint64", { ...Rule.fromPartial({}), bytes: 0.5 });
    add("uint64 past 2^64", { ...Rule.fromPartial({}), bytes: 2 ** 64 });
    add("NaN uint64", { ...Rule.fromPartial({}), bytes: NaN });
    add("int32 past 2^31", Rule.fromPartial({ target: { kind: 2 ** 31 } }));
    add("fractional int32 in a nested message", ListRulesResponse.fromPartial({ rules: [{ name: "x" }, { target: { kind: 0.25 as TargetKind } }] }), ListRulesResponse as unknown as MessageFns);
    for (const [what, fast, reference] of invalid) {
      assert.equal(sameOutcome(fast, reference, what), undefined, `${what}: should throw`);
      checkMessage(Rule as unknown as MessageFns, Rule.fromPartial({ name: "after " + what, position: 3 }), `after ${what}`);
    }
  });

  // How fast is the benchmark's business (bench/), not a unit test's.
  it("encodes a 10,000-rule ListRulesResponse like BinaryWriter, byte for byte", () => {
    const message = ListRulesResponse.fromPartial({ rules: tenThousandRules(), nextPageToken: "next" });
    assertSameBytes(encodeMessage(ListRulesResponse, message), ListRulesResponse.encode(message).finish(), "10,000 rules");
  });
});

// ---- the writer's methods, directly -----------------------------------------------------------------------------

type Op = [name: string, args: unknown[]];

describe("FastWriter methods", () => {
  const valuesFor: Record<string, unknown[]> = {
    uint32: [0, 1, 127, 128, 16383, 16384, 0xffffffff, -0, -1, 1.5, 2 ** 32, NaN, Infinity, "12", " 300 ", "abc", "", true, undefined, null],
    int32: [0, 1, -1, 127, -128, 0x7fffffff, -0x80000000, 2 ** 31, -(2 ** 31) - 1, 0.5, NaN, "-5", "7e2", "x", false],
    sint32: [0, 1, -1, 0x7fffffff, -0x80000000, 2 ** 31, 1.5, "-9"],
    fixed32: [0, 1, 0xffffffff, -1, 2 ** 32, "77"],
    sfixed32: [0, -1, 0x7fffffff, -0x80000000, 2 ** 31, "-77"],
    int64: [0, 1, -1, 2 ** 32, -(2 ** 32), 2 ** 32 - 1, -(2 ** 31), Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 53, 2 ** 62, 2 ** 63, -(2 ** 63), 1.5, NaN, Infinity,
      "123", "-9223372036854775808", "9223372036854775807", "9223372036854775808", "1.5", "abc", 5n, -(2n ** 63n), 2n ** 63n, -0],
    uint64: [0, 1, 2 ** 32, 2 ** 32 - 1, Number.MAX_SAFE_INTEGER, 2 ** 53, 2 ** 63, 2 ** 64 - 2048, 2 ** 64, -1, -0, 0.5, NaN, "18446744073709551615", "18446744073709551616", "-1", 7n, 2n ** 64n - 1n, -1n],
    sint64: [0, 1, -1, 2 ** 40, -(2 ** 40), "-9223372036854775808", 3n],
    fixed64: [0, 1, 2 ** 40, -1, "18446744073709551615", 9n],
    sfixed64: [0, -1, -(2 ** 40), "-9223372036854775808", "9223372036854775808", -9n],
    bool: [true, false, 0, 1, "", "x", undefined],
    float: [0, -0, 1.5, -1e-40, 3.4028234663852886e38, 3.5e38, -3.5e38, Infinity, NaN, "1.25", "NaN", "abc", 1n],
    double: [0, -0, Math.PI, -1e308, Infinity, NaN, "2.5"],
    string: ["", "a", "é€😀", "x".repeat(24), "x".repeat(25), "y".repeat(42), "z".repeat(43), "w".repeat(200), "\ud800x", 42, undefined, null],
    bytes: [new Uint8Array(0), new Uint8Array([1, 2, 3]), new Uint8Array(300).fill(9), Buffer.from("buffer"), [1, 2]],
    raw: [new Uint8Array([5, 6]), new Uint8Array(0), [7, 8]],
    tag: [[1, 0], [15, 2], [16, 5], [536870911, 2]],
  };
  const names = Object.keys(valuesFor);

  /** Applies ops to a writer; returns what each finish() returned (or the error each op threw). */
  function run(writer: BinaryWriter | FastWriter, ops: Op[]): Array<string | Uint8Array> {
    const out: Array<string | Uint8Array> = [];
    const w = writer as unknown as Record<string, (...args: unknown[]) => unknown>;
    for (const [name, args] of ops) {
      try {
        const result = w[name]!(...args);
        if (name === "finish") out.push(Buffer.from(result as Uint8Array));
      } catch (error) {
        out.push(`${name}(${args.map(String).join(", ")}): ${(error as Error).constructor.name}: ${(error as Error).message}`);
      }
    }
    return out;
  }

  it("write what BinaryWriter writes for every method and value (valid or not), through forks and joins", () => {
    const rand = random(SEED + 2);
    for (let round = 0; round < 300; round++) {
      const ops: Op[] = [];
      let depth = 0;
      const count = Math.floor(rand() * 60);
      for (let i = 0; i < count; i++) {
        const r = rand();
        if (r < 0.12) {
          ops.push(["fork", []]);
          depth++;
        } else if (r < 0.22 && depth > 0) {
          ops.push(["join", []]);
          depth--;
        } else if (r < 0.24) {
          ops.push(["finish", []]); // also inside forks: BinaryWriter returns (and drops) the current fork's bytes
        } else {
          const name = pick(rand, names);
          const value = pick(rand, valuesFor[name]!);
          ops.push([name, name === "tag" ? (value as unknown[]) : [value]]);
        }
      }
      while (depth-- > 0) ops.push(["join", []]);
      ops.push(["finish", []]);
      const expected = run(new BinaryWriter(), ops);
      const actual = run(new FastWriter(16), ops);
      assert.deepEqual(actual, expected, `round ${round}: ${ops.map(([n, a]) => `${n}(${a.map(String).join(",")})`).join(" ")}`);
    }
  });

  it("writes big forks (lengths of 2, 3 and 4 bytes) through many levels", () => {
    for (const sizes of [[200], [20_000, 100], [3_000_000], [5, 130, 17_000, 2_200_000]]) {
      const ops: Op[] = [["uint32", [10]]];
      for (const size of sizes) ops.push(["fork", []], ["uint32", [18]], ["string", ["s".repeat(size)]], ["bool", [true]]);
      for (let i = 0; i < sizes.length; i++) ops.push(["join", []], ["uint32", [i]]);
      ops.push(["finish", []]);
      assert.deepEqual(run(new FastWriter(16), ops), run(new BinaryWriter(), ops), `forks of ${sizes.join(", ")}`);
    }
  });

  it("writes strings and forks at every position relative to the end of its buffer (growth)", () => {
    const texts = ["", "a", "€".repeat(20), "€".repeat(42), "a".repeat(43), "€".repeat(43), "😀".repeat(30), "é".repeat(64), "a".repeat(127) + "€", "€".repeat(200)];
    for (let prefix = 0; prefix <= 600; prefix++) {
      for (const text of texts) {
        const ops: Op[] = [["raw", [new Uint8Array(prefix).fill(1)]], ["fork", []], ["string", [text]], ["join", []], ["string", [text]], ["finish", []]];
        assert.deepEqual(run(new FastWriter(16), ops), run(new BinaryWriter(), ops), `${prefix} bytes, then ${JSON.stringify(text.slice(0, 10))}… (${text.length})`);
      }
      for (const size of [127, 128, 200, 16384]) {
        const ops: Op[] = [["raw", [new Uint8Array(prefix).fill(1)]], ["fork", []], ["raw", [new Uint8Array(size).fill(2)]], ["join", []], ["finish", []]];
        assert.deepEqual(run(new FastWriter(16), ops), run(new BinaryWriter(), ops), `${prefix} bytes, then a fork of ${size}`);
      }
    }
  });

  it("throws BinaryWriter's error for a join without fork, and resets on finish", () => {
    const writer = new FastWriter();
    assert.throws(() => writer.join(), { message: "invalid state, fork stack empty" });
    assert.throws(() => new BinaryWriter().join(), { message: "invalid state, fork stack empty" });
    writer.uint32(8).string("abc");
    assert.deepEqual(writer.finish(), Buffer.from([8, 3, 97, 98, 99]));
    assert.equal(writer.finish().length, 0);
    assert.deepEqual(writer.bool(true).finish(), Buffer.from([1]));
  });
});
