// Fleet benchmark: propagation of shared bans through a 3-node NATS JetStream cluster to three Portcullis nodes, each
// managing its own namespace. Latency: from the API call at A to the ban being in the kernel at B and C (the BAN event a
// node records once its kernel set has the address; its time is the node's clock, the same machine's). Throughput:
// sustained shared bans per second until the last node has them all in its kernel.
// Run by `npm run bench`; prints a table and writes bench/results/fleet.json.
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { AddressFamily } from "../server/src/gen/portcullis/v1/common.js";
import { EventOrigin, EventType } from "../server/src/gen/portcullis/v1/events.js";
import { IpsetType } from "../server/src/gen/portcullis/v1/ipset.js";
import { JailView } from "../server/src/gen/portcullis/v1/jail.js";
import { NatsCluster } from "../test/harness/nats.js";
import { startFleet, type Fleet, type FleetHost } from "../test/harness/fleet-hosts.js";
import Database from "better-sqlite3";
import { Fail2banServer } from "../test/harness/fail2ban.js";
import { Fail2banClient } from "../server/src/drivers/fail2ban-client.js";
import { createLogger } from "../server/src/logger.js";
import { percentile, table } from "./report.js";

const LATENCY_SAMPLES = 200;
const SET_BANS = 50_000;
const JAIL_BANS = 10_000;
const TARGETS = { p50Ms: 50, p99Ms: 250, perSecond: 5_000 };

const progress = (message: string): void => void process.stderr.write(`[fleet bench] ${message}\n`);
const address = (block: number, i: number): string => `10.${block}.${(i >> 8) & 255}.${i & 255}`;

/**
 * When (ms since the epoch) a node recorded a fleet BAN of each address, heard live: it records one once its kernel has
 * the address. Polling GetJail instead would cost the receivers much of the CPU being measured: while bans are in
 * flight, its ban list comes from fail2ban's `status`, which builds and pickles every banned address.
 */
function watchBans(host: FleetHost, afterSequence = 0): { times: Map<string, number>; stop(): void } {
  const times = new Map<string, number>();
  const call = host.events.stream("watchEvents", { afterSequence, types: [EventType.EVENT_TYPE_BAN], resourcePrefix: "", principal: "", jail: "", address: "" }, (event) => {
    const banned = event.attributes.address;
    if (event.origin === EventOrigin.EVENT_ORIGIN_FLEET && banned !== undefined && !times.has(banned)) times.set(banned, event.time!.getTime());
  });
  return { times, stop: () => call.cancel() };
}

/** How many addresses of a block (e.g. "10.3.") a watch has heard banned, and when the last of them was. */
function bansIn(times: ReadonlyMap<string, number>, block: string): { count: number; lastAt: number } {
  let count = 0;
  let lastAt = 0;
  for (const [address, at] of times) {
    if (!address.startsWith(block)) continue;
    count++;
    lastAt = Math.max(lastAt, at);
  }
  return { count, lastAt };
}

async function until(what: string, ms: number, predicate: () => Promise<boolean> | boolean, every = 1): Promise<void> {
  for (const deadline = Date.now() + ms; !(await predicate()); await sleep(every)) if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
}

async function latency(a: FleetHost, receivers: readonly FleetHost[]): Promise<{ samples: number[]; origin: number[] }> {
  const watches = receivers.map(watchBans);
  const samples: number[] = [];
  const origin: number[] = [];
  try {
    await sleep(500);
    for (let i = 0; i < LATENCY_SAMPLES; i++) {
      const target = address(1, i);
      const started = Date.now();
      await a.jails.call("banIp", { jail: "jails/dovecot", address: target, fleet: true });
      origin.push(Date.now() - started);
      await until(`the ban of ${target} at every node`, 10_000, () => watches.every((watch) => watch.times.has(target)));
      for (const watch of watches) samples.push(watch.times.get(target)! - started);
      // Spaced out: the latency of one ban in a quiet fleet, not of a queue.
      await sleep(20);
    }
  } finally {
    for (const watch of watches) watch.stop();
  }
  return { samples, origin };
}

/**
 * Entries a node added to a set from the stream, heard live: it records ENTRIES_ADDED (with the count) or ENTRY_ADDED
 * once its kernel set has them. Listening costs the nodes nothing; polling their sets (an `ipset list` per call) took
 * a good part of the CPU being measured.
 */
function watchSetAdds(host: FleetHost, set: string, afterSequence = 0): { added(): number; lastAt(): number; stop(): void } {
  let added = 0;
  let lastAt = 0;
  const call = host.events.stream("watchEvents", { afterSequence, types: [EventType.EVENT_TYPE_ENTRIES_ADDED, EventType.EVENT_TYPE_ENTRY_ADDED], resourcePrefix: `ipsets/${set}`, principal: "", jail: "", address: "" }, (event) => {
    if (event.origin !== EventOrigin.EVENT_ORIGIN_FLEET) return;
    added += event.type === EventType.EVENT_TYPE_ENTRIES_ADDED ? Number(event.attributes.count) : 1;
    lastAt = event.time!.getTime();
  });
  return { added: () => added, lastAt: () => lastAt, stop: () => call.cancel() };
}

