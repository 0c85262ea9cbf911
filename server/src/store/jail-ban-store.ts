import type { Db } from "./database.js";

/**
 * The bans of each jail as last seen, so that fail2ban's bans and expiries become events exactly once. Each jail has
 * a version that every change bumps: a reader that compared fail2ban's list while a change was recorded (the
 * Portcullis action reports bans without waiting for anyone) sees the version move and looks again later.
 */
export class JailBanStore {
  readonly #db: Db;
  readonly #all;
  readonly #has;
  readonly #list;
  readonly #put;
  readonly #delete;
  readonly #versions = new Map<string, number>();

  constructor(db: Db) {
    this.#db = db;
    this.#all = db.prepare<[string], { address: string }>("SELECT address FROM jail_bans WHERE jail = ?");
    this.#list = db.prepare<[string], { address: string }>("SELECT address FROM jail_bans WHERE jail = ? ORDER BY since, address");
    this.#has = db.prepare<[string, string], { one: number }>("SELECT 1 AS one FROM jail_bans WHERE jail = ? AND address = ?");
    this.#put = db.prepare("INSERT OR IGNORE INTO jail_bans (jail, address, since) VALUES (?, ?, ?)");
    this.#delete = db.prepare("DELETE FROM jail_bans WHERE jail = ? AND address = ?");
  }

  addresses(jail: string): Set<string> {
    return new Set(this.#all.all(jail).map((row) => row.address));
  }

  /** A jail's bans, oldest first. */
  list(jail: string): string[] {
    return this.#list.all(jail).map((row) => row.address);
  }

  has(jail: string, address: string): boolean {
    return this.#has.get(jail, address) !== undefined;
  }

  version(jail: string): number {
    return this.#versions.get(jail) ?? 0;
  }

  /** Records bans and unbans; returns those that changed something (a ban not yet known, an unban of a known one). */
  record(jail: string, added: Iterable<string>, removed: Iterable<string>): { added: string[]; removed: string[] } {
    const changed = { added: [] as string[], removed: [] as string[] };
    this.#db.transaction(() => {
      for (const address of added) if (this.#put.run(jail, address, Date.now()).changes > 0) changed.added.push(address);
      for (const address of removed) if (this.#delete.run(jail, address).changes > 0) changed.removed.push(address);
    })();
    if (changed.added.length > 0 || changed.removed.length > 0) this.#versions.set(jail, this.version(jail) + 1);
    return changed;
  }
}
