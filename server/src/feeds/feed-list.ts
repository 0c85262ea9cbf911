import { isIPv4 } from "node:net";
import ipaddr from "ipaddr.js";
import { parseNetworkCanonical, type Address, type Network } from "../addresses.js";
import type { ProtectedNetworks } from "./protected-networks.js";

/**
 * The entries of a list as the kernel will hold them, for comparing two lists: IPv4 entries as numbers (address ×
 * 64 + prefix: exact, and a million of them sort in milliseconds), IPv6 entries as their canonical text; each sorted,
 * without repeats.
 */
export interface ListKeys {
  readonly ipv4: Float64Array;
  readonly ipv6: readonly string[];
}

/** A list read whole. */
export interface ReadList {
  /** What the sets hold: the list less what is protected. */
  readonly keys: ListKeys;
  /** Every address or network of the list in canonical form (protected ones too), one per line: what is stored. */
  readonly text: string;
  /** Lines (JSON items) that are an address or network. */
  readonly valid: number;
  /** Lines that hold something else; the first of them, for the message. */
  readonly invalid: number;
  readonly firstInvalidLine?: number;
  /** Distinct entries left out because they overlap a protected network. */
  readonly skipped: number;
}

/** The two sets a list is written into (by `ipset restore` lines), and their `create` lines. */
export interface RestoreTarget {
  readonly ipv4: string;
  readonly ipv6: string;
  /** The `create` line of one of them, written before its first entry. */
  createLine(family: "ipv4" | "ipv6"): string;
}

/** Restore text is handed on in pieces of about this many entries. */
const PIECE = 4096;

/**
 * Reads a list entry by entry (ListReader's sink): checks and normalizes each address or network as `ipset save`
 * prints it, leaves out what the protected networks cover, and, given a target, renders the `ipset restore` lines
 * that fill it as it goes, so that the kernel fills the sets while the rest of the list is still arriving.
 *
 * A big list is mostly plain IPv4 entries, and this is where a refresh spends its own time: those take a path that
 * allocates nothing per entry beyond the element's text (elements are collected and joined per piece, not
 * concatenated line by line; only an entry near a protected network is looked at with address objects).
 */
export class ListBuilder {
  readonly #protections: ProtectedNetworks;
  readonly #target: RestoreTarget | undefined;
  #ipv4 = new Float64Array(1024);
  #ipv4Count = 0;
  readonly #ipv6: string[] = [];
  readonly #skipped = new Set<string>();
  #valid = 0;
  #invalid = 0;
  #firstInvalidLine: number | undefined;
  /** Elements of the list (all) and of each set (not protected) since the last piece. */
  #listed: string[] = [];
  readonly #listPieces: string[] = [];
  #adds = { ipv4: [] as string[], ipv6: [] as string[] };
  readonly #restorePieces: string[] = [];
  readonly #created = { ipv4: false, ipv6: false };

  constructor(protections: ProtectedNetworks, target?: RestoreTarget, expected = 0) {
    this.#protections = protections;
    this.#target = target;
    if (expected > 1024) this.#ipv4 = new Float64Array(expected);
  }

