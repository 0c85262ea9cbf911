/**
 * Console benchmark (`npm run bench`, after the others): the server methods a console calls, measured through the
 * real API (gRPC, and REST for the overview and a timeline) on a host as busy as the targets say: 100k bans in force
 * in fail2ban (four jails with a no-op action, banned through BatchBanIp, so also 100k BAN events), about a million
 * events in the log, and a managed set of a million entries.
 *
 * The 900k older events are written straight into the store while the server is stopped (through EventStore, as the
 * server records them), spread over the last 30 days: bans and unbans of 4 jails (20% from 2,000 repeat offenders,
 * 10% IPv6) and some set and jail changes. The server then starts on that store, as after a restart on such a host
 * (the start, which loads the ban history, is timed), and bans the 100k through the API.
 *
 * Everything runs in one network namespace of fail2ban's (made and deleted by the harness); only loopback traffic.
 * Prints a table (p50 / p99 of sequential calls after a warm-up) and writes bench/results/console.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { Agent, request as httpsRequest } from "node:https";
import { join, resolve } from "node:path";
import { AddressFamily } from "../server/src/gen/portcullis/v1/common.js";
import { ActivityWindow } from "../server/src/gen/portcullis/v1/events.js";
import { BatchAddEntriesRequest, Ipset, IpsetType } from "../server/src/gen/portcullis/v1/ipset.js";
import { Fail2banServer } from "../test/harness/fail2ban.js";
import { EventTestClient, HostTestClient, IpsetTestClient, JailTestClient } from "../test/harness/grpc-clients.js";
import { PortcullisProcess } from "../test/harness/server.js";
import { openDatabase } from "../server/src/store/database.js";
import { EventStore } from "../server/src/store/event-store.js";
import type { EventType } from "../server/src/events/event-model.js";
import { percentile } from "./report.js";

const ACTIVE_BANS = 100_000;
const SEEDED_EVENTS = 900_000;
const SET_ENTRIES = 1_000_000;
const JAILS = ["dovecot", "nginx", "postfix", "sshd"] as const;
const WARM_UP = 20;
const TIMED = 100;
const DAY_MS = 86_400_000;
const TARGET_AGGREGATE_MS = 100;
const TARGET_PAGE_MS = 50;

const progress = (message: string): void => void process.stderr.write(`[console bench] ${message}\n`);
const v4 = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
/** mulberry32: the same seeded log on every run. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The 900k older events, oldest first, over the 30 days before the last hour. */
function seedEvents(file: string, now: number): void {
  const db = openDatabase(file);
  const store = new EventStore(db);
  const next = random(20261206);
  const first = now - 30 * DAY_MS;
  const span = 30 * DAY_MS - 3_600_000;
  const offender = (): string => {
    const heavy = next() < 0.2;
    const i = heavy ? Math.floor(next() * 2_000) : 2_000 + Math.floor(next() * 400_000);
    return next() < 0.1 ? `2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::${(i % 7) + 1}` : `198.${18 + ((i >> 16) & 1)}.${(i >> 8) & 255}.${i & 255}`;
  };
  db.transaction(() => {
    for (let i = 0; i < SEEDED_EVENTS; i++) {
      const time = first + Math.floor((i / SEEDED_EVENTS) * span);
      const roll = next();
      const jail = JAILS[Math.floor(next() * JAILS.length)]!;
      if (roll < 0.9) {
        const address = offender();
        const type: EventType = roll < 0.45 ? "BAN" : "UNBAN";
        store.append({ time, type, resource: `jails/${jail}/bans/${address}`, principal: "fail2ban", origin: "fail2ban", attributes: { jail, address } });
      } else if (roll < 0.98) {
        const element = offender();
        store.append({ time, type: "ENTRY_ADDED", resource: `ipsets/blocklist/entries/${element}`, principal: "admin", origin: "api", attributes: { element, timeout: "3600" } });
      } else {
        store.append({ time, type: "JAIL_UPDATED", resource: `jails/${jail}`, principal: "admin", origin: "api", attributes: { ban_time: "3600" } });
      }
    }
  })();
  db.close();
}

async function timedCalls(call: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < WARM_UP; i++) await call();
  const times: number[] = [];
  for (let i = 0; i < TIMED; i++) {
    const started = performance.now();
    await call();
    times.push(performance.now() - started);
  }
  return times;
}

const fail2ban = new Fail2banServer({
  expectedJails: JAILS.join(", "),
  jails: ({ mailLog }) => [
    "[DEFAULT]", "backend = polling", `logpath = ${mailLog}`, "filter = dovecot", "bantime = 86400", "action = noop",
    ...JAILS.flatMap((jail) => [`[${jail}]`, "enabled = true"]), "",
  ].join("\n"),
});
let server: PortcullisProcess | undefined;
const clients: Array<{ close(): void }> = [];
const rows: string[][] = [];
const results: Record<string, unknown> = {};
const record = (name: string, via: string, times: number[], target: number): void => {
  const [p50, p99] = [percentile(times, 50), percentile(times, 99)];
  results[`${name} (${via})`] = { p50Ms: p50, p99Ms: p99, targetP50Ms: target, calls: times.length };
  rows.push([name, via, `${p50.toFixed(1)} ms`, `${p99.toFixed(1)} ms`, `p50 ≤ ${target} ms`, p50 <= target ? "PASS" : "FAIL"]);
};

