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
    const inKernel = async (host: typeof a): Promise<boolean> => (await host.ipsets.call("testEntry", { parent: "ipsets/fail2ban-dovecot", element: attackerV4 })).matched;
    await Promise.all(fleet.hosts.map((host) => within(`the ban at ${host.name}`, 1000 - (Date.now() - started), () => inKernel(host))));
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
    await Promise.all(fleet.hosts.map(async (host) => within(`the unban at ${host.name}`, 1000 - (Date.now() - unbanned), async () => !(await inKernel(host)))));
    for (const host of fleet.hosts) assert.equal(await canConnect(host.setup.hosts.attacker.name, victimV4, 143), true, `${host.name} lets the attacker in again`);
  });
});
