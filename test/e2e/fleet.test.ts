import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { EventOrigin, EventType } from "@portcullis/sdk/gen/portcullis/v1/events.js";
import { VictimAttacker } from "../harness/netns.js";
import { canConnect } from "../harness/tcp.js";
import { NatsCluster } from "../harness/nats.js";
import { startFleet, type Fleet } from "../harness/fleet-hosts.js";

const { victimV4, attackerV4 } = VictimAttacker;
const JAIL = "jails/dovecot";

/** Polls until the predicate holds; returns the time it took. */
async function within(what: string, ms: number, predicate: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await predicate()) return Date.now() - started;
    if (Date.now() - started > ms) assert.fail(`${what} did not happen within ${ms} ms`);
    await sleep(20);
  }
}

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

  it("a fleet ban through A drops the attacker at A, B and C within a second; the fleet unban lets it through everywhere", async () => {
    const [a, b, c] = fleet.hosts as [Fleet["hosts"][0], Fleet["hosts"][0], Fleet["hosts"][0]];
    for (const host of fleet.hosts) assert.equal(await canConnect(host.setup.hosts.attacker.name, victimV4, 143), true, `${host.name} reachable before`);
    const started = Date.now();
    await a.jails.call("banIp", { jail: JAIL, address: attackerV4, fleet: true });
    // The connect takes its 0.5 s timeout when dropped, so the kernel state is what is timed: the set at each host.
    await Promise.all(fleet.hosts.map((host) => within(`the ban at ${host.name}`, 1000 - (Date.now() - started), () => inKernel(host, attackerV4))));
    console.log(`enforced at A, B and C ${Date.now() - started} ms after the call`);
    for (const host of fleet.hosts) assert.equal(await canConnect(host.setup.hosts.attacker.name, victimV4, 143), false, `${host.name} drops the attacker`);

    // B's event names the origin host and the principal; so does its audit log.
    const ban = (await b.listEvents(EventType.EVENT_TYPE_BAN)).find((event) => event.attributes.address === attackerV4)!;
    assert.equal(ban.origin, EventOrigin.EVENT_ORIGIN_FLEET);
    assert.equal(ban.principal, "admin");
    assert.equal(ban.attributes.origin_node, "alpha");
    assert.match(ban.attributes.expire_time ?? "", /^\d{4}-/);
    const audit = (await c.events.call("listAuditRecords", { pageSize: 100, pageToken: "" })).records.find((record) => record.resource === `${JAIL}/bans/${attackerV4}`)!;
    assert.deepEqual([audit.principal, audit.method, audit.originNode, audit.code], ["admin", "portcullis.v1.JailService/BanIp", "alpha", "OK"]);

    const unbanned = Date.now();
    await a.jails.call("unbanIp", { jail: JAIL, address: attackerV4, fleet: true });
    await Promise.all(fleet.hosts.map(async (host) => within(`the unban at ${host.name}`, 1000 - (Date.now() - unbanned), async () => !(await inKernel(host, attackerV4)))));
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
    await within("the ten bans at C", 10_000, async () => (await Promise.all(addresses.map((address) => inKernel(c, address)))).every(Boolean));
    const counted = async (): Promise<number[]> => {
      const bans = await c.listEvents(EventType.EVENT_TYPE_BAN);
      return addresses.map((address) => bans.filter((event) => event.attributes.address === address && event.origin === EventOrigin.EVENT_ORIGIN_FLEET).length);
    };
    assert.deepEqual(await counted(), addresses.map(() => 1));
    // Applied operations are recorded by id: a restart (and whatever the stream redelivers) applies nothing twice.
    await c.stop();
    await c.restart();
    await sleep(1500);
    assert.deepEqual(await counted(), addresses.map(() => 1));
  });

  it("a NATS server killed (SIGKILL) during a stream of bans loses none of them", async () => {
    const [a, b, c] = fleet.hosts as [Fleet["hosts"][0], Fleet["hosts"][0], Fleet["hosts"][0]];
    const addresses = Array.from({ length: 40 }, (_, i) => `203.0.113.${i + 1}`);
    // A's connection starts at the first server: killing it forces A (and the stream's leader, maybe) to move.
    const victim = nats.nodes[0]!;
    const killed = (async () => {
      await sleep(150);
      await victim.kill("SIGKILL");
    })();
    for (const address of addresses) {
      await a.jails.call("banIp", { jail: JAIL, address, fleet: true });
      await sleep(10);
    }
    await killed;
    // The two servers left elect new leaders for the stream (seconds, in nats-server 2.9); the outbox waits meanwhile.
    const waited = await Promise.all([b, c].map((host) => within(`all 40 bans at ${host.name}`, 40_000, async () => (await Promise.all(addresses.map((address) => inKernel(host, address)))).every(Boolean))));
    console.log(`all 40 bans at B and C ${Math.max(...waited)} ms after the last call`);
    await victim.start();
    await nats.waitHealthy();
  });

  it("B's allowlist protects an address A bans fleet-wide: B refuses it with an event naming A, the others enforce it; ListNodes and SearchBans show it", async () => {
    const [a, b, c] = fleet.hosts as [Fleet["hosts"][0], Fleet["hosts"][0], Fleet["hosts"][0]];
    const protectedAddress = "203.0.113.200";
    await b.jails.call("addAllowlistEntry", { network: "203.0.113.192/28", comment: "partner", timeout: 0 });
    await a.jails.call("banIp", { jail: JAIL, address: protectedAddress, fleet: true });
    await within("the ban at C", 2000, () => inKernel(c, protectedAddress));
    let refusal: Awaited<ReturnType<typeof b.listEvents>>[number] | undefined;
    await within("B's refusal", 2000, async () => {
      refusal = (await b.listEvents(EventType.EVENT_TYPE_FLEET_BAN_REFUSED)).find((event) => event.attributes.address === protectedAddress);
      return refusal !== undefined;
    });
    assert.equal(refusal!.attributes.reason, "ADDRESS_ALLOWLISTED");
    assert.equal(refusal!.attributes.origin_node, "alpha");
    assert.equal(refusal!.origin, EventOrigin.EVENT_ORIGIN_FLEET);
    assert.equal(await inKernel(b, protectedAddress), false);

    const { nodes } = await c.fleet.call("listNodes", {});
    assert.deepEqual(nodes.map((node) => node.name), ["nodes/alpha", "nodes/bravo", "nodes/charlie"]);
    for (const node of nodes) {
      assert.equal(node.online, true);
      assert.match(node.version, /^\d+\.\d+\.\d+/);
      assert.ok(Date.now() - node.heartbeatTime!.getTime() < 5000);
    }
    await within("B's heartbeat to count the refusal", 3000, async () => (await c.fleet.call("listNodes", {})).nodes.find((node) => node.name === "nodes/bravo")!.bansRefused >= 1);
    const charlie = (await c.fleet.call("listNodes", {})).nodes.find((node) => node.name === "nodes/charlie")!;
    assert.ok(charlie.bansApplied >= 52, `charlie applied ${charlie.bansApplied}`);

    const found = await b.fleet.call("searchBans", { address: protectedAddress, timeoutMs: 2000 });
    assert.deepEqual(found.answeredNodes, ["nodes/alpha", "nodes/bravo", "nodes/charlie"]);
    assert.deepEqual(found.unansweredNodes, []);
    assert.deepEqual(found.bans.map((ban) => ban.node).sort(), ["nodes/alpha", "nodes/charlie"]);
    const atC = found.bans.find((ban) => ban.node === "nodes/charlie")!;
    assert.equal(atC.resource, `${JAIL}/bans/${protectedAddress}`);
    assert.equal(atC.originNode, "nodes/alpha");
    assert.ok(atC.expireTime !== undefined && atC.expireTime.getTime() > Date.now());
  });
});
