import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { status, type ClientReadableStream } from "@grpc/grpc-js";
import { AddressFamily } from "../../server/src/gen/portcullis/v1/common.js";
import { EventOrigin, EventType, type Event } from "../../server/src/gen/portcullis/v1/events.js";
import { Ipset, IpsetType } from "../../server/src/gen/portcullis/v1/ipset.js";
import { EventTestClient, rejectsWith } from "../harness/grpc-clients.js";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";
import { applyRequest, filterOf, rule } from "../harness/firewall-requests.js";
import { TargetKind } from "../../server/src/gen/portcullis/v1/firewall.js";
import { waitFor } from "../harness/wait.js";
import { rest } from "../harness/rest.js";

const entry = (element: string) => ({ name: "", element, comment: "" });

/** A subscriber that collects events until stopped. */
function subscribe(client: EventTestClient, afterSequence: number, filter: { types?: EventType[]; resourcePrefix?: string } = {}): { events: Event[]; call: ClientReadableStream<Event>; until(n: number): Promise<void> } {
  const events: Event[] = [];
  const call = client.stream("watchEvents", { afterSequence, types: filter.types ?? [], resourcePrefix: filter.resourcePrefix ?? "", principal: "", jail: "", address: "" }, (event) => events.push(event), () => undefined);
  return {
    events,
    call,
    async until(n) {
      await waitFor(() => `${n} events (got ${events.map((e) => EventType[e.type]).join(", ")})`, () => events.length >= n, { every: 20 });
    },
  };
}

