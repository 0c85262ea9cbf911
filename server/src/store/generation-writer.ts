import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import type { Db } from "./database.js";

/**
 * A chunk of staged rules, each stored by its canonical line (the spec is that line parsed again when read), from
 * the JSON text of `[[id, chain, seq, line], …]`: one statement, no call per row.
 */
const INSERT_ROWS =
  "INSERT INTO firewall_rules (id, family, table_name, chain, seq, line, created_at, generation) " +
  "SELECT value ->> 0, ?, ?, value ->> 1, value ->> 2, value ->> 3, ?, ? FROM json_each(?)";

/** The JSON text INSERT_ROWS reads. */
function rowsJson(job: RuleRows): string {
  return JSON.stringify(job.ids.map((id, i) => [id, job.chains[i], job.seqs[i], job.lines[i]]));
}
/** Rows of an old generation deleted per transaction: 10k at once held the database ≈ 40 ms. */
const DELETE_BATCH = 500;
const DELETE_BATCH_SQL = `DELETE FROM firewall_rules WHERE rowid IN (SELECT rowid FROM firewall_rules WHERE family = ? AND table_name = ? AND generation = ? LIMIT ${DELETE_BATCH})`;

/** One chunk of a staged generation (ApplyRuleset): its rules as parallel arrays (cheap to pass to a thread). */
export interface RuleRows {
  readonly family: string;
  readonly table: string;
  readonly generation: number;
  readonly now: number;
  readonly ids: readonly string[];
  readonly chains: readonly string[];
  readonly seqs: readonly number[];
  readonly lines: readonly string[];
}

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

/**
 * The worker's code. It runs from this text (`eval`) so that it works the same from the TypeScript sources and from
 * the bundle, with no file of its own to locate; it only needs better-sqlite3, resolved by the main thread. Each chunk
 * is inserted in one transaction.
 */
const WORKER_SOURCE = `
"use strict";
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driver);
const db = new Database(workerData.file);
db.pragma("synchronous = NORMAL");
db.pragma("busy_timeout = 5000");
const insertRows = db.prepare(${JSON.stringify(INSERT_ROWS)});
const rowsJson = ${rowsJson.toString()};
const insert = (job) => insertRows.run(job.family, job.table, job.now, job.generation, rowsJson(job));
const deleteBatch = db.prepare(${JSON.stringify(DELETE_BATCH_SQL)});
parentPort.on("message", (job) => {
  try {
    if (job.op === "insert") insert(job);
    else while (deleteBatch.run(job.family, job.table, job.generation).changes === ${DELETE_BATCH});
    parentPort.postMessage({ id: job.id });
  } catch (error) {
    parentPort.postMessage({ id: job.id, error: String((error && error.message) || error) });
  }
});
`;

/**
 * On a worker thread with its own connection to the database file. A 10k-rule table is ≈ 50 ms of SQLite work; on
 * the main thread it was a third of the whole ApplyRuleset and held every other request back. Here it runs while the
 * main thread validates and renders the next rules and iptables-restore parses the previous ones. WAL lets the two
 * connections share the file; a write of the main thread meanwhile waits at most one transaction (busy_timeout).
 */
/** A started worker and the jobs it has not answered yet. */
interface WriterThread {
  readonly worker: Worker;
  readonly pending: Map<number, { resolve: () => void; reject: (error: Error) => void }>;
}

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

  #run(job: Record<string, unknown>): Promise<void> {
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
    const driver = createRequire(import.meta.url).resolve("better-sqlite3");
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file: this.#file, driver } });
    const thread: WriterThread = { worker, pending: new Map() };
    worker.on("message", (reply: { id: number; error?: string }) => {
      const waiting = thread.pending.get(reply.id);
      thread.pending.delete(reply.id);
      if (thread.pending.size === 0) worker.unref();
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
