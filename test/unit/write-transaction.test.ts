import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { openDatabase, writeTransaction } from "../../server/src/store/database.js";

describe("writeTransaction", () => {
  it("takes the write lock when it begins (IMMEDIATE): another connection cannot commit between its read and its write", () => {
    const dir = mkdtempSync(join(tmpdir(), "pc-write-transaction-"));
    try {
      const file = join(dir, "state.db");
      const db = openDatabase(file);
      db.exec("CREATE TABLE t (v INTEGER NOT NULL)");
      // The other connection (the generation writer's thread has one) does not wait: it fails at once if locked out.
      const other = new Database(file);
      other.pragma("busy_timeout = 0");
      const result = writeTransaction(db, () => {
        const count = db.prepare("SELECT count(*) FROM t").pluck().get() as number;
        // A deferred transaction would let this commit, and the write below would then fail (SQLITE_BUSY_SNAPSHOT).
        assert.throws(() => other.prepare("INSERT INTO t (v) VALUES (1)").run(), { code: "SQLITE_BUSY" });
        db.prepare("INSERT INTO t (v) VALUES (?)").run(count + 10);
        return count;
      });
      assert.equal(result, 0);
      assert.deepEqual(other.prepare("SELECT v FROM t").pluck().all(), [10]);
      other.close();
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("rolls back what it wrote when its work throws; nested, it is a savepoint of the outer one", () => {
    const db = openDatabase(":memory:");
    db.exec("CREATE TABLE t (v INTEGER NOT NULL)");
    const insert = db.prepare("INSERT INTO t (v) VALUES (?)");
    assert.throws(() => writeTransaction(db, () => {
      insert.run(1);
      throw new Error("refused");
    }), /refused/);
    writeTransaction(db, () => {
      insert.run(2);
      assert.throws(() => writeTransaction(db, () => {
        insert.run(3);
        throw new Error("inner refused");
      }), /inner refused/);
      insert.run(4);
    });
    assert.deepEqual(db.prepare("SELECT v FROM t ORDER BY v").pluck().all(), [2, 4]);
    db.close();
  });
});
