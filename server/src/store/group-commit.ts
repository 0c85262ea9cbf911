import { type Db, writeTransaction } from "./database.js";

interface Queued {
  readonly work: () => void;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Group commit: small synchronous writes queued in the same turn of the event loop (the audit record and events of
 * calls that finish together) run in one transaction and share one commit instead of paying one each — what lets
 * concurrent calls go faster than one after the other. If a write throws, the group is rolled back and each write
 * runs again in a transaction of its own, so only that write's caller gets the error. `write` resolves once the write
 * is committed.
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
    try {
      writeTransaction(this.#db, () => {
        for (const queued of queue) queued.work();
      });
      for (const queued of queue) queued.resolve();
      return;
    } catch {
      // rolled back: one by one below
    }
    for (const queued of queue) {
      try {
        writeTransaction(this.#db, queued.work);
        queued.resolve();
      } catch (error) {
        queued.reject(error);
      }
    }
  }
}
