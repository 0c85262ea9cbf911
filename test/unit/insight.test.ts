// The pure parts of the console's server methods: the ban history's aggregates, the entry filter's index ranges, the
// CSV export's cells, and the event columns the store indexes.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { BanHistory, LOAD_PAGE, networkOf, windowBuckets } from "../../server/src/events/ban-history.js";
import { CSV_HEADER, csvCell, csvRecord } from "../../server/src/events/event-csv.js";
import { subjectOf, type HostEvent } from "../../server/src/events/event-model.js";
import { entryQuery } from "../../server/src/ipsets/entry-filter.js";
import { openDatabase } from "../../server/src/store/database.js";
import { EventStore } from "../../server/src/store/event-store.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

let sequence = 0;
function ban(type: "BAN" | "UNBAN", jail: string, address: string, time: number): HostEvent {
  return { sequence: ++sequence, time, type, resource: `jails/${jail}/bans/${address}`, principal: "fail2ban", origin: "fail2ban", attributes: { jail, address } };
}

/** Python's csv module: a CSV reader that shares no code with the writer. */
function parseCsv(text: string): string[][] {
  return JSON.parse(execFileSync("python3", ["-c", "import csv, io, json, sys; print(json.dumps(list(csv.reader(io.StringIO(sys.stdin.read(), newline='')))))"], { input: text, encoding: "utf8" })) as string[][];
}

/** A history loaded from an empty log. */
function loaded(now: number): BanHistory {
  const history = new BanHistory();
  void history.load(() => [], 0, now);
  return history;
}

