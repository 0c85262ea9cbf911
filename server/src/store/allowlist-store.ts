import type { Db } from "./database.js";

/** One allowlist row. */
export interface AllowlistRow {
  readonly network: string;
  readonly comment: string;
  /** ms since the epoch. */
  readonly createdAt: number;
  /** ms since the epoch; undefined = never. */
  readonly expiresAt?: number;
  readonly createdBy: string;
}

/** The host allowlist, and which jails' ignoreip it put each entry in (so that only those are taken back). */
export class AllowlistStore {
  readonly #all;
  readonly #put;
  readonly #delete;
  readonly #applied;
  readonly #markApplied;
  readonly #unmarkApplied;

  constructor(db: Db) {
    this.#all = db.prepare<[], { network: string; comment: string; created_at: number; expires_at: number | null; created_by: string }>(
      "SELECT network, comment, created_at, expires_at, created_by FROM allowlist",
    );
    this.#put = db.prepare("INSERT OR REPLACE INTO allowlist (network, comment, created_at, expires_at, created_by) VALUES (?, ?, ?, ?, ?)");
    this.#delete = db.prepare("DELETE FROM allowlist WHERE network = ?");
    this.#applied = db.prepare<[], { network: string; jail: string }>("SELECT network, jail FROM allowlist_ignoreip");
    this.#markApplied = db.prepare("INSERT OR IGNORE INTO allowlist_ignoreip (network, jail) VALUES (?, ?)");
    this.#unmarkApplied = db.prepare("DELETE FROM allowlist_ignoreip WHERE network = ? AND jail = ?");
  }

  all(): AllowlistRow[] {
    return this.#all.all().map((row) => ({
      network: row.network,
      comment: row.comment,
      createdAt: row.created_at,
      ...(row.expires_at === null ? {} : { expiresAt: row.expires_at }),
      createdBy: row.created_by,
    }));
  }

  put(row: AllowlistRow): void {
    this.#put.run(row.network, row.comment, row.createdAt, row.expiresAt ?? null, row.createdBy);
  }

  /** Whether there was such an entry. */
  delete(network: string): boolean {
    return this.#delete.run(network).changes > 0;
  }

  /** (network, jail) pairs: the allowlist added the network to the jail's ignoreip. */
  applied(): Array<{ network: string; jail: string }> {
    return this.#applied.all();
  }

  markApplied(network: string, jail: string): void {
    this.#markApplied.run(network, jail);
  }

  unmarkApplied(network: string, jail: string): void {
    this.#unmarkApplied.run(network, jail);
  }
}
