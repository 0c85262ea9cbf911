import { describe, it } from "node:test";
import assert from "node:assert/strict";
import Database from "better-sqlite3";
import { GroupCommit } from "../../server/src/store/group-commit.js";

describe("GroupCommit", () => {
  it("commits the writes queued in one turn of the event loop after it; a write that throws is rolled back alone", async () => {
    const db = new Database(":memory:");
    db.exec("CREATE TABLE t (v TEXT NOT NULL)");
    const insert = db.prepare("INSERT INTO t (v) VALUES (?)");
    const group = new GroupCommit(db);
    const results = await Promise.allSettled([
      group.write(() => insert.run("a")),
      group.write(() => {
        insert.run("b");
        throw new Error("refused");
      }),
      group.write(() => insert.run("c")),
    ]);
    assert.deepEqual(results.map((result) => result.status), ["fulfilled", "rejected", "fulfilled"]);
    assert.deepEqual(db.prepare("SELECT v FROM t ORDER BY v").pluck().all(), ["a", "c"]);
    // Written in the same turn: nothing is in the table before the next one.
    const pending = group.write(() => insert.run("d"));
    assert.equal(db.prepare("SELECT count(*) FROM t").pluck().get(), 2);
    await pending;
    assert.equal(db.prepare("SELECT count(*) FROM t").pluck().get(), 3);
    db.close();
  });
});
