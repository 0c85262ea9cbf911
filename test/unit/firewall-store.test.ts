import { describe, it, mock } from "node:test";
import assert from "node:assert/strict";
import { openDatabase } from "../../server/src/store/database.js";
import { stagedStore } from "./helpers/staged-store.js";


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
