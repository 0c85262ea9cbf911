import { formatAddress, networkBase, overlaps, parseNetworkCanonical, type Address, type ParsedNetwork } from "../addresses.js";
import type { IpsetStore, StoredEntry } from "../store/ipset-store.js";

/**
 * Which entries of a set a filter selects, in terms the store can look up through the (set, element) key: elements
 * to look up one by one and ranges of elements to scan in order, each candidate then checked by `matches`. Elements
 * are ordered as text, so the ranges are text prefixes.
 */
export interface EntryQuery {
  /** Elements to look up exactly, in ascending order. */
  readonly points: readonly string[];
  /** Element ranges [from, to) to scan, in ascending order and disjoint; `to` undefined = to the end. */
  readonly ranges: ReadonlyArray<{ readonly from: string; readonly to?: string }>;
  /** Whether a candidate element is selected. */
  matches(element: string): boolean;
}

/**
 * The query of a ListEntries filter. An address or CIDR network (any spelling: 2001:DB8::0001 is 2001:db8::1)
 * selects the entries that overlap it — equal to it, inside it, or covering it — by the address or network their
 * element starts with (`192.0.2.0/24,tcp:80` counts as 192.0.2.0/24). Any other text selects the entries whose element
 * starts with it.
 */
export function entryQuery(filter: string): EntryQuery {
  const network = parseNetworkCanonical(filter);
  if ("problem" in network) return { points: [], ranges: [prefixRange(filter)], matches: (element) => element.startsWith(filter) };
  const max = network.address.kind() === "ipv4" ? 32 : 128;
  // Covering (and equal): the network of the address at each prefix length, alone or with a port part after it.
  const covering = Array.from({ length: network.prefix + 1 }, (_, prefix) => {
    const base = formatAddress(networkBase(network.address, prefix));
    return prefix === max ? base : `${base}/${prefix}`;
  });
  // Inside: nothing but itself for an address; otherwise what starts like the network's members.
  const inside = network.prefix === max ? [] : insideRanges(network.address, network.prefix);
  const ranges = [...covering.map((element) => prefixRange(`${element},`)), ...inside];
  return {
    points: [...covering].sort(),
    ranges: disjoint(ranges),
    matches: (element) => overlaps(firstDimension(element), network),
  };
}

/** The address or network an element starts with (its part before a comma). */
function firstDimension(element: string): ParsedNetwork {
  const comma = element.indexOf(",");
  return parseNetworkCanonical(comma === -1 ? element : element.slice(0, comma));
}

/**
 * Text prefixes that every element inside the network starts with. IPv4: the octets the prefix fixes whole, or one
 * prefix per value of a partly fixed octet (the last octet is scanned as its /24, whose members end the text
 * differently). IPv6: the leading groups the prefix fixes, up to the first zero group (where `::` may begin).
 */
function insideRanges(address: Address, prefix: number): Array<{ from: string; to?: string }> {
  if (address.kind() === "ipv4") {
    const octets = address.toByteArray();
    const whole = Math.floor(prefix / 8);
    if (whole >= 3) return [prefixRange(`${octets.slice(0, 3).join(".")}.`)];
    const fixed = octets.slice(0, whole).join(".");
    const lead = whole === 0 ? "" : `${fixed}.`;
    if (prefix % 8 === 0) return [prefixRange(lead)];
    const count = 2 ** (8 - (prefix % 8));
    return Array.from({ length: count }, (_, i) => prefixRange(`${lead}${octets[whole]! + i}.`));
  }
  const lead: string[] = [];
  for (const group of expandedGroups(address).slice(0, Math.floor(prefix / 16))) {
    if (group === 0) break;
    lead.push(group.toString(16));
  }
  return [prefixRange(lead.length === 0 ? "" : `${lead.join(":")}:`)];
}

function expandedGroups(address: Address): number[] {
  const bytes = address.toByteArray();
  return Array.from({ length: bytes.length / 2 }, (_, i) => bytes[2 * i]! * 256 + bytes[2 * i + 1]!);
}

/** The elements starting with `prefix`, as a range: [prefix, prefix with its last character incremented). */
function prefixRange(prefix: string): { from: string; to?: string } {
  if (prefix === "") return { from: "" };
  const last = prefix.charCodeAt(prefix.length - 1);
  return last === 0xffff ? { from: prefix } : { from: prefix, to: prefix.slice(0, -1) + String.fromCharCode(last + 1) };
}

/** Ranges sorted, overlapping ones merged. */
function disjoint(ranges: ReadonlyArray<{ from: string; to?: string }>): Array<{ from: string; to?: string }> {
  const sorted = [...ranges].sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0));
  const merged: Array<{ from: string; to?: string }> = [];
  for (const range of sorted) {
    const previous = merged[merged.length - 1];
    if (previous !== undefined && (previous.to === undefined || previous.to >= range.from)) {
      if (previous.to !== undefined && (range.to === undefined || range.to > previous.to)) merged[merged.length - 1] = range.to === undefined ? { from: previous.from } : { from: previous.from, to: range.to };
      continue;
    }
    merged.push(range);
  }
  return merged;
}

/** Rows a filtered page reads from the store at a time while it looks for matches. */
const FILTER_SCAN = 1000;

/**
 * Up to `limit` live entries after `after` that the query selects, ordered by element: its points looked up one by
 * one, its ranges scanned in order until `limit` of them matched.
 */
export function filteredPage(store: IpsetStore, name: string, query: EntryQuery, after: string, limit: number, now: number): StoredEntry[] {
  const found = new Map<string, StoredEntry>();
  for (const point of query.points) {
    if (point <= after) continue;
    const entry = store.getEntry(name, point, now);
    if (entry !== undefined && query.matches(entry.element)) found.set(entry.element, entry);
  }
  let matched = 0;
  for (const range of query.ranges) {
    if (range.to !== undefined && range.to <= after) continue;
    let cursor = after;
    for (;;) {
      const rows = store.range(name, range.from, range.to, cursor, FILTER_SCAN, now);
      for (const row of rows) {
        if (matched >= limit) break;
        cursor = row.element;
        if (!query.matches(row.element) || found.has(row.element)) continue;
        found.set(row.element, row);
        matched++;
      }
      if (matched >= limit || rows.length < FILTER_SCAN) break;
    }
    if (matched >= limit) break;
  }
  return [...found.values()].sort((x, y) => (x.element < y.element ? -1 : x.element > y.element ? 1 : 0)).slice(0, limit);
}
