// The console's server methods against a real server and a real fail2ban (jails dovecot and bulk) in a test
// namespace: the overview, timeline, top offenders and jail activity count exactly the bans made (one by fail2ban
// after failed logins, four through the API, one unban); InspectAddress finds the jails, the set entries covering an
// address, the rules matching it, the allowlist and ignoreip entries; event and audit filters; the export as a
// download (CSV read back by Python's csv module, JSON lines); ListEntries filters; the CLI commands.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { appendFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { status } from "@grpc/grpc-js";
import { createClient, type PortcullisClient } from "@portcullis/sdk";
import { ActivityWindow, EventType, ExportFormat, type Event } from "../../server/src/gen/portcullis/v1/events.js";
import { HostOverview, RuleMatchKind } from "../../server/src/gen/portcullis/v1/host.js";
import { dovecotFailures, Fail2banServer } from "../harness/fail2ban.js";
import { EventTestClient, HostTestClient, rejectsWith } from "../harness/grpc-clients.js";
import { PortcullisProcess } from "../harness/server.js";
import { rest } from "../harness/rest.js";

const BIN = resolve(import.meta.dirname, "../../server/bin/portcullis");
const HOSTILE = `=cmd|' /C calc'!A0, "quoted", @SUM(1)`;
/**
 * The addresses banned: D by fail2ban in both jails (both watch the same log), A through the API in both jails, B
 * and C in bulk (B unbanned again): six bans, one unban, five bans in force.
 */
const A = "192.0.2.10";
const B = "192.0.2.11";
const C = "2001:db8::5";
const D = "198.51.100.7";

let fail2ban: Fail2banServer;
let server: PortcullisProcess;
let host: HostTestClient;
let events: EventTestClient;
let sdk: PortcullisClient;

/** Python's csv module: a CSV reader that shares no code with the writer. */
function parseCsv(text: string): string[][] {
  return JSON.parse(execFileSync("python3", ["-c", "import csv, io, json, sys; print(json.dumps(list(csv.reader(io.StringIO(sys.stdin.read(), newline='')))))"], { input: text, encoding: "utf8" })) as string[][];
}

async function ok(method: string, path: string, body?: unknown): Promise<any> {
  const reply = await rest(server, method, path, body);
  assert.equal(reply.status, 200, `${method} ${path}: ${reply.text}`);
  return reply.json;
}

function portcullis(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, PORTCULLIS_ADDRESS: server.address, PORTCULLIS_BUNDLE: join(server.dataDir, "pki/clients/noc") };
  return new Promise((done) => execFile(BIN, args, { env, encoding: "utf8", timeout: 30_000 }, (error, stdout, stderr) => done({ code: error === null ? 0 : Number(error.code ?? -1), stdout, stderr })));
}

before(async () => {
  fail2ban = new Fail2banServer();
  await fail2ban.start();
  server = await PortcullisProcess.start(fail2ban.netns.name, {
    env: { PORTCULLIS_FAIL2BAN_SOCKET: fail2ban.socket, PORTCULLIS_FAIL2BAN_CONFIG_DIR: fail2ban.configDir, PORTCULLIS_FAIL2BAN_ACTION_SOCKET: join(fail2ban.dir, "action.sock") },
  });
  await server.cli(["certs", "issue", "--name", "noc", "--role", "viewer"]);
  // Everything below is read with a viewer's certificate: these are reads.
  host = new HostTestClient(server.address, server.credentials("noc"));
  events = new EventTestClient(server.address, server.credentials("noc"));
  sdk = createClient({ address: server.address, bundle: join(server.dataDir, "pki/clients/noc") });

  // fail2ban bans D after failed logins, in both jails; the watcher records each as a BAN event of origin fail2ban.
  appendFileSync(fail2ban.mailLog, dovecotFailures(D, "192.0.2.1", 10));
  for (const deadline = Date.now() + 20_000; ; await sleep(100)) {
    const found = await events.call("listEvents", { afterSequence: 0, pageSize: 10, types: [EventType.EVENT_TYPE_BAN], resourcePrefix: "", principal: "", jail: "", address: D });
    if (found.events.length === 2) break;
    assert.ok(Date.now() < deadline, "fail2ban did not ban the attacker");
  }
  await ok("POST", "/v1/jails/dovecot:ban", { address: A });
  await ok("POST", "/v1/jails/bulk:ban", { address: A });
  await ok("POST", "/v1/jails/bulk:ban", { address: B });
  await ok("POST", "/v1/jails/bulk:ban", { address: "2001:DB8:0:0::0005" });
  await ok("POST", "/v1/jails/bulk:unban", { address: B });
});

