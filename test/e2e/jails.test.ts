import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { EventType } from "@portcullis/sdk/gen/portcullis/v1/events.js";
import { VictimAttacker } from "../harness/netns.js";
import { canConnect, listen } from "../harness/tcp.js";
import { Fail2banServer } from "../harness/fail2ban.js";
import { EventTestClient, JailTestClient, rejectsWith } from "../harness/grpc-clients.js";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";

const { victimV4, attackerV4 } = VictimAttacker;

describe("jails: a real fail2ban-server driven over its socket, bans proven at packet level", () => {
  let hosts: VictimAttacker;
  let fail2ban: Fail2banServer;
  let f: ServerFixture;
  let jails: JailTestClient;
  let listener: { stop(): void };

  before(async () => {
    hosts = new VictimAttacker();
    // The jail's iptables action runs inside the victim namespace, where fail2ban-server is started.
    fail2ban = new Fail2banServer({
      netns: hosts.victim,
      expectedJails: "dovecot",
      jails: ({ mailLog }) => [
        "[DEFAULT]", "backend = polling", `logpath = ${mailLog}`, "filter = dovecot",
        "[dovecot]", "enabled = true", "maxretry = 5", "findtime = 600", "bantime = 3600", "ignoreip = 198.51.100.0/24",
        "action = iptables-allports[name=dovecot]", "",
      ].join("\n"),
    });
    await fail2ban.start();
    f = await startServerFixture(hosts.victim, { PORTCULLIS_FAIL2BAN_SOCKET: fail2ban.socket });
    jails = new JailTestClient(f.server.address, f.server.credentials());
    listener = await listen(hosts.victim.name, 143);
  });
  after(async () => {
    jails?.close();
    listener?.stop();
    await f?.close();
    await fail2ban?.destroy();
    hosts?.destroy();
  });

  it("reports fail2ban's status and the jail as fail2ban-client does, with its settings", async () => {
    const server = await jails.call("getFail2BanStatus", {});
    assert.deepEqual(server, { up: true, version: "1.0.2", jailCount: 1 });
    const listed = await jails.call("listJails", {});
    assert.deepEqual(listed.jails.map((jail) => jail.name), ["jails/dovecot"]);
    const jail = await jails.call("getJail", { name: "jails/dovecot" });
    assert.equal(jail.maxRetry, 5);
    assert.equal(jail.findTime, 600);
    assert.equal(jail.banTime, 3600);
    assert.deepEqual(jail.ignoreIp, ["198.51.100.0/24"]);
    assert.deepEqual(jail.files, [fail2ban.mailLog]);
    assert.deepEqual(jail.actions, ["iptables-allports"]);
    assert.equal(jail.currentlyBanned, 0);
  });

  it("BanIp drops the attacker's packets; UnbanIp lets them through again; both are events", async () => {
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true);
    const banned = await jails.call("banIp", { jail: "jails/dovecot", address: attackerV4 });
    assert.deepEqual(banned.jails, ["jails/dovecot"]);
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false, "banned: the connect must fail");
    const jail = await jails.call("getJail", { name: "jails/dovecot" });
    assert.deepEqual(jail.banned, [attackerV4]);
    assert.equal(jail.currentlyBanned, 1);

    const unbanned = await jails.call("unbanIp", { jail: "jails/-", address: attackerV4 });
    assert.deepEqual(unbanned.jails, ["jails/dovecot"]);
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true, "unbanned: the connect must succeed");
    await rejectsWith(jails.call("unbanIp", { jail: "jails/dovecot", address: attackerV4 }), status.NOT_FOUND, "BAN_NOT_FOUND");

    const events = new EventTestClient(f.server.address, f.server.credentials());
    try {
      const log = await events.call("listEvents", { afterSequence: 0, pageSize: 0, types: [EventType.EVENT_TYPE_BAN, EventType.EVENT_TYPE_UNBAN], resourcePrefix: "jails/" });
      assert.deepEqual(log.events.map((event) => [EventType[event.type], event.attributes.jail, event.attributes.address, event.principal]), [
        ["EVENT_TYPE_BAN", "dovecot", attackerV4, "admin"],
        ["EVENT_TYPE_UNBAN", "dovecot", attackerV4, "admin"],
      ]);
    } finally {
      events.close();
    }
  });

  it("refuses bad input precisely and changes nothing", async () => {
    const ignored = await rejectsWith(jails.call("banIp", { jail: "jails/dovecot", address: "198.51.100.7" }), status.FAILED_PRECONDITION, "ADDRESS_IGNORED");
    assert.match(ignored.details, /ignoreip entry "198\.51\.100\.0\/24" of jail dovecot/);
    await rejectsWith(jails.call("banIp", { jail: "jails/dovecot", address: "not-an-ip" }), status.INVALID_ARGUMENT, "INVALID_ELEMENT");
    await rejectsWith(jails.call("banIp", { jail: "jails/nojail", address: attackerV4 }), status.NOT_FOUND, "JAIL_NOT_FOUND");
    await rejectsWith(jails.call("getJail", { name: "jails/nojail" }), status.NOT_FOUND, "JAIL_NOT_FOUND");
    await rejectsWith(jails.call("getJail", { name: "dovecot" }), status.INVALID_ARGUMENT, "INVALID_RESOURCE_NAME");
    assert.equal((await jails.call("getJail", { name: "jails/dovecot" })).currentlyBanned, 0);
  });

  it("viewers read jails but cannot ban", async () => {
    await f.server.cli(["certs", "issue", "--name", "noc", "--role", "viewer"]);
    const viewer = new JailTestClient(f.server.address, f.server.credentials("noc"));
    try {
      assert.equal((await viewer.call("listJails", {})).jails.length, 1);
      await rejectsWith(viewer.call("banIp", { jail: "jails/dovecot", address: attackerV4 }), status.PERMISSION_DENIED, "ROLE_REQUIRED");
    } finally {
      viewer.close();
    }
  });

  it("fail2ban down → UNAVAILABLE, the rest keeps working; back up → works again without a restart", async () => {
    await fail2ban.stop();
    await rejectsWith(jails.call("listJails", {}), status.UNAVAILABLE, "FAIL2BAN_UNAVAILABLE");
    assert.equal((await jails.call("getFail2BanStatus", {})).up, false);
    await f.client.call("listIpsets", { pageSize: 0, pageToken: "" });
    await fail2ban.start();
    assert.deepEqual((await jails.call("listJails", {})).jails.map((jail) => jail.name), ["jails/dovecot"]);
  });
});
