// The bouncer API's pieces: Go durations, decisions from elements, and the per-bouncer stream over a real (in-memory)
// SQLite store — keys, startup, deltas, moved ends, the horizon of permanent bans, and what a restart keeps.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { openDatabase } from "../../server/src/store/database.js";
import { BouncerStore } from "../../server/src/store/bouncer-store.js";
import { ActiveDecisions, toDecision } from "../../server/src/bouncers/active-decisions.js";
import { BouncerService, PERMANENT_HORIZON_MS, type StreamFilter } from "../../server/src/bouncers/bouncer-service.js";
import { goDuration } from "../../server/src/rest/lapi-decisions.js";
import { createLogger } from "../../server/src/logger.js";
import { ServerError } from "../../server/src/errors.js";
import type { EntryPage } from "../../server/src/ipsets/ipset-entries.js";
import type { ApiCall } from "../../server/src/events/api-call.js";
import type { EventInput } from "../../server/src/events/event-model.js";

const NO_FILTER: StreamFilter = { scopes: [], origins: [], scenariosContaining: [], scenariosNotContaining: [] };
const log = createLogger("silent");
/** The events an API call recorded. */
function apiCall(): ApiCall & { readonly events: EventInput[] } {
  const events: EventInput[] = [];
  return { principal: "admin", role: "admin", method: "portcullis.v1.BouncerService/Test", events, record: (event) => events.push(event) };
}

describe("goDuration", () => {
  it("prints whole seconds as Go's time.Duration does", () => {
    assert.equal(goDuration(0), "0s");
    assert.equal(goDuration(999), "0s");
    assert.equal(goDuration(58_000), "58s");
    assert.equal(goDuration(240_000), "4m0s");
    assert.equal(goDuration(3_600_000), "1h0m0s");
    assert.equal(goDuration(14_398_400), "3h59m58s");
    assert.equal(goDuration(PERMANENT_HORIZON_MS), "596h31m23s");
  });
});

describe("toDecision", () => {
  it("an address is an Ip decision, a network a Range one, anything else none", () => {
    assert.deepEqual([toDecision("fail2ban", "sshd", "192.0.2.1", undefined)?.scope, toDecision("fail2ban", "sshd", "192.0.2.1", undefined)?.value], ["Ip", "192.0.2.1"]);
    assert.deepEqual([toDecision("lists", "drop", "192.0.2.9/24", 5)?.scope, toDecision("lists", "drop", "192.0.2.9/24", 5)?.value], ["Range", "192.0.2.0/24"]);
    assert.deepEqual([toDecision("lists", "drop", "2001:db8::1/128", 5)?.scope, toDecision("lists", "drop", "2001:db8::1/128", 5)?.value], ["Ip", "2001:db8::1"]);
    assert.equal(toDecision("lists", "web", "192.0.2.1,tcp:80", undefined), undefined);
    const id = toDecision("fail2ban", "sshd", "192.0.2.1", undefined)!.id;
    assert.ok(Number.isSafeInteger(id) && id > 0);
    assert.equal(toDecision("fail2ban", "sshd", "192.0.2.1", 7)!.id, id, "the id names the decision, not its end");
    assert.notEqual(toDecision("fail2ban", "dovecot", "192.0.2.1", undefined)!.id, id);
  });
});

/** A jail `sshd` (bantime 600) and a set `drop`, both changed by the test. */
function world() {
  const bans: Array<{ jail: string; address: string; since: number; expiresAt?: number }> = [];
  let entries: Array<{ element: string; timeout?: number }> = [];
  const decisions = new ActiveDecisions({
    jailBans: { all: () => bans },
    banTime: async () => 600,
    listEntries: async (set: string): Promise<EntryPage> => {
      if (set !== "drop") throw new ServerError("IPSET_NOT_FOUND", `no set ${set}`);
      return { entries, totalSize: entries.length };
    },
  }, ["drop", "absent"], log);
  return { bans, setEntries: (next: typeof entries) => (entries = next), decisions };
}