after(async () => {
  sdk?.dispose();
  host?.close();
  events?.close();
  try {
    await server?.stop();
  } finally {
    await fail2ban?.destroy();
  }
});

describe("overview, timeline, top offenders and jail activity", () => {
  it("the overview counts the bans in force, the day's bans, the jails and fail2ban", async () => {
    const overview = await host.call("getOverview", {});
    assert.deepEqual(
      [overview.activeBans, overview.bansLastDay, overview.jailCount, overview.fail2banUp, overview.fleet, overview.fleetNodeCount, overview.fleetNodesOnline],
      [5, 6, 2, true, false, 0, 0],
    );
    assert.deepEqual(await ok("GET", "/v1/overview"), HostOverview.toJSON(overview));
    assert.deepEqual(await sdk.host.overview(), { ...overview });
  });

  it("the timeline has every bucket of each window and counts exactly those bans and the unban", async () => {
    for (const [window, count, seconds] of [[ActivityWindow.ACTIVITY_WINDOW_HOUR, 60, 60], [ActivityWindow.ACTIVITY_WINDOW_DAY, 24, 3600], [ActivityWindow.ACTIVITY_WINDOW_WEEK, 28, 21600], [ActivityWindow.ACTIVITY_WINDOW_MONTH, 30, 86400]] as const) {
      const timeline = await events.call("getBanTimeline", { window, jail: "" });
      assert.equal(timeline.buckets.length, count);
      assert.equal(timeline.bucketSeconds, seconds);
      timeline.buckets.forEach((bucket, i) => assert.equal(bucket.startTime!.getTime(), timeline.buckets[0]!.startTime!.getTime() + i * seconds * 1000));
      const last = timeline.buckets[count - 1]!.startTime!.getTime();
      assert.ok(last <= Date.now() && Date.now() < last + seconds * 1000, "the last bucket holds now");
      assert.deepEqual([timeline.buckets.reduce((sum, b) => sum + b.bans, 0), timeline.buckets.reduce((sum, b) => sum + b.unbans, 0)], [6, 1], `window ${window}`);
    }
    const bulk = await ok("GET", "/v1/events:banTimeline?window=ACTIVITY_WINDOW_HOUR&jail=jails/bulk");
    assert.deepEqual([bulk.window, bulk.buckets.length], ["ACTIVITY_WINDOW_HOUR", 60]);
    // proto3 JSON leaves zero counts out.
    assert.deepEqual([bulk.buckets.reduce((sum: number, b: { bans?: string }) => sum + Number(b.bans ?? 0), 0), bulk.buckets.reduce((sum: number, b: { unbans?: string }) => sum + Number(b.unbans ?? 0), 0)], [4, 1]);
    const sdkDay = await sdk.events.timeline({ window: "day", jail: "dovecot" });
    assert.deepEqual([sdkDay.window, sdkDay.buckets.reduce((sum, b) => sum + b.bans, 0)], ["day", 2]);
    await rejectsWith(events.call("getBanTimeline", { window: 9 as ActivityWindow, jail: "" }), status.INVALID_ARGUMENT, "INVALID_FILTER");
    await rejectsWith(events.call("getBanTimeline", { window: ActivityWindow.ACTIVITY_WINDOW_DAY, jail: "bulk" }), status.INVALID_ARGUMENT, "INVALID_FILTER");
  });

  it("top offenders: most bans first, then the latest ban; a /24 with two addresses; jails by name", async () => {
    const top = await events.call("getTopOffenders", { window: ActivityWindow.ACTIVITY_WINDOW_DAY, jail: "", limit: 0 });
    assert.deepEqual(top.addresses.map((o) => [o.address, o.banCount, o.jails, o.addressCount]), [
      [A, 2, ["jails/bulk", "jails/dovecot"], 1], [D, 2, ["jails/bulk", "jails/dovecot"], 1], [C, 1, ["jails/bulk"], 1], [B, 1, ["jails/bulk"], 1],
    ]);
    assert.deepEqual(top.networks.map((o) => [o.address, o.banCount, o.addressCount]), [["192.0.2.0/24", 3, 2], ["198.51.100.0/24", 2, 1], ["2001:db8::/64", 1, 1]]);
    assert.ok(top.addresses.every((o) => Math.abs(o.lastBanTime!.getTime() - Date.now()) < 60_000));
    const onlyDovecot = await ok("GET", "/v1/events:topOffenders?window=ACTIVITY_WINDOW_HOUR&jail=jails/dovecot&limit=1");
    assert.deepEqual(onlyDovecot.addresses.map((o: { address: string }) => o.address), [A]);
    const viaSdk = await sdk.events.topOffenders({ window: "week", limit: 2 });
    assert.deepEqual(viaSdk.addresses.map((o) => [o.address, o.jails]), [[A, ["bulk", "dovecot"]], [D, ["bulk", "dovecot"]]]);
    await rejectsWith(events.call("getTopOffenders", { window: ActivityWindow.ACTIVITY_WINDOW_DAY, jail: "", limit: 101 }), status.INVALID_ARGUMENT, "INVALID_PAGE_SIZE");
  });

  it("jail activity: each jail's bans and unbans of the window with fail2ban's failure counters", async () => {
    const activity = await host.call("getJailActivity", { window: ActivityWindow.ACTIVITY_WINDOW_HOUR });
    assert.deepEqual(activity.jails.map((j) => [j.jail, j.bans, j.unbans, j.currentlyBanned]), [["jails/bulk", 4, 1, 3], ["jails/dovecot", 2, 0, 2]]);
    const dovecot = activity.jails[1]!;
    assert.ok(dovecot.totalFailed >= 5, `dovecot counted ${dovecot.totalFailed} failures`);
    const status = (await fail2ban.ask(["status", "dovecot", "short"])) as unknown;
    assert.match(JSON.stringify(status), new RegExp(`"Total failed",${dovecot.totalFailed}\\]`));
  });
});

