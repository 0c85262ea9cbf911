import type { Db } from "./database.js";

/** Remembered results of writes that carried a request_id (AIP-155), so that a retry returns the first answer. */
export class RequestStore {
  readonly #get;
  readonly #put;
  readonly #purge;

  constructor(db: Db) {
    this.#get = db.prepare<[string], { method: string; fingerprint: string; response: Buffer }>(
      "SELECT method, fingerprint, response FROM request_ids WHERE request_id = ?",
    );
    this.#put = db.prepare("INSERT OR REPLACE INTO request_ids (request_id, method, fingerprint, response, created_at) VALUES (?, ?, ?, ?, ?)");
    this.#purge = db.prepare("DELETE FROM request_ids WHERE created_at < ?");
  }

  get(requestId: string): { method: string; fingerprint: string; response: Buffer } | undefined {
    return this.#get.get(requestId);
  }

  put(requestId: string, method: string, fingerprint: string, response: Uint8Array): void {
    this.#put.run(requestId, method, fingerprint, Buffer.from(response), Date.now());
  }

  /** Request ids are kept for a day; a retry after that is a new request. */
  purgeOlderThan(ms: number): void {
    this.#purge.run(Date.now() - ms);
  }
}
