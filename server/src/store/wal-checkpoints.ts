import { startWorker } from "../code-files.js";
import type { Logger } from "../logger.js";
import type { Db } from "./database.js";

/** How often the checkpointer copies the WAL into the database file. */
const INTERVAL_MS = 1_000;

export interface WalCheckpoints {
  close(): Promise<void>;
}

/**
 * Checkpoints the database's WAL in a worker thread instead of in the commit that crosses SQLite's threshold: such a
 * commit would copy pages and fsync on the server's thread, stalling every call behind it (docs/performance.md:
 * concurrency). The server's connection then never checkpoints; closing it (the last one) still does.
 */
export function startWalCheckpoints(db: Db, log: Logger, intervalMs = INTERVAL_MS): WalCheckpoints {
  if (db.memory) return { close: async () => undefined };
  db.pragma("wal_autocheckpoint = 0");
  const worker = startWorker("store/checkpoint-worker", { workerData: { file: db.name, intervalMs } });
  worker.unref();
  let closing = false;
  // A checkpointer that fails or ends by itself hands back to SQLite's own, so the WAL never grows without bound.
  worker.on("error", (error) => log.warn({ err: error }, "the WAL checkpointer failed"));
  const exited = new Promise<void>((resolve) =>
    worker.once("exit", (code) => {
      if (!closing && db.open) {
        db.pragma("wal_autocheckpoint = 1000");
        log.warn({ code }, "the WAL checkpointer ended; SQLite checkpoints in commits again");
      }
      resolve();
    }),
  );
  return {
    async close() {
      closing = true;
      worker.ref(); // an unref'd worker's exit would not keep this process waiting for it
      worker.postMessage("close");
      await exited;
    },
  };
}
