import type { Statement } from "better-sqlite3";
import type { Db } from "./database.js";
import { subjectOf, type EventFilter, type EventOrigin, type EventType, type HostEvent } from "../events/event-model.js";

interface EventRow {
  sequence: number;
  time: number;
  type: string;
  resource: string;
  principal: string;
  origin: string;
  attributes: string;
}

/** A ban (1) or unban (0) as the ban history reads it: columns only, no JSON to parse, no object per row. */
export type BanRow = readonly [sequence: number, time: number, ban: 0 | 1, jail: string, address: string];

const COLUMNS = "sequence, time, type, resource, principal, origin, attributes";

/** The event log on disk: sequence numbers from SQLite's AUTOINCREMENT, never reused even after pruning. */
export class EventStore {
  readonly #db: Db;
  readonly #insert;
  readonly #after;
  readonly #last;
  readonly #first;
  readonly #pruneCount;
  readonly #pruneAge;
  readonly #recent;
  readonly #firstAtOrAfter;
  readonly #bans: Statement<[number, number, number], BanRow>;
  /** Filtered pages, one statement per combination of criteria. */
  readonly #filtered = new Map<string, Statement<unknown[], EventRow>>();

  constructor(db: Db) {
    this.#db = db;
    this.#insert = db.prepare("INSERT INTO events (time, type, resource, principal, origin, attributes, jail, address) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    this.#after = db.prepare<[number, number], EventRow>(`SELECT ${COLUMNS} FROM events WHERE sequence > ? ORDER BY sequence LIMIT ?`);
    this.#last = db.prepare<[], { sequence: number | null }>("SELECT max(sequence) AS sequence FROM events");
    this.#first = db.prepare<[], { sequence: number | null }>("SELECT min(sequence) AS sequence FROM events");
    this.#pruneCount = db.prepare("DELETE FROM events WHERE sequence <= (SELECT max(sequence) FROM events) - ?");
    this.#pruneAge = db.prepare("DELETE FROM events WHERE time < ?");
    this.#recent = db.prepare<[string, number, number], EventRow>(`SELECT ${COLUMNS} FROM events WHERE type = ? AND time >= ? ORDER BY sequence DESC LIMIT ?`);
    // The first event recorded at or after a time, by the time index.
    this.#firstAtOrAfter = db.prepare<[number], { sequence: number }>("SELECT sequence FROM events WHERE time >= ? ORDER BY time, sequence LIMIT 1");
    this.#bans = db.prepare<[number, number, number], BanRow>(
      "SELECT sequence, time, type = 'BAN', jail, address FROM events WHERE sequence > ? AND type IN ('BAN', 'UNBAN') AND +time >= ? AND jail IS NOT NULL AND address IS NOT NULL ORDER BY sequence LIMIT ?",
    ).raw();
  }

  append(event: Omit<HostEvent, "sequence">): HostEvent {
    const subject = subjectOf(event);
    const result = this.#insert.run(event.time, event.type, event.resource, event.principal, event.origin, JSON.stringify(event.attributes), subject.jail ?? null, subject.address ?? null);
    return { ...event, sequence: Number(result.lastInsertRowid) };
  }

  after(sequence: number, limit: number): HostEvent[] {
    return this.#after.all(sequence, limit).map(toEvent);
  }

  /**
   * Up to `limit` events after `sequence` that pass the filter, oldest first. A time range becomes a range of
   * sequences through the time index (the log's times follow its sequence; after the clock was set back, events
   * recorded before the first one at the range's start are not looked at), and every criterion is checked in SQL,
   * principal, jail and address through their indexes.
   */
  page(sequence: number, limit: number, filter: EventFilter, beforeSequence?: number): HostEvent[] {
    return this.#select(sequence, beforeSequence, limit, filter, "ASC");
  }

  /** The newest `limit` events that pass the filter, newest first. */
  latest(limit: number, filter: EventFilter): HostEvent[] {
    return this.#select(0, undefined, limit, filter, "DESC");
  }

  /**
   * Up to `limit` events between two sequences (exclusive; `beforeSequence` undefined: up to the newest) that pass the
   * filter, newest first: a page back through the log, walking the primary key downwards like `page` walks it up.
   */
  pageBackwards(afterSequence: number, beforeSequence: number | undefined, limit: number, filter: EventFilter): HostEvent[] {
    return this.#select(afterSequence, beforeSequence, limit, filter, "DESC");
  }

  #select(sequence: number, beforeSequence: number | undefined, limit: number, filter: EventFilter, order: "ASC" | "DESC"): HostEvent[] {
    let after = sequence;
    let before = beforeSequence;
    if (filter.startTime !== undefined) {
      const first = this.#firstAtOrAfter.get(filter.startTime);
      if (first === undefined) return [];
      after = Math.max(after, first.sequence - 1);
    }
    if (filter.endTime !== undefined) {
      const end = this.#firstAtOrAfter.get(filter.endTime)?.sequence;
      if (end !== undefined) before = before === undefined ? end : Math.min(before, end);
    }
    const conditions = ["sequence > ?"];
    const values: unknown[] = [after];
    const add = (condition: string, ...given: unknown[]): void => {
      conditions.push(condition);
      values.push(...given);
    };
    if (before !== undefined) add("sequence < ?", before);
    if (filter.types !== undefined && filter.types.length > 0) add(`type IN (${filter.types.map(() => "?").join(", ")})`, ...filter.types);
    if (filter.resourcePrefix !== undefined) add("substr(resource, 1, length(?)) = ?", filter.resourcePrefix, filter.resourcePrefix);
    if (filter.principal !== undefined) add("principal = ?", filter.principal);
    if (filter.jail !== undefined) add("jail = ?", filter.jail);
    if (filter.address !== undefined) add("address = ?", filter.address);
    // `+time`: the time range is already a sequence range; the time index must not be chosen for the scan.
    if (filter.startTime !== undefined) add("+time >= ?", filter.startTime);
    if (filter.endTime !== undefined) add("+time < ?", filter.endTime);
    const sql = `SELECT ${COLUMNS} FROM events WHERE ${conditions.join(" AND ")} ORDER BY sequence ${order} LIMIT ?`;
    let statement = this.#filtered.get(sql);
    if (statement === undefined) this.#filtered.set(sql, (statement = this.#db.prepare<unknown[], EventRow>(sql)));
    return statement.all(...values, limit).map(toEvent);
  }

  /** Bans and unbans after a sequence recorded since a time (ms), oldest first: what the ban history loads. */
  bans(afterSequence: number, since: number, limit: number): BanRow[] {
    return this.#bans.all(afterSequence, since, limit);
  }

  /** The newest events of one type since a time (ms), newest first. */
  recent(type: EventType, since: number, limit: number): HostEvent[] {
    return this.#recent.all(type, since, limit).map(toEvent);
  }

  lastSequence(): number {
    return this.#last.get()?.sequence ?? 0;
  }

  /** The oldest sequence still kept (0 when the log is empty). */
  firstSequence(): number {
    return this.#first.get()?.sequence ?? 0;
  }

  /** Bounded retention: keeps at most `maxEvents` and nothing older than `maxAgeMs`. */
  prune(maxEvents: number, maxAgeMs: number): void {
    this.#pruneCount.run(maxEvents);
    this.#pruneAge.run(Date.now() - maxAgeMs);
  }
}

function toEvent(row: EventRow): HostEvent {
  return {
    sequence: row.sequence,
    time: row.time,
    type: row.type as EventType,
    resource: row.resource,
    principal: row.principal,
    origin: row.origin as EventOrigin,
    attributes: JSON.parse(row.attributes) as Record<string, string>,
  };
}