describe("InspectAddress", () => {
  before(async () => {
    await ok("POST", "/v1/ipsets", { ipsetId: "blocklist", ipset: { type: "IPSET_TYPE_HASH_NET", family: "ADDRESS_FAMILY_INET", comments: true } });
    for (const element of ["192.0.2.0/24", A, "203.0.113.0/24", "198.51.100.128/25"]) await ok("POST", "/v1/ipsets/blocklist/entries", { entry: { element, comment: `c ${element}` } });
    const filter = "/v1/firewall/ipv4/tables/filter";
    await ok("POST", `${filter}/chains`, { chainId: "PCINSIGHT" });
    for (const rule of [
      { matchSet: { set: "blocklist", directions: ["SET_DIRECTION_SRC"] }, target: { kind: "TARGET_KIND_DROP" } },
      { source: { address: "192.0.2.0/28" }, target: { kind: "TARGET_KIND_DROP" } },
      { destination: { address: "192.0.2.10" }, target: { kind: "TARGET_KIND_ACCEPT" } },
      { source: { address: "192.0.2.0/24", negate: true }, target: { kind: "TARGET_KIND_RETURN" } },
      { source: { address: "198.51.100.0/24" }, target: { kind: "TARGET_KIND_DROP" } },
    ]) await ok("POST", `${filter}/chains/PCINSIGHT/rules`, { rule });
    await ok("POST", "/v1/allowlist", { network: "203.0.113.0/24", comment: HOSTILE });
    await ok("POST", "/v1/jails/dovecot:addIgnoreIp", { entry: "203.0.113.8/29" });
  });

  it("a banned address: each jail's ban with its end, the set entries and covering network, the matching rules, its events", async () => {
    const report = await host.call("inspectAddress", { address: A, eventLimit: 0 });
    assert.equal(report.address, A);
    assert.deepEqual(report.jailBans.map((ban) => [ban.jail, ban.forever]), [["jails/bulk", false], ["jails/dovecot", false]]);
    for (const ban of report.jailBans) assert.equal(ban.expireTime!.getTime() - ban.banTime!.getTime(), 600_000, "fail2ban's default bantime");
    assert.deepEqual(report.entries.map((entry) => [entry.name, entry.comment]), [["ipsets/blocklist/entries/192.0.2.0/24", "c 192.0.2.0/24"], [`ipsets/blocklist/entries/${A}`, `c ${A}`]]);
    assert.deepEqual(report.rules.map((found) => [found.rule!.position, found.rule!.managed, found.matches]), [
      [1, true, [RuleMatchKind.RULE_MATCH_KIND_SET]], [2, true, [RuleMatchKind.RULE_MATCH_KIND_SOURCE]], [3, true, [RuleMatchKind.RULE_MATCH_KIND_DESTINATION]],
    ]);
    assert.deepEqual([report.allowlistEntries, report.ignoreIpEntries], [[], []]);
    assert.deepEqual(report.events.map((event) => [event.type, event.resource]), [
      [EventType.EVENT_TYPE_ENTRY_ADDED, `ipsets/blocklist/entries/${A}`], [EventType.EVENT_TYPE_BAN, `jails/bulk/bans/${A}`], [EventType.EVENT_TYPE_BAN, `jails/dovecot/bans/${A}`],
    ]);
  });

  it("any spelling of an IPv6 address, over REST and the SDK", async () => {
    const report = await ok("GET", `/v1/addresses:inspect?address=${encodeURIComponent("2001:DB8:0:0::0005")}&eventLimit=1`);
    assert.equal(report.address, C);
    assert.deepEqual(report.jailBans.map((ban: { jail: string }) => ban.jail), ["jails/bulk"]);
    assert.deepEqual(report.events.map((event: { type: string }) => event.type), ["EVENT_TYPE_BAN"]);
    assert.deepEqual([report.entries, report.rules], [undefined, undefined], "an IPv4 set and IPv4 rules do not hold it");
    const viaSdk = await sdk.host.inspect("2001:db8:0::5");
    assert.deepEqual([viaSdk.address, viaSdk.jailBans.map((ban) => ban.jail)], [C, ["bulk"]]);
    const refused = await rest(server, "GET", "/v1/addresses:inspect?address=192.0.2", undefined, { as: "noc" });
    assert.deepEqual([refused.status, refused.json.reason], [400, "INVALID_ELEMENT"]);
  });

  it("a protected address: the allowlist entry and the ignoreip entries that cover it, the set and the rule that hold it", async () => {
    const report = await host.call("inspectAddress", { address: "203.0.113.9", eventLimit: 0 });
    assert.deepEqual(report.jailBans, []);
    assert.deepEqual(report.allowlistEntries.map((entry) => [entry.network, entry.comment, entry.createdBy]), [["203.0.113.0/24", HOSTILE, "admin"]]);
    // The allowlist puts its entries in every jail's ignoreip; dovecot has its own too.
    assert.deepEqual(report.ignoreIpEntries.map((entry) => `${entry.jail} ${entry.entry}`).sort(), ["jails/bulk 203.0.113.0/24", "jails/dovecot 203.0.113.0/24", "jails/dovecot 203.0.113.8/29"]);
    assert.deepEqual(report.entries.map((entry) => entry.element), ["203.0.113.0/24"]);
    assert.deepEqual(report.rules.map((found) => found.matches), [[RuleMatchKind.RULE_MATCH_KIND_SET]]);
  });
});

