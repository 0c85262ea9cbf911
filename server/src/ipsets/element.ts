/**
 * Validation and normalization of what clients put into sets. Normalized text is exactly what `ipset save` prints for
 * the same element, so an entry we add can be found again in the kernel's listing by plain string comparison.
 */
import ipaddr from "ipaddr.js";
import { ServerError, type Reason } from "../errors.js";
import type { Family, IpsetDefinition } from "./ipset-model.js";
import { formatAddress, networkBase, parseAddressStrict, type Address } from "../addresses.js";
import { ipsetOptionIn } from "../drivers/parse/ipset-save.js";
import { validateIpsetName } from "../names.js";
type ElementSet = Pick<IpsetDefinition, "typeName" | "family" | "range"> & { readonly name?: string };

const PORT_PROTOCOLS = ["tcp", "udp", "sctp", "udplite"] as const;
/** ipset's own limit: comments of 255 characters. */
const MAX_COMMENT_BYTES = 255;
/** hash:ip expands a CIDR into one entry per address; larger blocks belong in a hash:net set. */
const MIN_EXPANDED_PREFIX_V4 = 16;
/** The kernel's size limit for bitmap:ip. */
const MAX_BITMAP_ADDRESSES = 65536;

function fail(reason: Reason, field: string, value: string, message: string): never {
  throw new ServerError(reason, message, { field, value });
}

export function validateComment(comment: string): void {
  const bytes = Buffer.byteLength(comment, "utf8");
  if (bytes > MAX_COMMENT_BYTES) {
    fail("INVALID_COMMENT", "comment", comment, `comment is ${bytes} bytes of UTF-8; shorten it to at most ${MAX_COMMENT_BYTES} bytes`);
  }
  // `"` delimits comments in `ipset save`/`restore` text and the ipset tool refuses it; line breaks would split a
  // restore line, and other control characters make listings unreadable.
  if (comment.includes('"')) {
    fail("INVALID_COMMENT", "comment", comment, `comment must not contain double quotes ("); use single quotes instead`);
  }
  if (/[\u0000-\u001f\u007f-\u009f]/.test(comment)) {
    fail("INVALID_COMMENT", "comment", comment, "comment must not contain control characters such as newlines or tabs");
  }
  const option = ipsetOptionIn(comment);
  if (option !== undefined) {
    fail("INVALID_COMMENT", "comment", comment, `comment "${comment}" would be read by ipset as its option ${option}, whatever the quoting; add a word to it (e.g. "note ${comment}")`);
  }
}

/** The family of an element's address part ("192.0.2.0/24,tcp:80" → inet), or undefined if it has none. */
export function elementFamily(element: string): Family | undefined {
  const address = element.split(",")[0]?.split("/")[0] ?? "";
  if (!ipaddr.isValid(address)) return undefined;
  return ipaddr.parse(address).kind() === "ipv4" ? "inet" : "inet6";
}

/** Parses one address strictly (see parseAddressStrict); the error names the element. */
function parseAddress(text: string, raw: string): Address {
  const parsed = parseAddressStrict(text);
  if ("problem" in parsed) fail("INVALID_ELEMENT", "element", raw, `"${raw}": ${parsed.problem}`);
  return parsed;
}

interface Cidr {
  readonly address: Address;
  /** undefined when no "/len" was given. */
  readonly prefix: number | undefined;
}

function parseCidr(text: string, raw: string): Cidr {
  const [addressText = "", prefixText, extra] = text.split("/");
  const address = parseAddress(addressText, raw);
  if (prefixText === undefined) return { address, prefix: undefined };
  const max = address.kind() === "ipv4" ? 32 : 128;
  const prefix = Number(prefixText);
  // The ipset tool reads prefix lengths with base auto-detection ("/032" is octal 26), so only plain decimal is safe.
  if (extra !== undefined || !/^\d+$/.test(prefixText) || String(prefix) !== prefixText || prefix > max) {
    fail("INVALID_ELEMENT", "element", raw, `"${raw}": the prefix length must be a decimal number 0-${max} without leading zeros`);
  }
  return { address, prefix };
}

function familyOf(address: Address): Family {
  return address.kind() === "ipv4" ? "inet" : "inet6";
}

