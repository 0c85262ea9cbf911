import type { Db } from "./database.js";

/** One audited call: who did what to which resource, and how it ended. */
export interface AuditRecord {
  readonly time: number;
  readonly principal: string;
  readonly role: string;
  readonly method: string;
  readonly resource: string;
  /** gRPC status name, e.g. "OK", "PERMISSION_DENIED". */
  readonly code: string;
  readonly detail?: string;
  /** The fleet host the call was made on, for changes shared through the fleet. */
  readonly originNode?: string;
}

/** Append-only audit log of every write attempt (allowed or refused). */
export class AuditStore {
  readonly #insert;
  readonly #page;

  constructor(db: Db) {
    this.#insert = db.prepare(
      "INSERT INTO audit_log (time, principal, role, method, resource, code, detail, origin_node) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    );
    this.#page = db.prepare<[number, number], AuditRecord & { id: number; detail: string | null; origin_node: string | null }>(
      "SELECT id, time, principal, role, method, resource, code, detail, origin_node FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT ?",
    );
  }

  append(record: AuditRecord): void {
    this.#insert.run(record.time, record.principal, record.role, record.method, record.resource, record.code, record.detail ?? null, record.originNode ?? null);
  }

  /** Newest first, older than `beforeId` (0 = from the newest); each record with its id for the next page. */
  page(beforeId: number, limit: number): Array<AuditRecord & { id: number }> {
    return this.#page.all(beforeId === 0 ? Number.MAX_SAFE_INTEGER : beforeId, limit).map(({ detail, origin_node: originNode, ...rest }) => ({
      ...rest,
      ...(detail === null ? {} : { detail }),
      ...(originNode === null ? {} : { originNode }),
    }));
  }
}