describe("ban history", () => {
  const now = Date.UTC(2026, 0, 15, 12, 30, 10);

  it("windows: buckets aligned to their width, the last one holding now", () => {
    assert.deepEqual(windowBuckets("hour", now), { start: Date.UTC(2026, 0, 15, 11, 31), bucketMs: MINUTE, count: 60 });
    assert.deepEqual(windowBuckets("day", now), { start: Date.UTC(2026, 0, 14, 13), bucketMs: HOUR, count: 24 });
    assert.deepEqual(windowBuckets("week", now), { start: Date.UTC(2026, 0, 8, 18), bucketMs: 6 * HOUR, count: 28 });
    assert.deepEqual(windowBuckets("month", now), { start: Date.UTC(2025, 11, 17), bucketMs: DAY, count: 30 });
  });

  it("a timeline counts bans and unbans per bucket, every bucket listed, of one jail or all", () => {
    const history = loaded(now);
    history.record(ban("BAN", "sshd", "192.0.2.1", now - 90 * MINUTE)); // before the hour window
    history.record(ban("BAN", "sshd", "192.0.2.1", now - 10 * MINUTE));
    history.record(ban("BAN", "dovecot", "192.0.2.2", now - 10 * MINUTE));
    history.record(ban("UNBAN", "sshd", "192.0.2.1", now - 5 * MINUTE));
    history.record(ban("BAN", "sshd", "2001:db8::1", now));
    const hour = history.timeline("hour", undefined, now);
    assert.equal(hour.length, 60);
    assert.deepEqual(hour.map((bucket) => bucket.start), Array.from({ length: 60 }, (_, i) => Date.UTC(2026, 0, 15, 11, 31) + i * MINUTE));
    const nonEmpty = hour.filter((bucket) => bucket.bans + bucket.unbans > 0).map((bucket) => [(bucket.start - hour[0]!.start) / MINUTE, bucket.bans, bucket.unbans]);
    assert.deepEqual(nonEmpty, [[49, 2, 0], [54, 0, 1], [59, 1, 0]]);
    const sshd = history.timeline("hour", "sshd", now);
    assert.equal(sshd.reduce((sum, bucket) => sum + bucket.bans, 0), 2);
    assert.deepEqual(history.timeline("hour", "nginx", now).every((bucket) => bucket.bans === 0 && bucket.unbans === 0), true);
    const day = history.timeline("day", undefined, now);
    assert.equal(day.length, 24);
    assert.equal(day.reduce((sum, bucket) => sum + bucket.bans, 0), 4);
    assert.equal(day.reduce((sum, bucket) => sum + bucket.unbans, 0), 1);
  });

  it("top offenders: most bans first, then the latest; networks /24 and /64 with their address counts and jails", () => {
    const history = loaded(now);
    history.record(ban("BAN", "sshd", "192.0.2.1", now - 3 * HOUR));
    history.record(ban("BAN", "dovecot", "192.0.2.1", now - 2 * HOUR));
    history.record(ban("BAN", "sshd", "192.0.2.9", now - 2 * HOUR));
    history.record(ban("BAN", "sshd", "198.51.100.4", now - HOUR));
    history.record(ban("BAN", "sshd", "2001:db8::1:5", now - 30 * MINUTE));
    history.record(ban("BAN", "sshd", "2001:db8::7", now - 20 * MINUTE));
    history.record(ban("UNBAN", "sshd", "2001:db8::7", now - 10 * MINUTE));
    const top = history.topOffenders(now - DAY, undefined, 10);
    assert.deepEqual(top.addresses.map((o) => [o.address, o.bans, o.jails.join("+")]), [
      ["192.0.2.1", 2, "dovecot+sshd"], ["2001:db8::7", 1, "sshd"], ["2001:db8::1:5", 1, "sshd"], ["198.51.100.4", 1, "sshd"], ["192.0.2.9", 1, "sshd"],
    ]);
    assert.equal(top.addresses[0]!.lastBan, now - 2 * HOUR);
    assert.deepEqual(top.networks.map((o) => [o.address, o.bans, o.addresses, o.jails.join("+")]), [
      ["192.0.2.0/24", 3, 2, "dovecot+sshd"], ["2001:db8::/64", 2, 2, "sshd"], ["198.51.100.0/24", 1, 1, "sshd"],
    ]);
    assert.deepEqual(history.topOffenders(now - DAY, "dovecot", 10).addresses.map((o) => o.address), ["192.0.2.1"]);
    assert.deepEqual(history.topOffenders(now - DAY, undefined, 2).addresses.map((o) => o.address), ["192.0.2.1", "2001:db8::7"]);
    assert.deepEqual(history.topOffenders(now - 45 * MINUTE, undefined, 10).addresses.map((o) => o.address), ["2001:db8::7", "2001:db8::1:5"]);
    assert.deepEqual(history.jailCounts(now - DAY), [{ jail: "dovecot", bans: 1, unbans: 0 }, { jail: "sshd", bans: 5, unbans: 1 }]);
    assert.equal(history.bansSince(now - DAY), 6);
    assert.equal(networkOf("2001:db8:0:0:1::5"), "2001:db8::/64");
  });

  it("loads page by page in the background; events recorded meanwhile are taken in after the loaded ones", async () => {
    const rows = Array.from({ length: LOAD_PAGE + 1 }, (_, i) => [i + 1, now - HOUR, 1, "sshd", `198.51.100.${i % 250}`] as const);
    const history = new BanHistory();
    history.record({ ...ban("BAN", "sshd", "198.51.100.1", now), sequence: 1 }); // recorded before the load: in the log too
    const loading = history.load((after, _since, limit) => rows.filter((row) => row[0] > after).slice(0, limit), rows.length, now);
    history.record({ ...ban("UNBAN", "sshd", "198.51.100.1", now), sequence: rows.length + 1 });
    assert.equal(history.bansSince(0), LOAD_PAGE, "the first page only, so far");
    await loading;
    await history.ready;
    assert.deepEqual(history.jailCounts(0), [{ jail: "sshd", bans: LOAD_PAGE + 1, unbans: 1 }]);
  });

  it("counters are reused between calls; jails past the 32nd are named too", () => {
    const history = loaded(now);
    for (let j = 0; j < 40; j++) history.record(ban("BAN", `jail${String(j).padStart(2, "0")}`, j < 20 ? "192.0.2.1" : "192.0.2.2", now - MINUTE));
    const first = history.topOffenders(now - HOUR, undefined, 5);
    assert.deepEqual(first.addresses.map((o) => [o.address, o.bans, o.jails.length, o.jails[0], o.jails.at(-1)]), [["192.0.2.1", 20, 20, "jail00", "jail19"], ["192.0.2.2", 20, 20, "jail20", "jail39"]]);
    assert.deepEqual(first.networks.map((o) => [o.address, o.bans, o.addresses, o.jails.length]), [["192.0.2.0/24", 40, 2, 40]]);
    assert.deepEqual(history.topOffenders(now - HOUR, "jail33", 5).addresses.map((o) => [o.address, o.bans, o.jails]), [["192.0.2.2", 1, ["jail33"]]]);
    assert.deepEqual(history.topOffenders(now - HOUR, undefined, 5), first, "the same answer from the reused counters");
  });

  it("loads the log's bans in the background, forgets what the log pruned and what is older than 30 days", async () => {
    const db = openDatabase(":memory:");
    const store = new EventStore(db);
    const at = Date.now();
    store.append({ time: at - 40 * DAY, type: "BAN", resource: "jails/sshd/bans/192.0.2.1", principal: "fail2ban", origin: "fail2ban", attributes: { jail: "sshd", address: "192.0.2.1" } });
    store.append({ time: at - 2 * HOUR, type: "BAN", resource: "jails/sshd/bans/192.0.2.2", principal: "fail2ban", origin: "fail2ban", attributes: { jail: "sshd", address: "192.0.2.2" } });
    store.append({ time: at - HOUR, type: "ENTRY_ADDED", resource: "ipsets/x/entries/192.0.2.3", principal: "admin", origin: "api", attributes: { element: "192.0.2.3" } });
    const third = store.append({ time: at - HOUR, type: "UNBAN", resource: "jails/sshd/bans/192.0.2.2", principal: "fail2ban", origin: "fail2ban", attributes: { jail: "sshd", address: "192.0.2.2" } });
    const history = new BanHistory();
    history.record({ ...ban("BAN", "nginx", "203.0.113.1", at), sequence: store.lastSequence() + 1 });
    await history.load((after, since, limit) => store.bans(after, since, limit), store.lastSequence());
    assert.deepEqual(history.jailCounts(at - DAY), [{ jail: "nginx", bans: 1, unbans: 0 }, { jail: "sshd", bans: 1, unbans: 1 }]);
    assert.equal(history.bansSince(at - 50 * DAY), 2, "the ban older than 30 days is not loaded");
    history.dropBefore(third.sequence);
    assert.deepEqual(history.jailCounts(at - DAY), [{ jail: "nginx", bans: 1, unbans: 0 }, { jail: "sshd", bans: 0, unbans: 1 }]);
    // Addresses that left the history free their ids for others.
    for (let i = 0; i < 3000; i++) history.record(ban("BAN", "sshd", `198.51.100.${i % 200}`, at));
    assert.equal(history.topOffenders(at - HOUR, undefined, 1).addresses[0]!.bans, 15);
  });
});

