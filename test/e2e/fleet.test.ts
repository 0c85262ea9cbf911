import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { EventOrigin, EventType } from "../../server/src/gen/portcullis/v1/events.js";
import { IpsetType } from "../../server/src/gen/portcullis/v1/ipset.js";
import { AddressFamily } from "../../server/src/gen/portcullis/v1/common.js";
import { VictimAttacker } from "../harness/netns.js";
import { canConnect } from "../harness/tcp.js";
import { NatsCluster } from "../harness/nats.js";
import { startFleet, type Fleet } from "../harness/fleet-hosts.js";
import { execFile } from "node:child_process";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { createClient } from "@portcullis/sdk";
import { waitFor } from "../harness/wait.js";

const BIN = resolve(import.meta.dirname, "../../server/bin/portcullis");

const { victimV4, attackerV4 } = VictimAttacker;
const JAIL = "jails/dovecot";

describe("fleet mode: a ban on one host is enforced on every host, through a 3-node NATS JetStream cluster", () => {
  let nats: NatsCluster;
  let fleet: Fleet;

  before(async () => {
    nats = await NatsCluster.start(3);
    fleet = await startFleet(nats, ["alpha", "bravo", "charlie"]);
  });
  after(async () => {
    await fleet?.close();
    await nats?.stop();
  });

  // How fast a fleet ban travels is measured by bench/fleet.ts (its latency targets), not asserted here.
  it("a fleet ban through A drops the attacker at A, B and C; the fleet unban lets it through everywhere", async () => {
    const [a, b, c] = fleet.hosts as [Fleet["hosts"][0], Fleet["hosts"][0], Fleet["hosts"][0]];
    for (const host of fleet.hosts) assert.equal(await canConnect(host.setup.hosts.attacker.name, victimV4, 143), true, `${host.name} reachable before`);
    // Each host records its BAN (UNBAN) event once its kernel set has (no longer has) the address.
    const enforced = (host: typeof a, type: EventType): Promise<unknown> =>
      waitFor(`${EventType[type]} at ${host.name}`, async () => (await host.listEvents(type)).some((event) => event.attributes.address === attackerV4));
    await a.jails.call("banIp", { jail: JAIL, address: attackerV4, fleet: true });
    await Promise.all(fleet.hosts.map((host) => enforced(host, EventType.EVENT_TYPE_BAN)));
    for (const host of fleet.hosts) assert.equal(await canConnect(host.setup.hosts.attacker.name, victimV4, 143), false, `${host.name} drops the attacker`);

    // B's event names the origin host and the principal; so does C's audit log.
    const ban = (await b.listEvents(EventType.EVENT_TYPE_BAN)).find((event) => event.attributes.address === attackerV4)!;
    assert.equal(ban.origin, EventOrigin.EVENT_ORIGIN_FLEET);
    assert.equal(ban.principal, "admin");
    assert.equal(ban.attributes.origin_node, "alpha");
    assert.match(ban.attributes.expire_time ?? "", /^\d{4}-/);
    const audit = (await c.events.call("listAuditRecords", { pageSize: 100, pageToken: "", principal: "", method: "", resourcePrefix: "" })).records.find((record) => record.resource === `${JAIL}/bans/${attackerV4}`)!;
    assert.deepEqual([audit.principal, audit.method, audit.originNode, audit.code], ["admin", "portcullis.v1.JailService/BanIp", "alpha", "OK"]);

    await a.jails.call("unbanIp", { jail: JAIL, address: attackerV4, fleet: true });
    await Promise.all(fleet.hosts.map((host) => enforced(host, EventType.EVENT_TYPE_UNBAN)));
    for (const host of fleet.hosts) assert.equal(await canConnect(host.setup.hosts.attacker.name, victimV4, 143), true, `${host.name} lets the attacker in again`);
  });

  /** Whether the jail's kernel set at the host holds the address (what the DROP rule matches). */
  const inKernel = async (host: Fleet["hosts"][0], address: string): Promise<boolean> =>
    (await host.ipsets.call("testEntry", { parent: `ipsets/fail2ban${address.includes(":") ? "6" : ""}-dovecot`, element: address })).matched;

  it("a node that was stopped catches up from its durable consumer: ten bans made meanwhile are enforced, each once, also after another restart", async () => {
    const [a, , c] = fleet.hosts as [Fleet["hosts"][0], Fleet["hosts"][0], Fleet["hosts"][0]];
    const addresses = Array.from({ length: 10 }, (_, i) => `198.51.100.${i + 1}`);
    await c.stop();
    assert.equal((await a.jails.call("batchBanIp", { jail: JAIL, addresses, fleet: true })).banned, 10);
    await c.restart();
    await waitFor("the ten bans at C", async () => (await Promise.all(addresses.map((address) => inKernel(c, address)))).every(Boolean));
    const counted = async (): Promise<number[]> => {
      const bans = await c.listEvents(EventType.EVENT_TYPE_BAN);
      return addresses.map((address) => bans.filter((event) => event.attributes.address === address && event.origin === EventOrigin.EVENT_ORIGIN_FLEET).length);
    };
    assert.deepEqual(await counted(), addresses.map(() => 1));
    // One audit record for the batch, as at A (one BatchBanIp), naming where and by whom it was made.
    const audited = async (): Promise<string[][]> => (await c.events.call("listAuditRecords", { pageSize: 1000, pageToken: "", principal: "", method: "", resourcePrefix: "" })).records
      .filter((record) => record.method === "portcullis.v1.JailService/BatchBanIp")
      .map((record) => [record.resource, record.principal, record.originNode, record.code]);
    assert.deepEqual(await audited(), [[JAIL, "admin", "alpha", "OK"]]);
    // Applied operations are recorded by id: a restart (and whatever the stream redelivers) applies nothing twice. A
    // ban made after the restart comes after all of that in the stream: once C has it, C has read everything before.
    await c.stop();
    await c.restart();
    const marker = "198.51.100.50";
    await a.jails.call("banIp", { jail: JAIL, address: marker, fleet: true });
    await waitFor("the ban made after the restart, at C", () => inKernel(c, marker));
    assert.deepEqual(await counted(), addresses.map(() => 1));
    assert.deepEqual(await audited(), [[JAIL, "admin", "alpha", "OK"]]);
  });

  it("a NATS server killed (SIGKILL) during a stream of bans loses none of them", async () => {
    const [a, b, c] = fleet.hosts as [Fleet["hosts"][0], Fleet["hosts"][0], Fleet["hosts"][0]];
    const addresses = Array.from({ length: 40 }, (_, i) => `203.0.113.${i + 1}`);
    // A's connection starts at the first server: killing it forces A (and the stream's leader, maybe) to move. Killed
    // after the tenth ban, while the thirty others are made.
    const victim = nats.nodes[0]!;
    let killed: Promise<void> | undefined;
    for (const [i, address] of addresses.entries()) {
      if (i === 10) killed = victim.kill("SIGKILL");
      await a.jails.call("banIp", { jail: JAIL, address, fleet: true });
    }
    try {
      await killed;
      // The two servers left elect new leaders for the stream (seconds, in nats-server 2.9); the outbox waits meanwhile.
      await Promise.all([b, c].map(async (host) => {
        let missing = addresses;
        const why = (): string => `all 40 bans at ${host.name} (missing: ${missing.join(" ")}); A's log:\n${a.fleetLog()}\n${host.name}'s log:\n${host.fleetLog()}`;
        await waitFor(why, async () => {
          const enforced = await Promise.all(addresses.map((address) => inKernel(host, address)));
          missing = addresses.filter((_, i) => !enforced[i]);
          return missing.length === 0;
        }, { within: 60_000 });
      }));
    } finally {
      // Back for the tests that follow, whatever happened here.
      await victim.start();
      await nats.waitHealthy();
    }
  });

  it("a shared set entry carries its absolute expiry: a host that gets it late holds it for the time left, and every host drops it", async () => {
    const [a, , c] = fleet.hosts as [Fleet["hosts"][0], Fleet["hosts"][0], Fleet["hosts"][0]];
    const element = "198.51.100.200";
    for (const host of fleet.hosts) {
      await host.ipsets.call("createIpset", {
        ipsetId: "shared",
        ipset: { name: "", type: IpsetType.IPSET_TYPE_HASH_IP, typeName: "", family: AddressFamily.ADDRESS_FAMILY_INET, hashsize: 0, maxelem: 0, comments: false, range: "", memoryBytes: 0, references: 0, entryCount: 0, managed: false, defaultTimeout: 0 },
        requestId: "",
      });
    }
    // C is stopped while A adds the entry for 12 s, and goes on 5 s later: it applies the entry at least 5 s late.
    await c.setup.f.server.whilePaused(async () => {
      await a.ipsets.call("addEntry", { parent: "ipsets/shared", entry: { name: "", element, comment: "", timeout: 12 }, fleet: true });
      await sleep(5000);
    });
    // Each host records the entry with the seconds it gave the kernel (rounded up) once the kernel has it.
    const added = await Promise.all(fleet.hosts.map((host) => waitFor(`the entry at ${host.name}`, async () =>
      (await host.listEvents(EventType.EVENT_TYPE_ENTRY_ADDED)).find((event) => event.resource === `ipsets/shared/entries/${element}`))));
    const expiries = added.map((event) => event.time!.getTime() + Number(event.attributes.timeout) * 1000);
    const spread = Math.max(...expiries) - Math.min(...expiries);
    // The same expiry everywhere, within the rounding to seconds (an expiry counted from arrival would be 5 s later at C).
    assert.ok(spread <= 2500, `expiries ${expiries.map((time) => new Date(time).toISOString()).join(", ")}`);
    assert.ok(Number(added[2]!.attributes.timeout) <= 8, `C holds it for the time left, not a fresh 12 s: ${added[2]!.attributes.timeout} s`);
    // And the kernel drops it by itself at every host.
    const matched = async (host: typeof a): Promise<boolean> => (await host.ipsets.call("testEntry", { parent: "ipsets/shared", element })).matched;
    await Promise.all(fleet.hosts.map((host) => waitFor(`the expiry at ${host.name}`, async () => !(await matched(host)))));
  });

  it("with every NATS server hung, then down, a fleet ban applies at A without waiting for NATS, waits in A's outbox, and reaches B and C when NATS is back", async () => {
    const [a, b, c] = fleet.hosts as [Fleet["hosts"][0], Fleet["hosts"][0], Fleet["hosts"][0]];
    const offline = "203.0.113.99";
    // Hung (stopped), the servers keep A's connection open and acknowledge nothing: a ban that waited for its fleet copy
    // to be stored could not be answered. It is answered, and enforced, before they answer anything again.
    for (const node of nats.nodes) node.pause();
    try {
      assert.deepEqual((await a.jails.call("banIp", { jail: JAIL, address: offline, fleet: true })).jails, [JAIL]);
      assert.equal(await inKernel(a, offline), true);
      assert.equal(await inKernel(b, offline), false);
    } finally {
      await Promise.all(nats.nodes.map((node) => node.kill("SIGKILL")));
    }
    await Promise.all(nats.nodes.map((node) => node.start()));
    await nats.waitHealthy();
    await Promise.all([b, c].map((host) => waitFor(`the queued ban at ${host.name}`, () => inKernel(host, offline), { within: 60_000 })));
  });

  it("B's allowlist protects an address A bans fleet-wide: B refuses it with an event naming A, the others enforce it; ListNodes and SearchBans show it", async () => {
    const [a, b, c] = fleet.hosts as [Fleet["hosts"][0], Fleet["hosts"][0], Fleet["hosts"][0]];
    const protectedAddress = "203.0.113.200";
    await b.jails.call("addAllowlistEntry", { network: "203.0.113.192/28", comment: "partner", timeout: 0 });
    await a.jails.call("banIp", { jail: JAIL, address: protectedAddress, fleet: true });
    await waitFor("the ban at C", () => inKernel(c, protectedAddress));
    const refusal = await waitFor("B's refusal", async () => (await b.listEvents(EventType.EVENT_TYPE_FLEET_BAN_REFUSED)).find((event) => event.attributes.address === protectedAddress));
    assert.equal(refusal.attributes.reason, "ADDRESS_ALLOWLISTED");
    assert.equal(refusal.attributes.origin_node, "alpha");
    assert.equal(refusal.origin, EventOrigin.EVENT_ORIGIN_FLEET);
    assert.equal(await inKernel(b, protectedAddress), false);

    // Heartbeats every second here; a node counts as online for three intervals (a loaded machine may miss one).
    const listedFrom = Date.now();
    const nodes = await waitFor("every node online, B counting its refusal", async () => {
      const listed = (await c.fleet.call("listNodes", {})).nodes;
      return listed.length === 3 && listed.every((node) => node.online) && listed.find((node) => node.name === "nodes/bravo")!.bansRefused >= 1 && listed;
    });
    assert.deepEqual(nodes.map((node) => node.name), ["nodes/alpha", "nodes/bravo", "nodes/charlie"]);
    for (const node of nodes) {
      assert.match(node.version, /^\d+\.\d+\.\d+/);
      // Online when listed (after listedFrom): its heartbeat is at most three intervals (3 s) older than the listing.
      assert.ok(node.heartbeatTime!.getTime() >= listedFrom - 3000, `heartbeat ${node.heartbeatTime!.toISOString()}`);
      assert.ok(node.startTime!.getTime() <= node.heartbeatTime!.getTime());
    }
    assert.ok(nodes.find((node) => node.name === "nodes/charlie")!.bansApplied >= 1);

    // Waits for every online host's answer, at most 10 s (the longest allowed), so a slow host still answers in time.
    const found = await b.fleet.call("searchBans", { address: protectedAddress, timeoutMs: 10_000 });
    assert.deepEqual(found.answeredNodes, ["nodes/alpha", "nodes/bravo", "nodes/charlie"]);
    assert.deepEqual(found.unansweredNodes, []);
    assert.deepEqual(found.bans.map((ban) => ban.node).sort(), ["nodes/alpha", "nodes/charlie"]);
    const atC = found.bans.find((ban) => ban.node === "nodes/charlie")!;
    assert.equal(atC.resource, `${JAIL}/bans/${protectedAddress}`);
    assert.equal(atC.originNode, "nodes/alpha");
    assert.ok(atC.expireTime !== undefined && atC.expireTime.getTime() > Date.now());
  });

  it("the SDK (jails.ban with fleet, fleet.nodes, fleet.searchBans) and the CLI (ban --fleet, fleet nodes) speak fleet mode", async () => {
    const [a, b, c] = fleet.hosts as [Fleet["hosts"][0], Fleet["hosts"][0], Fleet["hosts"][0]];
    const bundle = (host: typeof a): string => join(host.setup.f.server.dataDir, "pki/clients/admin");
    const cli = async (host: typeof a, args: string[]): Promise<string> =>
      (await promisify(execFile)(BIN, args, { env: { ...process.env, PORTCULLIS_ADDRESS: host.setup.f.server.address, PORTCULLIS_BUNDLE: bundle(host) }, encoding: "utf8", timeout: 60_000 })).stdout;

    const sdkAddress = "203.0.113.150";
    const client = createClient({ address: b.setup.f.server.address, bundle: bundle(b) });
    try {
      assert.deepEqual(await client.jails.ban("dovecot", sdkAddress, { fleet: true }), ["dovecot"]);
      await waitFor("the SDK's fleet ban at A and C", async () => (await inKernel(a, sdkAddress)) && (await inKernel(c, sdkAddress)));
      const nodes = await client.fleet.nodes();
      assert.deepEqual(nodes.map((node) => node.name), ["alpha", "bravo", "charlie"]);
      assert.ok(nodes.every((node) => node.heartbeatTime instanceof Date && node.version !== ""));
      const found = await client.fleet.searchBans(sdkAddress, { timeoutMs: 10_000 });
      // Each host blocks it in its dovecot jail (the whole answer is in the message if not).
      const jailBans = found.bans.filter((ban) => ban.resource === `jails/dovecot/bans/${sdkAddress}`);
      assert.deepEqual(jailBans.map((ban) => ban.node).sort(), ["alpha", "bravo", "charlie"], JSON.stringify(found));
      assert.equal(jailBans.find((ban) => ban.node === "alpha")!.originNode, "bravo");
    } finally {
      client.dispose();
    }

    const cliAddress = "203.0.113.151";
    assert.match(await cli(c, ["ban", cliAddress, "--jail", "dovecot", "--fleet"]), /203\.0\.113\.151 banned in dovecot/);
    await waitFor("the CLI's fleet ban at A and B", async () => (await inKernel(a, cliAddress)) && (await inKernel(b, cliAddress)));
    const listed = JSON.parse(await cli(a, ["fleet", "nodes", "--json"])) as Array<{ name: string; online: boolean }>;
    assert.deepEqual(listed.map((node) => node.name), ["alpha", "bravo", "charlie"]);
    assert.match(await cli(a, ["fleet", "nodes"]), /^NODE\s+VERSION\s+HEARTBEAT\s+LAG\s+APPLIED\s+REFUSED\s+STATE\nalpha\s/);
    await cli(c, ["unban", cliAddress, "--jail", "dovecot", "--fleet"]);
    await waitFor("the CLI's fleet unban at A and B", async () => !(await inKernel(a, cliAddress)) && !(await inKernel(b, cliAddress)));
  });
});