describe("event and audit filters", () => {
  const list = (filter: { principal?: string; jail?: string; address?: string; startTime?: Date; endTime?: Date; types?: EventType[] }) =>
    events.call("listEvents", { afterSequence: 0, pageSize: 0, types: filter.types ?? [], resourcePrefix: "", principal: filter.principal ?? "", jail: filter.jail ?? "", address: filter.address ?? "", startTime: filter.startTime, endTime: filter.endTime });

  it("ListEvents by jail, principal, address (any spelling) and time range", async () => {
    const bans = [EventType.EVENT_TYPE_BAN, EventType.EVENT_TYPE_UNBAN];
    assert.deepEqual((await list({ jail: "jails/bulk", types: bans })).events.map((e) => [e.type, e.attributes.address]), [
      [EventType.EVENT_TYPE_BAN, D], [EventType.EVENT_TYPE_BAN, A], [EventType.EVENT_TYPE_BAN, B], [EventType.EVENT_TYPE_BAN, C], [EventType.EVENT_TYPE_UNBAN, B],
    ]);
    assert.deepEqual((await list({ principal: "fail2ban", types: bans })).events.map((e) => [e.type, e.attributes.address, e.attributes.jail]).sort(), [[EventType.EVENT_TYPE_BAN, D, "bulk"], [EventType.EVENT_TYPE_BAN, D, "dovecot"]]);
    assert.deepEqual((await list({ address: "2001:0DB8::5" })).events.map((e) => e.resource), [`jails/bulk/bans/${C}`]);
    const unban = (await list({ types: [EventType.EVENT_TYPE_UNBAN] })).events[0]!;
    const from = await list({ startTime: unban.time, types: bans });
    assert.deepEqual(from.events.map((e) => e.sequence), [unban.sequence]);
    const until = await list({ endTime: unban.time, types: bans });
    assert.deepEqual(until.events.map((e) => e.attributes.address), [D, D, A, A, B, C]);
    await rejectsWith(list({ startTime: new Date(2), endTime: new Date(1) }), status.INVALID_ARGUMENT, "INVALID_FILTER");
    await rejectsWith(list({ address: "not-an-address" }), status.INVALID_ARGUMENT, "INVALID_ELEMENT");
    const viaRest = await ok("GET", `/v1/events:list?jail=jails/dovecot&types=EVENT_TYPE_BAN&principal=admin`);
    assert.deepEqual(viaRest.events.map((e: { resource: string }) => e.resource), [`jails/dovecot/bans/${A}`]);
    const viaSdk = await sdk.events.list({ jail: "bulk", types: ["UNBAN"] });
    assert.deepEqual(viaSdk.events.map((e) => e.attributes.address), [B]);
  });

  it("WatchEvents replays the filtered range and ends at its end time", async () => {
    const unban = (await list({ types: [EventType.EVENT_TYPE_UNBAN] })).events[0]!;
    const seen: Event[] = [];
    await new Promise<void>((done, fail) => {
      const timer = setTimeout(() => fail(new Error("the stream did not end at end_time")), 5000);
      events.stream("watchEvents", { afterSequence: 0, types: [], resourcePrefix: "", principal: "", jail: "jails/bulk", address: "", startTime: undefined, endTime: new Date(unban.time!.getTime() + 1) }, (event) => seen.push(event), (error) => {
        clearTimeout(timer);
        if (error === undefined) done();
        else fail(error);
      });
    });
    assert.deepEqual(seen.map((e) => e.attributes.address), [D, A, B, C, B]);
    // The same over REST: a Server-Sent Events stream with the filters as query parameters, ended by its end time.
    const sse = await rest(server, "GET", `/v1/events?jail=jails/bulk&endTime=${new Date(unban.time!.getTime() + 1).toISOString()}`, undefined, { as: "noc" });
    assert.match(String(sse.headers["content-type"]), /^text\/event-stream/);
    const data = sse.text.split("\n").filter((line) => line.startsWith("data: ")).map((line) => JSON.parse(line.slice(6)) as { attributes: { address: string } });
    assert.deepEqual(data.map((e) => e.attributes.address), [D, A, B, C, B]);
    // Live: a filtered subscription hears only its jail's events.
    const live: Event[] = [];
    const call = events.stream("watchEvents", { afterSequence: unban.sequence, types: [], resourcePrefix: "", principal: "", jail: "jails/dovecot", address: "", startTime: undefined, endTime: undefined }, (event) => live.push(event));
    try {
      await sleep(200);
      await ok("POST", "/v1/jails/bulk:ban", { address: "192.0.2.99" });
      await ok("POST", "/v1/jails/dovecot:ban", { address: "192.0.2.98" });
      for (const deadline = Date.now() + 5000; live.length === 0 && Date.now() < deadline;) await sleep(20);
      await sleep(200);
      assert.deepEqual(live.map((e) => [e.type, e.attributes.address]).filter(([type]) => type === EventType.EVENT_TYPE_BAN), [[EventType.EVENT_TYPE_BAN, "192.0.2.98"]]);
      assert.ok(live.every((e) => e.attributes.jail === "dovecot" || e.resource.startsWith("jails/dovecot")));
    } finally {
      call.cancel();
      await ok("POST", "/v1/jails/bulk:unban", { address: "192.0.2.99" });
      await ok("POST", "/v1/jails/dovecot:unban", { address: "192.0.2.98" });
    }
  });

  it("ListAuditRecords by principal, method, resource prefix and time", async () => {
    const records = await events.call("listAuditRecords", { pageSize: 0, pageToken: "", principal: "admin", method: "portcullis.v1.JailService/BanIp", resourcePrefix: "jails/bulk", startTime: new Date(Date.now() - 600_000), endTime: undefined });
    assert.ok(records.records.length >= 3, `${records.records.length} records`);
    assert.ok(records.records.every((r) => r.resource === "jails/bulk" && r.method === "portcullis.v1.JailService/BanIp" && r.principal === "admin"));
    const none = await events.call("listAuditRecords", { pageSize: 0, pageToken: "", principal: "nobody", method: "", resourcePrefix: "" });
    assert.deepEqual(none.records, []);
    const viaSdk = await sdk.audit.records({ method: "portcullis.v1.JailService/UnbanIp", resourcePrefix: "jails/bulk" });
    assert.ok(viaSdk.length >= 1 && viaSdk.every((r) => r.method === "portcullis.v1.JailService/UnbanIp"));
  });
});