describe("entry filter", () => {
  const select = (filter: string, elements: readonly string[]): string[] => {
    const query = entryQuery(filter);
    // What the store would read: the points, and the elements inside the ranges; then the check.
    const candidates = elements.filter((element) => query.points.includes(element) || query.ranges.some((range) => element >= range.from && (range.to === undefined || element < range.to)));
    return candidates.filter((element) => query.matches(element)).sort();
  };
  const elements = [
    "10.0.0.1", "192.0.2.1", "192.0.2.10", "192.0.2.1,tcp:80", "192.0.2.100", "192.0.2.0/24", "192.0.0.0/16", "192.0.2.128/25", "192.0.3.5",
    "192.0.20.1", "198.51.100.0/24", "2001:db8::1", "2001:db8::/32", "2001:db8:0:1::5", "2001:db8:1::/48", "2001:db8::1,tcp:443", "::ffff:192.0.2.1",
  ];

  it("an address: itself (alone or with a port) and the networks covering it; any spelling", () => {
    assert.deepEqual(select("192.0.2.1", elements), ["192.0.0.0/16", "192.0.2.0/24", "192.0.2.1", "192.0.2.1,tcp:80"]);
    assert.deepEqual(select("2001:DB8::0001", elements), ["2001:db8::/32", "2001:db8::1", "2001:db8::1,tcp:443"]);
    assert.deepEqual(select("192.0.2.200", elements), ["192.0.0.0/16", "192.0.2.0/24", "192.0.2.128/25"]);
  });

  it("a network: what is inside it and what covers it", () => {
    assert.deepEqual(select("192.0.2.0/24", elements), ["192.0.0.0/16", "192.0.2.0/24", "192.0.2.1", "192.0.2.1,tcp:80", "192.0.2.10", "192.0.2.100", "192.0.2.128/25"]);
    assert.deepEqual(select("192.0.2.0/25", elements), ["192.0.0.0/16", "192.0.2.0/24", "192.0.2.1", "192.0.2.1,tcp:80", "192.0.2.10", "192.0.2.100"]);
    assert.deepEqual(select("192.0.0.0/20", elements), ["192.0.0.0/16", "192.0.2.0/24", "192.0.2.1", "192.0.2.1,tcp:80", "192.0.2.10", "192.0.2.100", "192.0.2.128/25", "192.0.3.5"]);
    assert.deepEqual(select("2001:db8::/48", elements), ["2001:db8:0:1::5", "2001:db8::/32", "2001:db8::1", "2001:db8::1,tcp:443"]);
    assert.deepEqual(select("2001:db8:1::/48", elements), ["2001:db8:1::/48", "2001:db8::/32"]);
  });

  it("other text: the elements starting with it", () => {
    assert.deepEqual(select("192.0.2.1", ["192.0.2.1", "192.0.2.10"]), ["192.0.2.1"], "an address is not a text prefix");
    assert.deepEqual(select("192.0.2", elements), ["192.0.2.0/24", "192.0.2.1", "192.0.2.1,tcp:80", "192.0.2.10", "192.0.2.100", "192.0.2.128/25", "192.0.20.1"]);
    assert.deepEqual(select("web", ["web1", "web2", "db1"]), ["web1", "web2"]);
  });

  it("ranges are few, sorted and disjoint (an index seek each)", () => {
    for (const filter of ["192.0.2.1", "192.0.2.0/24", "10.0.0.0/13", "2001:db8::1", "2001:db8::/48", "0.0.0.0/0"]) {
      const { ranges, points } = entryQuery(filter);
      assert.ok(ranges.length <= 160 && points.length <= 129, filter);
      for (let i = 1; i < ranges.length; i++) assert.ok(ranges[i - 1]!.to !== undefined && ranges[i - 1]!.to! < ranges[i]!.from, `${filter}: ${JSON.stringify(ranges.slice(i - 1, i + 1))}`);
    }
  });
});

