import { covers, parseNetworkCanonical, type Address } from "../addresses.js";
import type { AllowlistRow, AllowlistStore } from "../store/allowlist-store.js";

interface Parsed {
  readonly row: AllowlistRow;
  readonly address: Address;
  readonly prefix: number;
}

/**
 * The host allowlist as every ban path reads it: the stored entries, parsed once, in address order. Expired entries
 * no longer count (AllowlistService removes them, with an event, when they expire).
 */
export class Allowlist {
  readonly #store: AllowlistStore;
  #entries: Parsed[] = [];

  constructor(store: AllowlistStore) {
    this.#store = store;
    this.#load();
  }

  list(now = Date.now()): AllowlistRow[] {
    return this.#entries.filter((entry) => !expired(entry.row, now)).map((entry) => entry.row);
  }

  /** Every entry, expired ones too. */
  stored(): AllowlistRow[] {
    return this.#entries.map((entry) => entry.row);
  }

  /** The entry that protects the address (or network), if any. */
  covering(address: string): AllowlistRow | undefined {
    const parsed = parseNetworkCanonical(address);
    if ("problem" in parsed) return undefined;
    const now = Date.now();
    return this.#entries.find((entry) =>
      !expired(entry.row, now) && covers(entry, parsed))?.row;
  }

  put(row: AllowlistRow): void {
    this.#store.put(row);
    this.#load();
  }

  /** Whether there was such an entry. */
  delete(network: string): boolean {
    const deleted = this.#store.delete(network);
    this.#load();
    return deleted;
  }

  #load(): void {
    this.#entries = this.#store.all().flatMap((row) => {
      const parsed = parseNetworkCanonical(row.network);
      return "problem" in parsed ? [] : [{ row, address: parsed.address, prefix: parsed.prefix }];
    });
    this.#entries.sort(compareNetworks);
  }
}

export function expired(row: AllowlistRow, now: number): boolean {
  return row.expiresAt !== undefined && row.expiresAt <= now;
}

/** IPv4 before IPv6, then by address bytes, then by prefix. */
function compareNetworks(a: Parsed, b: Parsed): number {
  const x = a.address.toByteArray();
  const y = b.address.toByteArray();
  if (x.length !== y.length) return x.length - y.length;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return a.prefix - b.prefix;
}
