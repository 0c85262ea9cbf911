// BanIp with a duration and a reason: Portcullis lifts the ban when the duration ends (the jail's bantime is an hour),
// through restarts and kill -9, proven by TCP connects from the attacker's namespace.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { status } from "@grpc/grpc-js";
import { EventType } from "../../server/src/gen/portcullis/v1/events.js";
import { JailView } from "../../server/src/gen/portcullis/v1/jail.js";
import { VictimAttacker } from "../harness/netns.js";
import { canConnect } from "../harness/tcp.js";
import { EventTestClient, JailTestClient, rejectsWith } from "../harness/grpc-clients.js";
import { startJailHosts, type JailHosts } from "../harness/jail-hosts.js";
import { waitFor } from "../harness/wait.js";

const { victimV4, attackerV4, victimV6, attackerV6 } = VictimAttacker;

describe("BanIp with a duration and a reason (jail bantime: 1 h)", () => {
  let setup: JailHosts;
  let jails: JailTestClient;
  let events: EventTestClient;

  const connect = (host: string): Promise<boolean> => canConnect(setup.hosts.attacker.name, host, 143);
  const banEvents = async (type: EventType) => {
    const listed = await events.call("listEvents", { afterSequence: 0, pageSize: 0, types: [type], resourcePrefix: "jails/", principal: "", jail: "", address: "" });
    return listed.events;
  };
  const reconnect = (): void => {
    jails.close();
    events.close();
    jails = new JailTestClient(setup.f.server.address, setup.f.server.credentials());
    events = new EventTestClient(setup.f.server.address, setup.f.server.credentials());
  };

  before(async () => {
    setup = await startJailHosts(["maxretry = 5", "findtime = 600", "bantime = 3600"], (socket) => `portcullis.py[socket="${socket}"]`);
    jails = new JailTestClient(setup.f.server.address, setup.f.server.credentials());
    events = new EventTestClient(setup.f.server.address, setup.f.server.credentials());
  });
  after(async () => {
    jails?.close();
    events?.close();
    await setup?.close();
  });

  it("a 3 s ban drops the attacker, shows its own end in GetJail, and is lifted by Portcullis after ≈3 s; BAN and UNBAN carry reason and duration", async () => {
    assert.equal(await connect(victimV4), true);
    const asked = Date.now();
    await jails.call("banIp", { jail: "jails/dovecot", address: attackerV4, duration: 3, reason: "password spraying" });
    assert.equal(await connect(victimV4), false, "banned: the connect must fail");

    const jail = await jails.call("getJail", { name: "jails/dovecot", view: JailView.JAIL_VIEW_FULL });
    const [ban] = jail.bans;
    assert.equal(ban?.address, attackerV4);
    assert.equal(ban.duration, 3, "the ban's own duration, not the jail's hour");
    assert.ok(ban.remaining <= 3, `remaining ${ban.remaining}`);

    const [banned] = await banEvents(EventType.EVENT_TYPE_BAN);
    assert.equal(banned?.attributes.reason, "password spraying");
    assert.equal(banned.attributes.duration, "3");
    const expireTime = Date.parse(banned.attributes.expire_time ?? "");
    assert.ok(expireTime >= asked + 3000 && expireTime <= Date.now() + 3000, `expire_time ${banned.attributes.expire_time}`);

    await waitFor("Portcullis lifting the ban at the end of its 3 s", async () => connect(victimV4), { within: 10_000, every: 100 });
    const lifted = Date.now() - asked;
    assert.ok(lifted >= 2900 && lifted < 6000, `lifted after ${lifted} ms`);
    const [unbanned] = await banEvents(EventType.EVENT_TYPE_UNBAN);
    assert.deepEqual([unbanned?.attributes.address, unbanned?.attributes.reason, unbanned?.principal], [attackerV4, "expired", "system"]);
    assert.deepEqual((await jails.call("getJail", { name: "jails/dovecot", view: JailView.JAIL_VIEW_BASIC })).banned, []);
  });

  it("survives kill -9: a ban still running is lifted on time after the restart, one that ended while down at the start", async () => {
    const asked = Date.now();
    await jails.call("banIp", { jail: "jails/dovecot", address: attackerV6, duration: 2 });
    await jails.call("banIp", { jail: "jails/dovecot", address: attackerV4, duration: 8 });
    assert.equal(await connect(victimV4), false);
    assert.equal(await connect(victimV6), false);
    await setup.f.server.kill("SIGKILL");
    await sleep(Math.max(0, asked + 2500 - Date.now())); // the 2 s ban ends while the server is down
    assert.equal(await connect(victimV6), false, "nobody lifts it while the server is down (fail2ban's bantime is an hour)");
    await setup.f.server.restart();
    reconnect();

    await waitFor("the overdue IPv6 ban lifted at the start", async () => connect(victimV6), { within: 10_000, every: 100 });
    if (Date.now() - asked < 7000) assert.equal(await connect(victimV4), false, "the 8 s ban holds until its end");
    await waitFor("the 8 s ban lifted after the restart", async () => connect(victimV4), { within: 15_000, every: 100 });
    const lifted = Date.now() - asked;
    assert.ok(lifted >= 7900, `lifted after ${lifted} ms, not before its 8 s`);
    const unbans = (await banEvents(EventType.EVENT_TYPE_UNBAN)).filter((event) => event.attributes.reason === "expired").map((event) => event.attributes.address);
    assert.deepEqual(unbans.slice(-2), [attackerV6, attackerV4]);
  });

  it("a ban without a duration gives the address back to the jail's bantime", async () => {
    await jails.call("banIp", { jail: "jails/dovecot", address: attackerV4, duration: 2 });
    await jails.call("banIp", { jail: "jails/dovecot", address: attackerV4 });
    await sleep(3000);
    assert.equal(await connect(victimV4), false, "still banned after the first ban's 2 s");
    const [ban] = (await jails.call("getJail", { name: "jails/dovecot", view: JailView.JAIL_VIEW_FULL })).bans;
    assert.equal(ban?.duration, 3600);
    await jails.call("unbanIp", { jail: "jails/dovecot", address: attackerV4 });
  });

  it("refuses a bad duration or reason precisely, and bans nothing", async () => {
    const ban = (extra: { duration?: number; reason?: string }) => jails.call("banIp", { jail: "jails/dovecot", address: attackerV4, ...extra });
    await rejectsWith(ban({ duration: 0 }), status.INVALID_ARGUMENT, "INVALID_BAN_DURATION");
    await rejectsWith(ban({ duration: -5 }), status.INVALID_ARGUMENT, "INVALID_BAN_DURATION");
    await rejectsWith(ban({ duration: 315_360_001 }), status.INVALID_ARGUMENT, "INVALID_BAN_DURATION");
    const longer = await rejectsWith(ban({ duration: 7200 }), status.FAILED_PRECONDITION, "BAN_DURATION_EXCEEDS_BANTIME");
    assert.match(longer.details, /bantime of 3600 s/);
    await rejectsWith(ban({ reason: "line\nbreak" }), status.INVALID_ARGUMENT, "INVALID_COMMENT");
    await rejectsWith(ban({ reason: "x".repeat(201) }), status.INVALID_ARGUMENT, "INVALID_COMMENT");
    await rejectsWith(jails.call("batchBanIp", { jail: "jails/dovecot", addresses: [attackerV4], duration: 0 }), status.INVALID_ARGUMENT, "INVALID_BAN_DURATION");
    assert.equal((await jails.call("getJail", { name: "jails/dovecot", view: JailView.JAIL_VIEW_BASIC })).currentlyBanned, 0);
    assert.equal(await connect(victimV4), true);
  });
});