describe("ExportEvents", () => {
  it("REST serves a filtered range as a CSV download that a CSV reader reads back, hostile text as data", async () => {
    const reply = await rest(server, "GET", "/v1/events:export?jail=jails/bulk&types=EVENT_TYPE_BAN&types=EVENT_TYPE_UNBAN", undefined, { as: "noc" });
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.headers["content-type"], "text/csv; charset=utf-8");
    assert.equal(reply.headers["content-disposition"], 'attachment; filename="events.csv"');
    const rows = parseCsv(reply.text);
    assert.deepEqual(rows[0], ["sequence", "time", "type", "resource", "principal", "origin", "jail", "address", "attributes"]);
    assert.deepEqual(rows.slice(1, 6).map((row) => [row[2], row[4], row[6], row[7]]), [["BAN", "fail2ban", "bulk", D], ["BAN", "admin", "bulk", A], ["BAN", "admin", "bulk", B], ["BAN", "admin", "bulk", C], ["UNBAN", "admin", "bulk", B]]);
    // The allowlist comment's formula, quotes and commas come back as text, inside the attributes cell.
    const all = parseCsv((await rest(server, "GET", "/v1/events:export?types=EVENT_TYPE_ALLOWLIST_ENTRY_ADDED", undefined, { as: "noc" })).text);
    assert.equal(all.length, 2);
    assert.deepEqual(JSON.parse(all[1]![8]!), { network: "203.0.113.0/24", comment: HOSTILE });
  });

  it("JSON lines over gRPC in pieces, the same events ListEvents gives; a bad filter is refused before any byte", async () => {
    const pieces: Buffer[] = [];
    let contentType = "";
    await new Promise<void>((done, fail) => {
      events.stream("exportEvents", { format: ExportFormat.EXPORT_FORMAT_JSON_LINES, afterSequence: 0, types: [], resourcePrefix: "jails/", principal: "", jail: "", address: "", startTime: undefined, endTime: undefined }, (piece) => {
        contentType = piece.contentType;
        pieces.push(piece.data);
      }, (error) => (error === undefined ? done() : fail(error)));
    });
    assert.equal(contentType, "application/x-ndjson");
    const lines = Buffer.concat(pieces).toString("utf8").split("\n").filter((line) => line !== "").map((line) => JSON.parse(line) as { sequence: string; resource: string });
    const listed = await events.call("listEvents", { afterSequence: 0, pageSize: 0, types: [], resourcePrefix: "jails/", principal: "", jail: "", address: "", startTime: undefined, endTime: undefined });
    assert.deepEqual(lines.map((line) => [Number(line.sequence), line.resource]), listed.events.map((e) => [e.sequence, e.resource]));
    const refused = await rest(server, "GET", "/v1/events:export?jail=bulk", undefined, { as: "noc" });
    assert.deepEqual([refused.status, refused.headers["content-type"], refused.json.reason], [400, "application/problem+json; charset=utf-8", "INVALID_FILTER"]);
    const jsonl = await rest(server, "GET", "/v1/events:export?format=EXPORT_FORMAT_JSON_LINES&address=198.51.100.7", undefined, { as: "noc" });
    assert.deepEqual([jsonl.headers["content-type"], jsonl.headers["content-disposition"]], ["application/x-ndjson", 'attachment; filename="events.jsonl"']);
    assert.deepEqual(jsonl.text.trim().split("\n").map((line) => (JSON.parse(line) as { principal: string }).principal), ["fail2ban", "fail2ban"]);
  });
});

