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
}

/** Append-only audit log of every write attempt (allowed or refused). */
export class AuditStore {
  readonly #insert;
  readonly #recent;

  constructor(db: Db) {
    this.#insert = db.prepare(
      "INSERT INTO audit_log (time, principal, role, method, resource, code, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    this.#recent = db.prepare<[number], AuditRecord & { detail: string | null }>(
      "SELECT time, principal, role, method, resource, code, detail FROM audit_log ORDER BY id DESC LIMIT ?",
    );
  }

  append(record: AuditRecord): void {
    this.#insert.run(record.time, record.principal, record.role, record.method, record.resource, record.code, record.detail ?? null);
  }

  recent(limit: number): AuditRecord[] {
    return this.#recent.all(limit).map(({ detail, ...rest }) => (detail === null ? rest : { ...rest, detail }));
  }
}
