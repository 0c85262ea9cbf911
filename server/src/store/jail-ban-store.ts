import type { Db } from "./database.js";

/** The bans of each jail as last seen, so that fail2ban's own bans and expiries become events exactly once. */
export class JailBanStore {
  readonly #db: Db;
  readonly #all;
  readonly #put;
  readonly #delete;

  constructor(db: Db) {
    this.#db = db;
    this.#all = db.prepare<[string], { address: string }>("SELECT address FROM jail_bans WHERE jail = ?");
    this.#put = db.prepare("INSERT OR IGNORE INTO jail_bans (jail, address, since) VALUES (?, ?, ?)");
    this.#delete = db.prepare("DELETE FROM jail_bans WHERE jail = ? AND address = ?");
  }

  addresses(jail: string): Set<string> {
    return new Set(this.#all.all(jail).map((row) => row.address));
  }

  record(jail: string, added: Iterable<string>, removed: Iterable<string>): void {
    this.#db.transaction(() => {
      for (const address of added) this.#put.run(jail, address, Date.now());
      for (const address of removed) this.#delete.run(jail, address);
    })();
  }
}
