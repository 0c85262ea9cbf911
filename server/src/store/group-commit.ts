import type { Db } from "./database.js";

interface Queued {
  readonly work: () => void;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Group commit: small synchronous writes queued in the same turn of the event loop (the audit record and events of
 * calls that finish together) run in one transaction, each in a savepoint of its own, so they share one commit
 * instead of paying one each — what lets concurrent calls go faster than one after the other. A write that throws
 * is rolled back alone and its caller gets the error; `write` resolves once the write is committed.
 */
export class GroupCommit {
  readonly #db: Db;
  #queue: Queued[] = [];

  constructor(db: Db) {
    this.#db = db;
  }

  write(work: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ work, resolve, reject });
      if (this.#queue.length === 1) setImmediate(() => this.#commit());
    });
  }

  #commit(): void {
    const queue = this.#queue;
    this.#queue = [];
    const errors = new Map<Queued, unknown>();
    try {
      this.#db.transaction(() => {
        for (const queued of queue) {
          try {
            this.#db.transaction(queued.work)(); // nested: a savepoint
          } catch (error) {
            errors.set(queued, error);
          }
        }
      })();
    } catch (error) {
      for (const queued of queue) queued.reject(error);
      return;
    }
    for (const queued of queue) {
      if (errors.has(queued)) queued.reject(errors.get(queued));
      else queued.resolve();
    }
  }
}