describe("ListEntries filter", () => {
  it("an address, a network or a text prefix selects entries through the index, page by page", async () => {
    await ok("POST", "/v1/ipsets", { ipsetId: "many", ipset: { type: "IPSET_TYPE_HASH_NET", family: "ADDRESS_FAMILY_INET" } });
    await ok("POST", "/v1/ipsets/many/entries:batchAdd", { elements: [...Array.from({ length: 40 }, (_, i) => `10.1.${i}.0/24`), "10.0.0.0/8", "10.1.0.5", "10.10.0.1", "10.2.0.1"] });
    const page = (query: string) => ok("GET", `/v1/ipsets/many/entries?${query}`);
    const covering = await page(`filter=10.1.0.5`);
    assert.deepEqual(covering.entries.map((e: { element: string }) => e.element), ["10.0.0.0/8", "10.1.0.0/24", "10.1.0.5"]);
    assert.equal(covering.totalSize, 44, "the whole set");
    const inside: string[] = [];
    let token = "";
    do {
      const next = await page(`filter=${encodeURIComponent("10.1.8.0/21")}&pageSize=3${token === "" ? "" : `&pageToken=${token}`}`);
      inside.push(...next.entries.map((e: { element: string }) => e.element));
      token = next.nextPageToken ?? "";
    } while (token !== "");
    assert.deepEqual(inside, ["10.0.0.0/8", ...Array.from({ length: 8 }, (_, i) => `10.1.${8 + i}.0/24`)].sort());
    assert.equal((await page("filter=10.1")).entries.length, 42, "text: the elements starting with 10.1 (10.10.0.1 too)");
    assert.deepEqual((await sdk.ipsets.findEntries("blocklist", "192.0.2.77")).map((e) => e.element), ["192.0.2.0/24"]);
  });
});

