import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createLogger } from "../../server/src/logger.js";
import { openDatabase } from "../../server/src/store/database.js";
import { startWalCheckpoints } from "../../server/src/store/wal-checkpoints.js";
import { waitFor } from "../harness/wait.js";

const size = (file: string): number => statSync(file).size;

describe("WAL checkpoints in a worker thread", () => {
  it("copies committed pages into the database file without the server's connection doing it, and reuses the WAL", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pc-wal-"));
    const file = join(dir, "state.db");
    const db = openDatabase(file);
    const interval = 100;
    const checkpoints = startWalCheckpoints(db, createLogger("silent"), interval);
    try {
      assert.equal(db.pragma("wal_autocheckpoint", { simple: true }), 0, "the server's commits never checkpoint");
      db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)");
      const insert = db.prepare("INSERT INTO t (body) VALUES (?)");
      // Each round commits ≈ 4 MB one row at a time, as single calls do: past SQLite's own threshold (1000 pages).
      const round = (): void => {
        for (let i = 0; i < 1000; i++) insert.run("x".repeat(4000));
      };
      // Checkpointed whole: the database file holds every page the server's connection sees.
      const copied = (): boolean => size(file) >= (db.pragma("page_count", { simple: true }) as number) * (db.pragma("page_size", { simple: true }) as number);
      round();
      const wal = size(`${file}-wal`);
      assert.ok(wal > 4_000_000, `the WAL holds the round (${wal} bytes)`);
      await waitFor("the database file to take the WAL's pages", copied);
      // Once all is checkpointed, the next writer starts the WAL over instead of appending: it never holds more than a
      // round. Appended to, it would hold four rounds: 4000 commits of at least one 4 KB page each.
      // (The file is full size before the checkpoint has copied the last frames: the next one finishes it.)
      for (let i = 0; i < 3; i++) {
        await sleep(3 * interval);
        round();
        await waitFor("the round to be checkpointed", copied);
      }
      assert.ok(size(`${file}-wal`) < 4 * 1000 * 4096, `the WAL is reused (${size(`${file}-wal`)} bytes after four rounds, ${wal} after one)`);
    } finally {
      await checkpoints.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("does nothing for a database in memory", async () => {
    const db = openDatabase(":memory:");
    const checkpoints = startWalCheckpoints(db, createLogger("silent"));
    await checkpoints.close();
    db.close();
  });
});
