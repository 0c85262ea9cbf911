import { type Db, writeTransaction } from "./database.js";
import type { IpsetDefinition } from "../ipsets/ipset-model.js";

/** A managed entry as recorded: absolute expiry so that a restart restores only the remaining time. */
export interface StoredEntry {
  readonly element: string;
  /** ms since the epoch; undefined = permanent. */
  readonly expiresAt?: number;
  readonly comment?: string;
}

/** One change of `writeEntries`: `entry` to record (insert or refresh), or none to delete `element`. */
export interface EntryWrite {
  readonly element: string;
  readonly entry?: StoredEntry;
}

interface EntryRow {
  element: string;
  expires_at: number | null;
  comment: string | null;
}

/** The desired state of managed sets: definitions and entries. Synchronous (better-sqlite3); every write commits. */
export class IpsetStore {
  readonly #db: Db;
  readonly #statements;
  /** Definitions read so far (frozen), by name: every entry call reads its set's; only this class writes them. */
  readonly #definitions = new Map<string, IpsetDefinition | undefined>();
  /** Live entry counts by set as of `at`, valid until a write to the set's entries or the expiry of its first entry (ms). */
  readonly #counts = new Map<string, { count: number; at: number; validUntil: number }>();

  constructor(db: Db) {
    this.#db = db;
    this.#statements = {
      insertSet: db.prepare("INSERT INTO ipsets (name, definition, created_at) VALUES (?, ?, ?)"),
      deleteSet: db.prepare("DELETE FROM ipsets WHERE name = ?"),
      getSet: db.prepare<[string], { definition: string }>("SELECT definition FROM ipsets WHERE name = ?"),
      allSets: db.prepare<[], { name: string; definition: string }>("SELECT name, definition FROM ipsets ORDER BY name"),
      renameSet: db.prepare("UPDATE ipsets SET name = ? WHERE name = ?"),
      updateSet: db.prepare("UPDATE ipsets SET definition = ? WHERE name = ?"),
      upsertEntry: db.prepare(
        `INSERT INTO ipset_entries (ipset, element, expires_at, comment) VALUES (?, ?, ?, ?)
         ON CONFLICT (ipset, element) DO UPDATE SET expires_at = excluded.expires_at, comment = excluded.comment`,
      ),
      deleteEntry: db.prepare("DELETE FROM ipset_entries WHERE ipset = ? AND element = ?"),
      getEntry: db.prepare<[string, string, number], EntryRow>(
        "SELECT element, expires_at, comment FROM ipset_entries WHERE ipset = ? AND element = ? AND (expires_at IS NULL OR expires_at > ?)",
      ),
      flush: db.prepare("DELETE FROM ipset_entries WHERE ipset = ?"),
      pageElements: db.prepare<[string, string, number, number], string>(
        "SELECT element FROM ipset_entries WHERE ipset = ? AND element > ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY element LIMIT ?",
      ).pluck(),
      page: db.prepare<[string, string, number, number], EntryRow>(
        `SELECT element, expires_at, comment FROM ipset_entries
         WHERE ipset = ? AND element > ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY element LIMIT ?`,
      ),
      // One lower bound each, so that the index seek starts at it.
      rangeAfter: db.prepare<[string, string, string, number, number], EntryRow>(
        `SELECT element, expires_at, comment FROM ipset_entries
         WHERE ipset = ? AND element > ? AND element < ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY element LIMIT ?`,
      ),
      rangeFrom: db.prepare<[string, string, string, number, number], EntryRow>(
        `SELECT element, expires_at, comment FROM ipset_entries
         WHERE ipset = ? AND element >= ? AND element < ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY element LIMIT ?`,
      ),
      count: db.prepare<[string, number], { n: number; next: number | null }>(
        "SELECT count(*) AS n, min(expires_at) AS next FROM ipset_entries WHERE ipset = ? AND (expires_at IS NULL OR expires_at > ?)",
      ),
      purgeExpired: db.prepare("DELETE FROM ipset_entries WHERE expires_at IS NOT NULL AND expires_at <= ?"),
      moveEntries: db.prepare("UPDATE ipset_entries SET ipset = ? WHERE ipset = ?"),
      // A batch's new entries carry its id; entries it only refreshes keep theirs (a rollback must not remove them).
      upsertBatchEntry: db.prepare(
        `INSERT INTO ipset_entries (ipset, element, expires_at, comment, batch) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (ipset, element) DO UPDATE SET expires_at = excluded.expires_at, comment = excluded.comment`,
      ),
      beginBatch: db.prepare("INSERT INTO ipset_batches (ipset, started_at) VALUES (?, ?)"),
      endBatch: db.prepare("DELETE FROM ipset_batches WHERE id = ?"),
      pendingBatches: db.prepare<[], { id: number; ipset: string }>("SELECT id, ipset FROM ipset_batches ORDER BY id"),
      batchElements: db.prepare<[string, number], { element: string }>("SELECT element FROM ipset_entries WHERE ipset = ? AND batch = ?"),
      discardBatchEntries: db.prepare("DELETE FROM ipset_entries WHERE ipset = ? AND batch = ?"),
    };
  }

  createSet(definition: IpsetDefinition): void {
    const { name, ...rest } = definition;
    this.#definitions.delete(name);
    this.#statements.insertSet.run(name, JSON.stringify(rest), Date.now());
  }

  getSet(name: string): IpsetDefinition | undefined {
    if (this.#definitions.has(name)) return this.#definitions.get(name);
    const row = this.#statements.getSet.get(name);
    const definition = row === undefined ? undefined : Object.freeze({ name, ...(JSON.parse(row.definition) as Omit<IpsetDefinition, "name">) });
    // Names of sets that do not exist are not kept: any text can be asked for.
    if (definition !== undefined) this.#definitions.set(name, definition);
    return definition;
  }

  sets(): IpsetDefinition[] {
    return this.#statements.allSets.all().map((row) => ({ name: row.name, ...(JSON.parse(row.definition) as Omit<IpsetDefinition, "name">) }));
  }

  /** Records a set's new definition (grown). */
  updateSet(definition: IpsetDefinition): void {
    const { name, ...rest } = definition;
    this.#definitions.delete(name);
    this.#statements.updateSet.run(JSON.stringify(rest), name);
  }

  deleteSet(name: string): void {
    this.#counts.delete(name);
    this.#definitions.delete(name);
    this.#statements.deleteSet.run(name);
  }

  renameSet(from: string, to: string): void {
    this.#counts.clear();
    this.#definitions.delete(from);
    this.#definitions.delete(to);
    this.#statements.renameSet.run(to, from);
  }

  /** Exchanges the entries of two sets, as `ipset swap` does in the kernel. */
  swapEntries(a: string, b: string): void {
    this.#counts.clear();
    writeTransaction(this.#db, () => {
      // A name no set can have (set names cannot contain a slash) holds a's entries during the exchange.
      this.#db.pragma("defer_foreign_keys = ON");
      this.#statements.moveEntries.run("/swap", a);
      this.#statements.moveEntries.run(a, b);
      this.#statements.moveEntries.run(b, "/swap");
    });
  }

  /** Records entries (insert or refresh) in one transaction. */
  putEntries(set: string, entries: Iterable<StoredEntry>): void {
    this.#counts.delete(set);
    writeTransaction(this.#db, () => {
      for (const entry of entries) this.#statements.upsertEntry.run(set, entry.element, entry.expiresAt ?? null, entry.comment ?? null);
    });
  }

  /**
   * Starts a batch of entries for a set: until `commitBatch`, the entries it records are provisional, and
   * `discardBatch` (or the next start, if the server stops first) takes them back out.
   */
  beginBatch(set: string): number {
    return Number(this.#statements.beginBatch.run(set, Date.now()).lastInsertRowid);
  }

  /** Records entries [from, to) of a validated batch held in flat arrays (expiresAt 0 = permanent). */
  putBatch(set: string, batchId: number, batch: { elements: readonly string[]; expiresAt: Float64Array; comments: ReadonlyArray<string | undefined> | undefined }, from: number, to: number): void {
    this.#counts.delete(set);
    const upsert = this.#statements.upsertBatchEntry;
    writeTransaction(this.#db, () => {
      for (let i = from; i < to; i++) upsert.run(set, batch.elements[i], batch.expiresAt[i] || null, batch.comments?.[i] ?? null, batchId);
    });
  }

  /** The batch is applied: its entries stay. */
  commitBatch(batchId: number): void {
    this.#statements.endBatch.run(batchId);
  }

  /** The entries a batch added that were not recorded before it. */
  batchElements(set: string, batchId: number): string[] {
    return this.#statements.batchElements.all(set, batchId).map((row) => row.element);
  }

  /** Forgets the entries a batch added (not those it refreshed) and the batch itself. */
  discardBatch(set: string, batchId: number): void {
    this.#counts.delete(set);
    writeTransaction(this.#db, () => {
      this.#statements.discardBatchEntries.run(set, batchId);
      this.#statements.endBatch.run(batchId);
    });
  }

  /** Batches begun and neither committed nor discarded: the server stopped while applying them. */
  pendingBatches(): Array<{ id: number; ipset: string }> {
    return this.#statements.pendingBatches.all();
  }

  /**
   * Records single-entry changes of one set in one transaction, in order: an entry to put, or only an element to
   * delete. Returns each element's live entry from before its change (undefined: none), for undoing it.
   */
  writeEntries(set: string, writes: readonly EntryWrite[], now = Date.now()): Array<StoredEntry | undefined> {
    this.#counts.delete(set);
    return writeTransaction(this.#db, () => writes.map((write) => {
      const row = this.#statements.getEntry.get(set, write.element, now);
      if (write.entry === undefined) this.#statements.deleteEntry.run(set, write.element);
      else this.#statements.upsertEntry.run(set, write.element, write.entry.expiresAt ?? null, write.entry.comment ?? null);
      return row === undefined ? undefined : toEntry(row);
    }));
  }

  putEntry(set: string, entry: StoredEntry): void {
    this.#counts.delete(set);
    this.#statements.upsertEntry.run(set, entry.element, entry.expiresAt ?? null, entry.comment ?? null);
  }

  getEntry(set: string, element: string, now = Date.now()): StoredEntry | undefined {
    const row = this.#statements.getEntry.get(set, element, now);
    return row === undefined ? undefined : toEntry(row);
  }

  /** Removes entries; returns how many were recorded (and not expired). */
  deleteEntries(set: string, elements: Iterable<string>): number {
    this.#counts.delete(set);
    const now = Date.now();
    let deleted = 0;
    writeTransaction(this.#db, () => {
      for (const element of elements) {
        if (this.#statements.getEntry.get(set, element, now) !== undefined) deleted++;
        this.#statements.deleteEntry.run(set, element);
      }
    });
    return deleted;
  }

  flush(set: string): void {
    this.#counts.delete(set);
    this.#statements.flush.run(set);
  }

  /** One page of live entries after `after` (exclusive), ordered by element. */
  page(set: string, after: string, limit: number, now = Date.now()): StoredEntry[] {
    return this.#statements.page.all(set, after, now, limit).map(toEntry);
  }

  /**
   * One page of live entries after `after` (exclusive) within [from, to) (`to` undefined: to the end), ordered by
   * element: a range scan of the (set, element) key.
   */
  range(set: string, from: string, to: string | undefined, after: string, limit: number, now = Date.now()): StoredEntry[] {
    // U+FFFF sorts after every element (set elements are ASCII).
    const statement = after >= from ? this.#statements.rangeAfter : this.#statements.rangeFrom;
    return statement.all(set, after >= from ? after : from, to ?? "\uffff", now, limit).map(toEntry);
  }

  /**
   * How many live entries a set has. Counting a million rows takes ≈ 40 ms, so the count is kept until the set's
   * entries change here (every write below drops it) or its first entry expires.
   */
  count(set: string, now = Date.now()): number {
    const kept = this.#counts.get(set);
    if (kept !== undefined && now >= kept.at && now < kept.validUntil) return kept.count;
    const row = this.#statements.count.get(set, now);
    const count = row?.n ?? 0;
    this.#counts.set(set, { count, at: now, validUntil: row?.next ?? Number.POSITIVE_INFINITY });
    return count;
  }

  /**
   * Every live entry of a set, read in pages so that a million entries never sit in one array, and no SQLite cursor
   * stays open while the consumer awaits (other requests use the same connection meanwhile).
   */
  *liveEntries(set: string, now = Date.now()): IterableIterator<StoredEntry> {
    let after = "";
    for (;;) {
      const page = this.page(set, after, 10_000, now);
      yield* page;
      if (page.length < 10_000) return;
      after = page[page.length - 1]!.element;
    }
  }

  /**
   * The elements of every live entry of a set, paged as liveEntries: for copying a set whose entries carry nothing
   * else (no timeout or comment support) — reading the element alone costs a third of reading whole entries.
   */
  *liveElements(set: string, now = Date.now()): IterableIterator<string> {
    let after = "";
    for (;;) {
      const page = this.#statements.pageElements.all(set, after, now, 10_000);
      yield* page;
      if (page.length < 10_000) return;
      after = page[page.length - 1]!;
    }
  }

  /** Forgets entries whose expiry has passed (the kernel has dropped them already). */
  purgeExpired(now = Date.now()): number {
    this.#counts.clear();
    return this.#statements.purgeExpired.run(now).changes;
  }
}

function toEntry(row: EntryRow): StoredEntry {
  return {
    element: row.element,
    ...(row.expires_at === null ? {} : { expiresAt: row.expires_at }),
    ...(row.comment === null ? {} : { comment: row.comment }),
  };
}
