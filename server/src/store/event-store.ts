import type { Db } from "./database.js";
import type { EventOrigin, EventType, HostEvent } from "../events/event-model.js";

interface EventRow {
  sequence: number;
  time: number;
  type: string;
  resource: string;
  principal: string;
  origin: string;
  attributes: string;
}

/** The event log on disk: sequence numbers from SQLite's AUTOINCREMENT, never reused even after pruning. */
export class EventStore {
  readonly #insert;
  readonly #after;
  readonly #last;
  readonly #pruneCount;
  readonly #pruneAge;
  readonly #recent;

  constructor(db: Db) {
    this.#insert = db.prepare("INSERT INTO events (time, type, resource, principal, origin, attributes) VALUES (?, ?, ?, ?, ?, ?)");
    this.#after = db.prepare<[number, number], EventRow>("SELECT * FROM events WHERE sequence > ? ORDER BY sequence LIMIT ?");
    this.#last = db.prepare<[], { sequence: number | null }>("SELECT max(sequence) AS sequence FROM events");
    this.#pruneCount = db.prepare("DELETE FROM events WHERE sequence <= (SELECT max(sequence) FROM events) - ?");
    this.#pruneAge = db.prepare("DELETE FROM events WHERE time < ?");
    this.#recent = db.prepare<[string, number, number], EventRow>("SELECT * FROM events WHERE type = ? AND time >= ? ORDER BY sequence DESC LIMIT ?");
  }

  append(event: Omit<HostEvent, "sequence">): HostEvent {
    const result = this.#insert.run(event.time, event.type, event.resource, event.principal, event.origin, JSON.stringify(event.attributes));
    return { ...event, sequence: Number(result.lastInsertRowid) };
  }

  after(sequence: number, limit: number): HostEvent[] {
    return this.#after.all(sequence, limit).map(toEvent);
  }

  /** The newest events of one type since a time (ms), newest first. */
  recent(type: EventType, since: number, limit: number): HostEvent[] {
    return this.#recent.all(type, since, limit).map(toEvent);
  }

  lastSequence(): number {
    return this.#last.get()?.sequence ?? 0;
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
