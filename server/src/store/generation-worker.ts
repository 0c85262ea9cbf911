// The generation writer's worker thread (see WorkerWriter in generation-writer.ts), built beside the bundle: its own
// connection to the database file; each chunk is inserted in one transaction.
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";
import { DELETE_BATCH, DELETE_BATCH_SQL, INSERT_ROWS, rowsJson, type GenerationJob, type GenerationReply } from "./generation-sql.js";

const port = parentPort;
if (port === null) throw new Error("the generation writer runs as a worker thread only");
const db = new Database((workerData as { file: string }).file);
db.pragma("synchronous = NORMAL");
db.pragma("busy_timeout = 5000");
const insertRows = db.prepare(INSERT_ROWS);
const deleteBatch = db.prepare(DELETE_BATCH_SQL);

port.on("message", (job: GenerationJob & { id: number }) => {
  let reply: GenerationReply;
  try {
    if (job.op === "insert") insertRows.run(job.family, job.table, job.now, job.generation, rowsJson(job));
    else while (deleteBatch.run(job.family, job.table, job.generation).changes === DELETE_BATCH);
    reply = { id: job.id };
  } catch (error) {
    reply = { id: job.id, error: String(error instanceof Error ? error.message : error) };
  }
  port.postMessage(reply);
});