/** Shared set entries: one BatchAddEntries at A, until each node's kernel set has them all (checked at the end). */
async function setThroughput(a: FleetHost, receivers: readonly FleetHost[]): Promise<{ seconds: number; perNode: number[] }> {
  const elements = Array.from({ length: SET_BANS }, (_, i) => address(2, i));
  const watches = receivers.map((host) => watchSetAdds(host, "fleetbench"));
  try {
    await sleep(500);
    const started = Date.now();
    await a.ipsets.call("batchAddEntries", { parent: "ipsets/fleetbench", entries: [], elements, timeout: 3600, comment: "", fleet: true });
    const perNode = await Promise.all(receivers.map(async (host, i) => {
      await until(`${SET_BANS} entries at ${host.name}`, 120_000, () => watches[i]!.added() >= SET_BANS, 20);
      const { entryCount } = await host.ipsets.call("getIpset", { name: "ipsets/fleetbench" });
      if (entryCount < SET_BANS) throw new Error(`${host.name} reported ${watches[i]!.added()} entries added, its set has ${entryCount}`);
      return (watches[i]!.lastAt() - started) / 1000;
    }));
    return { seconds: Math.max(...perNode), perNode };
  } finally {
    for (const watch of watches) watch.stop();
  }
}

/** Shared jail bans: one BatchBanIp at A (fail2ban bans them at each node through the Portcullis action). */
async function jailThroughput(a: FleetHost, receivers: readonly FleetHost[]): Promise<{ seconds: number }> {
  const addresses = Array.from({ length: JAIL_BANS }, (_, i) => address(3, i));
  const before = await Promise.all(receivers.map(banned));
  const watches = receivers.map((host) => watchBans(host));
  try {
    await sleep(500);
    const started = Date.now();
    await a.jails.call("batchBanIp", { jail: "jails/dovecot", addresses, fleet: true });
    const perNode = await Promise.all(receivers.map(async (host, i) => {
      await until(`${JAIL_BANS} jail bans at ${host.name}`, 180_000, () => bansIn(watches[i]!.times, "10.3.").count >= JAIL_BANS, 20);
      const now = await banned(host);
      if (now < before[i]! + JAIL_BANS) throw new Error(`${host.name} reported ${JAIL_BANS} bans enforced, its jail has ${now - before[i]!} more`);
      return (bansIn(watches[i]!.times, "10.3.").lastAt - started) / 1000;
    }));
    return { seconds: Math.max(...perNode) };
  } finally {
    for (const watch of watches) watch.stop();
  }
}

/** The sequence number of a node's newest event. */
async function lastSequence(host: FleetHost): Promise<number> {
  for (let after = 0; ;) {
    const { events } = await host.events.call("listEvents", { afterSequence: after, pageSize: 10_000, types: [], resourcePrefix: "", principal: "", jail: "", address: "" });
    if (events.length === 0) return after;
    after = Number(events.at(-1)!.sequence);
  }
}

/** A node's dovecot jail: how many addresses it bans now. */
async function banned(host: FleetHost): Promise<number> {
  return (await host.jails.call("getJail", { name: "jails/dovecot", view: JailView.JAIL_VIEW_BASIC })).currentlyBanned;
}

/**
 * Catch-up: C is stopped while A shares jail bans and set entries (B applies them meanwhile), then started again; how
 * long until C has applied its backlog from its durable consumer. A and B are idle by then, so this is close to what
 * one host catches up at when it has its machine to itself.
 */
