import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { EventOrigin, EventType } from "../../server/src/gen/portcullis/v1/events.js";
import { JailView } from "../../server/src/gen/portcullis/v1/jail.js";
import { VictimAttacker } from "../harness/netns.js";
import { becomesUnreachable, canConnect } from "../harness/tcp.js";
import { dovecotFailures, Fail2banServer } from "../harness/fail2ban.js";
import { EventTestClient, JailTestClient, rejectsWith } from "../harness/grpc-clients.js";
import type { ServerFixture } from "../harness/fixture.js";
import { startJailHosts, type JailHosts } from "../harness/jail-hosts.js";
import { waitFor } from "../harness/wait.js";

const { victimV4, attackerV4 } = VictimAttacker;


describe("jails: a real fail2ban-server driven over its socket, bans proven at packet level", () => {
  let setup: JailHosts;
  let hosts: VictimAttacker;
  let fail2ban: Fail2banServer;
  let f: ServerFixture;
  let jails: JailTestClient;

  before(async () => {
    setup = await startJailHosts(["maxretry = 5", "findtime = 600", "bantime = 3600", "ignoreip = 198.51.100.0/24"]);
    ({ hosts, fail2ban, f } = setup);
    jails = new JailTestClient(f.server.address, f.server.credentials());
  });
  after(async () => {
    jails?.close();
    await setup?.close();
  });

  it("reports fail2ban's status and the jail as fail2ban-client does, with its settings", async () => {
    const server = await jails.call("getFail2BanStatus", {});
    assert.deepEqual(server, { up: true, version: "1.0.2", jailCount: 1 });
    const listed = await jails.call("listJails", {});
    assert.deepEqual(listed.jails.map((jail) => jail.name), ["jails/dovecot"]);
    const jail = await jails.call("getJail", { name: "jails/dovecot", view: JailView.JAIL_VIEW_BASIC });
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
    const asked = Date.now();
    const banned = await jails.call("banIp", { jail: "jails/dovecot", address: attackerV4 });
    assert.deepEqual(banned.jails, ["jails/dovecot"]);
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false, "banned: the connect must fail");
    const basic = await jails.call("getJail", { name: "jails/dovecot", view: JailView.JAIL_VIEW_BASIC });
    assert.deepEqual([basic.banned, basic.currentlyBanned, basic.bans], [[attackerV4], 1, []]);
    const jail = await jails.call("getJail", { name: "jails/dovecot", view: JailView.JAIL_VIEW_FULL });
    assert.deepEqual(jail.banned, [attackerV4]);
    assert.equal(jail.currentlyBanned, 1);
    // FULL: each ban with its times, as `fail2ban-client get dovecot banip --with-time` shows them.
    const [ban] = jail.bans;
    assert.equal(ban?.address, attackerV4);
    assert.equal(ban.duration, 3600);
    // Between the call and now (fail2ban counts in seconds), and the time left is what has not passed of the hour since.
    const read = Date.now();
    assert.ok(ban.banTime!.getTime() >= asked - 1000 && ban.banTime!.getTime() <= read + 1000, `ban time ${ban.banTime?.toISOString()} is now`);
    assert.equal(ban.expireTime!.getTime() - ban.banTime!.getTime(), 3600_000);
    assert.ok(ban.remaining >= 3600 - Math.ceil((read - asked) / 1000) - 1 && ban.remaining <= 3600, `remaining ${ban.remaining}`);

    // UnbanAll lifts it too (and says which bans it lifted); ban again to test UnbanIp on every jail.
    assert.deepEqual((await jails.call("unbanAll", {})).bans, [`jails/dovecot/bans/${attackerV4}`]);
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true, "UnbanAll: the connect must succeed");
    await jails.call("banIp", { jail: "jails/dovecot", address: attackerV4 });
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false);
    const unbanned = await jails.call("unbanIp", { jail: "jails/-", address: attackerV4 });
    assert.deepEqual(unbanned.jails, ["jails/dovecot"]);
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true, "unbanned: the connect must succeed");
    await rejectsWith(jails.call("unbanIp", { jail: "jails/dovecot", address: attackerV4 }), status.NOT_FOUND, "BAN_NOT_FOUND");

    const events = new EventTestClient(f.server.address, f.server.credentials());
    try {
      const log = await events.call("listEvents", { afterSequence: 0, pageSize: 0, types: [EventType.EVENT_TYPE_BAN, EventType.EVENT_TYPE_UNBAN], resourcePrefix: "jails/", principal: "", jail: "", address: "" });
      assert.deepEqual(log.events.map((event) => [EventType[event.type], event.attributes.jail, event.attributes.address, event.principal]), [
        ["EVENT_TYPE_BAN", "dovecot", attackerV4, "admin"],
        ["EVENT_TYPE_UNBAN", "dovecot", attackerV4, "admin"],
        ["EVENT_TYPE_BAN", "dovecot", attackerV4, "admin"],
        ["EVENT_TYPE_UNBAN", "dovecot", attackerV4, "admin"],
      ]);
    } finally {
      events.close();
    }
  });

  it("BAN and UNBAN events name the address in its canonical form, however the caller spelled it", async () => {
    const events = new EventTestClient(f.server.address, f.server.credentials());
    try {
      const after = (await events.call("listEvents", { afterSequence: Number.MAX_SAFE_INTEGER, pageSize: 1, types: [], resourcePrefix: "", principal: "", jail: "", address: "" })).lastSequence;
      await jails.call("banIp", { jail: "jails/dovecot", address: "2001:DB8:0:0::0100" });
      assert.deepEqual((await jails.call("unbanIp", { jail: "jails/-", address: "2001:db8:0000::100" })).jails, ["jails/dovecot"]);
      const log = await events.call("listEvents", { afterSequence: after, pageSize: 0, types: [EventType.EVENT_TYPE_BAN, EventType.EVENT_TYPE_UNBAN], resourcePrefix: "jails/", principal: "", jail: "", address: "" });
      assert.deepEqual(log.events.map((event) => [EventType[event.type], event.resource, event.attributes.address]), [
        ["EVENT_TYPE_BAN", "jails/dovecot/bans/2001:db8::100", "2001:db8::100"],
        ["EVENT_TYPE_UNBAN", "jails/dovecot/bans/2001:db8::100", "2001:db8::100"],
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
    await rejectsWith(jails.call("getJail", { name: "jails/nojail", view: JailView.JAIL_VIEW_BASIC }), status.NOT_FOUND, "JAIL_NOT_FOUND");
    await rejectsWith(jails.call("getJail", { name: "dovecot", view: JailView.JAIL_VIEW_BASIC }), status.INVALID_ARGUMENT, "INVALID_RESOURCE_NAME");
    assert.equal((await jails.call("getJail", { name: "jails/dovecot", view: JailView.JAIL_VIEW_BASIC })).currentlyBanned, 0);
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

  it("the host allowlist: lifts the bans it covers, BanIp and fail2ban's own detections skip it, it survives a fail2ban restart, it expires", async () => {
    const failures = (): string => dovecotFailures(attackerV4, victimV4, 5);
    const ignoreIp = async (): Promise<string[]> => (await fail2ban.ask(["get", "dovecot", "ignoreip"])) as string[];
    await jails.call("banIp", { jail: "jails/dovecot", address: attackerV4 });
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false);

    // Any spelling of the network; stored with the host bits cleared.
    const added = await jails.call("addAllowlistEntry", { network: "192.0.2.77/24", comment: "office", timeout: 0 });
    assert.equal(added.entry?.network, "192.0.2.0/24");
    assert.equal(added.entry?.createdBy, "admin");
    assert.equal(added.entry?.expireTime, undefined);
    assert.deepEqual(added.liftedBans, [`jails/dovecot/bans/${attackerV4}`]);
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true, "the ban the entry covers is lifted");
    assert.deepEqual(await ignoreIp(), ["198.51.100.0/24", "192.0.2.0/24"]);
    const refused = await rejectsWith(jails.call("banIp", { jail: "jails/-", address: attackerV4 }), status.FAILED_PRECONDITION, "ADDRESS_ALLOWLISTED");
    assert.match(refused.details, /host allowlist entry 192\.0\.2\.0\/24 \("office"\)/);

    // fail2ban's own detection skips it: five failures from the attacker ban nothing. Five from another address after
    // them do: once that ban is made, fail2ban has read the attacker's lines too.
    const other = "203.0.113.66";
    appendFileSync(fail2ban.mailLog, failures() + dovecotFailures(other, victimV4, 5));
    await waitFor("fail2ban's ban of the address after the allowlisted one", async () => (await jails.call("getJail", { name: "jails/dovecot", view: JailView.JAIL_VIEW_BASIC })).banned.includes(other), { every: 100 });
    assert.deepEqual((await jails.call("getJail", { name: "jails/dovecot", view: JailView.JAIL_VIEW_BASIC })).banned, [other]);
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true);
    await jails.call("unbanIp", { jail: "jails/dovecot", address: other });

    // A fail2ban restart resets ignoreip from its configuration; the watcher puts the entry back.
    await fail2ban.stop();
    await fail2ban.start();
    await waitFor("the entry back in ignoreip", async () => (await ignoreIp()).includes("192.0.2.0/24"), { every: 100 });
    assert.deepEqual(await ignoreIp(), ["198.51.100.0/24", "192.0.2.0/24"]);

    const listed = await jails.call("listAllowlist", {});
    assert.deepEqual(listed.entries.map((entry) => [entry.network, entry.comment]), [["192.0.2.0/24", "office"]]);
    await rejectsWith(jails.call("addAllowlistEntry", { network: "192.0.2.300", comment: "", timeout: 0 }), status.INVALID_ARGUMENT, "INVALID_ELEMENT");
    await rejectsWith(jails.call("addAllowlistEntry", { network: "192.0.2.0/33", comment: "", timeout: 0 }), status.INVALID_ARGUMENT, "INVALID_ELEMENT");
    await rejectsWith(jails.call("removeAllowlistEntry", { network: "203.0.113.9" }), status.NOT_FOUND, "ENTRY_NOT_FOUND");

    // Removed: out of ignoreip (the configured entry stays), and fail2ban's detection bans the attacker again.
    await jails.call("removeAllowlistEntry", { network: "192.0.2.0/24" });
    assert.deepEqual(await ignoreIp(), ["198.51.100.0/24"]);
    appendFileSync(fail2ban.mailLog, failures());
    await waitFor("fail2ban's ban", async () => (await jails.call("getJail", { name: "jails/dovecot", view: JailView.JAIL_VIEW_BASIC })).banned.includes(attackerV4), { every: 100 });
    assert.equal(await becomesUnreachable(hosts.attacker.name, victimV4, 143), true, "without the entry, fail2ban bans again");
    await jails.call("unbanIp", { jail: "jails/dovecot", address: attackerV4 });

    // An entry with a timeout goes by itself, with an event, and leaves ignoreip.
    await jails.call("addAllowlistEntry", { network: attackerV4, comment: "", timeout: 1 });
    assert.deepEqual(await ignoreIp(), ["198.51.100.0/24", attackerV4]);
    await waitFor("the entry's expiry", async () => (await jails.call("listAllowlist", {})).entries.length === 0, { every: 100 });
    await waitFor("the expired entry out of ignoreip", async () => !(await ignoreIp()).includes(attackerV4), { every: 100 });
    assert.deepEqual(await ignoreIp(), ["198.51.100.0/24"]);

    const events = new EventTestClient(f.server.address, f.server.credentials());
    try {
      const log = await events.call("listEvents", { afterSequence: 0, pageSize: 0, types: [EventType.EVENT_TYPE_ALLOWLIST_ENTRY_ADDED, EventType.EVENT_TYPE_ALLOWLIST_ENTRY_REMOVED], resourcePrefix: "", principal: "", jail: "", address: "" });
      assert.deepEqual(log.events.map((event) => [EventType[event.type], event.attributes.network, event.attributes.reason, event.origin]), [
        ["EVENT_TYPE_ALLOWLIST_ENTRY_ADDED", "192.0.2.0/24", undefined, EventOrigin.EVENT_ORIGIN_API],
        ["EVENT_TYPE_ALLOWLIST_ENTRY_REMOVED", "192.0.2.0/24", "removed", EventOrigin.EVENT_ORIGIN_API],
        ["EVENT_TYPE_ALLOWLIST_ENTRY_ADDED", attackerV4, undefined, EventOrigin.EVENT_ORIGIN_API],
        ["EVENT_TYPE_ALLOWLIST_ENTRY_REMOVED", attackerV4, "expired", EventOrigin.EVENT_ORIGIN_SYSTEM],
      ]);
    } finally {
      events.close();
    }
    await f.server.cli(["certs", "issue", "--name", "auditor", "--role", "viewer"]);
    const viewer = new JailTestClient(f.server.address, f.server.credentials("auditor"));
    try {
      assert.deepEqual((await viewer.call("listAllowlist", {})).entries, []);
      await rejectsWith(viewer.call("addAllowlistEntry", { network: attackerV4, comment: "", timeout: 0 }), status.PERMISSION_DENIED, "ROLE_REQUIRED");
    } finally {
      viewer.close();
    }
  });

  it("UpdateJail changes the running jail and, through its jail.d drop-in, keeps the change across a fail2ban restart", async () => {
    const updated = await jails.call("updateJail", { name: "jails/dovecot", banTime: 120, maxRetry: 3 });
    assert.deepEqual([updated.maxRetry, updated.findTime, updated.banTime], [3, 600, 120]);
    assert.deepEqual([await fail2ban.ask(["get", "dovecot", "bantime"]), await fail2ban.ask(["get", "dovecot", "maxretry"])], [120, 3]);
    assert.match(readFileSync(join(fail2ban.configDir, "jail.d", "portcullis-dovecot.local"), "utf8"), /^\[dovecot\]\nmaxretry = 3\nbantime = 120\n$/m);

    await fail2ban.stop();
    await fail2ban.start();
    // Asked of fail2ban itself: Portcullis's settings cache must not be what answers.
    assert.deepEqual([await fail2ban.ask(["get", "dovecot", "bantime"]), await fail2ban.ask(["get", "dovecot", "maxretry"]), await fail2ban.ask(["get", "dovecot", "findtime"])], [120, 3, 600]);

    // A second change keeps the first one's other settings in the file.
    await jails.call("updateJail", { name: "jails/dovecot", findTime: 300 });
    await fail2ban.stop();
    await fail2ban.start();
    assert.deepEqual([await fail2ban.ask(["get", "dovecot", "bantime"]), await fail2ban.ask(["get", "dovecot", "maxretry"]), await fail2ban.ask(["get", "dovecot", "findtime"])], [120, 3, 300]);

    await rejectsWith(jails.call("updateJail", { name: "jails/dovecot", banTime: 0 }), status.INVALID_ARGUMENT, "INVALID_SETTING");
    await rejectsWith(jails.call("updateJail", { name: "jails/dovecot", maxRetry: 1001 }), status.INVALID_ARGUMENT, "INVALID_SETTING");
    await rejectsWith(jails.call("updateJail", { name: "jails/dovecot" }), status.INVALID_ARGUMENT, "NOTHING_TO_UPDATE");
    await rejectsWith(jails.call("updateJail", { name: "jails/nojail", banTime: 60 }), status.NOT_FOUND, "JAIL_NOT_FOUND");
    await f.server.cli(["certs", "issue", "--name", "ops", "--role", "operator"]);
    const operator = new JailTestClient(f.server.address, f.server.credentials("ops"));
    try {
      await rejectsWith(operator.call("updateJail", { name: "jails/dovecot", banTime: 60 }), status.PERMISSION_DENIED, "ROLE_REQUIRED");
    } finally {
      operator.close();
    }
    assert.equal(await fail2ban.ask(["get", "dovecot", "bantime"]), 120, "refused updates changed nothing");

    const events = new EventTestClient(f.server.address, f.server.credentials());
    try {
      const log = await events.call("listEvents", { afterSequence: 0, pageSize: 0, types: [EventType.EVENT_TYPE_JAIL_UPDATED], resourcePrefix: "jails/", principal: "", jail: "", address: "" });
      assert.deepEqual(log.events.map((event) => event.attributes), [{ max_retry: "3", ban_time: "120" }, { find_time: "300" }]);
    } finally {
      events.close();
    }
    // Back to the settings the other tests expect.
    const restored = await jails.call("updateJail", { name: "jails/dovecot", maxRetry: 5, findTime: 600, banTime: 3600 });
    assert.deepEqual([restored.maxRetry, restored.findTime, restored.banTime], [5, 600, 3600]);
  });

  it("UpdateJail's ban_time_increment makes a repeat offender's next ban longer, and survives a fail2ban restart", async () => {
    const address = "203.0.113.77";
    const dropIn = join(fail2ban.configDir, "jail.d", "portcullis-dovecot.local");
    const updated = await jails.call("updateJail", { name: "jails/dovecot", banTime: 2, banTimeIncrement: { enabled: true, factor: 30, maxTime: 100, randomTime: 0, multipliers: [], overallJails: false, formula: "" } });
    assert.deepEqual(updated.banTimeIncrement, { enabled: true, factor: 30, maxTime: 100, randomTime: 0, multipliers: [], overallJails: false, formula: "" });
    assert.match(readFileSync(dropIn, "utf8"), /^bantime = 2\nbantime\.increment = true\nbantime\.factor = 30\nbantime\.maxtime = 100\n$/m);

    // The first ban lasts bantime and runs out (an unban through the API would forgive: fail2ban forgets the address).
    const durationOf = async (): Promise<number | undefined> =>
      (await jails.call("getJail", { name: "jails/dovecot", view: JailView.JAIL_VIEW_FULL })).bans.find((ban) => ban.address === address)?.duration;
    await jails.call("banIp", { jail: "jails/dovecot", address });
    assert.equal(await durationOf(), 2);
    await waitFor("the first ban running out", async () => (await durationOf()) === undefined, { every: 100 });
    // The second ban of the same address grows: 2 × 30 × 2^1 = 120, capped by max_time at 100.
    await jails.call("banIp", { jail: "jails/dovecot", address });
    await waitFor("the repeat ban, lasting max_time", async () => (await durationOf()) === 100, { every: 100 });
    await jails.call("unbanIp", { jail: "jails/dovecot", address });

    await fail2ban.stop();
    await fail2ban.start();
    assert.deepEqual([await fail2ban.ask(["get", "dovecot", "bantime.increment"]), await fail2ban.ask(["get", "dovecot", "bantime.maxtime"])], [true, 100]);

    // Multipliers replace the whole increment set: maxtime goes, from the file as from the running jail.
    const multiplied = await jails.call("updateJail", { name: "jails/dovecot", banTimeIncrement: { enabled: true, factor: 0, maxTime: 0, randomTime: 30, multipliers: [1, 5, 30], overallJails: true, formula: "" } });
    assert.deepEqual(multiplied.banTimeIncrement, { enabled: true, factor: 0, maxTime: 0, randomTime: 30, multipliers: [1, 5, 30], overallJails: true, formula: "" });
    assert.equal(await fail2ban.ask(["get", "dovecot", "bantime.maxtime"]), null);
    assert.doesNotMatch(readFileSync(dropIn, "utf8"), /maxtime/);

    const invalid = { enabled: true, factor: 0, maxTime: 0, randomTime: 0, multipliers: [], overallJails: false, formula: "" };
    await rejectsWith(jails.call("updateJail", { name: "jails/dovecot", banTimeIncrement: { ...invalid, factor: 5000 } }), status.INVALID_ARGUMENT, "INVALID_SETTING");
    await rejectsWith(jails.call("updateJail", { name: "jails/dovecot", banTimeIncrement: { ...invalid, multipliers: [1, 0] } }), status.INVALID_ARGUMENT, "INVALID_SETTING");
    await rejectsWith(jails.call("updateJail", { name: "jails/dovecot", banTimeIncrement: { ...invalid, maxTime: -5 } }), status.INVALID_ARGUMENT, "INVALID_SETTING");
    assert.deepEqual((await jails.call("getJail", { name: "jails/dovecot", view: JailView.JAIL_VIEW_BASIC })).banTimeIncrement?.multipliers, [1, 5, 30], "refused updates changed nothing");

    // Off again: the options leave the file, and the jail bans for bantime only.
    const off = await jails.call("updateJail", { name: "jails/dovecot", banTime: 3600, banTimeIncrement: { ...invalid, enabled: false } });
    assert.equal(off.banTimeIncrement?.enabled, false);
    assert.equal(readFileSync(dropIn, "utf8").includes("bantime."), true, "bantime.increment = false stays written");
    assert.doesNotMatch(readFileSync(dropIn, "utf8"), /multipliers|rndtime|overalljails/);
  });

  it("StopJail, StartJail, ReloadJails: the jail goes, comes back from fail2ban's configuration, and bans again", async () => {
    await jails.call("stopJail", { name: "jails/dovecot" });
    assert.deepEqual((await jails.call("listJails", {})).jails, []);
    assert.deepEqual(await fail2ban.ask(["status"]), [["Number of jail", 0], ["Jail list", ""]]);
    await rejectsWith(jails.call("getJail", { name: "jails/dovecot", view: JailView.JAIL_VIEW_BASIC }), status.NOT_FOUND, "JAIL_NOT_FOUND");

    const started = await jails.call("startJail", { name: "jails/dovecot" });
    assert.deepEqual([started.name, started.maxRetry, started.findTime, started.banTime], ["jails/dovecot", 5, 600, 3600]);
    await rejectsWith(jails.call("startJail", { name: "jails/dovecot" }), status.FAILED_PRECONDITION, "JAIL_RUNNING");
    await rejectsWith(jails.call("startJail", { name: "jails/nojail" }), status.NOT_FOUND, "JAIL_NOT_FOUND");
    await rejectsWith(jails.call("reloadJails", { name: "jails/nojail" }), status.NOT_FOUND, "JAIL_NOT_FOUND");

    assert.deepEqual((await jails.call("reloadJails", { name: "jails/-" })).jails, ["jails/dovecot"]);
    assert.deepEqual((await jails.call("reloadJails", { name: "jails/dovecot" })).jails, ["jails/dovecot"]);

    // The restarted jail's ban action works at packet level.
    await jails.call("banIp", { jail: "jails/dovecot", address: attackerV4 });
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false, "banned by the restarted jail");
    await jails.call("unbanIp", { jail: "jails/dovecot", address: attackerV4 });
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true);

    const events = new EventTestClient(f.server.address, f.server.credentials());
    try {
      const log = await events.call("listEvents", { afterSequence: 0, pageSize: 0, types: [EventType.EVENT_TYPE_JAIL_STOPPED, EventType.EVENT_TYPE_JAIL_STARTED, EventType.EVENT_TYPE_JAILS_RELOADED], resourcePrefix: "jails/", principal: "", jail: "", address: "" });
      assert.deepEqual(log.events.map((event) => [EventType[event.type], event.resource]), [
        ["EVENT_TYPE_JAIL_STOPPED", "jails/dovecot"], ["EVENT_TYPE_JAIL_STARTED", "jails/dovecot"],
        ["EVENT_TYPE_JAILS_RELOADED", "jails/-"], ["EVENT_TYPE_JAILS_RELOADED", "jails/dovecot"],
      ]);
    } finally {
      events.close();
    }
  });

  it("fail2ban down → UNAVAILABLE, the rest keeps working, a FAIL2BAN_DOWN event; back up → works again without a restart, FAIL2BAN_UP", async () => {
    const events = new EventTestClient(f.server.address, f.server.credentials());
    const reachability = async (after: number) => (await events.call("listEvents", { afterSequence: after, pageSize: 0, types: [EventType.EVENT_TYPE_FAIL2BAN_DOWN, EventType.EVENT_TYPE_FAIL2BAN_UP], resourcePrefix: "", principal: "", jail: "", address: "" })).events;
    const eventsOf = async (after: number, type: EventType) => {
      await waitFor(`a ${EventType[type]} event`, async () => (await reachability(after)).some((event) => event.type === type));
      return (await reachability(after)).filter((event) => event.type === type);
    };
    try {
      const start = (await events.call("listEvents", { afterSequence: Number.MAX_SAFE_INTEGER, pageSize: 1, types: [], resourcePrefix: "", principal: "", jail: "", address: "" })).lastSequence;
      await fail2ban.stop();
      await rejectsWith(jails.call("listJails", {}), status.UNAVAILABLE, "FAIL2BAN_UNAVAILABLE");
      assert.equal((await jails.call("getFail2BanStatus", {})).up, false);
      await f.client.call("listIpsets", { pageSize: 0, pageToken: "" });
      const [down] = await eventsOf(start, EventType.EVENT_TYPE_FAIL2BAN_DOWN);
      assert.deepEqual([down?.resource, down?.origin, down?.attributes.socket], ["fail2ban", EventOrigin.EVENT_ORIGIN_SYSTEM, fail2ban.socket]);
      assert.match(down!.attributes.reason ?? "", /fail2ban/);

      await fail2ban.start();
      assert.deepEqual((await jails.call("listJails", {})).jails.map((jail) => jail.name), ["jails/dovecot"]);
      const [up] = await eventsOf(down!.sequence, EventType.EVENT_TYPE_FAIL2BAN_UP);
      assert.equal(up?.attributes.socket, fail2ban.socket);
      assert.equal((await reachability(start)).length, 2, "one event per change");
    } finally {
      events.close();
    }
  });

  it("GetJail shows bans and unbans made behind Portcullis's back at once (a list is reused only while fail2ban's counters stand still)", async () => {
    const banned = async () => (await jails.call("getJail", { name: "jails/dovecot", view: JailView.JAIL_VIEW_BASIC })).banned;
    assert.deepEqual(await banned(), []);
    assert.deepEqual(await banned(), [], "asked twice: the second answer may reuse the first list");
    await fail2ban.ask(["set", "dovecot", "banip", "203.0.113.41"]);
    assert.deepEqual(await banned(), ["203.0.113.41"], "a ban moves the counters");
    await fail2ban.ask(["set", "dovecot", "banip", "203.0.113.42"]);
    await fail2ban.ask(["set", "dovecot", "unbanip", "203.0.113.41"]);
    assert.deepEqual(await banned(), ["203.0.113.42"], "same count, but the total moved");
    await fail2ban.ask(["set", "dovecot", "unbanip", "203.0.113.42"]);
    assert.deepEqual(await banned(), [], "an unban moves the current count");
  });
});

