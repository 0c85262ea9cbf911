import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { GroupedWrites } from "../../server/src/ipsets/grouped-writes.js";
import { KeyedLock } from "../../server/src/keyed-lock.js";

interface Write {
  readonly element: string;
  readonly fail?: string;
}

/** A GroupedWrites whose apply records each group and answers each write from its `fail`, after a short wait. */
function recorder(lock = new KeyedLock()): { writes: GroupedWrites<Write, string>; groups: string[][] } {
  const groups: string[][] = [];
  const writes = new GroupedWrites<Write, string>(lock, async (key, group) => {
    groups.push(group.map((write) => `${key}:${write.element}`));
    await sleep(20);
    return group.map((write): PromiseSettledResult<string> => (write.fail === undefined ? { status: "fulfilled", value: `done ${write.element}` } : { status: "rejected", reason: new Error(write.fail) }));
  });
  return { writes, groups };
}

describe("GroupedWrites", () => {
  it("applies the writes that arrive while a group is applied as one next group, each answered on its own", async () => {
    const { writes, groups } = recorder();
    const first = writes.submit("s", { element: "a" });
    await sleep(5); // the first group is being applied
    const later = ["b", "c", "d"].map((element) => writes.submit("s", { element, ...(element === "c" ? { fail: "c refused" } : {}) }));
    const results = await Promise.allSettled([first, ...later]);
    assert.deepEqual(groups, [["s:a"], ["s:b", "s:c", "s:d"]]);
    assert.deepEqual(results.map((result) => (result.status === "fulfilled" ? result.value : (result.reason as Error).message)), ["done a", "done b", "c refused", "done d"]);
  });

  it("holds at most one write per element in a group, in the order they came", async () => {
    const { writes, groups } = recorder();
    const all = ["a", "b", "a", "c", "a"].map((element) => writes.submit("s", { element }));
    await Promise.all(all);
    assert.deepEqual(groups, [["s:a", "s:b", "s:c"], ["s:a"], ["s:a"]]);
  });

  it("keeps keys apart, and waits for the key's lock", async () => {
    const lock = new KeyedLock();
    const { writes, groups } = recorder(lock);
    let release!: () => void;
    const held = lock.with(["s"], () => new Promise<void>((resolve) => (release = resolve)));
    const onS = writes.submit("s", { element: "a" });
    const onT = writes.submit("t", { element: "a" });
    await onT;
    assert.deepEqual(groups, [["t:a"]]);
    release();
    await Promise.all([held, onS]);
    assert.deepEqual(groups, [["t:a"], ["s:a"]]);
  });

  it("rejects a whole group when apply throws, and goes on with the next", async () => {
    let calls = 0;
    const writes = new GroupedWrites<Write, string>(new KeyedLock(), async (_key, group) => {
      calls++;
      await sleep(10);
      if (calls === 1) throw new Error("set is gone");
      return group.map(() => ({ status: "fulfilled", value: "ok" }));
    });
    const first = writes.submit("s", { element: "a" });
    await sleep(2);
    const second = writes.submit("s", { element: "b" });
    await assert.rejects(first, /set is gone/);
    assert.equal(await second, "ok");
  });
});