async function catchUp(a: FleetHost, b: FleetHost, c: FleetHost): Promise<{ startSeconds: number; jailSeconds: number; setSeconds: number }> {
  const jailAddresses = Array.from({ length: JAIL_BANS }, (_, i) => address(4, i));
  const setElements = Array.from({ length: SET_BANS }, (_, i) => address(5, i));
  const entries = async (host: FleetHost): Promise<number> => (await host.ipsets.call("getIpset", { name: "ipsets/fleetcatchup" })).entryCount;
  const before = { b: await banned(b), c: await banned(c) };
  const lastEvent = await lastSequence(c);
  await c.stop();
  await a.jails.call("batchBanIp", { jail: "jails/dovecot", addresses: jailAddresses, fleet: true });
  await a.ipsets.call("batchAddEntries", { parent: "ipsets/fleetcatchup", entries: [], elements: setElements, timeout: 3600, comment: "", fleet: true });
  // Everything is in the stream (B has applied it all) before C comes back.
  await until("B to apply the backlog", 180_000, async () => (await banned(b)) >= before.b + JAIL_BANS && (await entries(b)) >= SET_BANS, 200);
  await sleep(1000);
  const started = Date.now();
  await c.restart();
  const startSeconds = (Date.now() - started) / 1000;
  // From its last event before it stopped: what C recorded before the subscription counts too.
  const jails = watchBans(c, lastEvent);
  const sets = watchSetAdds(c, "fleetcatchup", lastEvent);
  try {
    await until("C to catch up", 300_000, () => bansIn(jails.times, "10.4.").count >= JAIL_BANS && sets.added() >= SET_BANS, 20);
  } finally {
    jails.stop();
    sets.stop();
  }
  if ((await banned(c)) < before.c + JAIL_BANS || (await entries(c)) < SET_BANS) throw new Error("C reported its backlog applied, its jail or set does not have it all");
  return { startSeconds, jailSeconds: (bansIn(jails.times, "10.4.").lastAt - started) / 1000, setSeconds: (sets.lastAt() - started) / 1000 };
}

/**
 * The raw tools' ceiling for the same work on this machine: three fail2ban-servers with the same stock settings (log at
 * INFO, database on disk), nothing else running, each banning the same addresses in the same chunks as Portcullis does
 * (`set <jail> banip` with 500 addresses), through a jail whose action does nothing (no firewall change at all). Any
 * fleet that bans through each host's fail2ban, as the issue requires, is bounded by this. Two times: when the last
 * `banip` answered, and when every ban is in each server's database (fail2ban writes it from another thread, after
 * answering: work a sustained rate has to pay for as well).
 */
async function fail2banAlone(): Promise<{ answered: number; stored: number }> {
  const servers = [new Fail2banServer(), new Fail2banServer(), new Fail2banServer()];
  const clients: Fail2banClient[] = [];
  try {
    await Promise.all(servers.map((server) => server.start()));
    clients.push(...servers.map((server) => new Fail2banClient(server.socket, createLogger("silent"))));
    const addresses = Array.from({ length: JAIL_BANS }, (_, i) => address(3, i));
    const started = performance.now();
    await Promise.all(clients.map(async (client) => {
      for (let i = 0; i < addresses.length; i += 500) await client.send(["set", "bulk", "banip", ...addresses.slice(i, i + 500)], 60_000);
    }));
    const answered = (performance.now() - started) / 1000;
    await Promise.all(servers.map((server) => until("fail2ban's database to have every ban", 120_000, () => storedBans(server) >= JAIL_BANS, 50)));
    return { answered, stored: (performance.now() - started) / 1000 };
  } finally {
    for (const client of clients) client.close();
    await Promise.all(servers.map((server) => server.destroy()));
  }
}