describe("BouncerService", () => {
  it("keeps only a hash of each key and knows a bouncer by it", () => {
    const db = openDatabase(":memory:");
    const bouncers = new BouncerService({ store: new BouncerStore(db), decisions: world().decisions });
    const call = apiCall();
    const { key } = bouncers.create("fw", call);
    assert.match(key, /^[0-9a-f]{64}$/);
    assert.equal(bouncers.authenticate(key), "fw");
    assert.equal(bouncers.authenticate(key.replace(/.$/, (c) => (c === "0" ? "1" : "0"))), undefined);
    assert.equal(bouncers.authenticate(""), undefined);
    const stored = db.prepare("SELECT hex(key_hash) AS hash FROM bouncers").pluck().get() as string;
    assert.notEqual(stored.toLowerCase(), key);
    assert.throws(() => bouncers.create("fw", call), (error: ServerError) => error.reason === "BOUNCER_ALREADY_EXISTS");
    assert.throws(() => bouncers.create("no spaces", call), (error: ServerError) => error.reason === "INVALID_BOUNCER_NAME");
    bouncers.delete("fw", call);
    assert.equal(bouncers.authenticate(key), undefined);
    assert.deepEqual(call.events, [{ type: "BOUNCER_CREATED", resource: "bouncers/fw" }, { type: "BOUNCER_DELETED", resource: "bouncers/fw" }]);
    assert.throws(() => bouncers.delete("fw", call), (error: ServerError) => error.reason === "BOUNCER_NOT_FOUND");
  });

  it("answers every decision at startup, then only changes; a restart keeps each bouncer's place", async () => {
    const db = openDatabase(":memory:");
    const w = world();
    let bouncers = new BouncerService({ store: new BouncerStore(db), decisions: w.decisions });
    bouncers.create("a", apiCall());
    bouncers.create("b", apiCall());
    const now = Date.now();
    w.bans.push({ jail: "sshd", address: "192.0.2.1", since: now });
    w.bans.push({ jail: "sshd", address: "192.0.2.2", since: now - 700_000 }); // ended: not a decision
    w.setEntries([{ element: "198.51.100.0/24" }, { element: "203.0.113.5", timeout: 60 }]);

    const startup = await bouncers.stream("a", true, NO_FILTER, "test/1");
    assert.deepEqual(startup.new.map((decision) => decision.value).sort(), ["192.0.2.1", "198.51.100.0/24", "203.0.113.5"]);
    const jail = startup.new.find((decision) => decision.value === "192.0.2.1")!;
    assert.equal(jail.until, now + 600_000);
    // A ban given its own duration (BanIp … duration) ends then, not at the jail's bantime.
    w.bans.push({ jail: "sshd", address: "192.0.2.3", since: now, expiresAt: now + 30_000 });
    const timed = await bouncers.stream("a", false, NO_FILTER, "test/1");
    assert.deepEqual(timed.new.map((decision) => [decision.value, decision.until]), [["192.0.2.3", now + 30_000]]);
    w.bans.pop();
    assert.deepEqual((await bouncers.stream("a", false, NO_FILTER, "test/1")).deleted.map((decision) => decision.value), ["192.0.2.3"]);
    const permanent = startup.new.find((decision) => decision.value === "198.51.100.0/24")!;
    assert.ok(permanent.until >= now + PERMANENT_HORIZON_MS - 1000);
    assert.deepEqual(await bouncers.stream("a", false, NO_FILTER, "test/1"), { new: [], deleted: [] });

    // Changes while nobody polls, then a new service on the same database (a restart).
    w.bans.splice(0, 1);
    w.bans.push({ jail: "sshd", address: "2001:db8::5", since: now });
    bouncers = new BouncerService({ store: new BouncerStore(db), decisions: w.decisions });
    const delta = await bouncers.stream("a", false, NO_FILTER, "test/1");
    assert.deepEqual(delta.new.map((decision) => decision.value), ["2001:db8::5"]);
    assert.deepEqual(delta.deleted.map((decision) => [decision.id, decision.value]), [[jail.id, "192.0.2.1"]]);
    assert.deepEqual(await bouncers.stream("a", false, NO_FILTER, "test/1"), { new: [], deleted: [] });

    // A moved end is sent again; a set entry's end read a second later is not a change.
    w.setEntries([{ element: "198.51.100.0/24" }, { element: "203.0.113.5", timeout: 3600 }]);
    assert.deepEqual((await bouncers.stream("a", false, NO_FILTER, "test/1")).new.map((decision) => decision.value), ["203.0.113.5"]);
    w.setEntries([{ element: "198.51.100.0/24" }, { element: "203.0.113.5", timeout: 3599 }]);
    assert.deepEqual(await bouncers.stream("a", false, NO_FILTER, "test/1"), { new: [], deleted: [] });

    // Bouncer b has its own place: everything is new to it, and its filters apply.
    const ranges = await bouncers.stream("b", false, { ...NO_FILTER, scopes: ["range"] }, "test/2");
    assert.deepEqual(ranges.new.map((decision) => decision.value), ["198.51.100.0/24"]);
    assert.deepEqual(bouncers.list().map((view) => [view.name, view.version]), [["a", "test/1"], ["b", "test/2"]]);
  });

  it("sends one decision per value, the longest; a value another decision still holds is not lifted", async () => {
    const db = openDatabase(":memory:");
    const w = world();
    const bouncers = new BouncerService({ store: new BouncerStore(db), decisions: w.decisions });
    bouncers.create("fw", apiCall());
    const now = Date.now();
    w.bans.push({ jail: "sshd", address: "192.0.2.1", since: now });
    w.setEntries([{ element: "192.0.2.1", timeout: 60 }]);
    const startup = await bouncers.stream("fw", true, NO_FILTER, "x");
    assert.deepEqual(startup.new.map((decision) => [decision.value, decision.origin]), [["192.0.2.1", "fail2ban"]], "the jail's ban ends later");
    // The jail's ban is lifted; the set still holds the address: no deletion, the set's decision instead.
    w.bans.splice(0, 1);
    const delta = await bouncers.stream("fw", false, NO_FILTER, "x");
    assert.deepEqual(delta.deleted, []);
    assert.deepEqual(delta.new.map((decision) => [decision.value, decision.origin]), [["192.0.2.1", "lists"]]);
    // Then the set's entry goes too: now it is lifted.
    w.setEntries([]);
    assert.deepEqual((await bouncers.stream("fw", false, NO_FILTER, "x")).deleted.map((decision) => [decision.value, decision.origin]), [["192.0.2.1", "lists"]]);
    assert.deepEqual(await bouncers.stream("fw", false, NO_FILTER, "x"), { new: [], deleted: [] });
  });

  it("answers the decisions covering an address", async () => {
    const db = openDatabase(":memory:");
    const w = world();
    const bouncers = new BouncerService({ store: new BouncerStore(db), decisions: w.decisions });
    bouncers.create("live", apiCall());
    w.setEntries([{ element: "198.51.100.0/24" }]);
    assert.deepEqual((await bouncers.query("live", { ip: "198.51.100.77" }, "x")).map((decision) => decision.value), ["198.51.100.0/24"]);
    assert.deepEqual(await bouncers.query("live", { ip: "192.0.2.77" }, "x"), []);
    assert.deepEqual((await bouncers.query("live", { scope: "range", value: "198.51.100.0/24" }, "x")).length, 1);
    await assert.rejects(bouncers.query("live", { ip: "nope" }, "x"), (error: ServerError) => error.reason === "INVALID_ELEMENT");
  });
});