function checkFamily(address: Address, set: ElementSet, raw: string): void {
  const expected: Family = set.family ?? "inet";
  if (familyOf(address) === expected) return;
  const kind = address.kind() === "ipv4" ? "IPv4" : "IPv6";
  const target = set.name === undefined ? "the set" : `set "${set.name}"`;
  throw new ServerError("FAMILY_MISMATCH", `${raw} is an ${kind} address but ${target} is family ${expected}`, {
    field: "element",
    value: raw,
  });
}

function isAllZero(address: Address): boolean {
  return address.toByteArray().every((byte) => byte === 0);
}

/**
 * Address part of hash:ip and hash:ip,port elements: the kernel stores single addresses and expands an IPv4 CIDR
 * into one entry per address; the ipset tool refuses IPv6 CIDRs here, and the kernel refuses the all-zero address.
 */
/**
 * The common case of big batches — a plain IPv4 address already in canonical dotted-decimal form — answered without
 * the general path's allocations: ipaddr.js parses it and its own formatting must give the text back unchanged
 * (so octal, hex or short forms still go the strict way). Returns undefined when the general path must decide.
 */
function canonicalIPv4(text: string, set: ElementSet): string | undefined {
  if ((set.family ?? "inet") !== "inet" || text === "0.0.0.0") return undefined;
  try {
    return ipaddr.IPv4.parse(text).toString() === text ? text : undefined;
  } catch {
    return undefined;
  }
}

function normalizeHostPart(text: string, set: ElementSet, raw: string): string {
  const fast = canonicalIPv4(text, set);
  if (fast !== undefined) return fast;
  const { address, prefix } = parseCidr(text, raw);
  checkFamily(address, set, raw);
  const full = address.kind() === "ipv4" ? 32 : 128;
  if (prefix !== undefined && prefix !== full) {
    if (address.kind() === "ipv6") {
      fail("INVALID_ELEMENT", "element", raw,
        `"${raw}": ${set.typeName} sets of family inet6 take single addresses; add each address on its own or use a hash:net set for a network`);
    }
    if (prefix < MIN_EXPANDED_PREFIX_V4) {
      fail("INVALID_ELEMENT", "element", raw,
        `"${raw}": the range is too large, a ${set.typeName} set stores one entry per address and /${prefix} is ${2 ** (32 - prefix)} addresses; use /${MIN_EXPANDED_PREFIX_V4} or longer, or a hash:net set`);
    }
  }
  const base = prefix === undefined ? address : networkBase(address, prefix);
  if (isAllZero(base)) {
    fail("INVALID_ELEMENT", "element", raw, `"${raw}": the all-zero address ${formatAddress(base)} cannot be stored in a ${set.typeName} set`);
  }
  return prefix === undefined || prefix === full ? formatAddress(base) : `${formatAddress(base)}/${prefix}`;
}

/** Address part of hash:net and hash:net,port elements: stored as network base and prefix, host routes without it. */
function normalizeNetPart(text: string, set: ElementSet, raw: string): string {
  const fast = canonicalIPv4(text, set);
  if (fast !== undefined) return fast;
  const { address, prefix } = parseCidr(text, raw);
  checkFamily(address, set, raw);
  if (prefix === 0) {
    fail("INVALID_ELEMENT", "element", raw, `"${raw}": the kernel does not store /0 networks; use two halves such as 0.0.0.0/1 and 128.0.0.0/1 (or ::/1 and 8000::/1)`);
  }
  const full = address.kind() === "ipv4" ? 32 : 128;
  if (prefix === undefined || prefix === full) return formatAddress(address);
  return `${formatAddress(networkBase(address, prefix))}/${prefix}`;
}

/**
 * "[PROTO:]PORT" with PROTO one of tcp, udp, sctp, udplite. ICMP is refused on purpose: the kernel prints ICMP types
 * by name (icmp:echo-request, ipv6-icmp:no-route), and normalizing to that would mean copying ipset's name tables.
 */