/** Bans fail2ban has written to its database (read-only; fail2ban holds its write lock only while it commits). */
function storedBans(server: Fail2banServer): number {
  const db = new Database(server.databaseFile, { readonly: true, timeout: 5_000 });
  try {
    return (db.prepare("SELECT count(*) AS n FROM bips WHERE jail = 'bulk'").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

const verdict = (ok: boolean): string => (ok ? "PASS" : "FAIL");

let nats: NatsCluster | undefined;
let fleet: Fleet | undefined;
try {
  progress("starting a 3-node NATS cluster and three Portcullis nodes (fail2ban, Portcullis action)");
  nats = await NatsCluster.start(3);
  fleet = await startFleet(nats, ["alpha", "bravo", "charlie"], {}, 3600);
  const [a, b, c] = fleet.hosts as [FleetHost, FleetHost, FleetHost];
  // The jail's sets and rules exist once the first ban went through; warm every node up with one shared ban.
  await a.jails.call("banIp", { jail: "jails/dovecot", address: "10.0.0.1", fleet: true });
  await sleep(1000);
  for (const host of fleet.hosts) for (const ipsetId of ["fleetbench", "fleetcatchup"]) {
    await host.ipsets.call("createIpset", {
      ipsetId,
      ipset: { name: "", type: IpsetType.IPSET_TYPE_HASH_IP, typeName: "", family: AddressFamily.ADDRESS_FAMILY_INET, hashsize: 65_536, maxelem: 1_000_000, comments: false, range: "", memoryBytes: 0, references: 0, entryCount: 0, managed: false, defaultTimeout: 0 },
      requestId: "",
    });
  }

  progress(`latency: ${LATENCY_SAMPLES} shared jail bans through A, one at a time`);
  const lat = await latency(a, [b, c]);
  progress(`throughput: ${SET_BANS} shared set entries through A`);
  const sets = await setThroughput(a, [b, c]);
  progress(`throughput: ${JAIL_BANS} shared jail bans through A`);
  const jails = await jailThroughput(a, [b, c]);
  progress(`catch-up: C stopped while A shares ${JAIL_BANS} jail bans and ${SET_BANS} set entries, then started`);
  const caught = await catchUp(a, b, c);
  await fleet.close();
  fleet = undefined;
  progress(`raw: ${JAIL_BANS} bans into each of three fail2ban-servers alone (no Portcullis, no NATS)`);
  const raw = await fail2banAlone();

  const [p50, p99] = [percentile(lat.samples, 50), percentile(lat.samples, 99)];
  const setRate = SET_BANS / sets.seconds;
  const jailRate = JAIL_BANS / jails.seconds;
  const [rawAnswered, rawStored] = [JAIL_BANS / raw.answered, JAIL_BANS / raw.stored];
  const rows = [
    ["fleet benchmark (3 NATS servers, R3 stream; 3 nodes)", "measured", "target", "verdict"],
    [`propagation A → kernel at B and C, p50 (${lat.samples.length} samples)`, `${p50.toFixed(1)} ms`, `≤ ${TARGETS.p50Ms} ms`, verdict(p50 <= TARGETS.p50Ms)],
    ["propagation A → kernel at B and C, p99", `${p99.toFixed(1)} ms`, `≤ ${TARGETS.p99Ms} ms`, verdict(p99 <= TARGETS.p99Ms)],
    ["  of which the ban at A itself (BanIp, fleet), p50 / p99", `${percentile(lat.origin, 50).toFixed(1)} / ${percentile(lat.origin, 99).toFixed(1)} ms`, "", ""],
    [`shared set entries (BatchAddEntries ${SET_BANS.toLocaleString("en-US")}), until the last node has all`, `${Math.round(setRate).toLocaleString("en-US")}/s (${sets.seconds.toFixed(2)} s)`, `≥ ${TARGETS.perSecond.toLocaleString("en-US")}/s`, verdict(setRate >= TARGETS.perSecond)],
    [`shared jail bans (BatchBanIp ${JAIL_BANS.toLocaleString("en-US")}, through fail2ban), until the last node has all`, `${Math.round(jailRate).toLocaleString("en-US")}/s (${jails.seconds.toFixed(2)} s)`, `≥ ${TARGETS.perSecond.toLocaleString("en-US")}/s`, verdict(jailRate >= TARGETS.perSecond)],
    [`  raw: three fail2ban-servers alone, the same ${JAIL_BANS.toLocaleString("en-US")} bans each (noop action), until the last banip answered`, `${Math.round(rawAnswered).toLocaleString("en-US")}/s (${raw.answered.toFixed(2)} s)`, `Portcullis ${(jailRate / rawAnswered).toFixed(2)}×`, ""],
    ["  raw: the same, until every ban is in each fail2ban's database (sustained)", `${Math.round(rawStored).toLocaleString("en-US")}/s (${raw.stored.toFixed(2)} s)`, `Portcullis ${(jailRate / rawStored).toFixed(2)}×`, ""],
    [`catch-up: C away during ${JAIL_BANS.toLocaleString("en-US")} jail bans and ${SET_BANS.toLocaleString("en-US")} set entries, then started (up in ${caught.startSeconds.toFixed(1)} s)`, "", "", ""],
    ["  until C has every jail ban (one host applying alone)", `${Math.round(JAIL_BANS / caught.jailSeconds).toLocaleString("en-US")}/s (${caught.jailSeconds.toFixed(2)} s)`, "", ""],
    ["  until C has every set entry (after the jail bans: stream order)", `${Math.round((JAIL_BANS + SET_BANS) / caught.setSeconds).toLocaleString("en-US")} operations/s (${caught.setSeconds.toFixed(2)} s)`, "", ""],
  ];
  console.log(`\nPortcullis fleet benchmark — ${new Date().toISOString()} (nats-server 2.9, all on one machine)\n`);
  console.log(table(rows));
  mkdirSync(resolve(import.meta.dirname, "results"), { recursive: true });
  writeFileSync(resolve(import.meta.dirname, "results", "fleet.json"), JSON.stringify({
    latency: { p50Ms: p50, p99Ms: p99, samples: lat.samples.length, originP50Ms: percentile(lat.origin, 50) },
    sets: { count: SET_BANS, seconds: sets.seconds, perSecond: setRate },
    jails: { count: JAIL_BANS, seconds: jails.seconds, perSecond: jailRate },
    catchUp: { jailBans: JAIL_BANS, setEntries: SET_BANS, startSeconds: caught.startSeconds, jailSeconds: caught.jailSeconds, setSeconds: caught.setSeconds },
    fail2banAlone: { count: JAIL_BANS, servers: 3, answeredSeconds: raw.answered, storedSeconds: raw.stored, answeredPerSecond: rawAnswered, storedPerSecond: rawStored },
  }, null, 2));
} finally {
  await fleet?.close();
  await nats?.stop();
}
