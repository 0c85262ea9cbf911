import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { EventOrigin, EventType } from "../../server/src/gen/portcullis/v1/events.js";
import { JailView } from "../../server/src/gen/portcullis/v1/jail.js";
import { VictimAttacker } from "../harness/netns.js";
import { canConnect } from "../harness/tcp.js";
import { dovecotFailures } from "../harness/fail2ban.js";
import { status } from "@grpc/grpc-js";
import { EventTestClient, JailTestClient, rejectsWith } from "../harness/grpc-clients.js";
import { startJailHosts, type JailHosts } from "../harness/jail-hosts.js";
import { waitFor } from "../harness/wait.js";

const { victimV4, attackerV4, victimV6, attackerV6 } = VictimAttacker;

interface Seen {
  readonly type: string;
  readonly origin: number;
  readonly principal: string;
  readonly address?: string;
  readonly attributes: Record<string, string>;
}

describe("the Portcullis fail2ban action: fail2ban decides, Portcullis enforces through its managed sets and reports at once", () => {
  let setup: JailHosts;
  let jails: JailTestClient;
  let events: EventTestClient;
  const seen: Seen[] = [];
  let watch: { cancel(): void } | undefined;

  before(async () => {
    setup = await startJailHosts(["maxretry = 5", "findtime = 600", "bantime = 6"], (socket) => `portcullis.py[socket="${socket}", ipv6_prefix=64]`);
    jails = new JailTestClient(setup.f.server.address, setup.f.server.credentials());
    events = new EventTestClient(setup.f.server.address, setup.f.server.credentials());
    watch = events.stream("watchEvents", { afterSequence: 0, types: [EventType.EVENT_TYPE_BAN, EventType.EVENT_TYPE_UNBAN], resourcePrefix: "jails/", principal: "", jail: "", address: "" }, (event) =>
      seen.push({ type: EventType[event.type], origin: event.origin, principal: event.principal, address: event.attributes.address, attributes: event.attributes }));
  });
  after(async () => {
    watch?.cancel();
    events?.close();
    jails?.close();
    await setup?.close();
  });

  it("five failures: the action reports fail2ban's ban, the attacker's packets drop, and the expiry is reported and lifted", async () => {
    const { hosts, fail2ban, f } = setup;
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true);
    appendFileSync(fail2ban.mailLog, dovecotFailures(attackerV4, victimV4, 5));
    const ban = await waitFor("the BAN event", () => seen.find((event) => event.type === "EVENT_TYPE_BAN" && event.address === attackerV4), { every: 10 });
    // Reported by the action as fail2ban makes the ban (its bantime and failure count), not found later by the watcher.
    assert.deepEqual([ban.origin, ban.principal, ban.attributes.jail, ban.attributes.bantime, ban.attributes.failures], [EventOrigin.EVENT_ORIGIN_FAIL2BAN, "fail2ban", "dovecot", "6", "5"]);
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false, "banned: the connect must fail");

    // Made by Portcullis when it met the jail, and recorded as such.
    const made = await events.call("listEvents", { afterSequence: 0, pageSize: 10, types: [EventType.EVENT_TYPE_IPSET_CREATED, EventType.EVENT_TYPE_RULE_CREATED], resourcePrefix: "", principal: "", jail: "", address: "" });
    assert.deepEqual(made.events.map((event) => [EventType[event.type], event.origin, event.attributes.jail]), [
      ["EVENT_TYPE_IPSET_CREATED", EventOrigin.EVENT_ORIGIN_SYSTEM, "dovecot"],
      ["EVENT_TYPE_RULE_CREATED", EventOrigin.EVENT_ORIGIN_SYSTEM, "dovecot"],
      ["EVENT_TYPE_IPSET_CREATED", EventOrigin.EVENT_ORIGIN_SYSTEM, "dovecot"],
      ["EVENT_TYPE_RULE_CREATED", EventOrigin.EVENT_ORIGIN_SYSTEM, "dovecot"],
    ]);
    // Enforced by Portcullis's own managed set and rule, visible through its API.
    const entries = await f.client.call("listEntries", { parent: "ipsets/fail2ban-dovecot", pageSize: 10, pageToken: "", filter: "" });
    assert.deepEqual(entries.entries.map((entry) => entry.element), [attackerV4]);
    const rules = await f.firewall.call("listRules", { parent: "firewall/ipv4/tables/filter/chains/INPUT", pageSize: 10, pageToken: "" });
    assert.deepEqual(rules.rules.map((rule) => [rule.text, rule.managed]), [["-A INPUT -m set --match-set fail2ban-dovecot src -j DROP", true]]);

    // bantime 6 s (time enough for the checks above on a loaded machine): fail2ban lifts it, the action reports it and
    // takes the address out of the set.
    await waitFor("the UNBAN event", () => seen.some((event) => event.type === "EVENT_TYPE_UNBAN" && event.address === attackerV4));
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true, "unbanned: the connect must succeed");
    assert.equal((await f.client.call("listEntries", { parent: "ipsets/fail2ban-dovecot", pageSize: 10, pageToken: "", filter: "" })).totalSize, 0);
    // Once each: the watcher, which also compares fail2ban's lists, must not report them again (a repeat would show
    // within this window; a correct build passes however long it is).
    await sleep(1500);
    assert.deepEqual(seen.filter((event) => event.address === attackerV4).map((event) => event.type), ["EVENT_TYPE_BAN", "EVENT_TYPE_UNBAN"]);
  });

  it("BanIp and UnbanIp through the API: one event each (the API's), enforced by the action", async () => {
    const { hosts } = setup;
    const before = seen.length;
    await jails.call("updateJail", { name: "jails/dovecot", banTime: 600 });
    await jails.call("banIp", { jail: "jails/dovecot", address: attackerV4 });
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false);
    await jails.call("unbanIp", { jail: "jails/dovecot", address: attackerV4 });
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true);
    await waitFor(() => `both events (${seen.slice(before).map((event) => event.type).join(", ")})`, () => seen.length - before >= 2);
    await sleep(1500); // a repeat by the action or the watcher would show meanwhile
    assert.deepEqual(seen.slice(before).map((event) => [event.type, event.origin, event.principal]), [
      ["EVENT_TYPE_BAN", EventOrigin.EVENT_ORIGIN_API, "admin"],
      ["EVENT_TYPE_UNBAN", EventOrigin.EVENT_ORIGIN_API, "admin"],
    ]);
  });

  it("ipv6_prefix=64: an IPv6 ban covers the address's whole /64", async () => {
    const { hosts, f } = setup;
    assert.equal(await canConnect(hosts.attacker.name, victimV6, 143), true);
    await jails.call("banIp", { jail: "jails/dovecot", address: attackerV6 });
    assert.equal(await canConnect(hosts.attacker.name, victimV6, 143), false, "banned: the IPv6 connect must fail");
    const entries = await f.client.call("listEntries", { parent: "ipsets/fail2ban6-dovecot", pageSize: 10, pageToken: "", filter: "" });
    assert.deepEqual(entries.entries.map((entry) => entry.element), ["2001:db8::/64"]);
    assert.equal((await f.client.call("testEntry", { parent: "ipsets/fail2ban6-dovecot", element: "2001:db8::beef" })).matched, true, "a neighbour in the /64 is covered");
    // fail2ban lists the address it banned; the kernel holds its network.
    assert.deepEqual((await jails.call("getJail", { name: "jails/dovecot", view: JailView.JAIL_VIEW_BASIC })).banned, [attackerV6]);
    await jails.call("unbanIp", { jail: "jails/dovecot", address: attackerV6 });
    assert.equal(await canConnect(hosts.attacker.name, victimV6, 143), true, "unbanned: the IPv6 connect must succeed");
  });

  it("BatchBanIp: checked whole, banned in chunks, enforced by the action, one API event per new ban", async () => {
    const { hosts, f } = setup;
    const others = [
      ...Array.from({ length: 200 }, (_, i) => `203.0.113.${i + 1}`),
      ...Array.from({ length: 300 }, (_, i) => `2001:db8:1:${i.toString(16)}::1`),
      ...Array.from({ length: 150 }, (_, i) => `198.51.100.${i + 1}`),
    ];
    await rejectsWith(jails.call("batchBanIp", { jail: "jails/dovecot", addresses: [...others, "203.0.113.999"] }), status.INVALID_ARGUMENT, "INVALID_ELEMENT");
    await jails.call("addAllowlistEntry", { network: "198.51.100.150", comment: "", timeout: 0 });
    await rejectsWith(jails.call("batchBanIp", { jail: "jails/dovecot", addresses: others }), status.FAILED_PRECONDITION, "ADDRESS_ALLOWLISTED");
    await jails.call("removeAllowlistEntry", { network: "198.51.100.150" });
    assert.equal((await jails.call("getJail", { name: "jails/dovecot", view: JailView.JAIL_VIEW_BASIC })).currentlyBanned, 0, "refused batches ban nothing");

    const before = seen.length;
    const result = await jails.call("batchBanIp", { jail: "jails/dovecot", addresses: [attackerV4, ...others, attackerV4] });
    assert.equal(result.banned, others.length + 1);
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false, "the attacker of the batch is dropped");
    assert.equal((await f.client.call("listEntries", { parent: "ipsets/fail2ban-dovecot", pageSize: 1, pageToken: "", filter: "" })).totalSize, 351);
    assert.equal((await f.client.call("listEntries", { parent: "ipsets/fail2ban6-dovecot", pageSize: 1, pageToken: "", filter: "" })).totalSize, 300);
    await waitFor(() => `${others.length + 1} BAN events (${seen.length - before} so far)`, () => seen.length - before >= others.length + 1);
    await sleep(1500); // a repeat by the action or the watcher would show meanwhile
    const batchEvents = seen.slice(before);
    assert.equal(batchEvents.length, others.length + 1);
    assert.ok(batchEvents.every((event) => event.type === "EVENT_TYPE_BAN" && event.principal === "admin"), "API events only, none reported again by the action or the watcher");

    const lifted = await jails.call("unbanAll", {});
    assert.equal(lifted.bans.length, others.length + 1);
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true);
    assert.equal((await f.client.call("listEntries", { parent: "ipsets/fail2ban-dovecot", pageSize: 1, pageToken: "", filter: "" })).totalSize, 0);
  });

  it("a ban fail2ban is told to make by hand of an allowlisted address is refused and lifted", async () => {
    const { hosts, fail2ban } = setup;
    await jails.call("addAllowlistEntry", { network: attackerV4, comment: "monitoring", timeout: 0 });
    // fail2ban-client's banip skips ignoreip; the action still refuses to enforce it.
    await fail2ban.ask(["set", "dovecot", "banip", attackerV4]);
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true, "an allowlisted address stays reachable");
    await waitFor("fail2ban's ban lifted", async () => (await jails.call("getJail", { name: "jails/dovecot", view: JailView.JAIL_VIEW_BASIC })).banned.length === 0, { every: 100 });
    await jails.call("removeAllowlistEntry", { network: attackerV4 });
  });

  it("`portcullis install-fail2ban-action` installs this very action and says how to use it", async () => {
    const target = mkdtempSync(join(tmpdir(), "pc-f2b-conf-"));
    try {
      const output = await setup.f.server.cli(["install-fail2ban-action", "--fail2ban-config-dir", target]);
      assert.equal(readFileSync(join(target, "action.d", "portcullis.py"), "utf8"), readFileSync(new URL("../../server/fail2ban/action.d/portcullis.py", import.meta.url), "utf8"));
      assert.match(output, /action = portcullis\.py\[socket="[^"]+fail2ban-action\.sock"\]/);
    } finally {
      rmSync(target, { recursive: true, force: true });
    }
  });

  it("with Portcullis down, the action enforces bans with ipset itself; Portcullis catches up when it is back", async () => {
    const { hosts, fail2ban, f } = setup;
    await jails.call("updateJail", { name: "jails/dovecot", banTime: 600 }); // the suite's 6 s would run out meanwhile
    // Stopped, not removed: its state is there when it comes back.
    await f.server.kill("SIGTERM");
    try {
      await fail2ban.ask(["set", "dovecot", "banip", attackerV4]);
      assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false, "enforced without Portcullis");
    } finally {
      await f.server.restart();
    }
    const jailsAgain = new JailTestClient(f.server.address, f.server.credentials());
    try {
      assert.deepEqual((await jailsAgain.call("getJail", { name: "jails/dovecot", view: JailView.JAIL_VIEW_BASIC })).banned, [attackerV4]);
      await jailsAgain.call("unbanIp", { jail: "jails/dovecot", address: attackerV4 });
      assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true, "unbanned through Portcullis again");
    } finally {
      jailsAgain.close();
    }
  });
});
