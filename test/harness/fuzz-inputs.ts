import { fromJson, ScalarType, toBinary, type DescField, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import type { HttpRoute } from "../../server/src/rest/http-rules.js";

/**
 * Seeded inputs for the fuzz test: requests of any contract message, built from its descriptor so that new methods and
 * fields are covered without edits here. Field values mix names of resources that exist (so that requests reach the
 * drivers), option-like and quoting text (`-q`, `-exist`, quotes, backslashes, newlines, NUL), extreme numbers, bad
 * percent-encoding and long strings; some requests are then mutated at the byte level or replaced by garbage.
 */

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
export class Random {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(below: number): number {
    return Math.floor(this.next() * below);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  bytes(length: number): Buffer {
    return Buffer.from(Array.from({ length }, () => this.int(256)));
  }
}

/** The seed of case `index` of a run: each case is reproducible alone. */
export function caseSeed(seed: number, index: number): number {
  return (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(index + 1, 0xc2b2ae35)) >>> 0;
}

/** Text that has hurt tools that read options, quotes or lines: each must stay data. */
export const HOSTILE_TEXT: readonly string[] = [
  "-q", "-exist", "-!", "-t", "--", "-", "--help", "-h", "-n", "-o", "-f", "-A", "-D", "-X", "-j", "-exist -q",
  "'", '"', '""', "\\", 'a"b', "a'b", "a\\b", "\\n", "\\\"", "\n", "a\nb", "\r\n", "a\rb", "\t", "\0", "a\0b",
  "$(reboot)", "`id`", ";", "; reboot", "&&", "|", ">", "#", "*", "?", "..", "../..", "/", "//", " ", "  lead", "trail ", "",
  "%zz", "%", "%FF", "%ED%A0%80", "%u0000", "%00", "%2F", "%2e%2e", "é", "\u202e", "😀", "\ud800", "\u0000\u0001\u001f",
  "comment", "timeout", "nomatch", "add", "create", "flush", "COMMIT", "*filter", ":INPUT ACCEPT [0:0]",
];

const HUGE_64 = ["9007199254740991", "9007199254740992", "9007199254740993", "9223372036854775807", "-9223372036854775808", "-9007199254740993", "18446744073709551615"];
const NUMBERS_32 = [0, 1, -1, 2, 7, 60, 255, 256, 65535, 65536, 86400, 2147483, 2147484, 2147483647, -2147483648, 4294967295];

/** Names of things that exist in the fuzzed server (made before the run), so that requests reach the domain and drivers. */
export interface FuzzWorld {
  readonly ipsets: readonly string[];
  readonly jails: readonly string[];
  readonly chains: readonly string[];
  /** Rule resource names, read before the run. */
  readonly rules: readonly string[];
  readonly feeds: readonly string[];
  /** Sources a feed may be given: files made for the run, and loopback URLs nothing listens on. */
  readonly feedSources: readonly string[];
}

const ADDRESSES = [
  "192.0.2.1", "192.0.2.7", "192.0.2.255", "198.51.100.9", "203.0.113.5", "192.0.2.0/24", "192.0.2.0/30", "198.51.100.0/25", "203.0.113.0/31",
  "2001:db8::1", "2001:db8::7", "2001:db8::/64", "2001:db8:1::/48", "::ffff:192.0.2.1", "0.0.0.0/0", "::/0", "127.0.0.1", "10.0.0.1",
  "192.0.2.1,tcp:25", "192.0.2.7,udp:53", "192.0.2.1,80", "2001:db8::1,tcp:443", "192.0.2.1-192.0.2.9", "999.1.1.1", "192.0.2", "1.2.3.4/33",
];

/** A value of a scalar field: a name that exists, an address, hostile text, or an extreme number, by the field's name. */
function scalarValue(field: DescField, scalar: ScalarType, world: FuzzWorld, random: Random): JsonValue {
  switch (scalar) {
    case ScalarType.BOOL:
      return random.chance(0.5);
    case ScalarType.STRING:
      return stringValue(field.name, world, random);
    case ScalarType.BYTES:
      return random.bytes(random.int(32)).toString("base64");
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return random.pick([0, 0.5, 1, 2, 0.001, 1000, 1e-9, 1e308, -1, 3.4e38, "NaN", "Infinity", "-Infinity"]);
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
    case ScalarType.UINT64:
    case ScalarType.FIXED64: {
      const unsigned = scalar === ScalarType.UINT64 || scalar === ScalarType.FIXED64;
      const value = random.chance(0.4) ? random.pick(HUGE_64) : String(random.pick(NUMBERS_32));
      return unsigned && value.startsWith("-") ? value.slice(1) : value;
    }
    default: {
      const unsigned = scalar === ScalarType.UINT32 || scalar === ScalarType.FIXED32;
      const value = random.chance(0.3) ? random.int(100) : random.pick(NUMBERS_32);
      if (unsigned) return Math.abs(value) > 4294967295 ? 4294967295 : Math.abs(value);
      return value > 2147483647 ? 2147483647 : value;
    }
  }
}

function stringValue(name: string, world: FuzzWorld, random: Random): string {
  if (random.chance(0.1)) return hostile(random);
  const ipsets = world.ipsets;
  const jails = world.jails;
  if (/^(other|names)$/.test(name) && random.chance(0.8)) return `ipsets/${random.pick(ipsets)}`;
  // A feed's set, and its source (a rule's source is an address: it sometimes gets a URL, which it refuses).
  if (name === "ipset") return random.pick([...ipsets.map((set) => `ipsets/${set}`), "ipsets/fzfeed2", "ipsets/fzfeed3", "ipsets/x".padEnd(40, "x"), "fzfeed2"]);
  if (name === "source" && random.chance(0.5)) return random.pick(world.feedSources);
  if (name === "bouncer_id") return random.pick(["fzb", "fzb2", "a.b-c_d", "x".repeat(63), "x".repeat(64)]);
  if (name === "feed_id") return random.pick([...world.feeds, "fzf2", "fzf3", "a.b-c_d", "x".repeat(63), "x".repeat(64)]);
  if (/^(name|parent|other|jail|names)$/.test(name)) return random.pick(resourceNames(world, random));
  if (/element|address|entry|entries|ip$|ips$|source|destination|ignore|^filter$/.test(name)) return random.pick(ADDRESSES);
  if (/ipset_id|new_ipset_id|^set$|set_name/.test(name)) return random.pick([...ipsets, "fzn", "fzn2", "a.b:c-d_e", "x".repeat(31), "x".repeat(32)]);
  if (/chain/.test(name)) return random.pick([...world.chains, "FZN", "INPUT", "OUTPUT", "FORWARD", "f2b-x", "DOCKER"]);
  if (/content/.test(name)) return importText(world, random);
  if (/interface/.test(name)) return random.pick(["lo", "eth0", "veth+", "wg0", "x".repeat(16)]);
  if (/service/.test(name)) return random.pick(["ssh", "smtp", "imap", "http", "https", "mail", "nope"]);
  if (/protocol/.test(name)) return random.pick(["tcp", "udp", "icmp", "icmpv6", "all", "sctp", "gre"]);
  if (/token/.test(name)) return random.pick(["", "garbage", Buffer.from("ipsets/fz\u0000192.0.2.1").toString("base64url"), "eyJ9"]);
  if (/request_id/.test(name)) return random.pick(["", "r1", "r2", `r-${random.int(1000)}`]);
  if (/prefix/.test(name)) return random.pick(["", "ipsets/", "jails/", "firewall/"]);
  if (/node/.test(name)) return random.pick(["", "fuzz", "other"]);
  if (/jail/.test(name)) return random.pick(jails);
  return random.pick(["", "fuzz", "ok comment", "x".repeat(200), "y".repeat(257), ...HOSTILE_TEXT]);
}

function hostile(random: Random): string {
  const base = random.pick(HOSTILE_TEXT);
  if (random.chance(0.05)) return base + "z".repeat(random.pick([300, 4096, 70_000]));
  if (random.chance(0.3)) return `${base} ${random.pick(HOSTILE_TEXT)}`;
  return base;
}

function resourceNames(world: FuzzWorld, random: Random): string[] {
  const set = random.pick(world.ipsets);
  const jail = random.pick(world.jails);
  const family = random.pick(["ipv4", "ipv6"]);
  const chain = random.pick(world.chains);
  const evil = hostile(random);
  return [
    `ipsets/${set}`, `ipsets/${set}/entries/${random.pick(ADDRESSES)}`, `jails/${jail}`, `jails/${jail}/bans/${random.pick(ADDRESSES)}`,
    `firewall/${family}/tables/filter`, `firewall/${family}/tables/filter/chains/${chain}`, ...(world.rules.length > 0 ? [random.pick(world.rules)] : []),
    `firewall/${family}/tables/nat`, `firewall/ipv4/tables/filter/chains/${chain}/rules/000000000000`,
    `feeds/${random.pick(world.feeds)}`, `feeds/${evil}`, "bouncers/fzb", `bouncers/${evil}`,
    `ipsets/${evil}`, `jails/${evil}`, `ipsets/${set}/entries/${evil}`, `firewall/${family}/tables/filter/chains/${evil}`, evil, "ipsets/", "jails",
  ];
}

/** ipset save text for ImportIpsets: mostly well-formed, with hostile comments, list:set, and lines that are not ipset's. */
function importText(world: FuzzWorld, random: Random): string {
  const name = random.pick(["fzimp", "fzimp2", random.pick(world.ipsets), "fzlist"]);
  const type = random.pick(["hash:ip", "hash:net", "hash:ip,port", "list:set", "bitmap:ip range 192.0.2.0/24", "hash:ip family inet6"]);
  const lines = [`create ${name} ${type}${random.chance(0.5) ? " comment" : ""}${random.chance(0.3) ? " timeout 60" : ""}`];
  for (let i = random.int(4); i > 0; i--) {
    const element = type === "list:set" ? random.pick([name, ...world.ipsets]) : random.pick(ADDRESSES);
    const comment = random.chance(0.4) ? ` comment "${random.pick(HOSTILE_TEXT)}"` : random.chance(0.2) ? ` comment ${random.pick(HOSTILE_TEXT)}` : "";
    lines.push(`add ${name} ${element}${comment}${random.chance(0.2) ? ` timeout ${random.pick(NUMBERS_32)}` : ""}`);
  }
  if (random.chance(0.2)) lines.push(random.pick(HOSTILE_TEXT));
  return `${lines.join("\n")}\n`;
}

/** A request message in proto3 JSON, with random fields set (at most one member of each oneof). */
export function messageJson(desc: DescMessage, world: FuzzWorld, random: Random, depth = 0): Record<string, JsonValue> {
  const json: Record<string, JsonValue> = {};
  const chosenOneofs = new Map(desc.oneofs.map((oneof) => [oneof, random.pick(oneof.fields)]));
  for (const field of desc.fields) {
    if (field.oneof !== undefined && chosenOneofs.get(field.oneof) !== field) continue;
    if (!random.chance(depth === 0 ? 0.8 : 0.5)) continue;
    const value = fieldValue(field, world, random, depth);
    if (value !== undefined) json[field.jsonName] = value;
  }
  return json;
}

function fieldValue(field: DescField, world: FuzzWorld, random: Random, depth: number): JsonValue | undefined {
  const one = (): JsonValue | undefined => {
    switch (field.fieldKind) {
      case "scalar":
        return scalarValue(field, field.scalar, world, random);
      case "enum":
        return random.chance(0.85) ? random.pick(field.enum.values).name : random.pick([99, -1, 1000]);
      case "message":
        return messageValue(field.message, world, random, depth);
      case "list":
        return undefined;
      case "map":
        return undefined;
    }
  };
  if (field.fieldKind === "list") {
    const count = random.chance(0.02) ? random.pick([500, 5000]) : random.int(5);
    const items: JsonValue[] = [];
    for (let i = 0; i < count; i++) {
      const item =
        field.listKind === "scalar" ? scalarValue(field, field.scalar, world, random)
        : field.listKind === "enum" ? random.pick(field.enum.values).name
        : messageValue(field.message, world, random, depth);
      if (item !== undefined) items.push(item);
    }
    return items;
  }
  if (field.fieldKind === "map") {
    const map: Record<string, JsonValue> = {};
    for (let i = random.int(3); i > 0; i--) {
      const value = field.mapKind === "scalar" ? scalarValue(field, field.scalar, world, random) : field.mapKind === "enum" ? random.pick(field.enum.values).name : messageValue(field.message, world, random, depth);
      if (value !== undefined) map[random.pick(["a", "key", hostile(random)])] = value;
    }
    return map;
  }
  return one();
}

function messageValue(desc: DescMessage, world: FuzzWorld, random: Random, depth: number): JsonValue | undefined {
  if (desc.typeName === "google.protobuf.Timestamp") return random.pick(["1970-01-01T00:00:00Z", "2030-01-01T00:00:00Z", "9999-12-31T23:59:59Z"]);
  if (desc.typeName.startsWith("google.protobuf.")) return undefined;
  if (depth >= 3) return {};
  return messageJson(desc, world, random, depth + 1);
}

/** How a gRPC request's bytes were made, for the report. */
export type GrpcInput = { readonly kind: "message"; readonly json: Record<string, JsonValue> } | { readonly kind: "mutated" | "garbage"; readonly bytes: Buffer };

/**
 * A random request of a route's method whose resource-name fields (those its HTTP path carries) mostly follow the
 * route's pattern with names that exist, so that most requests get past name parsing.
 */
export function requestJson(route: HttpRoute, world: FuzzWorld, random: Random): Record<string, JsonValue> {
  const json = messageJson(route.request, world, random);
  for (const segment of route.segments) {
    if (segment.kind !== "variable" || random.chance(0.1)) continue;
    const jsonName = route.request.fields.find((field) => field.name === segment.field)?.jsonName ?? segment.field;
    json[jsonName] = segment.parts.map((part) => ("literal" in part ? part.literal : parameterValue(part.parameter, world, random))).join("/");
  }
  return json;
}

/** The bytes of one gRPC request: a random message (80%), the same mutated at the byte level (13%), or garbage. */
export function grpcRequest(route: HttpRoute, world: FuzzWorld, random: Random): { bytes: Buffer; input: GrpcInput } {
  const desc = route.request;
  const roll = random.next();
  if (roll < 0.07) {
    const bytes = random.bytes(random.pick([1, 2, 3, 8, 64, 300]));
    return { bytes, input: { kind: "garbage", bytes } };
  }
  let bytes: Buffer | undefined;
  let json: Record<string, JsonValue> = {};
  for (let attempt = 0; attempt < 4 && bytes === undefined; attempt++) {
    json = requestJson(route, world, random);
    try {
      bytes = Buffer.from(toBinary(desc, fromJson(desc, json)));
    } catch {
      bytes = undefined; // a value the encoder refuses (a range, a type): try another
    }
  }
  bytes ??= Buffer.alloc(0);
  if (roll < 0.2 && bytes.length > 0) {
    const how = random.int(4);
    let mutated = Buffer.from(bytes);
    if (how === 0) mutated[random.int(mutated.length)] = random.int(256);
    if (how === 1) mutated = mutated.subarray(0, random.int(mutated.length));
    if (how === 2) mutated = Buffer.concat([mutated, random.bytes(1 + random.int(8))]);
    if (how === 3) {
      const at = random.int(mutated.length);
      mutated[at] = mutated[at]! ^ 0x80;
    }
    return { bytes: mutated, input: { kind: "mutated", bytes: mutated } };
  }
  return { bytes, input: { kind: "message", json } };
}

/** One REST request: method, path (with its query), headers and body text. */
export interface RestInput {
  readonly verb: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
}

const BAD_PERCENT = ["%zz", "%", "%FF", "%ED%A0%80", "%u0000", "%C0%AF", "a%E2%82", "%00"];

/** A REST request of a route: its path parameters, query or JSON body from a random message, sometimes broken. */
export function restRequest(route: HttpRoute, world: FuzzWorld, random: Random): RestInput {
  const json = requestJson(route, world, random);
  let path = "";
  const pathFields = new Set<string>();
  for (const segment of route.segments) {
    if (segment.kind === "literal") {
      path += segment.text;
      continue;
    }
    pathFields.add(segment.field);
    const jsonName = route.request.fields.find((field) => field.name === segment.field)?.jsonName ?? segment.field;
    const fromMessage = typeof json[jsonName] === "string" ? (json[jsonName] as string).split("/") : [];
    path += segment.parts
      .map((part, i) => {
        if ("literal" in part) return part.literal;
        if (random.chance(0.07)) return random.pick(BAD_PERCENT);
        const value = fromMessage[i] ?? parameterValue(part.parameter, world, random);
        return encodeSegment(value === "" ? "x" : value);
      })
      .join("/");
    delete json[jsonName];
  }
  const headers: Record<string, string> = {};
  if (random.chance(0.01)) headers["x-fuzz"] = "h".repeat(random.pick([20_000, 70_000]));
  if (route.body === "*") {
    headers["content-type"] = random.chance(0.95) ? "application/json" : random.pick(["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1", ""]);
    const roll = random.next();
    let body = JSON.stringify(json);
    if (roll < 0.05) body = random.bytes(random.int(64)).toString("latin1");
    else if (roll < 0.1) body = random.pick(["", "null", "[]", "1", '"x"', "{", '{"a":', "{}".repeat(3)]);
    else if (roll < 0.2) body = body.replace(/"(-?\d{1,19})"/, random.pick(["9007199254740993", "-1", "1e400", "true", '"x"']));
    else if (roll < 0.25) body = body.replace(/^\{/, `{"${random.pick(["colour", "__proto__", "constructor"])}":1,`).replace(/,\}$/, "}");
    return { verb: route.verb, path, headers, body };
  }
  const query = new URLSearchParams();
  for (const field of route.request.fields) {
    const value = json[field.jsonName];
    if (value === undefined || pathFields.has(field.name) || (typeof value === "object" && !Array.isArray(value)) || value === null) continue;
    for (const item of Array.isArray(value) ? value : [value]) if (typeof item !== "object" || item === null) query.append(field.jsonName, String(item));
  }
  if (random.chance(0.1)) query.append(random.pick(["colour", "afterSequence", "pageSize"]), random.pick(["9007199254740993", "-1", "x", ...HOSTILE_TEXT.slice(0, 10)]));
  const text = query.toString();
  const rawQuery = random.chance(0.05) ? `${text}${text === "" ? "" : "&"}${random.pick(["a=%zz", "pageSize=%FF", "%=%", "types=%ED%A0%80"])}` : text;
  return { verb: route.verb, path: rawQuery === "" ? path : `${path}?${rawQuery}`, headers };
}

/** Percent-encoding of the text's UTF-8 bytes (encodeURIComponent throws on a lone surrogate; Buffer replaces it). */
function encodeSegment(text: string): string {
  return [...Buffer.from(text, "utf8")].map((byte) => (/[A-Za-z0-9\-._~]/.test(String.fromCharCode(byte)) ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`)).join("");
}

function parameterValue(parameter: string, world: FuzzWorld, random: Random): string {
  if (random.chance(0.07)) return hostile(random);
  switch (parameter) {
    case "ipset":
      return random.pick(world.ipsets);
    case "entry":
      return random.pick(ADDRESSES);
    case "family":
      return random.pick(["ipv4", "ipv4", "ipv6", "ipv6", "ipv5"]);
    case "table":
      return random.pick(["filter", "filter", "filter", "nat"]);
    case "chain":
      return random.pick(world.chains);
    case "rule":
      return random.pick([...world.rules.map((rule) => rule.slice(rule.lastIndexOf("/") + 1)), "000000000000"]);
    case "jail":
      return random.pick(world.jails);
    case "feed":
      return random.pick(world.feeds);
    case "bouncer":
      return random.pick(["fzb", "fzb2"]);
    default:
      return random.pick(HOSTILE_TEXT);
  }
}
