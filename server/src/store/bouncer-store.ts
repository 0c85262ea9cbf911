import { type Db, writeTransaction } from "./database.js";
import type { SentDecision } from "../bouncers/decision-model.js";

export interface BouncerRow {
  readonly name: string;
  readonly keyHash: Buffer;
  readonly createdAt: number;
  readonly lastPullAt: number | undefined;
  readonly version: string | undefined;
}

/** CrowdSec bouncers: their key hashes and last pulls, and per bouncer the decisions it holds from us. */
export class BouncerStore {
  readonly #db: Db;
  readonly #statements;

  constructor(db: Db) {
    this.#db = db;
    this.#statements = {
      all: db.prepare<[], { name: string; key_hash: Buffer; created_at: number; last_pull_at: number | null; version: string | null }>(
        "SELECT name, key_hash, created_at, last_pull_at, version FROM bouncers ORDER BY name"),
      insert: db.prepare("INSERT INTO bouncers (name, key_hash, created_at) VALUES (?, ?, ?)"),
      delete: db.prepare("DELETE FROM bouncers WHERE name = ?"),
      pull: db.prepare("UPDATE bouncers SET last_pull_at = ?, version = ? WHERE name = ?"),
      sent: db.prepare<[string], string>("SELECT decision FROM bouncer_decisions WHERE bouncer = ?").pluck(),
      putSent: db.prepare("INSERT OR REPLACE INTO bouncer_decisions (bouncer, id, decision) VALUES (?, ?, ?)"),
      deleteSent: db.prepare("DELETE FROM bouncer_decisions WHERE bouncer = ? AND id = ?"),
    };
  }

  all(): BouncerRow[] {
    return this.#statements.all.all().map((row) => ({
      name: row.name,
      keyHash: row.key_hash,
      createdAt: row.created_at,
      lastPullAt: row.last_pull_at ?? undefined,
      version: row.version ?? undefined,
    }));
  }

  create(name: string, keyHash: Buffer, createdAt: number): void {
    this.#statements.insert.run(name, keyHash, createdAt);
  }

  /** Forgets a bouncer and what it was sent; false if there was none of that name. */
  delete(name: string): boolean {
    return this.#statements.delete.run(name).changes > 0;
  }

  notePull(name: string, at: number, version: string): void {
    this.#statements.pull.run(at, version, name);
  }

  /** The decisions the bouncer was sent and not yet told are deleted. */
  sent(name: string): SentDecision[] {
    return this.#statements.sent.all(name).map((text) => JSON.parse(text) as SentDecision);
  }

  /** Records one answer to the bouncer: the decisions it now holds and those it was told are gone, at once. */
  recordSent(name: string, added: readonly SentDecision[], deleted: readonly SentDecision[]): void {
    writeTransaction(this.#db, () => {
      for (const decision of deleted) this.#statements.deleteSent.run(name, decision.id);
      for (const decision of added) this.#statements.putSent.run(name, decision.id, JSON.stringify(decision));
    });
  }
}
