import ipaddr from "ipaddr.js";
import { ServerError } from "./errors.js";

/** The one address parser and printer of the server: strict like inet_pton, printed like inet_ntop. */
export type Address = ipaddr.IPv4 | ipaddr.IPv6;

/**
 * Parses one address in the forms the kernel tools (inet_pton) and ipaddr.js agree on; anything else gets a reason.
 * The tools resolve other text with getaddrinfo: "010.1.1.1" would be octal (8.1.1.1), "10.1" would be 10.0.0.1,
 * and a name would be looked up in DNS.
 */
export function parseAddressStrict(text: string): Address | { readonly problem: string } {
  if (text.includes(":")) {
    // ipaddr.js is laxer than inet_pton: it takes zone ids, groups of more than four hex digits, and a "::" standing
    // for no group at all (::1:2:3:4:5:6:7:8).
    const groups = text.split(":").filter((group) => group !== "");
    const groupCount = groups.reduce((count, group) => count + (group.includes(".") ? 2 : 1), 0);
    if (text.includes("%") || !ipaddr.IPv6.isValid(text) || groups.some((group) => !group.includes(".") && group.length > 4) ||
      (text.includes("::") && groupCount > 7)) {
      return { problem: "not an IPv6 address; write it like 2001:db8::1 (host names and zone ids are not accepted)" };
    }
    // An embedded IPv4 tail gets the same strictness as a plain IPv4 address.
    const tail = text.slice(text.lastIndexOf(":") + 1);
    if (text.includes(".") && !ipaddr.IPv4.isValidFourPartDecimal(tail)) {
      return { problem: "the IPv4 part of this IPv6 address must be four decimal numbers 0-255 without leading zeros" };
    }
    // ipaddr.js reads the deprecated IPv4-compatible form ::a.b.c.d as ::ffff:a.b.c.d; inet_pton reads ::a.b.c.d.
    if (text.startsWith("::") && text.length === tail.length + 2 && text.includes(".")) {
      return ipaddr.fromByteArray([...new Array<number>(12).fill(0), ...ipaddr.IPv4.parse(tail).octets]);
    }
    return ipaddr.IPv6.parse(text);
  }
  if (!ipaddr.IPv4.isValidFourPartDecimal(text)) {
    return { problem: "not an IP address; write an IPv4 address as four decimal numbers 0-255 without leading zeros (e.g. 192.0.2.1) or an IPv6 address like 2001:db8::1 (host names are not accepted)" };
  }
  return ipaddr.IPv4.parse(text);
}

/** Prints an address as `ipset save` and `ip6tables-save` do (glibc inet_ntop). */
export function formatAddress(address: Address): string {
  if (address instanceof ipaddr.IPv4) return address.toString();
  const w = address.parts;
  const [w5 = 0, w6 = 0, w7 = 0] = w.slice(5);
  // inet_ntop writes the last 32 bits as a dotted quad for ::a.b.c.d and ::ffff:a.b.c.d; RFC 5952 (ipaddr.js) never does.
  if (w.slice(0, 5).every((part) => part === 0) && (w5 === 0xffff || (w5 === 0 && w6 !== 0))) {
    return `::${w5 === 0xffff ? "ffff:" : ""}${w6 >> 8}.${w6 & 0xff}.${w7 >> 8}.${w7 & 0xff}`;
  }
  return address.toRFC5952String();
}

/** The first address of the block (host bits cleared). */
export function networkBase(address: Address, prefix: number): Address {
  return ipaddr.fromByteArray(address.toByteArray().map((byte, i) => {
    const keep = Math.min(8, Math.max(0, prefix - i * 8));
    return byte & ((0xff << (8 - keep)) & 0xff);
  }));
}

/**
 * An address or CIDR network in canonical form: host bits cleared, and a full-length prefix (/32, /128) written as
 * the bare address. Anything else gets a reason.
 */
export function parseNetworkCanonical(text: string): { readonly network: string; readonly address: Address; readonly prefix: number } | { readonly problem: string } {
  const [addressText = "", prefixText, extra] = text.split("/");
  const parsed = parseAddressStrict(addressText);
  if ("problem" in parsed) return parsed;
  const max = parsed.kind() === "ipv4" ? 32 : 128;
  if (prefixText === undefined) return { network: formatAddress(parsed), address: parsed, prefix: max };
  const prefix = Number(prefixText);
  if (extra !== undefined || !/^\d{1,3}$/.test(prefixText) || prefix > max) return { problem: `the prefix length must be 0-${max}` };
  const base = networkBase(parsed, prefix);
  return { network: prefix === max ? formatAddress(base) : `${formatAddress(base)}/${prefix}`, address: base, prefix };
}

/** The canonical form of an address or network given in request field `field`; INVALID_ELEMENT naming it otherwise. */
export function canonicalNetwork(raw: string, field: string): string {
  const parsed = parseNetworkCanonical(raw);
  if ("problem" in parsed) throw new ServerError("INVALID_ELEMENT", `${field} "${raw.slice(0, 100)}": ${parsed.problem}`, { field, value: raw.slice(0, 100) });
  return parsed.network;
}

/** A network as its base address and prefix length; an address is a network of full length (/32, /128). */
export interface Network {
  readonly address: Address;
  readonly prefix: number;
}

/** Whether `outer` holds every address of `inner`; never across families. */
export function covers(outer: Network, inner: Network): boolean {
  return outer.address.kind() === inner.address.kind() && outer.prefix <= inner.prefix && inner.address.match(outer.address, outer.prefix);
}

/** Whether two networks share an address (one of them holds the other). */
export function overlap(a: Network, b: Network): boolean {
  return covers(a, b) || covers(b, a);
}

/** An address or network as parseNetworkCanonical reads it (or its refusal). */
export type ParsedNetwork = ReturnType<typeof parseNetworkCanonical>;

/** Whether two parsed networks share an address; refusals never do. */
export function overlaps(a: ParsedNetwork, b: ParsedNetwork): boolean {
  return !("problem" in a) && !("problem" in b) && overlap(a, b);
}
