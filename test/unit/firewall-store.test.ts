import { describe, it, mock } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "../../server/src/store/database.js";
import { accept, stagedStore } from "./helpers/staged-store.js";


describe("firewall store: table generations", () => {
  it("an applied table replaces the managed rules at publish; the old generation is deleted later, a batch per turn", async () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      const db = openDatabase(":memory:");
      const { store, rows, apply } = stagedStore(db, [{ chain: "INPUT", policy: "ACCEPT" }]);
      await apply("a", 1200);
      await apply("b", 3);
      assert.deepEqual(store.table("ipv4", "filter").rules.map((rule) => rule.id), ["b0", "b1", "b2"]);
      assert.equal(rows(1), 1200, "kept for a grace period (a reader may still hold the old generation)");
      // A timer due with the first batch runs after it and before the next: other work gets its turn in between.
      let between: number | undefined;
      setTimeout(() => (between = rows(1)), 2000);
      mock.timers.tick(1999);
      assert.equal(rows(1), 1200);
      mock.timers.tick(1);
      assert.equal(between, 700, "one batch of 500, then the event loop is free");
      assert.equal(rows(1), 0);
      assert.equal(rows(2), 3, "the published generation stays");
      assert.equal(store.rule("b1")?.spec.destinationPort?.ports[0]?.first, 1001);
      db.close();
      mock.timers.tick(2000); // a timer left after the store closed does nothing
    } finally {
      mock.timers.reset();
    }
  });
});

describe("firewall store: a sealed stage outlives a stop", () => {
  it("is kept at the next start with its chains and lines, then published (without its dropped rules) or dropped", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pc-sealed-"));
    try {
      const file = join(dir, "state.db");
      let db = openDatabase(file);
      const first = stagedStore(db, []);
      await first.apply("a", 3);
      const stage = first.store.stageTable("ipv4", "filter");
      stage.add([0, 1, 2].map((i) => ({ id: `b${i}`, chain: "INPUT", seq: i, spec: accept(2000 + i) })));
      await stage.stored();
      stage.seal([{ chain: "INPUT", policy: "DROP" }, { chain: "web" }], ["b2"]);
      await first.store.close();
      db.close(); // a stop before publish

      db = openDatabase(file);
      let { store, rows } = stagedStore(db, []);
      const [sealed] = store.sealedStages();
      assert.deepEqual(sealed, { family: "ipv4", table: "filter", generation: 2, chains: [{ chain: "INPUT", policy: "DROP" }, { chain: "web" }], dropped: ["b2"] });
      assert.equal(rows(2), 3, "the start kept the sealed generation's rows");
      assert.deepEqual([...store.sealedLines(sealed!).values()], [["b0"], ["b1"], ["b2"]]);
      assert.deepEqual(store.table("ipv4", "filter").rules.map((rule) => rule.id), ["a0", "a1", "a2"], "not published yet");
      store.publishSealed(sealed!);
      assert.deepEqual(store.table("ipv4", "filter"), {
        chains: [{ chain: "INPUT", policy: "DROP" }, { chain: "web" }],
        rules: [0, 1].map((i) => ({ id: `b${i}`, chain: "INPUT", seq: i, spec: accept(2000 + i) })),
      });
      assert.deepEqual([...store.managedLines("ipv4", "filter").values()], [["b0"], ["b1"]]);
      assert.deepEqual(store.sealedStages(), []);

      // Dropped: the staged rows go, the managed rules stay.
      const again = store.stageTable("ipv4", "filter");
      again.add([{ id: "c0", chain: "INPUT", seq: 0, spec: accept(3000) }]);
      await again.stored();
      again.seal([], []);
      await store.close();
      db.close();
      db = openDatabase(file);
      ({ store, rows } = stagedStore(db, []));
      store.dropSealed(store.sealedStages()[0]!);
      assert.equal(rows(3), 0);
      assert.deepEqual(store.sealedStages(), []);
      assert.deepEqual(store.table("ipv4", "filter").rules.map((rule) => rule.id), ["b0", "b1"]);
      await store.close();
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("firewall store: a sealed change of single rules", () => {
  it("is kept until committed (applied to the managed rules) or dropped (nothing changes)", () => {
    const db = openDatabase(":memory:");
    const { store } = stagedStore(db, []);
    store.sealRuleChange("ipv4", "filter", { kind: "add", rules: [{ id: "r1", chain: "INPUT", spec: accept(25), first: false }, { id: "r0", chain: "INPUT", spec: accept(24), first: true }] });
    assert.equal(store.sealedRuleChanges().length, 1);
    assert.deepEqual(store.table("ipv4", "filter").rules, [], "nothing recorded before the commit");
    store.commitRuleChange("ipv4", "filter", store.sealedRuleChanges()[0]!.change);
    assert.deepEqual(store.sealedRuleChanges(), []);
    assert.deepEqual(store.table("ipv4", "filter").rules.map((rule) => rule.id), ["r0", "r1"], "the first-placed rule before the others");

    store.sealRuleChange("ipv4", "filter", { kind: "replace", id: "r1", newId: "r2", spec: accept(26) });
    store.dropRuleChange("ipv4", "filter");
    assert.deepEqual(store.sealedRuleChanges(), []);
    assert.deepEqual(store.table("ipv4", "filter").rules.map((rule) => rule.id), ["r0", "r1"]);

    const replace = { kind: "replace", id: "r1", newId: "r2", spec: accept(26) } as const;
    store.sealRuleChange("ipv4", "filter", replace);
    store.commitRuleChange("ipv4", "filter", replace);
    assert.deepEqual(store.table("ipv4", "filter").rules.map((rule) => [rule.id, rule.spec.destinationPort?.ports[0]?.first]), [["r0", 24], ["r2", 26]]);
    store.sealRuleChange("ipv4", "filter", { kind: "delete", id: "r0" });
    store.commitRuleChange("ipv4", "filter", { kind: "delete", id: "r0" });
    assert.deepEqual(store.table("ipv4", "filter").rules.map((rule) => rule.id), ["r2"]);
    assert.deepEqual([...store.managedLines("ipv4", "filter").values()], [["r2"]]);
    db.close();
  });
});
