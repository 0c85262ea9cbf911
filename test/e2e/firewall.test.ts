import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { status } from "@grpc/grpc-js";
import { AddressFamily } from "../../server/src/gen/portcullis/v1/common.js";
import { Ipset, IpsetType } from "../../server/src/gen/portcullis/v1/ipset.js";
import { VictimAttacker } from "../harness/netns.js";
import { canConnect, listen } from "../harness/tcp.js";
import { EventType, type Event } from "../../server/src/gen/portcullis/v1/events.js";
import { EventTestClient, FirewallTestClient, rejectsWith } from "../harness/grpc-clients.js";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";
import { accept, applyRequest, ChainPolicy, drop, filterOf, inputOf, rule, tcpPort, TargetKind } from "../harness/firewall-requests.js";
import { waitFor } from "../harness/wait.js";

const { victimV4, attackerV4, victimV6, attackerV6 } = VictimAttacker;

/** Keeps the test's own API access open, as an admin would: accept everything on loopback. */
const loopbackAccept = rule({ inInterface: { name: "lo" }, target: accept, comment: "api access" });

describe("firewall: the seed's mail server through the API, proven at packet level", () => {
  let hosts: VictimAttacker;
  let f: ServerFixture;
  const listeners: Array<{ stop(): void }> = [];

  before(async () => {
    hosts = new VictimAttacker();
    f = await startServerFixture(hosts.victim);
    for (const port of [25, 143, 999]) listeners.push(await listen(hosts.victim.name, port));
  });
  after(async () => {
    for (const listener of listeners) listener.stop();
    await f?.close();
    hosts?.destroy();
  });

  it("mail ports open, the rest dropped by policy, a ban set drops the attacker (IPv4)", async () => {
    await f.firewall.call("createRule", { parent: inputOf("ipv4"), rule: loopbackAccept, position: 0, allowLockout: false, requestId: "", confirmWithin: 0 });
    const allowed = await f.firewall.call("allowService", { parent: inputOf("ipv4"), services: ["mail"], source: undefined });
    assert.deepEqual(allowed.rules.map((r) => r.destinationPort!.ports[0]!.first), [25, 587, 465, 143, 993, 110, 995]);
    await f.client.call("createIpset", { ipsetId: "fail2ban-dovecot", ipset: Ipset.fromPartial({ type: IpsetType.IPSET_TYPE_HASH_IP, family: AddressFamily.ADDRESS_FAMILY_INET }), requestId: "" });
    const ban = await f.firewall.call("createRule", {
      parent: inputOf("ipv4"), position: 1, allowLockout: false, requestId: "", confirmWithin: 0,
      rule: rule({ matchSet: { set: "fail2ban-dovecot" }, target: drop }),
    });
    assert.match(ban.text, /-m set --match-set fail2ban-dovecot src .*-j DROP/);
    await f.firewall.call("setChainPolicy", { name: inputOf("ipv4"), policy: ChainPolicy.CHAIN_POLICY_DROP, allowLockout: false, confirmWithin: 0 });

    const saved = hosts.victim.exec("iptables-save", ["-t", "filter"]);
    assert.match(saved, /^:INPUT DROP/m);
    assert.match(saved, /^-A INPUT -p tcp -m tcp --dport 25 .*-j ACCEPT$/m);

    assert.equal(await canConnect(hosts.attacker.name, victimV4, 25), true, "smtp is open");
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true, "imap is open");
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 999), false, "port 999 meets the DROP policy");

    await f.client.call("addEntry", { parent: "ipsets/fail2ban-dovecot", entry: { name: "", element: attackerV4, comment: "" } });
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false, "a banned attacker is dropped before the accepts");
    await f.client.call("deleteEntry", { name: `ipsets/fail2ban-dovecot/entries/${attackerV4}` });
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true);

    const listed = await f.firewall.call("listRules", { parent: inputOf("ipv4"), pageSize: 0, pageToken: "" });
    assert.equal(listed.totalSize, 9);
    assert.deepEqual(listed.rules.map((r) => r.position), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.ok(listed.rules.every((r) => r.managed && r.modeled && r.id.length === 12));
    assert.equal(listed.rules[0]!.id, ban.id);
    assert.ok(listed.rules[2]!.packets > 0, "counters are reported (smtp rule saw packets)");
  });

  it("works the same for IPv6 with ip6tables", async () => {
    // IPv6 needs neighbour discovery: a DROP policy without accepting ICMPv6 cuts the link itself.
    await f.firewall.call("createRule", { parent: inputOf("ipv6"), rule: rule({ protocol: "ipv6-icmp", target: accept }), position: 0, allowLockout: false, requestId: "", confirmWithin: 0 });
    await f.firewall.call("allowService", { parent: inputOf("ipv6"), services: ["imap"], source: undefined });
    await f.firewall.call("createRule", { parent: inputOf("ipv6"), rule: rule({ ...tcpPort(25), source: { address: "2001:db8::/64" }, target: accept }), position: 0, allowLockout: false, requestId: "", confirmWithin: 0 });
    await f.firewall.call("setChainPolicy", { name: inputOf("ipv6"), policy: ChainPolicy.CHAIN_POLICY_DROP, allowLockout: false, confirmWithin: 0 });
    assert.equal(await canConnect(hosts.attacker.name, victimV6, 143), true);
    assert.equal(await canConnect(hosts.attacker.name, victimV6, 25), true);
    assert.equal(await canConnect(hosts.attacker.name, victimV6, 999), false);
    const blocked = await f.firewall.call("createRule", { parent: inputOf("ipv6"), rule: rule({ source: { address: attackerV6 }, target: { kind: TargetKind.TARGET_KIND_REJECT, rejectWith: "icmp6-adm-prohibited" } }), position: 1, allowLockout: false, requestId: "", confirmWithin: 0 });
    assert.equal(blocked.source!.address, "2001:db8::100/128");
    assert.equal(await canConnect(hosts.attacker.name, victimV6, 143), false);
    await f.firewall.call("deleteRule", { name: blocked.name, allowLockout: false, confirmWithin: 0 });
    assert.equal(await canConnect(hosts.attacker.name, victimV6, 143), true);
  });

  it("restores managed rules and policies the kernel lost (reboot), leaving others' rules alone", async () => {
    const before = await f.firewall.call("listRules", { parent: inputOf("ipv4"), pageSize: 0, pageToken: "" });
    await f.server.kill("SIGTERM");
    hosts.victim.exec("iptables", ["-F", "INPUT"]);
    hosts.victim.exec("iptables", ["-P", "INPUT", "ACCEPT"]);
    hosts.victim.exec("iptables", ["-A", "INPUT", "-p", "udp", "--dport", "53", "-j", "ACCEPT"]); // someone else's rule
    await f.server.restart();
    const saved = hosts.victim.exec("iptables-save", ["-t", "filter"]);
    assert.match(saved, /^:INPUT DROP/m);
    assert.match(saved, /^-A INPUT -p udp -m udp --dport 53 -j ACCEPT$/m);
    const after = await f.firewallAs("admin").call("listRules", { parent: inputOf("ipv4"), pageSize: 0, pageToken: "" });
    assert.deepEqual(after.rules.filter((r) => r.managed).map((r) => [r.id, r.text]), before.rules.map((r) => [r.id, r.text]), "the same managed rules, same ids, same order");
    assert.deepEqual(after.rules.filter((r) => !r.managed).map((r) => r.text), ["-A INPUT -p udp -m udp --dport 53 -j ACCEPT"]);
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true);
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 999), false);
  });
});

