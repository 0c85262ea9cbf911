import { ServerError } from "../errors.js";
import { KeyedLock } from "../keyed-lock.js";
import type { IptablesDriver } from "../drivers/iptables-driver.js";
import type { FirewallStore } from "../store/firewall-store.js";
import { TableReader, type TableViews } from "./table-reader.js";
import { WRITABLE_TABLES, type Family, type Table } from "./rule-model.js";

export interface TableSnapshot extends TableViews {
  readonly text: string;
}

/**
 * How every part of the firewall domain (the service, safe mode, panic mode, ApplyRuleset) reads a table and takes
 * its lock: one lock per table for all of them, so a change waits for the one before it whichever part makes it.
 * Below it, the checks and the error they share.
 */
export class TableAccess {
  readonly #iptables: IptablesDriver;
  readonly #store: FirewallStore;
  readonly #lock = new KeyedLock();
  readonly #reader = new TableReader();

  constructor(iptables: IptablesDriver, store: FirewallStore) {
    this.#iptables = iptables;
    this.#store = store;
  }

  async snapshot(family: Family, table: Table): Promise<TableSnapshot> {
    const text = await this.#iptables.save(family, table);
    const { chains, rules } = this.#reader.read(family, table, text, this.#store.managedLines(family, table), this.#store.managedRevision);
    // The text without counters is only for ExportRuleset: computed when asked for (a regex over 1 MB otherwise).
    return { get text() { return stripCounters(text); }, chains, rules };
  }

  locked<T>(family: Family, table: Table, work: () => Promise<T>): Promise<T> {
    return this.#lock.with([`${family}/${table}`], work);
  }

  /** Holds the table's lock in both families (panic mode changes both at once). */
  lockedInBothFamilies<T>(table: Table, work: () => Promise<T>): Promise<T> {
    return this.#lock.with([`ipv4/${table}`, `ipv6/${table}`], work);
  }

  /** User chains Portcullis created in this table. */
  ownedChains(family: Family, table: Table): Set<string> {
    return new Set(this.#store.chains(family, table).filter((chain) => chain.policy === undefined).map((chain) => chain.chain));
  }
}

export function writable(table: Table): void {
  if (!WRITABLE_TABLES.includes(table)) throw new ServerError("TABLE_READ_ONLY", `the ${table} table is read-only through Portcullis; only filter can be changed`, { table });
}

export function validateChainName(name: string, field = "chain_id"): void {
  if (!/^[A-Za-z0-9_.-]{1,28}$/.test(name) || name.startsWith("-")) {
    throw new ServerError("INVALID_CHAIN_NAME", `${field} must be 1 to 28 characters of letters, digits, _ . - (not starting with -), got "${name.slice(0, 40)}"`, { field, value: name.slice(0, 40) });
  }
}

export function chainNotFound(family: Family, table: string, chain: string): ServerError {
  return new ServerError("CHAIN_NOT_FOUND", `there is no chain ${chain} in the ${family} ${table} table`, { chain });
}

function stripCounters(text: string): string {
  return text.replace(/^\[\d+:\d+\] /gm, "");
}