function normalizePortPart(text: string, raw: string): string {
  const colon = text.indexOf(":");
  const protocol = colon < 0 ? "tcp" : text.slice(0, colon).toLowerCase();
  const port = colon < 0 ? text : text.slice(colon + 1);
  if (protocol === "icmp" || protocol === "icmpv6" || protocol === "ipv6-icmp") {
    fail("INVALID_ELEMENT", "element", raw, `"${raw}": ICMP entries are not supported; use tcp, udp, sctp or udplite with a port number`);
  }
  if (!(PORT_PROTOCOLS as readonly string[]).includes(protocol)) {
    fail("INVALID_ELEMENT", "element", raw, `"${raw}": unknown protocol "${protocol}"; use tcp, udp, sctp or udplite (tcp when omitted)`);
  }
  if (port.includes("-")) {
    fail("INVALID_ELEMENT", "element", raw, `"${raw}": port ranges are not supported; add one entry per port`);
  }
  const number = Number(port);
  // The ipset tool would also take service names ("http") and hex/octal ("0x50"); only plain decimal is unambiguous.
  if (!/^\d+$/.test(port) || String(number) !== port || number > 65535) {
    fail("INVALID_ELEMENT", "element", raw, `"${raw}": the port must be a decimal number 0-65535 without leading zeros (service names are not accepted)`);
  }
  return `${protocol}:${number}`;
}

function splitPortElement(raw: string, typeName: string): [string, string] {
  const parts = raw.split(",");
  if (parts.length !== 2 || parts.some((part) => part === "")) {
    fail("INVALID_ELEMENT", "element", raw, `"${raw}": ${typeName} elements look like ADDRESS,PROTO:PORT (e.g. 192.0.2.1,tcp:443)`);
  }
  return [parts[0] ?? "", parts[1] ?? ""];
}

interface Ipv4Span {
  readonly from: number;
  readonly to: number;
}

function ipv4Number(address: ipaddr.IPv4): number {
  return address.octets.reduce((acc, octet) => acc * 256 + octet, 0);
}

function ipv4Text(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}

/** An IPv4 address or CIDR as the numeric span of addresses it covers. */
function ipv4Span(address: ipaddr.IPv4, prefix = 32): Ipv4Span {
  const size = 2 ** (32 - prefix);
  const from = Math.floor(ipv4Number(address) / size) * size;
  return { from, to: from + size - 1 };
}

function parseRange(range: string, field: string, reason: Reason): Ipv4Span {
  const bad = (why: string): never => fail(reason, field, range, `range "${range}": ${why}`);
  const ipv4 = (text: string): ipaddr.IPv4 => {
    const address = ipaddr.IPv4.isValidFourPartDecimal(text) ? ipaddr.IPv4.parse(text) : undefined;
    return address ?? bad(`"${text}" is not an IPv4 address; bitmap:ip ranges are IPv4 only, written as FROM-TO or CIDR (e.g. 192.0.2.0-192.0.2.255 or 192.0.2.0/24)`);
  };
  let span: Ipv4Span;
  if (range.includes("/")) {
    const [addressText = "", prefixText = "", extra] = range.split("/");
    const address = ipv4(addressText);
    const prefix = Number(prefixText);
    if (extra !== undefined || !/^\d+$/.test(prefixText) || String(prefix) !== prefixText || prefix > 32) {
      bad("the prefix length must be a decimal number 0-32 without leading zeros");
    }
    span = ipv4Span(address, prefix);
  } else {
    const [fromText = "", toText, extra] = range.split("-");
    if (toText === undefined || extra !== undefined) bad("write it as FROM-TO or CIDR (e.g. 192.0.2.0-192.0.2.255 or 192.0.2.0/24)");
    span = { from: ipv4Number(ipv4(fromText)), to: ipv4Number(ipv4(toText ?? "")) };
    if (span.from > span.to) bad("the first address must not be greater than the last");
  }
  const size = span.to - span.from + 1;
  if (size > MAX_BITMAP_ADDRESSES) bad(`it holds ${size} addresses; a bitmap:ip set holds at most ${MAX_BITMAP_ADDRESSES} (a /16)`);
  return span;
}

/** A bitmap:ip range in the form `ipset save` prints it: always FROM-TO, a CIDR's host bits cleared. */
export function normalizeRange(range: string): string {
  const { from, to } = parseRange(range, "range", "INVALID_IPSET_OPTION");
  return `${ipv4Text(from)}-${ipv4Text(to)}`;
}