describe("CLI", () => {
  it("overview, inspect, offenders and events export, as a viewer", async () => {
    const overview = await portcullis(["overview", "--json"]);
    assert.equal(overview.code, 0, overview.stderr);
    const parsed = JSON.parse(overview.stdout) as { activeBans: number; jails: Array<{ jail: string; bans: number }> };
    assert.equal(parsed.activeBans, 5);
    assert.deepEqual(parsed.jails.map((jail) => jail.jail), ["bulk", "dovecot"]);
    const text = await portcullis(["inspect", A]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^address: 192\.0\.2\.10\nbanned in:\n {2}bulk since .*\n {2}dovecot since /);
    assert.match(text.stdout, /in sets:\n {2}blocklist: 192\.0\.2\.0\/24 \(c 192\.0\.2\.0\/24\)\n {2}blocklist: 192\.0\.2\.10/);
    const offenders = await portcullis(["offenders", "--window", "hour", "--limit", "1"]);
    assert.match(offenders.stdout, /^ADDRESS +BANS +ADDRESSES +LAST BAN +JAILS\n192\.0\.2\.10 +2 +1 .* bulk,dovecot\n192\.0\.2\.0\/24 +\d+ /);
    const csv = await portcullis(["events", "export", "--jail", "dovecot", "--type", "ban"]);
    assert.equal(csv.code, 0, csv.stderr);
    assert.deepEqual(parseCsv(csv.stdout).slice(1).map((row) => row[7]), [D, A, "192.0.2.98"]);
    const bad = await portcullis(["events", "export", "--since", "yesterday"]);
    assert.equal(bad.code, 2);
  });
});
