import { type Db, writeTransaction } from "./database.js";
import type { FleetOperation } from "../fleet/fleet-model.js";

/** What happened to a shared operation on this host (`expired`: its expiry had passed when it arrived). */
export type FleetOutcome = "origin" | "applied" | "unchanged" | "expired" | "refused";

/** A shared ban in force here, as recorded. */
export interface ActiveFleetBan {
  readonly id: string;
  readonly kind: "jail" | "set";
  readonly target: string;
  readonly address: string;
  readonly expiresAt?: number;
  readonly originNode: string;
  readonly appliedAt: number;
}

interface ActiveRow {
  id: string;
  kind: "jail" | "set";
  target: string;
  address: string;
  expires_at: number | null;
  origin_node: string;
  applied_at: number;
}

/**
 * Fleet state in SQLite: the outbox of operations made here that JetStream does not have yet, and every operation
 * seen (made here or received) by id, so that none is applied twice, with the bans still in force here.
 */
export class FleetStore {
  readonly #db: Db;
  readonly #statements;
  /** Operations per outcome, counted once and then kept up to date: a heartbeat reads them every second. */
  #counts: Map<string, number> | undefined;

  constructor(db: Db) {
    this.#db = db;
    this.#statements = {
      enqueue: db.prepare("INSERT INTO fleet_outbox (operation) VALUES (?)"),
      pending: db.prepare<[number], { seq: number; operation: string }>("SELECT seq, operation FROM fleet_outbox ORDER BY seq LIMIT ?"),
      sent: db.prepare("DELETE FROM fleet_outbox WHERE seq <= ?"),
      outboxSize: db.prepare<[], { n: number }>("SELECT count(*) AS n FROM fleet_outbox"),
      seen: db.prepare<[string], { outcome: string }>("SELECT outcome FROM fleet_operations WHERE id = ?"),
      seenOf: db.prepare<[string], { id: string }>("SELECT id FROM fleet_operations WHERE id IN (SELECT value FROM json_each(?))").pluck(),
      record: db.prepare(
        `INSERT OR IGNORE INTO fleet_operations (id, op, kind, target, address, expires_at, origin_node, outcome, applied_at, active)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      // An unban lifts every earlier shared ban of the address in that jail or set.
      lift: db.prepare("UPDATE fleet_operations SET active = 0 WHERE active = 1 AND kind = ? AND target = ? AND address = ?"),
      liftOne: db.prepare("UPDATE fleet_operations SET active = 0 WHERE id = ?"),
      due: db.prepare<[number], ActiveRow>(
        "SELECT id, kind, target, address, expires_at, origin_node, applied_at FROM fleet_operations WHERE active = 1 AND expires_at <= ? ORDER BY expires_at LIMIT 1000",
      ),
      // Another ban of the same address still in force keeps it banned past this one's expiry.
      heldLonger: db.prepare<[string, string, string, string, number], { n: number }>(
        "SELECT count(*) AS n FROM fleet_operations WHERE active = 1 AND kind = ? AND target = ? AND address = ? AND id <> ? AND (expires_at IS NULL OR expires_at > ?)",
      ),
      activeFor: db.prepare<[string, number], ActiveRow>(
        "SELECT id, kind, target, address, expires_at, origin_node, applied_at FROM fleet_operations WHERE active = 1 AND address = ? AND (expires_at IS NULL OR expires_at > ?)",
      ),
      counts: db.prepare<[], { outcome: string; n: number }>("SELECT outcome, count(*) AS n FROM fleet_operations GROUP BY outcome"),
    };
  }

  /**
   * Operations made here: recorded as seen (our own consumer skips them when they come back) and queued for the
   * stream, in one transaction.
   */
  enqueue(operations: readonly FleetOperation[], now = Date.now()): void {
    this.#inTransaction(() => {
      for (const operation of operations) {
        this.#recordOne(operation, "origin", now);
        this.#statements.enqueue.run(JSON.stringify(operation));
      }
    });
  }

  /** The oldest queued operations, with the outbox position of the last. */
  pending(limit: number): { operations: FleetOperation[]; lastSeq: number } {
    const rows = this.#statements.pending.all(limit);
    return { operations: rows.map((row) => JSON.parse(row.operation) as FleetOperation), lastSeq: rows.at(-1)?.seq ?? 0 };
  }

  /** JetStream has everything up to this outbox position. */
  sent(lastSeq: number): void {
    this.#statements.sent.run(lastSeq);
  }

  outboxSize(): number {
    return this.#statements.outboxSize.get()?.n ?? 0;
  }

  /** Whether this host has seen the operation (made it, applied it, or refused it). */
  seen(id: string): boolean {
    return this.#statements.seen.get(id) !== undefined;
  }

  /** Which of these operations this host has seen: one query for a whole message (500 operations). */
  seenOf(ids: readonly string[]): Set<string> {
    return new Set(this.#statements.seenOf.all(JSON.stringify(ids)) as unknown as string[]);
  }

  /** Records what became of a received operation. */
  record(operation: FleetOperation, outcome: FleetOutcome, now = Date.now()): void {
    // Inside a caller's transaction (a batch's outcomes) it is part of that one: a savepoint per operation cost more
    // than the insert itself.
    if (this.#db.inTransaction) this.#recordOne(operation, outcome, now);
    else this.#inTransaction(() => this.#recordOne(operation, outcome, now));
  }

  /**
   * Runs work in one transaction: the records, events and audit records of a batch of operations commit together
   * (one commit instead of three per operation, which bounds how many shared bans a node applies per second).
   */
  transaction(work: () => void): void {
    this.#inTransaction(work);
  }

  #inTransaction(work: () => void): void {
    try {
      writeTransaction(this.#db, work);
    } catch (error) {
      this.#counts = undefined; // rolled back: what was counted in it is read again
      throw error;
    }
  }

  /** Bans whose expiry has come. */
  due(now = Date.now()): ActiveFleetBan[] {
    return this.#statements.due.all(now).map(toActive);
  }

  /** Whether another shared ban of the same address and target stays in force after `now`. */
  heldLonger(ban: ActiveFleetBan, now = Date.now()): boolean {
    return (this.#statements.heldLonger.get(ban.kind, ban.target, ban.address, ban.id, now)?.n ?? 0) > 0;
  }

  lifted(id: string): void {
    this.#statements.liftOne.run(id);
  }

  /** Shared bans of the address in force here. */
  activeFor(address: string, now = Date.now()): ActiveFleetBan[] {
    return this.#statements.activeFor.all(address, now).map(toActive);
  }

  count(outcome: FleetOutcome): number {
    return this.#outcomeCounts().get(outcome) ?? 0;
  }

  #outcomeCounts(): Map<string, number> {
    this.#counts ??= new Map(this.#statements.counts.all().map((row) => [row.outcome, row.n]));
    return this.#counts;
  }

  #recordOne(operation: FleetOperation, outcome: FleetOutcome, now: number): void {
    if (operation.op === "unban" && outcome !== "refused") this.#statements.lift.run(operation.kind, operation.target, operation.address);
    const active = operation.op === "ban" && (outcome === "origin" || outcome === "applied" || outcome === "unchanged") ? 1 : 0;
    const { changes } = this.#statements.record.run(operation.id, operation.op, operation.kind, operation.target, operation.address, operation.expiresAt ?? null, operation.node, outcome, now, active);
    // Counted once the row is there (a rolled-back transaction drops the counts; see #inTransaction).
    if (changes > 0 && this.#counts !== undefined) this.#counts.set(outcome, (this.#counts.get(outcome) ?? 0) + 1);
  }
}

function toActive(row: ActiveRow): ActiveFleetBan {
  return {
    id: row.id,
    kind: row.kind,
    target: row.target,
    address: row.address,
    ...(row.expires_at === null ? {} : { expiresAt: row.expires_at }),
    originNode: row.origin_node,
    appliedAt: row.applied_at,
  };
}