describe("CSV export", () => {
  const hostile = "=cmd|' /C calc'!A0";
  const event: HostEvent = {
    sequence: 7,
    time: Date.UTC(2026, 0, 2, 3, 4, 5),
    type: "ALLOWLIST_ENTRY_ADDED",
    resource: "+allowlist,\"x\"",
    principal: hostile,
    origin: "api",
    attributes: { network: "192.0.2.0/24", comment: `${hostile}, "quoted"\nnext line\r\n@SUM(1)` },
  };

  it("a cell that starts like a formula gets a leading quote; commas, quotes and line breaks are quoted", () => {
    for (const start of ["=", "+", "-", "@", "\t", "\r"]) assert.equal(csvCell(`${start}1`).replace(/^"/, "")[0], "'", JSON.stringify(start));
    assert.equal(csvCell("plain"), "plain");
    assert.equal(csvCell('a "b", c'), '"a ""b"", c"');
    assert.equal(csvCell("-1"), "'-1");
  });

  it("records round-trip through a CSV reader as data", () => {
    const text = CSV_HEADER + csvRecord(event) + csvRecord({ ...event, sequence: 8, principal: "@admin", resource: "-x" });
    const rows = parseCsv(text);
    assert.deepEqual(rows[0], ["sequence", "time", "type", "resource", "principal", "origin", "jail", "address", "attributes"]);
    assert.deepEqual(rows[1]!.slice(0, 8), ["7", "2026-01-02T03:04:05.000Z", "ALLOWLIST_ENTRY_ADDED", "+allowlist,\"x\"".replace(/^/, "'"), `'${hostile}`, "api", "", "192.0.2.0/24"]);
    assert.deepEqual(JSON.parse(rows[1]![8]!), event.attributes);
    assert.deepEqual([rows[2]![3], rows[2]![4]], ["'-x", "'@admin"]);
    assert.equal(rows.length, 3);
  });

  it("the indexed columns: the jail and the address an event is about", () => {
    assert.deepEqual(subjectOf({ resource: "jails/sshd/bans/192.0.2.1", attributes: { jail: "sshd", address: "192.0.2.1" } }), { jail: "sshd", address: "192.0.2.1" });
    assert.deepEqual(subjectOf({ resource: "jails/sshd", attributes: { max_retry: "3" } }), { jail: "sshd" });
    assert.deepEqual(subjectOf({ resource: "ipsets/web/entries/192.0.2.1,tcp:80", attributes: { element: "192.0.2.1,tcp:80" } }), { address: "192.0.2.1" });
    assert.deepEqual(subjectOf({ resource: "allowlist", attributes: { network: "2001:db8::/64" } }), { address: "2001:db8::/64" });
    assert.deepEqual(subjectOf({ resource: "ipsets/web", attributes: {} }), {});
  });

  it("the migration computes the same columns for events recorded before it", () => {
    const dir = mkdtempSync(join(tmpdir(), "pc-migration-"));
    try {
      const file = join(dir, "state.db");
      const old = openDatabase(file);
      // Back to the schema before the migration, with events recorded then.
      old.exec("DROP INDEX events_principal; DROP INDEX events_jail; DROP INDEX events_address; DROP INDEX jail_bans_address; ALTER TABLE events DROP COLUMN jail; ALTER TABLE events DROP COLUMN address; DROP TABLE feed_lists; DROP TABLE feeds; DROP TABLE bouncer_decisions; DROP TABLE bouncers; DROP INDEX jail_bans_expiry; ALTER TABLE jail_bans DROP COLUMN expires_at; DROP TABLE firewall_sealed; DROP TABLE firewall_sealed_rules;");
      old.pragma("user_version = 12");
      const insert = old.prepare("INSERT INTO events (time, type, resource, principal, origin, attributes) VALUES (0, 'JAIL_UPDATED', ?, 'p', 'api', ?)");
      const cases: Array<Pick<HostEvent, "resource" | "attributes">> = [
        { resource: "jails/sshd/bans/192.0.2.1", attributes: { jail: "sshd", address: "192.0.2.1" } },
        { resource: "jails/sshd", attributes: { max_retry: "3" } },
        { resource: "jails", attributes: { jails: "a,b" } },
        { resource: "ipsets/web/entries/192.0.2.1,tcp:80", attributes: { element: "192.0.2.1,tcp:80" } },
        { resource: "allowlist", attributes: { network: "2001:db8::/64", jail: "" } },
        { resource: "ipsets/web", attributes: { element: ",x" } },
      ];
      for (const c of cases) insert.run(c.resource, JSON.stringify(c.attributes));
      old.close();
      const db = openDatabase(file);
      const rows = db.prepare<[], { jail: string | null; address: string | null }>("SELECT jail, address FROM events ORDER BY sequence").all();
      assert.deepEqual(rows.map((row) => ({ ...(row.jail === null ? {} : { jail: row.jail }), ...(row.address === null ? {} : { address: row.address }) })), cases.map(subjectOf));
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