describe("event stream: durable, resumable, no loss and no duplicates", () => {
  let f: ServerFixture;
  let events: EventTestClient;
  before(async () => {
    f = await startServerFixture();
    events = new EventTestClient(f.server.address, f.server.credentials());
  });
  after(async () => {
    events?.close();
    await f?.close();
  });

  it("a subscriber sees changes live, with principal, resource and attributes", async () => {
    const watcher = subscribe(events, 0);
    await f.client.call("createIpset", { ipsetId: "bans", ipset: Ipset.fromPartial({ type: IpsetType.IPSET_TYPE_HASH_IP, family: AddressFamily.ADDRESS_FAMILY_INET, defaultTimeout: 0 }), requestId: "" });
    await watcher.until(1);
    // The stream is open and has delivered all there was: the next change can only reach it live.
    await f.client.call("addEntry", { parent: "ipsets/bans", entry: { ...entry("192.0.2.100"), timeout: 600 } });
    await watcher.until(2);
    watcher.call.cancel();
    const [created, added] = watcher.events;
    assert.equal(created!.type, EventType.EVENT_TYPE_IPSET_CREATED);
    assert.equal(created!.resource, "ipsets/bans");
    assert.equal(added!.type, EventType.EVENT_TYPE_ENTRY_ADDED);
    assert.equal(added!.resource, "ipsets/bans/entries/192.0.2.100");
    assert.equal(added!.principal, "admin");
    assert.equal(added!.origin, EventOrigin.EVENT_ORIGIN_API);
    assert.equal(added!.attributes.element, "192.0.2.100");
    assert.equal(added!.attributes.timeout, "600");
    assert.ok(added!.sequence > created!.sequence);
  });

  it("reconnecting with the last sequence gives exactly the events missed", async () => {
    const first = subscribe(events, 0);
    await first.until(2);
    const last = first.events[first.events.length - 1]!.sequence;
    first.call.cancel();
    for (const address of ["192.0.2.1", "192.0.2.2", "192.0.2.3"]) await f.client.call("addEntry", { parent: "ipsets/bans", entry: entry(address) });
    const resumed = subscribe(events, last);
    await resumed.until(3);
    // One more change, live: the stream is in order, so once it is here, nothing (no repeat) can come before it.
    await f.client.call("addEntry", { parent: "ipsets/bans", entry: entry("192.0.2.4") });
    await resumed.until(4);
    resumed.call.cancel();
    assert.deepEqual(resumed.events.map((e) => e.attributes.element), ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"]);
    assert.deepEqual(resumed.events.map((e) => e.sequence), [last + 1, last + 2, last + 3, last + 4]);
  });

  it("events survive a server restart and sequences continue", async () => {
    const before = await events.call("listEvents", { afterSequence: 0, pageSize: 0, types: [], resourcePrefix: "", principal: "", jail: "", address: "" });
    await f.server.kill("SIGKILL");
    await f.server.restart();
    events.close();
    events = new EventTestClient(f.server.address, f.server.credentials());
    await f.clientAs("admin").call("deleteEntry", { name: "ipsets/bans/entries/192.0.2.1" });
    const afterRestart = await events.call("listEvents", { afterSequence: 0, pageSize: 0, types: [], resourcePrefix: "", principal: "", jail: "", address: "" });
    assert.deepEqual(afterRestart.events.slice(0, before.events.length), before.events);
    const newest = afterRestart.events[afterRestart.events.length - 1]!;
    assert.equal(newest.type, EventType.EVENT_TYPE_ENTRY_DELETED);
    assert.equal(newest.sequence, before.lastSequence + 1);
  });

  it("filters by type and resource prefix", async () => {
    const onlyDeletes = await events.call("listEvents", { afterSequence: 0, pageSize: 0, types: [EventType.EVENT_TYPE_ENTRY_DELETED], resourcePrefix: "ipsets/bans", principal: "", jail: "", address: "" });
    assert.ok(onlyDeletes.events.length >= 1 && onlyDeletes.events.every((e) => e.type === EventType.EVENT_TYPE_ENTRY_DELETED));
    const none = await events.call("listEvents", { afterSequence: 0, pageSize: 0, types: [], resourcePrefix: "firewall/", principal: "", jail: "", address: "" });
    assert.equal(none.events.length, 0);
  });

  it("a safe-mode rollback is an event of the system", async () => {
    const watcher = subscribe(events, 0, { resourcePrefix: "firewall/" });
    const fw = f.firewallAs("admin");
    await fw.call("applyRuleset", applyRequest({ parent: filterOf("ipv4"), chains: [], rules: [rule({ chain: "INPUT", source: { address: "198.51.100.7" }, target: { kind: TargetKind.TARGET_KIND_DROP } })], confirmWithin: 1, allowLockout: false }));
    await watcher.until(2);
    watcher.call.cancel();
    const [applied, rolledBack] = watcher.events;
    assert.equal(applied!.type, EventType.EVENT_TYPE_RULESET_APPLIED);
    assert.ok(applied!.attributes.rollback_time);
    assert.equal(rolledBack!.type, EventType.EVENT_TYPE_RULESET_ROLLED_BACK);
    assert.equal(rolledBack!.origin, EventOrigin.EVENT_ORIGIN_SYSTEM);
    assert.equal(rolledBack!.principal, "system");
  });

  it("the audit log records every write attempt, refused ones too; viewers can read it", async () => {
    await f.server.cli(["certs", "issue", "--name", "auditor", "--role", "viewer"]);
    const viewer = f.clientAs("auditor");
    await rejectsWith(viewer.call("addEntry", { parent: "ipsets/bans", entry: entry("192.0.2.9") }), status.PERMISSION_DENIED);
    const auditorEvents = new EventTestClient(f.server.address, f.server.credentials("auditor"));
    try {
      const page = await auditorEvents.call("listAuditRecords", { pageSize: 5, pageToken: "", principal: "", method: "", resourcePrefix: "" });
      assert.equal(page.records.length, 5);
      const [newest] = page.records;
      assert.deepEqual([newest!.principal, newest!.role, newest!.method, newest!.resource, newest!.code, newest!.reason], ["auditor", "viewer", "portcullis.v1.IpsetService/AddEntry", "ipsets/bans", "PERMISSION_DENIED", "ROLE_REQUIRED"]);
      const older = await auditorEvents.call("listAuditRecords", { pageSize: 5, pageToken: page.nextPageToken, principal: "", method: "", resourcePrefix: "" });
      assert.ok(older.records[0]!.time!.getTime() <= page.records[4]!.time!.getTime());
      assert.ok(older.records.some((record) => record.method.endsWith("/CreateIpset") && record.code === "OK"));
    } finally {
      auditorEvents.close();
    }
  });

  it("newest first (order_by \"sequence desc\"): pages back through the log with before_sequence, filters and after_sequence still hold, over gRPC and REST", async () => {
    const list = (extra: { afterSequence?: number; beforeSequence?: number; orderBy?: string; pageSize?: number; types?: EventType[] }) =>
      events.call("listEvents", { afterSequence: extra.afterSequence ?? 0, pageSize: extra.pageSize ?? 0, types: extra.types ?? [], resourcePrefix: "", principal: "", jail: "", address: "", ...(extra.orderBy === undefined ? {} : { orderBy: extra.orderBy }), ...(extra.beforeSequence === undefined ? {} : { beforeSequence: extra.beforeSequence }) });
    for (const element of ["198.51.100.41", "198.51.100.42", "198.51.100.43"]) await f.clientAs("admin").call("addEntry", { parent: "ipsets/bans", entry: entry(element) });
    const oldestFirst = (await list({})).events.map((event) => event.sequence);
    assert.ok(oldestFirst.length >= 7, `enough events to page through (${oldestFirst.length})`);
    const newestFirst = [...oldestFirst].reverse();

    const first = await list({ orderBy: "sequence desc", pageSize: 3 });
    assert.deepEqual(first.events.map((event) => event.sequence), newestFirst.slice(0, 3));
    assert.equal(first.lastSequence, newestFirst[0]);
    // Paging back to the oldest, each page before the last event of the one before: every event once, in order.
    const paged: number[] = [];
    for (let before: number | undefined; ; ) {
      const page = await list({ orderBy: "sequence desc", pageSize: 3, ...(before === undefined ? {} : { beforeSequence: before }) });
      paged.push(...page.events.map((event) => event.sequence));
      if (page.events.length < 3) break;
      before = page.events[page.events.length - 1]!.sequence;
    }
    assert.deepEqual(paged, newestFirst);
    // AIP-132 spelling: "asc" is the default order; the filters and after_sequence hold newest first too.
    assert.deepEqual((await list({ orderBy: " sequence  asc " })).events.map((event) => event.sequence), oldestFirst);
    const added = await list({ orderBy: "sequence desc", types: [EventType.EVENT_TYPE_ENTRY_ADDED], pageSize: 2 });
    assert.deepEqual(added.events.map((event) => event.attributes.element), ["198.51.100.43", "198.51.100.42"]);
    const window = await list({ orderBy: "sequence desc", afterSequence: newestFirst[4]!, beforeSequence: newestFirst[0]! });
    assert.deepEqual(window.events.map((event) => event.sequence), newestFirst.slice(1, 4));
    for (const orderBy of ["time desc", "sequence down", "sequence desc, time"]) {
      const refused = await rejectsWith(list({ orderBy }), status.INVALID_ARGUMENT, "INVALID_ORDER_BY");
      assert.match(refused.details, /"sequence desc"/);
    }

    const reply = await rest(f.server, "GET", `/v1/events:list?orderBy=${encodeURIComponent("sequence desc")}&pageSize=2&beforeSequence=${newestFirst[0]}`);
    assert.equal(reply.status, 200, reply.text);
    assert.deepEqual((reply.json.events as Array<{ sequence: string | number }>).map((event) => Number(event.sequence)), newestFirst.slice(1, 3));
    const badOrder = await rest(f.server, "GET", "/v1/events:list?orderBy=time");
    assert.deepEqual([badOrder.status, badOrder.json.reason], [400, "INVALID_ORDER_BY"]);
  });
});