describe("firewall safety: anti-lockout, safe mode, atomicity, stable ids, roles", () => {
  let hosts: VictimAttacker;
  let f: ServerFixture;
  let fw: FirewallTestClient;
  let events: EventTestClient;
  let listener: { stop(): void };
  const save = (): string => hosts.victim.exec("iptables-save", ["-t", "filter"]).replace(/^#.*\n/gm, "").replace(/\[\d+:\d+\]/g, "[0:0]");

  before(async () => {
    hosts = new VictimAttacker();
    f = await startServerFixture(hosts.victim);
    fw = f.firewall;
    events = new EventTestClient(f.server.address, f.server.credentials());
    listener = await listen(hosts.victim.name, 143);
  });
  after(async () => {
    listener?.stop();
    events?.close();
    await f?.close();
    hosts?.destroy();
  });

  /** The newest sequence in the event log: a rollback after it is the one of the change made next. */
  const lastSequence = async (): Promise<number> => (await events.call("listEvents", { afterSequence: Number.MAX_SAFE_INTEGER, pageSize: 1, types: [], resourcePrefix: "", principal: "", jail: "", address: "" })).lastSequence;
  /**
   * Waits for the IPv4 filter table's rollback after `sequence`: its event is recorded once the kernel and the store
   * hold the previous state again. No fixed sleep: a loaded machine's late timer cannot fail the test.
   */
  const rolledBack = (sequence: number): Promise<Event> =>
    waitFor("the safe-mode rollback", async () => (await events.call("listEvents", { afterSequence: sequence, pageSize: 0, types: [EventType.EVENT_TYPE_RULESET_ROLLED_BACK], resourcePrefix: filterOf("ipv4"), principal: "", jail: "", address: "" })).events[0]);
  /** Checks made before a rollback's deadline hold however slow the machine: the server (and its timer) is paused. */
  const beforeRollback = (checks: () => Promise<void>): Promise<void> => f.server.whilePaused(checks);

  it("refuses a policy that would cut the caller off the API, unless allowed in safe mode", async () => {
    const error = await rejectsWith(fw.call("setChainPolicy", { name: inputOf("ipv4"), policy: ChainPolicy.CHAIN_POLICY_DROP, allowLockout: false, confirmWithin: 0 }), status.FAILED_PRECONDITION, "LOCKOUT");
    assert.match(error.details, /would cut 127\.0\.0\.1 off the API .*policy of chain INPUT is DROP/);
    assert.match(save(), /^:INPUT ACCEPT/m);
    // allow_lockout without safe mode is still refused
    await rejectsWith(fw.call("setChainPolicy", { name: inputOf("ipv4"), policy: ChainPolicy.CHAIN_POLICY_DROP, allowLockout: true, confirmWithin: 0 }), status.FAILED_PRECONDITION, "LOCKOUT");
    // A DROP that matches the caller is refused too
    await rejectsWith(fw.call("createRule", { parent: inputOf("ipv4"), rule: rule({ source: { address: "127.0.0.0/8" }, target: drop }), position: 0, allowLockout: false, requestId: "", confirmWithin: 0 }), status.FAILED_PRECONDITION, "LOCKOUT");
    // With safe mode it goes through, and rolls back by itself
    const sequence = await lastSequence();
    await fw.call("setChainPolicy", { name: inputOf("ipv4"), policy: ChainPolicy.CHAIN_POLICY_DROP, allowLockout: true, confirmWithin: 2 });
    await beforeRollback(async () => assert.match(save(), /^:INPUT DROP/m));
    await rolledBack(sequence);
    assert.match(save(), /^:INPUT ACCEPT/m);
  });

  it("safe mode: an unconfirmed ruleset rolls back at the deadline; a confirmed one stays", async () => {
    const before = save();
    const blocking = (confirmWithin: number) => applyRequest({ parent: filterOf("ipv4"), chains: [], rules: [rule({ chain: "INPUT", source: { address: attackerV4 }, target: drop })], confirmWithin, allowLockout: false });
    const sequence = await lastSequence();
    const applied = await fw.call("applyRuleset", blocking(2));
    await beforeRollback(async () => assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false));
    const deadline = applied.rollbackTime!.getTime();
    const rollback = await rolledBack(sequence);
    // Not before the deadline (the server's timer may run a little early against the wall clock, never by seconds).
    assert.ok(rollback.time!.getTime() >= deadline - 500, `rolled back at ${rollback.time!.toISOString()}, deadline ${applied.rollbackTime!.toISOString()}`);
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true, "rolled back");
    assert.equal(save(), before);

    // Confirmed at once (one call, seconds before the deadline): nothing is rolled back, also after the deadline.
    const confirmedAfter = await lastSequence();
    const confirmed = await fw.call("applyRuleset", blocking(5));
    await fw.call("confirmRuleset", { parent: filterOf("ipv4") });
    assert.ok(confirmed.rollbackTime!.getTime() > Date.now(), "confirmed before the deadline");
    await rejectsWith(fw.call("confirmRuleset", { parent: filterOf("ipv4") }), status.FAILED_PRECONDITION, "NO_PENDING_ROLLBACK");
    await sleep(confirmed.rollbackTime!.getTime() - Date.now() + 1000); // past the deadline: a rollback would be due
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false, "confirmed: stays");
    const late = await events.call("listEvents", { afterSequence: confirmedAfter, pageSize: 0, types: [EventType.EVENT_TYPE_RULESET_ROLLED_BACK], resourcePrefix: "", principal: "", jail: "", address: "" });
    assert.deepEqual(late.events, [], "no rollback of a confirmed change");
    await fw.call("applyRuleset", applyRequest({ parent: filterOf("ipv4"), chains: [], rules: [], confirmWithin: 0, allowLockout: false }));
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true);
  });

  it("safe mode rolls back over managed rules that stay: a single added rule, and an apply undone", async () => {
    // A managed rule made for good, which every rollback below must keep (under its id).
    const kept = await fw.call("createRule", { parent: inputOf("ipv4"), rule: rule({ ...tcpPort(25), target: accept }), position: 0, allowLockout: false, requestId: "", confirmWithin: 0 });
    const ids = async (): Promise<string[]> => (await fw.call("listRules", { parent: inputOf("ipv4"), pageSize: 100, pageToken: "" })).rules.map((listed) => `${listed.id} ${listed.managed}`);
    let sequence = await lastSequence();
    await fw.call("createRule", { parent: inputOf("ipv4"), rule: rule({ source: { address: attackerV4 }, target: drop }), position: 1, allowLockout: false, requestId: "", confirmWithin: 2 });
    await beforeRollback(async () => assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false));
    await rolledBack(sequence);
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true, "the single rule rolled back");
    assert.deepEqual(await ids(), [`${kept.id} true`]);

    sequence = await lastSequence();
    await fw.call("applyRuleset", applyRequest({ parent: filterOf("ipv4"), chains: [], rules: [rule({ chain: "INPUT", ...tcpPort(25), target: accept }), rule({ chain: "INPUT", source: { address: attackerV4 }, target: drop })], confirmWithin: 2, allowLockout: false }));
    await beforeRollback(async () => assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false));
    await rolledBack(sequence);
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true, "the apply rolled back");
    assert.deepEqual(await ids(), [`${kept.id} true`], "the kept rule is managed under its id again");
    await rejectsWith(fw.call("confirmRuleset", { parent: filterOf("ipv4") }), status.FAILED_PRECONDITION, "NO_PENDING_ROLLBACK");
    await fw.call("deleteRule", { name: `${inputOf("ipv4")}/rules/${kept.id}`, allowLockout: false, confirmWithin: 0 });
  });

  it("safe mode: the pending rollback survives a server restart", async () => {
    const sequence = await lastSequence();
    await fw.call("applyRuleset", applyRequest({ parent: filterOf("ipv4"), chains: [], rules: [rule({ chain: "INPUT", source: { address: attackerV4 }, target: drop })], confirmWithin: 4, allowLockout: false }));
    await f.server.kill("SIGKILL");
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false);
    await f.server.restart();
    fw = new FirewallTestClient(f.server.address, f.server.credentials());
    events.close();
    events = new EventTestClient(f.server.address, f.server.credentials());
    await rolledBack(sequence);
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true, "rolled back after the restart");
  });

  it("an Apply with one invalid rule changes nothing", async () => {
    await fw.call("applyRuleset", applyRequest({ parent: filterOf("ipv4"), chains: [], rules: [rule({ chain: "INPUT", ...tcpPort(143), target: accept })], confirmWithin: 0, allowLockout: false }));
    const before = save();
    const error = await rejectsWith(fw.call("applyRuleset", applyRequest({
      parent: filterOf("ipv4"), chains: [], confirmWithin: 0, allowLockout: false,
      rules: [rule({ chain: "INPUT", ...tcpPort(25), target: accept }), rule({ chain: "INPUT", ...tcpPort(70000), target: accept })],
    })), status.INVALID_ARGUMENT);
    assert.match(error.details, /rules\[1\]/);
    assert.equal(save(), before);
  });

  it("invalid rules are refused naming the field; nothing reaches the kernel", async () => {
    const before = save();
    const cases: Array<[ReturnType<typeof rule>, RegExp]> = [
      [rule({ source: { address: "192.0.2.0/33" }, target: drop }), /source/],
      [rule({ ...tcpPort(0), target: accept }), /destination_port/],
      [rule({ destinationPort: { ports: [{ first: 80, last: 80 }] }, target: accept }), /destination_port|protocol/],
      [rule({ matchSet: { set: "no-such-set" }, target: drop }), /match_set/],
      [rule({ target: { kind: TargetKind.TARGET_KIND_JUMP, chain: "no-such-chain" } }), /target\.chain/],
      [rule({ source: { address: "2001:db8::1" }, target: drop }), /source/],
    ];
    for (const [bad, field] of cases) {
      const error = await rejectsWith(fw.call("createRule", { parent: inputOf("ipv4"), rule: bad, position: 0, allowLockout: false, requestId: "", confirmWithin: 0 }), status.INVALID_ARGUMENT);
      assert.match(error.details, field);
    }
    assert.equal(save(), before);
  });

  it("a change the kernel itself refuses is reported with its line, recorded nowhere, and the next change works", async () => {
    // An IPv6 set in an IPv4 rule passes our checks (the set exists) but not the kernel's set match (udp: it cannot
    // concern the caller's API connection, so the lockout check lets it through).
    const ipsets = f.clientAs("admin"); // at the server's current address (an earlier test restarted it)
    await ipsets.call("createIpset", { ipsetId: "v6-only", ipset: Ipset.fromPartial({ type: IpsetType.IPSET_TYPE_HASH_IP, family: AddressFamily.ADDRESS_FAMILY_INET6 }), requestId: "" });
    const listed = async (): Promise<string[]> => (await fw.call("listRules", { parent: inputOf("ipv4"), pageSize: 0, pageToken: "" })).rules.map((r) => r.text);
    const before = save();
    const rulesBefore = await listed();
    const refused = await rejectsWith(fw.call("createRule", { parent: inputOf("ipv4"), rule: rule({ protocol: "udp", matchSet: { set: "v6-only" }, target: drop }), position: 0, allowLockout: false, requestId: "", confirmWithin: 0 }), status.INVALID_ARGUMENT, "RULESET_REJECTED");
    assert.match(refused.details, /-p udp -m set --match-set v6-only src -j DROP/, "names the refused line");
    assert.equal(save(), before);
    assert.deepEqual(await listed(), rulesBefore, "not recorded as managed either");
    // The long-lived restore session died with the refusal; the next change starts a new one (twice, to be sure).
    for (const port of [8081, 8082]) {
      const created = await fw.call("createRule", { parent: inputOf("ipv4"), rule: rule({ ...tcpPort(port), target: accept }), position: 0, allowLockout: false, requestId: "", confirmWithin: 0 });
      assert.ok((await listed()).includes(created.text));
      await fw.call("deleteRule", { name: created.name, allowLockout: false, confirmWithin: 0 });
    }
    // A whole-table Apply the kernel refuses changes nothing either.
    const applyRefused = await rejectsWith(fw.call("applyRuleset", applyRequest({
      parent: filterOf("ipv4"), chains: [], confirmWithin: 0, allowLockout: false,
      rules: [rule({ chain: "INPUT", ...tcpPort(25), target: accept }), rule({ chain: "INPUT", protocol: "udp", matchSet: { set: "v6-only" }, target: drop })],
    })), status.INVALID_ARGUMENT, "RULESET_REJECTED");
    assert.match(applyRefused.details, /v6-only/);
    assert.equal(save(), before);
    assert.deepEqual(await listed(), rulesBefore);
    await ipsets.call("deleteIpset", { name: "ipsets/v6-only" });
  });

  it("stable ids: inserting at position 1 moves rules, deleting by id removes the right one", async () => {
    await fw.call("applyRuleset", applyRequest({ parent: filterOf("ipv4"), chains: [], rules: [], confirmWithin: 0, allowLockout: false }));
    const add = async (port: number, position = 0) => (await fw.call("createRule", { parent: inputOf("ipv4"), rule: rule({ ...tcpPort(port), target: accept }), position, allowLockout: false, requestId: "", confirmWithin: 0 })).id;
    const a = await add(1001);
    const b = await add(1002);
    hosts.victim.exec("iptables", ["-A", "INPUT", "-p", "udp", "--dport", "53", "-j", "ACCEPT"]); // not ours
    const listedBefore = await fw.call("listRules", { parent: inputOf("ipv4"), pageSize: 0, pageToken: "" });
    const foreign = listedBefore.rules[2]!;
    assert.equal(foreign.managed, false);
    const d = await add(1004, 1);
    await fw.call("deleteRule", { name: `${inputOf("ipv4")}/rules/${b}`, allowLockout: false, confirmWithin: 0 });
    const listed = await fw.call("listRules", { parent: inputOf("ipv4"), pageSize: 0, pageToken: "" });
    assert.deepEqual(listed.rules.map((r) => [r.id, r.position]), [[d, 1], [a, 2], [foreign.id, 3]]);
    assert.deepEqual(listed.rules.map((r) => r.destinationPort?.ports[0]?.first), [1004, 1001, 53]);
    // Replace keeps the position and gives the new rule a new id.
    const replaced = await fw.call("replaceRule", { name: `${inputOf("ipv4")}/rules/${a}`, rule: rule({ ...tcpPort(1005), target: accept }), allowLockout: false, confirmWithin: 0 });
    assert.notEqual(replaced.id, a);
    const afterReplace = await fw.call("listRules", { parent: inputOf("ipv4"), pageSize: 2, pageToken: "" });
    assert.deepEqual(afterReplace.rules.map((r) => [r.id, r.destinationPort?.ports[0]?.first]), [[d, 1004], [replaced.id, 1005]]);
    const secondPage = await fw.call("listRules", { parent: inputOf("ipv4"), pageSize: 2, pageToken: afterReplace.nextPageToken });
    assert.deepEqual(secondPage.rules.map((r) => r.id), [foreign.id]);
    assert.equal(secondPage.nextPageToken, "");
    // A rule made by another tool keeps its id when others move, and can be deleted by it.
    await fw.call("deleteRule", { name: foreign.name, allowLockout: false, confirmWithin: 0 });
    assert.doesNotMatch(save(), /--dport 53/);
    await rejectsWith(fw.call("deleteRule", { name: `${inputOf("ipv4")}/rules/${b}`, allowLockout: false, confirmWithin: 0 }), status.NOT_FOUND, "RULE_NOT_FOUND");
  });

  it("viewers list rules but cannot change them", async () => {
    await f.server.cli(["certs", "issue", "--name", "watcher", "--role", "viewer"]);
    const viewer = f.firewallAs("watcher");
    assert.ok((await viewer.call("listChains", { parent: filterOf("ipv4") })).chains.some((chain) => chain.name.endsWith("/chains/INPUT")));
    await rejectsWith(viewer.call("createRule", { parent: inputOf("ipv4"), rule: rule({ ...tcpPort(22), target: accept }), position: 0, allowLockout: false, requestId: "", confirmWithin: 0 }), status.PERMISSION_DENIED, "ROLE_REQUIRED");
    await rejectsWith(viewer.call("setChainPolicy", { name: inputOf("ipv4"), policy: ChainPolicy.CHAIN_POLICY_ACCEPT, allowLockout: false, confirmWithin: 0 }), status.PERMISSION_DENIED);
  });

  it("user chains: create, jump to, refuse deleting while referenced", async () => {
    await fw.call("createChain", { parent: filterOf("ipv4"), chainId: "mail-in" });
    const jump = await fw.call("createRule", { parent: inputOf("ipv4"), rule: rule({ target: { kind: TargetKind.TARGET_KIND_JUMP, chain: "mail-in" } }), position: 0, allowLockout: false, requestId: "", confirmWithin: 0 });
    const error = await rejectsWith(fw.call("deleteChain", { name: "firewall/ipv4/tables/filter/chains/mail-in" }), status.FAILED_PRECONDITION, "CHAIN_IN_USE");
    assert.match(error.details, /-A INPUT .*-j mail-in/);
    await fw.call("deleteRule", { name: jump.name, allowLockout: false, confirmWithin: 0 });
    await fw.call("deleteChain", { name: "firewall/ipv4/tables/filter/chains/mail-in" });
    assert.doesNotMatch(save(), /mail-in/);
    await rejectsWith(fw.call("createChain", { parent: "firewall/ipv4/tables/nat", chainId: "x" }), status.FAILED_PRECONDITION, "TABLE_READ_ONLY");
  });

  it("panic mode drops everything but the API from management addresses, and comes back", async () => {
    await fw.call("applyRuleset", applyRequest({ parent: filterOf("ipv4"), chains: [], rules: [rule({ chain: "INPUT", ...tcpPort(143), target: accept })], confirmWithin: 0, allowLockout: false }));
    const before = save();
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true);
    assert.equal((await fw.call("getPanicMode", {})).enabled, false);
    const on = await fw.call("enablePanicMode", {});
    assert.equal(on.enabled, true);
    assert.deepEqual(await fw.call("getPanicMode", {}), on);
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false);
    assert.match(save(), /^:INPUT DROP/m);
    await rejectsWith(fw.call("createRule", { parent: inputOf("ipv4"), rule: rule({ ...tcpPort(22), target: accept }), position: 0, allowLockout: false, requestId: "", confirmWithin: 0 }), status.FAILED_PRECONDITION, "PANIC_MODE");
    const off = await fw.call("disablePanicMode", {});
    assert.equal(off.enabled, false);
    assert.equal((await fw.call("getPanicMode", {})).enabled, false);
    assert.equal(save(), before);
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true);
  });
});
