import type { Statement } from "better-sqlite3";
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

/** Which records a page takes; every criterion given must hold. */
export interface AuditFilter {
  readonly principal?: string;
  /** e.g. `portcullis.v1.JailService/BanIp`. */
  readonly method?: string;
  readonly resourcePrefix?: string;
  /** ms since the epoch, inclusive. */
  readonly startTime?: number;
  /** ms since the epoch, exclusive. */
  readonly endTime?: number;
}

type AuditRow = AuditRecord & { id: number; detail: string | null; origin_node: string | null };

/** Append-only audit log of every write attempt (allowed or refused). */
export class AuditStore {
  readonly #db: Db;
  readonly #insert;
  /** Pages, one statement per combination of criteria. */
  readonly #pages = new Map<string, Statement<unknown[], AuditRow>>();

  constructor(db: Db) {
    this.#db = db;
    this.#insert = db.prepare(
      "INSERT INTO audit_log (time, principal, role, method, resource, code, detail, origin_node) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    );
  }

  append(record: AuditRecord): void {
    this.#insert.run(record.time, record.principal, record.role, record.method, record.resource, record.code, record.detail ?? null, record.originNode ?? null);
  }

  /** Newest first, older than `beforeId` (0 = from the newest), passing the filter; each record with its id for the next page. */
  page(beforeId: number, limit: number, filter: AuditFilter = {}): Array<AuditRecord & { id: number }> {
    const conditions = ["id < ?"];
    const values: unknown[] = [beforeId === 0 ? Number.MAX_SAFE_INTEGER : beforeId];
    const add = (condition: string, ...given: unknown[]): void => {
      conditions.push(condition);
      values.push(...given);
    };
    if (filter.principal !== undefined) add("principal = ?", filter.principal);
    if (filter.method !== undefined) add("method = ?", filter.method);
    if (filter.resourcePrefix !== undefined) add("substr(resource, 1, length(?)) = ?", filter.resourcePrefix, filter.resourcePrefix);
    if (filter.startTime !== undefined) add("time >= ?", filter.startTime);
    if (filter.endTime !== undefined) add("time < ?", filter.endTime);
    const sql = `SELECT id, time, principal, role, method, resource, code, detail, origin_node FROM audit_log WHERE ${conditions.join(" AND ")} ORDER BY id DESC LIMIT ?`;
    let statement = this.#pages.get(sql);
    if (statement === undefined) this.#pages.set(sql, (statement = this.#db.prepare<unknown[], AuditRow>(sql)));
    return statement.all(...values, limit).map(({ detail, origin_node: originNode, ...rest }) => ({
      ...rest,
      ...(detail === null ? {} : { detail }),
      ...(originNode === null ? {} : { originNode }),
    }));
  }
}