describe("the seed's attack flow: 5 failed logins → ban → packets dropped → unban after bantime", () => {
  let setup: JailHosts;
  let hosts: VictimAttacker;
  let fail2ban: Fail2banServer;
  let f: ServerFixture;

  before(async () => {
    setup = await startJailHosts(["maxretry = 5", "findtime = 600", "bantime = 4"]);
    ({ hosts, fail2ban, f } = setup);
  });
  after(async () => setup?.close());

  it("fail2ban's own ban and unban reach a WatchEvents subscriber, and the kernel follows", async () => {
    const events = new EventTestClient(f.server.address, f.server.credentials());
    const received: Array<{ type: string; origin: number; address?: string }> = [];
    const call = events.stream("watchEvents", { afterSequence: 0, types: [EventType.EVENT_TYPE_BAN, EventType.EVENT_TYPE_UNBAN], resourcePrefix: "", principal: "", jail: "", address: "" },
      (event) => received.push({ type: EventType[event.type], origin: event.origin, address: event.attributes.address }));
    try {
      assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true);
      // Five failed IMAP logins from the attacker, as dovecot logs them.
      appendFileSync(fail2ban.mailLog, dovecotFailures(attackerV4, victimV4, 5));
      const ban = await waitFor("a BAN event", () => received.find((e) => e.type === "EVENT_TYPE_BAN"));
      assert.equal(ban.address, attackerV4);
      assert.equal(ban.origin, EventOrigin.EVENT_ORIGIN_FAIL2BAN);
      // The watcher reports the ban once fail2ban lists it; its stock action may still be at work for a moment.
      assert.equal(await becomesUnreachable(hosts.attacker.name, victimV4, 143), true, "banned: the connect must fail");

      const unban = await waitFor("an UNBAN event after bantime", () => received.find((e) => e.type === "EVENT_TYPE_UNBAN"));
      assert.equal(unban.address, attackerV4);
      assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true, "unbanned: the connect must succeed");
    } finally {
      call.cancel();
      events.close();
    }
  });

  it("ReportFailure counted maxretry times bans the address", async () => {
    const jails = new JailTestClient(f.server.address, f.server.credentials());
    try {
      for (let i = 0; i < 5; i++) await jails.call("reportFailure", { jail: "jails/dovecot", address: attackerV4, message: "imap auth failed (app)" });
      await waitFor("fail2ban's ban", async () => (await jails.call("getJail", { name: "jails/dovecot", view: JailView.JAIL_VIEW_BASIC })).banned.includes(attackerV4), { every: 100 });
      assert.deepEqual((await jails.call("getJail", { name: "jails/dovecot", view: JailView.JAIL_VIEW_BASIC })).banned, [attackerV4]);
      assert.equal(await becomesUnreachable(hosts.attacker.name, victimV4, 143), true, "fail2ban's ban action follows");
      await jails.call("unbanIp", { jail: "jails/dovecot", address: attackerV4 });
      // ignoreip edits take effect at once: an ignored address is not banned
      const updated = await jails.call("addIgnoreIp", { jail: "jails/dovecot", entry: "192.0.2.96/28" });
      assert.ok(updated.ignoreIp.includes("192.0.2.96/28"));
      await rejectsWith(jails.call("banIp", { jail: "jails/dovecot", address: attackerV4 }), status.FAILED_PRECONDITION, "ADDRESS_IGNORED");
      const removed = await jails.call("removeIgnoreIp", { jail: "jails/dovecot", entry: "192.0.2.96/28" });
      assert.ok(!removed.ignoreIp.includes("192.0.2.96/28"));
      await rejectsWith(jails.call("removeIgnoreIp", { jail: "jails/dovecot", entry: "192.0.2.96/28" }), status.NOT_FOUND, "ENTRY_NOT_FOUND");
      // Entries are stored canonical; a removal written another way finds them.
      assert.ok((await jails.call("addIgnoreIp", { jail: "jails/dovecot", entry: "2001:DB8:1:0::/64" })).ignoreIp.includes("2001:db8:1::/64"));
      assert.ok(!(await jails.call("removeIgnoreIp", { jail: "jails/dovecot", entry: "2001:DB8:1::/64" })).ignoreIp.includes("2001:db8:1::/64"));
    } finally {
      jails.close();
    }
  });
});