function normalizeBitmapElement(set: ElementSet, raw: string): string {
  const { address, prefix = 32 } = parseCidr(raw, raw);
  if (!(address instanceof ipaddr.IPv4)) {
    const target = set.name === undefined ? "the set" : `set "${set.name}"`;
    throw new ServerError("FAMILY_MISMATCH", `${raw} is an IPv6 address but ${target} is a bitmap:ip set, which holds IPv4 addresses only`, {
      field: "element",
      value: raw,
    });
  }
  if (set.range === undefined) {
    fail("INVALID_IPSET_OPTION", "range", "", "the bitmap:ip set has no range; it cannot take elements");
  }
  const range = parseRange(set.range, "range", "INVALID_IPSET_OPTION");
  const span = ipv4Span(address, prefix);
  if (span.from < range.from || span.to > range.to) {
    const target = set.name === undefined ? "the set" : `set "${set.name}"`;
    fail("INVALID_ELEMENT", "element", raw, `${raw} is outside the range ${ipv4Text(range.from)}-${ipv4Text(range.to)} of ${target}`);
  }
  return prefix === 32 ? ipv4Text(span.from) : `${ipv4Text(span.from)}/${prefix}`;
}

/**
 * Validates an element for a set and returns it as `ipset save` prints it. Where the kernel expands an element into
 * several entries (an IPv4 CIDR in hash:ip, hash:ip,port or bitmap:ip), the result is the normalized CIDR itself.
 */
export function normalizeElement(set: ElementSet, raw: string): string {
  switch (set.typeName) {
    case "hash:ip":
      return normalizeHostPart(raw, set, raw);
    case "hash:net":
      return normalizeNetPart(raw, set, raw);
    case "hash:ip,port": {
      const [address, port] = splitPortElement(raw, set.typeName);
      return `${normalizeHostPart(address, set, raw)},${normalizePortPart(port, raw)}`;
    }
    case "hash:net,port": {
      const [address, port] = splitPortElement(raw, set.typeName);
      return `${normalizeNetPart(address, set, raw)},${normalizePortPart(port, raw)}`;
    }
    case "bitmap:ip":
      return normalizeBitmapElement(set, raw);
    case "list:set":
      validateIpsetName(raw, "element");
      return raw;
    default:
      return fail("INVALID_IPSET_TYPE", "type", set.typeName,
        `sets of type ${set.typeName} are not modeled by Portcullis and are read-only; elements can only be added to hash:ip, hash:net, hash:ip,port, hash:net,port, bitmap:ip and list:set sets`);
  }
}

/** Set types whose kernel entries are single addresses: a CIDR added to them becomes one entry per address. */
const HOST_TYPES: ReadonlySet<string> = new Set(["hash:ip", "hash:ip,port", "bitmap:ip"]);

/** Whether the kernel entries of a set type are single addresses, a network added to it becoming many entries. */
export function holdsSingleAddresses(typeName: string): boolean {
  return HOST_TYPES.has(typeName);
}

/**
 * The entries the kernel holds for a normalized element: the element itself, or for a CIDR in a set of single
 * addresses (hash:ip, hash:ip,port, bitmap:ip) each address of it, in order, as `ipset save` prints them. The store
 * records these, so that counts, listings, tests and deletes agree with the kernel. normalizeElement bounds the size.
 */
export function expandElement(typeName: string, element: string): string[] {
  if (!holdsSingleAddresses(typeName)) return [element];
  const comma = element.indexOf(",");
  const host = comma < 0 ? element : element.slice(0, comma);
  const rest = comma < 0 ? "" : element.slice(comma);
  const slash = host.indexOf("/");
  if (slash < 0) return [element];
  const prefix = Number(host.slice(slash + 1));
  const { from, to } = ipv4Span(ipaddr.IPv4.parse(host.slice(0, slash)), prefix);
  const addresses = new Array<string>(to - from + 1);
  for (let value = from; value <= to; value++) addresses[value - from] = `${ipv4Text(value)}${rest}`;
  return addresses;
}