try {
  await fail2ban.start();
  const env = { PORTCULLIS_FAIL2BAN_SOCKET: fail2ban.socket, PORTCULLIS_FAIL2BAN_CONFIG_DIR: fail2ban.configDir, PORTCULLIS_FAIL2BAN_ACTION_SOCKET: join(fail2ban.dir, "action.sock") };
  let started = performance.now();
  server = await PortcullisProcess.start(fail2ban.netns.name, { env });
  results.startEmptyMs = performance.now() - started;
  await server.kill("SIGTERM");
  progress(`seeding ${SEEDED_EVENTS.toLocaleString("en")} events over 30 days into the stopped server's store`);
  started = performance.now();
  seedEvents(join(server.dataDir, "portcullis.db"), Date.now());
  results.seedMs = performance.now() - started;
  started = performance.now();
  await server.restart();
  results.startWithHistoryMs = performance.now() - started;
  // The history loads after the server listens: how long that takes, from the server's own log lines.
  const logTime = (message: string): number => {
    const line = server!.output.split("\n").find((candidate) => candidate.includes(`"msg":"${message}"`));
    return line === undefined ? NaN : Date.parse((JSON.parse(line) as { time: string }).time);
  };
  while (Number.isNaN(logTime("ban history loaded"))) await new Promise((resolve) => setTimeout(resolve, 50));
  results.historyLoadMs = logTime("ban history loaded") - logTime("listening");
  progress(`server started on the seeded store in ${(results.startWithHistoryMs as number).toFixed(0)} ms (empty: ${(results.startEmptyMs as number).toFixed(0)} ms); ban history loaded ${(results.historyLoadMs as number).toFixed(0)} ms after it listened`);

  const admin = server.credentials("admin");
  const jails = new JailTestClient(server.address, admin);
  const ipsets = new IpsetTestClient(server.address, admin);
  const events = new EventTestClient(server.address, admin);
  const host = new HostTestClient(server.address, admin);
  clients.push(jails, ipsets, events, host);

  progress(`banning ${ACTIVE_BANS.toLocaleString("en")} addresses in fail2ban through BatchBanIp (${JAILS.length} jails)`);
  started = performance.now();
  const perJail = ACTIVE_BANS / JAILS.length;
  for (const [j, jail] of JAILS.entries()) {
    await jails.call("batchBanIp", { jail: `jails/${jail}`, addresses: Array.from({ length: perJail }, (_, i) => v4(j * perJail + i)), fleet: false });
  }
  results.banMs = performance.now() - started;
  progress(`creating a managed set of ${SET_ENTRIES.toLocaleString("en")} entries through BatchAddEntries`);
  started = performance.now();
  await ipsets.call("createIpset", { ipsetId: "big", ipset: Ipset.fromPartial({ type: IpsetType.IPSET_TYPE_HASH_IP, family: AddressFamily.ADDRESS_FAMILY_INET, hashsize: 1_048_576, maxelem: 2_000_000 }), requestId: "" });
  await ipsets.call("batchAddEntries", BatchAddEntriesRequest.fromPartial({ parent: "ipsets/big", elements: Array.from({ length: SET_ENTRIES }, (_, i) => `172.${16 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`) }));
  results.setMs = performance.now() - started;

  const overview = await host.call("getOverview", {});
  const lastSequence = (await events.call("listEvents", { afterSequence: Number.MAX_SAFE_INTEGER, pageSize: 1, types: [], resourcePrefix: "", principal: "", jail: "", address: "" })).lastSequence;
  results.state = { activeBans: overview.activeBans, events: lastSequence, entries: overview.entryCount, bansLastDay: overview.bansLastDay };
  progress(`state: ${overview.activeBans} bans in force, ${lastSequence} events, ${overview.entryCount} entries; measuring`);
  if (overview.activeBans !== ACTIVE_BANS) throw new Error(`expected ${ACTIVE_BANS} bans in force, the overview says ${overview.activeBans}`);

  record("GetOverview", "gRPC", await timedCalls(() => host.call("getOverview", {})), TARGET_AGGREGATE_MS);
  const windows = [["hour", ActivityWindow.ACTIVITY_WINDOW_HOUR], ["day", ActivityWindow.ACTIVITY_WINDOW_DAY], ["week", ActivityWindow.ACTIVITY_WINDOW_WEEK], ["month", ActivityWindow.ACTIVITY_WINDOW_MONTH]] as const;
  for (const [name, window] of windows) record(`GetBanTimeline ${name}`, "gRPC", await timedCalls(() => events.call("getBanTimeline", { window, jail: "" })), TARGET_AGGREGATE_MS);
  record("GetBanTimeline month, one jail", "gRPC", await timedCalls(() => events.call("getBanTimeline", { window: ActivityWindow.ACTIVITY_WINDOW_MONTH, jail: "jails/sshd" })), TARGET_AGGREGATE_MS);
  for (const [name, window] of windows) record(`GetTopOffenders ${name}`, "gRPC", await timedCalls(() => events.call("getTopOffenders", { window, jail: "", limit: 10 })), TARGET_AGGREGATE_MS);
  record("GetJailActivity day", "gRPC", await timedCalls(() => host.call("getJailActivity", { window: ActivityWindow.ACTIVITY_WINDOW_DAY })), TARGET_AGGREGATE_MS);

  // REST, as the console calls it: one keep-alive connection with the admin's certificate.
  const bundle = server.bundle("admin");
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: bundle.ca, cert: bundle.cert, key: bundle.key, servername: "localhost" });
  const [restHost, restPort] = [server.restAddress.slice(0, server.restAddress.lastIndexOf(":")), Number(server.restAddress.slice(server.restAddress.lastIndexOf(":") + 1))];
  const get = (path: string): Promise<void> => new Promise((done, fail) => {
    const req = httpsRequest({ host: restHost, port: restPort, path, agent, servername: "localhost" }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 200 ? done() : fail(new Error(`${path}: ${res.statusCode}`))));
    });
    req.on("error", fail);
    req.end();
  });
  record("GetOverview", "REST", await timedCalls(() => get("/v1/overview")), TARGET_AGGREGATE_MS);
  record("GetBanTimeline month", "REST", await timedCalls(() => get("/v1/events:banTimeline?window=ACTIVITY_WINDOW_MONTH")), TARGET_AGGREGATE_MS);
  record("GetTopOffenders month", "REST", await timedCalls(() => get("/v1/events:topOffenders?window=ACTIVITY_WINDOW_MONTH")), TARGET_AGGREGATE_MS);

  const page = (filter: string, pageToken = "") => ipsets.call("listEntries", { parent: "ipsets/big", pageSize: 1000, pageToken, filter });
  const middle = (await page("172.20.")).nextPageToken;
  record("ListEntries 1M set, first page of 1000", "gRPC", await timedCalls(() => page("")), TARGET_PAGE_MS);
  record("ListEntries 1M set, a later page (token)", "gRPC", await timedCalls(() => page("", middle)), TARGET_PAGE_MS);
  record("ListEntries 1M set, filter 172.20.0.0/16", "gRPC", await timedCalls(() => page("172.20.0.0/16")), TARGET_PAGE_MS);
  record("ListEntries 1M set, filter 172.20.0.0/20", "gRPC", await timedCalls(() => page("172.20.0.0/20")), TARGET_PAGE_MS);
  record("ListEntries 1M set, filter address", "gRPC", await timedCalls(() => page("172.20.3.4")), TARGET_PAGE_MS);
  record("ListEntries 1M set, filter text 172.2", "gRPC", await timedCalls(() => page("172.2")), TARGET_PAGE_MS);
  record("ListEntries 1M set, filter 172.20.0.0/16", "REST", await timedCalls(() => get("/v1/ipsets/big/entries?pageSize=1000&filter=172.20.0.0%2F16")), TARGET_PAGE_MS);
  agent.destroy();

  const status = readFileSync(`/proc/${server.pid}/status`, "utf8");
  results.serverRssMB = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) / 1024;

  const header = ["method", "via", "p50", "p99", "target", "verdict"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((cell, i) => cell.padEnd(widths[i]!)).join(" | ")} |`;
  console.log(`\nPortcullis console benchmark — ${new Date().toISOString()}: ${overview.activeBans.toLocaleString("en")} bans in force, ${lastSequence.toLocaleString("en")} events, a set of ${overview.entryCount.toLocaleString("en")} entries; ${TIMED} sequential calls after ${WARM_UP} warm-up\n`);
  console.log([line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n"));
  console.log(`\nseeding ${(results.seedMs as number / 1000).toFixed(1)} s; server start on the seeded store ${(results.startWithHistoryMs as number / 1000).toFixed(1)} s (on an empty one ${(results.startEmptyMs as number / 1000).toFixed(1)} s), ban history loaded ${(results.historyLoadMs as number / 1000).toFixed(1)} s after; 100k bans ${(results.banMs as number / 1000).toFixed(1)} s; 1M-entry set ${(results.setMs as number / 1000).toFixed(1)} s; server RSS ${(results.serverRssMB as number).toFixed(0)} MB`);
  mkdirSync(resolve(import.meta.dirname, "results"), { recursive: true });
  writeFileSync(resolve(import.meta.dirname, "results", "console.json"), JSON.stringify(results, null, 2));
  if (rows.some((row) => row[5] === "FAIL")) process.exitCode = 1;
} finally {
  for (const client of clients) client.close();
  await server?.stop();
  await fail2ban.destroy();
}
