import type { Worker } from "node:worker_threads";
import type { Db } from "./database.js";
import { startWorker } from "../code-files.js";
import { DELETE_BATCH, DELETE_BATCH_SQL, INSERT_ROWS, rowsJson, type GenerationJob, type GenerationReply, type RuleRows } from "./generation-sql.js";

export type { RuleRows } from "./generation-sql.js";

/** Writes and deletes whole generations of a table's managed rules: the bulk writes of ApplyRuleset. */
export interface GenerationWriter {
  /** Resolves once the rows are committed; rejects with SQLite's error (nothing of the chunk is written then). */
  insert(rows: RuleRows): Promise<void>;
  /** Deletes a replaced generation in batches, letting other writers in between. */
  deleteGeneration(family: string, table: string, generation: number): Promise<void>;
  close(): Promise<void>;
}

/** A worker thread for a database file; this thread for one in memory (unit tests), which a worker cannot share. */
export function generationWriter(db: Db): GenerationWriter {
  return db.memory ? new InlineWriter(db) : new WorkerWriter(db.name);
}

/** On this thread; each delete batch its own turn of the event loop, so requests run between them. */
class InlineWriter implements GenerationWriter {
  readonly #db: Db;
  readonly #insert;
  readonly #deleteBatch;

  constructor(db: Db) {
    this.#db = db;
    const insert = db.prepare(INSERT_ROWS);
    this.#insert = (job: RuleRows) => insert.run(job.family, job.table, job.now, job.generation, rowsJson(job));
    this.#deleteBatch = db.prepare(DELETE_BATCH_SQL);
  }

  async insert(job: RuleRows): Promise<void> {
    this.#insert(job);
  }

  deleteGeneration(family: string, table: string, generation: number): Promise<void> {
    return new Promise((resolve) => {
      const batch = (): void => {
        if (this.#db.open && this.#deleteBatch.run(family, table, generation).changes === DELETE_BATCH) setTimeout(batch, 0).unref();
        else resolve();
      };
      batch();
    });
  }

  async close(): Promise<void> {}
}

/** A started worker and the jobs it has not answered yet. */
interface WriterThread {
  readonly worker: Worker;
  readonly pending: Map<number, { resolve: () => void; reject: (error: Error) => void }>;
}

/**
 * On a worker thread with its own connection to the database file. A 10k-rule table is ≈ 50 ms of SQLite work; on
 * the main thread it was a third of the whole ApplyRuleset and held every other request back. Here it runs while the
 * main thread validates and renders the next rules and iptables-restore parses the previous ones. WAL lets the two
 * connections share the file; a write of the main thread meanwhile waits at most one transaction (busy_timeout).
 */
class WorkerWriter implements GenerationWriter {
  readonly #file: string;
  #thread: WriterThread | undefined;
  #nextId = 0;
  #closed = false;

  constructor(file: string) {
    this.#file = file;
  }

  insert(rows: RuleRows): Promise<void> {
    return this.#run({ op: "insert", ...rows });
  }

  deleteGeneration(family: string, table: string, generation: number): Promise<void> {
    return this.#run({ op: "delete", family, table, generation });
  }

  /** Ends the worker (its connection closes with it); later jobs are refused. */
  async close(): Promise<void> {
    this.#closed = true;
    const thread = this.#thread;
    this.#thread = undefined;
    if (thread === undefined) return;
    thread.worker.ref(); // else an idle (unref'd) worker's exit would not keep the process up for this promise
    await thread.worker.terminate();
  }

  #run(job: GenerationJob): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("the state database is closed"));
    const { worker, pending } = this.#started();
    const id = this.#nextId++;
    worker.ref(); // while it has work: an idle worker never keeps the process alive
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.postMessage({ id, ...job });
    });
  }

  #started(): WriterThread {
    if (this.#thread !== undefined) return this.#thread;
    const worker = startWorker("store/generation-worker", { workerData: { file: this.#file } });
    const thread: WriterThread = { worker, pending: new Map() };
    worker.on("message", (reply: GenerationReply) => {
      const waiting = thread.pending.get(reply.id);
      thread.pending.delete(reply.id);
      // Idle: let the process end without it — unless close() holds it until its exit (a reply arriving meanwhile
      // must not undo that ref, or the process's event loop runs dry while close() still waits).
      if (thread.pending.size === 0 && !this.#closed) worker.unref();
      if (reply.error === undefined) waiting?.resolve();
      else waiting?.reject(new Error(reply.error));
    });
    // A worker that fails to start or dies fails what it was given; the next job starts a fresh one.
    const fail = (error: Error): void => {
      if (this.#thread === thread) this.#thread = undefined;
      for (const waiting of thread.pending.values()) waiting.reject(error);
      thread.pending.clear();
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`the generation writer thread exited (code ${code})`)));
    worker.unref();
    this.#thread = thread;
    return thread;
  }
}
