// The WAL checkpointer's worker thread (see wal-checkpoints.ts), built beside the bundle: its own connection to the
// database file, copying committed pages from the WAL into the database now and then.
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";

const port = parentPort;
if (port === null) throw new Error("the WAL checkpointer runs as a worker thread only");
const { file, intervalMs } = workerData as { file: string; intervalMs: number };
const db = new Database(file);
db.pragma("busy_timeout = 5000");
// PASSIVE: never waits for, nor blocks, the server's writers; what it cannot copy now is copied next time.
const timer = setInterval(() => {
  try {
    db.pragma("wal_checkpoint(PASSIVE)");
  } catch {
    // the database busy beyond busy_timeout: the next interval tries again
  }
}, intervalMs);
port.on("message", () => {
  clearInterval(timer);
  db.close();
  port.close();
});