  /** Takes one token of the list (a TokenSink). */
  readonly add = (token: string, line: number): void => {
    if (!this.#addIpv4(token)) this.#addOther(token, line);
    if (this.#listed.length >= PIECE) this.#flush();
  };

  /** The restore text rendered since the last call (whole pieces only, unless `all`). */
  takeRestore(all = false): string {
    if (all) this.#flush();
    const text = this.#restorePieces.join("");
    this.#restorePieces.length = 0;
    return text;
  }

  /** Whether an entry of the family went to the target (and so its set was created). */
  wrote(family: "ipv4" | "ipv6"): boolean {
    return this.#created[family];
  }

  /** The list read (after the last token). */
  finish(): ReadList {
    this.#flush();
    const text = this.#listPieces.join("");
    this.#listPieces.length = 0;
    return {
      keys: { ipv4: sortedUnique(this.#ipv4.subarray(0, this.#ipv4Count)), ipv6: [...new Set(this.#ipv6)].sort() },
      text,
      valid: this.#valid,
      invalid: this.#invalid,
      ...(this.#firstInvalidLine === undefined ? {} : { firstInvalidLine: this.#firstInvalidLine }),
      skipped: this.#skipped.size,
    };
  }

  /**
   * A plain IPv4 address or network in canonical form (node:net's isIPv4 takes only four decimal numbers 0-255
   * without leading zeros, the form inet_pton and ipaddr.js agree on), base address and all; false for anything else,
   * which #addOther reads with the strict parser of addresses.ts.
   */
  #addIpv4(token: string): boolean {
    const slash = token.indexOf("/");
    const addressText = slash < 0 ? token : token.slice(0, slash);
    if (!isIPv4(addressText)) return false;
    const prefix = slash < 0 ? 32 : prefixOf(token, slash + 1);
    if (prefix === undefined) return false;
    const value = ipv4Value(addressText);
    const size = 2 ** (32 - prefix);
    // Host bits set (203.0.113.9/24): the strict path prints the base.
    if (value % size !== 0) return false;
    const element = prefix === 32 ? addressText : token;
    this.#valid++;
    this.#listed.push(element);
    if (this.#protections.nearIpv4(value, value + size - 1) && this.#protections.protects({ address: ipaddr.IPv4.parse(addressText), prefix })) {
      this.#skipped.add(element);
      return true;
    }
    this.#pushIpv4(value * 64 + prefix);
    this.#write("ipv4", element);
    return true;
  }

  #addOther(token: string, line: number): void {
    const entry = strictEntry(token);
    if (entry === undefined) {
      this.#invalid++;
      this.#firstInvalidLine ??= line;
      return;
    }
    this.#valid++;
    this.#listed.push(entry.element);
    if (this.#protections.protects(entry.network)) {
      this.#skipped.add(entry.element);
      return;
    }
    if (entry.key === undefined) this.#ipv6.push(entry.element);
    else this.#pushIpv4(entry.key);
    this.#write(entry.key === undefined ? "ipv6" : "ipv4", entry.element);
  }

  #write(family: "ipv4" | "ipv6", element: string): void {
    if (this.#target !== undefined) this.#adds[family].push(element);
  }

  #pushIpv4(key: number): void {
    if (this.#ipv4Count === this.#ipv4.length) {
      const grown = new Float64Array(this.#ipv4.length * 2);
      grown.set(this.#ipv4);
      this.#ipv4 = grown;
    }
    this.#ipv4[this.#ipv4Count++] = key;
  }

  /** Joins what was collected into a piece of the stored list and one of restore text. */
  #flush(): void {
    if (this.#listed.length > 0) this.#listPieces.push(`${this.#listed.join("\n")}\n`);
    this.#listed = [];
    const target = this.#target;
    if (target === undefined) return;
    for (const family of ["ipv4", "ipv6"] as const) {
      const adds = this.#adds[family];
      if (adds.length === 0) continue;
      if (!this.#created[family]) {
        this.#created[family] = true;
        this.#restorePieces.push(`${target.createLine(family)}\n`);
      }
      const prefix = `add ${target[family]} `;
      this.#restorePieces.push(`${prefix}${adds.join(`\n${prefix}`)}\n`);
    }
    this.#adds = { ipv4: [], ipv6: [] };
  }
}

/** The prefix length after a slash: 1 to 32, decimal without leading zeros (ipset reads "/010" as octal). */
function prefixOf(token: string, from: number): number | undefined {
  const length = token.length - from;
  if (length < 1 || length > 2) return undefined;
  const first = token.charCodeAt(from) - 48;
  if (first < 1 || first > 9) return undefined;
  if (length === 1) return first;
  const second = token.charCodeAt(from + 1) - 48;
  if (second < 0 || second > 9) return undefined;
  const prefix = first * 10 + second;
  return prefix <= 32 ? prefix : undefined;
}

/** The 32-bit value of an address isIPv4 accepted (four decimal numbers and three dots). */
function ipv4Value(text: string): number {
  let value = 0;
  let octet = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 46) {
      value = value * 256 + octet;
      octet = 0;
    } else {
      octet = octet * 10 + code - 48;
    }
  }
  return value * 256 + octet;
}

/** Entries of two lists: those in both, and how many each has. */
export function compareKeys(before: ListKeys, after: ListKeys): { added: number; removed: number; kept: number } {
  const kept = common(before.ipv4, after.ipv4) + common(before.ipv6, after.ipv6);
  return { added: sizeOf(after) - kept, removed: sizeOf(before) - kept, kept };
}

/** How many values two ascending lists share (one merge pass). */
function common<T extends number | bigint | string>(before: ArrayLike<T>, after: ArrayLike<T>): number {
  let kept = 0;
  for (let i = 0, j = 0; i < before.length && j < after.length;) {
    const a = before[i]!;
    const b = after[j]!;
    if (a === b) {
      kept++;
      i++;
      j++;
    } else if (a < b) i++;
    else j++;
  }
  return kept;
}

export function sizeOf(keys: ListKeys): number {
  return keys.ipv4.length + keys.ipv6.length;
}

export const NO_KEYS: ListKeys = Object.freeze({ ipv4: new Float64Array(0), ipv6: Object.freeze([]) });

interface CanonicalEntry {
  /** As `ipset save` prints it: a host without its prefix, a network at its base address. */
  readonly element: string;
  readonly network: Network;
  /** IPv4 only: see ListKeys. */
  readonly key?: number;
}

/** One address or network in the form a hash:net set holds it (addresses.ts's strict parser), or undefined (also for /0, which the kernel does not store). */
function strictEntry(token: string): CanonicalEntry | undefined {
  const parsed = parseNetworkCanonical(token);
  if ("problem" in parsed || parsed.prefix === 0) return undefined;
  const network = { address: parsed.address, prefix: parsed.prefix };
  if (parsed.address.kind() === "ipv6") return { element: parsed.network, network };
  return { element: parsed.network, network, key: addressValue(parsed.address) * 64 + parsed.prefix };
}

function addressValue(address: Address): number {
  const [a = 0, b = 0, c = 0, d = 0] = address.toByteArray();
  return ((a * 256 + b) * 256 + c) * 256 + d;
}

function sortedUnique(values: Float64Array): Float64Array {
  const sorted = values.sort();
  let length = 0;
  for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[length - 1]) sorted[length++] = sorted[i]!;
  return sorted.subarray(0, length);
}
