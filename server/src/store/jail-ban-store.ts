import { type Db, writeTransaction } from "./database.js";

/** A ban that Portcullis lifts at its own expiry (BanIp with a duration). */
export interface ExpiringBan {
  readonly jail: string;
  readonly address: string;
  /** ms since the epoch. */
  readonly expiresAt: number;
}

/**
 * The bans of each jail as last seen, so that fail2ban's bans and expiries become events exactly once. Kept in SQLite
 * (bans made while Portcullis was down are told apart at the next look) and in memory, in ban order (GetJail of a jail
 * with the Portcullis action lists them from here). Each jail has a version that every change bumps: a reader that
 * compared fail2ban's list while a change was recorded (the Portcullis action reports bans without waiting for anyone)
 * sees the version move and looks again later.
 */
export class JailBanStore {
  readonly #db: Db;
  readonly #load;
  readonly #put;
  readonly #delete;
  readonly #banning;
  readonly #count;
  readonly #all;
  readonly #setExpiry;
  readonly #expiries;
  readonly #nextExpiry;
  readonly #due;
  /** Per jail, loaded on first use: address → since (ms), in ban order. */
  readonly #jails = new Map<string, Map<string, number>>();
  readonly #versions = new Map<string, number>();

  constructor(db: Db) {
    this.#db = db;
    this.#load = db.prepare<[string], { address: string; since: number }>("SELECT address, since FROM jail_bans WHERE jail = ? ORDER BY since, address");
    this.#put = db.prepare("INSERT OR IGNORE INTO jail_bans (jail, address, since) VALUES (?, ?, ?)");
    this.#delete = db.prepare("DELETE FROM jail_bans WHERE jail = ? AND address = ?");
    this.#banning = db.prepare<[string], { jail: string; since: number }>("SELECT jail, since FROM jail_bans WHERE address = ? ORDER BY jail");
    this.#count = db.prepare<[], number>("SELECT count(*) FROM jail_bans").pluck();
    this.#all = db.prepare<[], { jail: string; address: string; since: number; expiresAt: number | null }>("SELECT jail, address, since, expires_at AS expiresAt FROM jail_bans ORDER BY jail, address");
    this.#setExpiry = db.prepare("UPDATE jail_bans SET expires_at = ? WHERE jail = ? AND address = ?");
    this.#expiries = db.prepare<[string], { address: string; since: number; expiresAt: number }>("SELECT address, since, expires_at AS expiresAt FROM jail_bans WHERE jail = ? AND expires_at IS NOT NULL");
    this.#nextExpiry = db.prepare<[], number | null>("SELECT min(expires_at) FROM jail_bans WHERE expires_at IS NOT NULL").pluck();
    this.#due = db.prepare<[number], ExpiringBan>("SELECT jail, address, expires_at AS expiresAt FROM jail_bans WHERE expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at");
  }

  /** How many bans are recorded, in every jail. */
  count(): number {
    return this.#count.get() ?? 0;
  }

  /** Every recorded ban of every jail, with its start and, for a ban given a duration, its own end (ms). */
  all(): Array<{ jail: string; address: string; since: number; expiresAt?: number }> {
    return this.#all.all().map(({ expiresAt, ...ban }) => (expiresAt === null ? ban : { ...ban, expiresAt }));
  }

  /** The jails that ban an address, and since when (ms). */
  banning(address: string): Array<{ jail: string; since: number }> {
    return this.#banning.all(address);
  }

  addresses(jail: string): Set<string> {
    return new Set(this.#bans(jail).keys());
  }

  /** A jail's bans, oldest first. */
  list(jail: string): string[] {
    return [...this.#bans(jail).keys()];
  }

  version(jail: string): number {
    return this.#versions.get(jail) ?? 0;
  }

  /** Records bans and unbans; returns those that changed something (a ban not yet known, an unban of a known one). */
  record(jail: string, added: Iterable<string>, removed: Iterable<string>): { added: string[]; removed: string[] } {
    const bans = this.#bans(jail);
    const changed = { added: [] as string[], removed: [] as string[] };
    const now = Date.now();
    writeTransaction(this.#db, () => {
      for (const address of added) if (!bans.has(address) && this.#put.run(jail, address, now).changes > 0) changed.added.push(address);
      for (const address of removed) if (bans.has(address) && this.#delete.run(jail, address).changes > 0) changed.removed.push(address);
    });
    // Memory follows the committed rows only.
    for (const address of changed.added) bans.set(address, now);
    for (const address of changed.removed) bans.delete(address);
    if (changed.added.length > 0 || changed.removed.length > 0) this.#versions.set(jail, this.version(jail) + 1);
    return changed;
  }

  /**
   * Sets (or with undefined clears) when Portcullis lifts recorded bans; bans not recorded are left alone. The row
   * carries it, so an unban or fail2ban's own expiry forgets it with the ban.
   */
  setExpiry(jail: string, addresses: readonly string[], expiresAt: number | undefined): void {
    writeTransaction(this.#db, () => {
      for (const address of addresses) this.#setExpiry.run(expiresAt ?? null, jail, address);
    });
  }

  /** A jail's bans that Portcullis lifts itself: address → since and expiry (ms). */
  expiries(jail: string): Map<string, { since: number; expiresAt: number }> {
    return new Map(this.#expiries.all(jail).map((row) => [row.address, { since: row.since, expiresAt: row.expiresAt }]));
  }

  /** The soonest expiry Portcullis keeps, in every jail. */
  nextExpiry(): number | undefined {
    return this.#nextExpiry.get() ?? undefined;
  }

  /** The bans whose expiry is at or before `now`, soonest first. */
  due(now: number): ExpiringBan[] {
    return this.#due.all(now);
  }

  #bans(jail: string): Map<string, number> {
    let bans = this.#jails.get(jail);
    if (bans === undefined) this.#jails.set(jail, (bans = new Map(this.#load.all(jail).map((row) => [row.address, row.since]))));
    return bans;
  }
}
