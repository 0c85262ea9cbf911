import ipaddr from "ipaddr.js";
import { formatAddress, networkBase, parseNetworkCanonical, type Address, type Network } from "../addresses.js";
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

/** Restore text is handed on in pieces of about this many characters. */
const PIECE = 64 * 1024;

/**
 * Reads a list entry by entry (ListReader's sink): checks and normalizes each address or network as `ipset save`
 * prints it, leaves out what the protected networks cover, and, given a target, renders the `ipset restore` lines
 * that fill it as it goes, so that the kernel fills the sets while the rest of the list is still arriving.
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
  #text = "";
  readonly #textPieces: string[] = [];
  #restore = "";
  readonly #restorePieces: string[] = [];
  readonly #created = { ipv4: false, ipv6: false };

  constructor(protections: ProtectedNetworks, target?: RestoreTarget, expected = 0) {
    this.#protections = protections;
    this.#target = target;
    if (expected > 1024) this.#ipv4 = new Float64Array(expected);
  }

  /** Takes one token of the list (a TokenSink). */
  readonly add = (token: string, line: number): void => {
    const entry = canonicalEntry(token);
    if (entry === undefined) {
      this.#invalid++;
      this.#firstInvalidLine ??= line;
      return;
    }
    this.#valid++;
    this.#text += `${entry.element}\n`;
    if (this.#text.length > PIECE) this.#flushText();
    if (this.#protections.protects(entry.network)) {
      this.#skipped.add(entry.element);
      return;
    }
    const family = entry.key === undefined ? "ipv6" : "ipv4";
    if (entry.key === undefined) this.#ipv6.push(entry.element);
    else this.#pushIpv4(entry.key);
    const target = this.#target;
    if (target === undefined) return;
    if (!this.#created[family]) {
      this.#created[family] = true;
      this.#restore += `${target.createLine(family)}\n`;
    }
    this.#restore += `add ${target[family]} ${entry.element}\n`;
    if (this.#restore.length > PIECE) {
      this.#restorePieces.push(this.#restore);
      this.#restore = "";
    }
  };

  /** The restore text rendered since the last call (whole pieces only, unless `all`). */
  takeRestore(all = false): string {
    if (all && this.#restore !== "") {
      this.#restorePieces.push(this.#restore);
      this.#restore = "";
    }
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
    this.#flushText();
    const text = this.#textPieces.join("");
    this.#textPieces.length = 0;
    return {
      keys: { ipv4: sortedUnique(this.#ipv4.subarray(0, this.#ipv4Count)), ipv6: [...new Set(this.#ipv6)].sort() },
      text,
      valid: this.#valid,
      invalid: this.#invalid,
      ...(this.#firstInvalidLine === undefined ? {} : { firstInvalidLine: this.#firstInvalidLine }),
      skipped: this.#skipped.size,
    };
  }

  #pushIpv4(key: number): void {
    if (this.#ipv4Count === this.#ipv4.length) {
      const grown = new Float64Array(this.#ipv4.length * 2);
      grown.set(this.#ipv4);
      this.#ipv4 = grown;
    }
    this.#ipv4[this.#ipv4Count++] = key;
  }

  #flushText(): void {
    if (this.#text === "") return;
    this.#textPieces.push(this.#text);
    this.#text = "";
  }
}

/** Entries of two lists: those in both, and how many each has. */
export function compareKeys(before: ListKeys, after: ListKeys): { added: number; removed: number; kept: number } {
  let kept = 0;
  for (let i = 0, j = 0; i < before.ipv4.length && j < after.ipv4.length;) {
    const a = before.ipv4[i]!;
    const b = after.ipv4[j]!;
    if (a === b) {
      kept++;
      i++;
      j++;
    } else if (a < b) i++;
    else j++;
  }
  for (let i = 0, j = 0; i < before.ipv6.length && j < after.ipv6.length;) {
    const a = before.ipv6[i]!;
    const b = after.ipv6[j]!;
    if (a === b) {
      kept++;
      i++;
      j++;
    } else if (a < b) i++;
    else j++;
  }
  return { added: sizeOf(after) - kept, removed: sizeOf(before) - kept, kept };
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

/**
 * One address or network in the form a hash:net set holds it, or undefined for anything else (and for /0, which the
 * kernel does not store). A plain IPv4 address or network already in canonical dotted-decimal form — nearly every
 * line of a big list — is answered by ipaddr.js's parser and its own printing giving the text back unchanged; every
 * other form goes through the strict parser of addresses.ts.
 */
function canonicalEntry(token: string): CanonicalEntry | undefined {
  const slash = token.indexOf("/");
  const addressText = slash < 0 ? token : token.slice(0, slash);
  if (addressText.includes(":") || addressText === "") return strictEntry(token);
  let address: ipaddr.IPv4;
  try {
    address = ipaddr.IPv4.parse(addressText);
  } catch {
    return undefined;
  }
  if (address.toString() !== addressText) return strictEntry(token);
  let prefix = 32;
  if (slash >= 0) {
    const prefixText = token.slice(slash + 1);
    prefix = Number(prefixText);
    // Decimal without leading zeros: the ipset tool would read "/010" as octal.
    if (!Number.isInteger(prefix) || prefix < 1 || prefix > 32 || String(prefix) !== prefixText) return undefined;
  }
  const [a = 0, b = 0, c = 0, d = 0] = address.octets;
  const value = ((a * 256 + b) * 256 + c) * 256 + d;
  const size = 2 ** (32 - prefix);
  const base = value - (value % size);
  if (base === value) return { element: prefix === 32 ? addressText : token, network: { address, prefix }, key: base * 64 + prefix };
  const baseAddress = networkBase(address, prefix);
  return { element: `${formatAddress(baseAddress)}/${prefix}`, network: { address: baseAddress, prefix }, key: base * 64 + prefix };
}

function strictEntry(token: string): CanonicalEntry | undefined {
  const parsed = parseNetworkCanonical(token);
  if ("problem" in parsed || parsed.prefix === 0) return undefined;
  const network = { address: parsed.address, prefix: parsed.prefix };
  if (parsed.address.kind() === "ipv6") return { element: parsed.network, network };
  return { element: parsed.network, network, key: ipv4Value(parsed.address) * 64 + parsed.prefix };
}

function ipv4Value(address: Address): number {
  const [a = 0, b = 0, c = 0, d = 0] = address.toByteArray();
  return ((a * 256 + b) * 256 + c) * 256 + d;
}

function sortedUnique(values: Float64Array): Float64Array {
  const sorted = values.sort();
  let length = 0;
  for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[length - 1]) sorted[length++] = sorted[i]!;
  return sorted.subarray(0, length);
}
