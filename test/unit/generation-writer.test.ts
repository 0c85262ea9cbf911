import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "../../server/src/store/database.js";
import { FirewallStore } from "../../server/src/store/firewall-store.js";
import { parseRuleLine } from "../../server/src/drivers/parse/iptables-save.js";
import { renderRuleLine } from "../../server/src/drivers/iptables-render.js";
import type { RuleSpec } from "../../server/src/firewall/rule-model.js";
import { accept, stagedStore } from "./helpers/staged-store.js";
import { generationWriter } from "../../server/src/store/generation-writer.js";
import { waitFor } from "../harness/wait.js";

const logged: RuleSpec = { source: { address: "192.0.2.0/24", negate: true }, comment: "its ✓ ünïcode", target: { kind: "LOG", prefix: "pc: " } };

// A database file, as the server has: staged rows are written by the worker thread over its own connection.
describe("firewall store on a database file: staged rows written by a worker thread", () => {
  it("stores what was staged (specs unchanged through the worker's JSON), and a failed chunk stops the apply", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pc-writer-"));
    const db = openDatabase(join(dir, "state.db"));
    const store = new FirewallStore(db, renderRuleLine, parseRuleLine);
    const rows = (generation: number): number => (db.prepare("SELECT count(*) AS n FROM firewall_rules WHERE generation = ?").get(generation) as { n: number }).n;
    try {
      const first = store.stageTable("ipv4", "filter");
      first.add(Array.from({ length: 500 }, (_, i) => ({ id: `a${i}`, chain: "INPUT", seq: i, spec: accept(1000 + i) })));
      first.add([{ id: "a500", chain: "INPUT", seq: 500, spec: logged }]);
      await first.stored();
      assert.equal(rows(1), 501, "committed by the worker, visible to this connection");
      first.index();
      first.seal([{ chain: "INPUT", policy: "DROP" }], []);
      first.publish();
      first.release();
      const table = store.table("ipv4", "filter");
      assert.deepEqual(table.rules[7], { id: "a7", chain: "INPUT", seq: 7, spec: accept(1007) });
      assert.deepEqual(table.rules[500]!.spec, logged);
      assert.deepEqual(store.managedLines("ipv4", "filter").get(renderRuleLine("INPUT", accept(1003))), ["a3"]);

      // An id the live generation already holds: that chunk fails whole, the apply learns it before its COMMIT.
      const second = store.stageTable("ipv4", "filter");
      second.add([{ id: "b0", chain: "INPUT", seq: 0, spec: accept(2000) }]);
      second.add([{ id: "b1", chain: "INPUT", seq: 1, spec: accept(2001) }, { id: "a3", chain: "INPUT", seq: 2, spec: accept(2002) }]);
      await assert.rejects(second.stored(), /UNIQUE constraint failed: firewall_rules.id/);
      assert.equal(rows(2), 1, "the failed chunk left nothing behind");
      await second.discard();
      assert.equal(rows(2), 0);
      assert.equal(store.table("ipv4", "filter").rules.length, 501, "the published generation is untouched");
    } finally {
      await store.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("close() waits for the worker's end even when a reply comes in meanwhile (the process's event loop must not run dry)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pc-writer-"));
    const db = openDatabase(join(dir, "state.db"));
    let closed = 0;
    try {
      // A job answered while close() waits: its reply used to unref the worker close() had just ref'd, and a process
      // with nothing else to wait on ended there (the test runner reports that as a promise still pending).
      for (let i = 0; i < 50; i++) {
        const writer = generationWriter(db);
        await writer.deleteGeneration("ipv4", "filter", 1);
        writer.deleteGeneration("ipv4", "filter", 2).catch(() => undefined);
        await new Promise((resolve) => setImmediate(resolve));
        await writer.close();
        closed++;
      }
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(closed, 50);
  });

  it("deletes a replaced generation on the worker after the grace period", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pc-writer-"));
    const db = openDatabase(join(dir, "state.db"));
    const { store, rows, apply } = stagedStore(db, [{ chain: "INPUT" }]);
    // Real timers (a worker's terminate hangs once timers were mocked): the grace period is waited out.
    try {
      await apply("a", 1200);
      // Taken before the grace period starts (in apply), so the time measured below can only be longer than it.
      const released = Date.now();
      await apply("b", 3);
      assert.equal(rows(1), 1200, "kept for the grace period");
      await waitFor("the replaced generation deleted in batches by the worker", () => rows(1) === 0);
      // The grace period is 2 s; Node's timer may fire a few ms early against the wall clock.
      assert.ok(Date.now() - released >= 1900, "not before the grace period");
      assert.equal(rows(2), 3);
    } finally {
      await store.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
