import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { status } from "@grpc/grpc-js";
import { RulesetScope, type ApplyRulesetRequest } from "../../server/src/gen/portcullis/v1/firewall.js";
import { Netns, VictimAttacker } from "../harness/netns.js";
import { canConnect, listen } from "../harness/tcp.js";
import { EventType } from "../../server/src/gen/portcullis/v1/events.js";
import { EventTestClient, rejectsWith, type FirewallTestClient } from "../harness/grpc-clients.js";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";
import { rest } from "../harness/rest.js";
import { accept, applyRequest, drop, filterOf, rule, tcpPort, TargetKind } from "../harness/firewall-requests.js";
import { waitFor } from "../harness/wait.js";

const BIN = resolve(import.meta.dirname, "../../server/bin/portcullis");
const { victimV4, attackerV4 } = VictimAttacker;
/** The "container" network behind the victim's docker0, as dockerd's default bridge would be (TEST-NET-2 here). */
const BRIDGE = "198.51.100.1";
const CONTAINER = "198.51.100.2";
const PUBLISHED = 8080;

/**
 * What dockerd (28, iptables backend) runs for its default bridge and one container publishing port 80 as 8080, one
 * iptables command at a time, in its order; then fail2ban's stock iptables-multiport action for sshd.
 */
const NEIGHBOURS: ReadonlyArray<readonly string[]> = [
  ["-t", "nat", "-N", "DOCKER"],
  ["-t", "filter", "-N", "DOCKER"],
  ["-t", "filter", "-N", "DOCKER-FORWARD"],
  ["-t", "filter", "-N", "DOCKER-BRIDGE"],
  ["-t", "filter", "-N", "DOCKER-CT"],
  ["-t", "filter", "-N", "DOCKER-ISOLATION-STAGE-1"],
  ["-t", "filter", "-N", "DOCKER-ISOLATION-STAGE-2"],
  ["-t", "filter", "-N", "DOCKER-USER"],
  ["-t", "filter", "-P", "FORWARD", "DROP"],
  ["-t", "nat", "-A", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "DOCKER"],
  ["-t", "nat", "-A", "OUTPUT", "!", "-d", "127.0.0.0/8", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "DOCKER"],
  ["-t", "filter", "-I", "FORWARD", "-j", "DOCKER-FORWARD"],
  ["-t", "filter", "-I", "FORWARD", "-j", "DOCKER-USER"],
  ["-t", "filter", "-A", "DOCKER-FORWARD", "-j", "DOCKER-CT"],
  ["-t", "filter", "-A", "DOCKER-FORWARD", "-j", "DOCKER-ISOLATION-STAGE-1"],
  ["-t", "filter", "-A", "DOCKER-FORWARD", "-j", "DOCKER-BRIDGE"],
  ["-t", "nat", "-A", "POSTROUTING", "-s", "198.51.100.0/24", "!", "-o", "docker0", "-j", "MASQUERADE"],
  ["-t", "nat", "-I", "DOCKER", "-i", "docker0", "-j", "RETURN"],
  ["-t", "filter", "-A", "DOCKER-FORWARD", "-i", "docker0", "-j", "ACCEPT"],
  ["-t", "filter", "-A", "DOCKER-BRIDGE", "-o", "docker0", "-j", "DOCKER"],
  ["-t", "filter", "-A", "DOCKER-CT", "-o", "docker0", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"],
  ["-t", "filter", "-A", "DOCKER-ISOLATION-STAGE-1", "-i", "docker0", "!", "-o", "docker0", "-j", "DOCKER-ISOLATION-STAGE-2"],
  ["-t", "filter", "-A", "DOCKER-ISOLATION-STAGE-2", "-o", "docker0", "-j", "DROP"],
  ["-t", "filter", "-A", "DOCKER", "!", "-i", "docker0", "-o", "docker0", "-j", "DROP"],
  // `docker run -p 8080:80`
  ["-t", "filter", "-I", "DOCKER", "-d", `${CONTAINER}/32`, "!", "-i", "docker0", "-o", "docker0", "-p", "tcp", "-m", "tcp", "--dport", "80", "-j", "ACCEPT"],
  ["-t", "nat", "-A", "DOCKER", "!", "-i", "docker0", "-p", "tcp", "-m", "tcp", "--dport", String(PUBLISHED), "-j", "DNAT", "--to-destination", `${CONTAINER}:80`],
  // fail2ban, actionstart of iptables-multiport for [sshd], then a ban
  ["-t", "filter", "-N", "f2b-sshd"],
  ["-t", "filter", "-A", "f2b-sshd", "-j", "RETURN"],
  ["-t", "filter", "-I", "INPUT", "-p", "tcp", "-m", "multiport", "--dports", "22", "-j", "f2b-sshd"],
  ["-t", "filter", "-I", "f2b-sshd", "1", "-s", "203.0.113.9", "-j", "REJECT", "--reject-with", "icmp-port-unreachable"],
];

describe("firewall: neighbours' rules (Docker, fail2ban) are never clobbered", () => {
  let hosts: VictimAttacker;
  let container: Netns;
  let f: ServerFixture;
  let fw: FirewallTestClient;
  const listeners: Array<{ stop(): void }> = [];
  /** A table as iptables-save prints it, without comments and counters (packets move them). */
  const save = (table: string): string => hosts.victim.exec("iptables-save", ["-t", table]).replace(/^#.*\n/gm, "").replace(/\[\d+:\d+\]/g, "[0:0]");
  /** Every line of the neighbours' chains and rules (both tables), as iptables-save prints them, in order. */
  const foreign = (): string => [...save("nat").split("\n"), ...save("filter").split("\n").filter((line) => /DOCKER|f2b-/.test(line))].join("\n");
  const input = (): string[] => save("filter").split("\n").filter((line) => line.startsWith("-A INPUT "));
  const throughDnat = (): Promise<boolean> => canConnect(hosts.attacker.name, victimV4, PUBLISHED);
  const managed = async (): Promise<string[]> => (await fw.call("exportRuleset", { parent: filterOf("ipv4") })).rules.filter((r) => r.managed).map((r) => `${r.id} ${r.text}`);
  const managedApply = (rules: ApplyRulesetRequest["rules"], extra: Partial<ApplyRulesetRequest> = {}): ApplyRulesetRequest =>
    applyRequest({ parent: filterOf("ipv4"), chains: [{ name: "pc-mail" }], rules, scope: RulesetScope.RULESET_SCOPE_MANAGED, ...extra });
  const base = [
    rule({ chain: "INPUT", inInterface: { name: "lo" }, target: accept, comment: "api access" }),
    rule({ chain: "INPUT", ...tcpPort(143), target: { kind: TargetKind.TARGET_KIND_JUMP, chain: "pc-mail" } }),
    rule({ chain: "pc-mail", ...tcpPort(143), target: accept }),
    rule({ chain: "FORWARD", source: { address: "203.0.113.0/24" }, target: drop }),
  ];
  let baseline: string;

  before(async () => {
    hosts = new VictimAttacker();
    container = new Netns();
    try {
      // docker0 in the victim (the host), its peer in the container namespace, routed and NATed by the victim.
      hosts.victim.exec("ip", ["link", "add", "docker0", "type", "veth", "peer", "name", "eth0", "netns", container.name]);
      hosts.victim.exec("ip", ["addr", "add", `${BRIDGE}/24`, "dev", "docker0"]);
      hosts.victim.exec("ip", ["link", "set", "docker0", "up"]);
      hosts.victim.exec("sysctl", ["-q", "-w", "net.ipv4.ip_forward=1"]);
      container.exec("ip", ["addr", "add", `${CONTAINER}/24`, "dev", "eth0"]);
      container.exec("ip", ["link", "set", "eth0", "up"]);
      container.exec("ip", ["route", "add", "default", "via", BRIDGE]);
      hosts.attacker.exec("ip", ["route", "add", "198.51.100.0/24", "via", victimV4]);
      for (const args of NEIGHBOURS) hosts.victim.exec("iptables", ["-w", ...args]);
      listeners.push(await listen(container.name, 80), await listen(hosts.victim.name, 143));
      f = await startServerFixture(hosts.victim);
      fw = f.firewall;
    } catch (error) {
      container.destroy();
      hosts.destroy();
      throw error;
    }
    baseline = foreign();
    assert.equal(await throughDnat(), true, "the published port reaches the container through Docker's DNAT");
  });
  after(async () => {
    for (const listener of listeners) listener.stop();
    await f?.close();
    container?.destroy();
    hosts?.destroy();
  });

  it("lists the neighbours' rules as not managed, and single creates leave them as they are", async () => {
    const listed = await fw.call("exportRuleset", { parent: filterOf("ipv4") });
    assert.ok(listed.rules.length >= 15 && listed.rules.every((r) => !r.managed));
    await fw.call("createChain", { parent: filterOf("ipv4"), chainId: "pc-mail" });
    for (const r of base) await fw.call("createRule", { parent: `${filterOf("ipv4")}/chains/${r.chain}`, rule: r, position: 0, allowLockout: false, requestId: "", confirmWithin: 0 });
    assert.equal(foreign(), baseline);
    assert.match(input()[0]!, /-j f2b-sshd$/, "fail2ban's jump stays first in INPUT");
    assert.equal(await throughDnat(), true);
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true);
  });

  it("a whole-table apply that would remove them is refused, naming the chains; its dry run lists them", async () => {
    const before = save("filter");
    const whole = applyRequest({ parent: filterOf("ipv4"), chains: [{ name: "pc-mail" }], rules: base });
    const error = await rejectsWith(fw.call("applyRuleset", whole), status.FAILED_PRECONDITION, "FOREIGN_RULES");
    assert.match(error.details, /DOCKER \(chain deleted, 2 rules\)/);
    assert.match(error.details, /FORWARD \(2 rules\)/);
    assert.match(error.details, /f2b-sshd \(chain deleted, 2 rules\)/);
    assert.match(error.details, /scope MANAGED|replace_foreign/);
    assert.equal(save("filter"), before, "nothing changed");

    const dry = await fw.call("applyRuleset", { ...whole, dryRun: true });
    assert.ok(dry.diff!.foreignRemoved.includes("-A FORWARD -j DOCKER-USER"));
    assert.ok(dry.diff!.chainsDeleted.includes("DOCKER-USER"));
    assert.deepEqual(dry.diff!.foreignKept, []);
    assert.equal(dry.diff!.unchanged, base.length);
    assert.equal(save("filter"), before, "a dry run changes nothing");
  });

  it("a managed-scope apply replaces only the managed rules, in one transaction; its dry run says what it changes", async () => {
    const next = [
      base[0]!,
      rule({ chain: "INPUT", ...tcpPort(25), target: accept }),
      base[1]!,
      base[2]!,
      rule({ chain: "FORWARD", source: { address: "203.0.113.0/25" }, target: drop }),
    ];
    const dry = await fw.call("applyRuleset", managedApply(next, { dryRun: true }));
    assert.deepEqual(dry.diff!.added, ["-A INPUT -p tcp -m tcp --dport 25 -j ACCEPT"]);
    assert.deepEqual(dry.diff!.changed, [{ before: "-A FORWARD -s 203.0.113.0/24 -j DROP", after: "-A FORWARD -s 203.0.113.0/25 -j DROP" }]);
    assert.deepEqual(dry.diff!.removed, []);
    assert.equal(dry.diff!.unchanged, 3);
    assert.deepEqual(dry.diff!.foreignRemoved, []);
    assert.ok(dry.diff!.foreignKept.includes("-A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd"));

    const applied = await fw.call("applyRuleset", managedApply(next));
    assert.equal(applied.ruleCount, 5);
    assert.equal(foreign(), baseline);
    assert.deepEqual(input(), [
      "-A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd",
      '-A INPUT -i lo -m comment --comment "api access" -j ACCEPT',
      "-A INPUT -p tcp -m tcp --dport 25 -j ACCEPT",
      "-A INPUT -p tcp -m tcp --dport 143 -j pc-mail",
    ], "fail2ban's jump first, as it was; then the managed rules in their order");
    const forward = save("filter").split("\n").filter((line) => line.startsWith("-A FORWARD "));
    assert.deepEqual(forward, ["-A FORWARD -j DOCKER-USER", "-A FORWARD -j DOCKER-FORWARD", "-A FORWARD -s 203.0.113.0/25 -j DROP"]);
    assert.equal(await throughDnat(), true);
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true);
  });

  it("dry runs over REST and the CLI, and the CLI's whole-table apply refused with its exit code", async () => {
    const path = "/v1/firewall/ipv4/tables/filter:apply";
    const body = {
      chains: [{ name: "pc-mail" }],
      rules: [{ chain: "INPUT", protocol: "tcp", destinationPort: { ports: [{ first: 993, last: 993 }] }, target: { kind: "TARGET_KIND_ACCEPT" } }],
    };
    const dry = await rest(f.server, "POST", path, { ...body, scope: "RULESET_SCOPE_MANAGED", dryRun: true });
    assert.equal(dry.status, 200, dry.text);
    assert.deepEqual(dry.json.diff.changed, [{ before: '-A INPUT -i lo -m comment --comment "api access" -j ACCEPT', after: "-A INPUT -p tcp -m tcp --dport 993 -j ACCEPT" }]);
    assert.equal(dry.json.diff.removed.length, 4);
    assert.deepEqual(dry.json.diff.foreignRemoved ?? [], []);
    const refused = await rest(f.server, "POST", path, body);
    assert.equal(refused.status, 400);
    assert.equal(refused.json.reason, "FOREIGN_RULES");
    assert.match(refused.json.detail, /DOCKER-FORWARD \(chain deleted, 4 rules\)/);

    const scratch = mkdtempSync(join(tmpdir(), "pc-foreign-"));
    try {
      const file = join(scratch, "ruleset.json");
      writeFileSync(file, JSON.stringify({ chains: [{ name: "pc-mail" }], rules: [{ chain: "INPUT", protocol: "tcp", destinationPorts: [993], target: "ACCEPT" }] }));
      const portcullis = (args: string[]): { code: number; stdout: string; stderr: string } => {
        const result = spawnSync(BIN, args, { encoding: "utf8", env: { ...process.env, PORTCULLIS_ADDRESS: f.server.address, PORTCULLIS_BUNDLE: join(f.server.dataDir, "pki/clients/admin") } });
        return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
      };
      const cli = (args: string[]): { code: number; stdout: string; stderr: string } => portcullis(["rules", "apply", file, ...args]);
      // The managed rules exported and applied back with scope MANAGED: nothing to change.
      const exported = portcullis(["rules", "export", "--json", "--managed"]);
      assert.equal(exported.code, 0, exported.stderr);
      assert.deepEqual(JSON.parse(exported.stdout).chains.map((chain: { name: string }) => chain.name), ["INPUT", "FORWARD", "OUTPUT", "pc-mail"]);
      const roundTrip = join(scratch, "managed.json");
      writeFileSync(roundTrip, exported.stdout);
      const unchanged = portcullis(["rules", "apply", roundTrip, "--managed", "--dry-run"]);
      assert.match(unchanged.stdout, /^dry run, nothing applied: 0 added, 0 removed, 0 changed, 5 unchanged; rules of other tools: 15 kept, 0 removed$/m);
      const managedDry = cli(["--managed", "--dry-run"]);
      assert.equal(managedDry.code, 0, managedDry.stderr);
      assert.match(managedDry.stdout, /^~ -A INPUT -i lo .*\n {2}-A INPUT -p tcp -m tcp --dport 993 -j ACCEPT$/m);
      assert.match(managedDry.stdout, /dry run, nothing applied: 0 added, 4 removed, 1 changed, 0 unchanged; rules of other tools: 15 kept, 0 removed/);
      const wholeDry = cli(["--dry-run"]);
      assert.match(wholeDry.stdout, /^! -A FORWARD -j DOCKER-USER$/m);
      assert.match(wholeDry.stdout, /the apply would be refused \(FOREIGN_RULES\)/);
      const whole = cli([]);
      assert.equal(whole.code, 4, "FAILED_PRECONDITION's exit code (conflict)");
      assert.match(whole.stderr, /FOREIGN_RULES/);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
    assert.equal(foreign(), baseline);
    assert.equal(await throughDnat(), true);
  });

  it("a safe-mode rollback puts the managed rules back and keeps Docker's, even those added meanwhile", async () => {
    const before = await managed();
    const events = new EventTestClient(f.server.address, f.server.credentials());
    let withNewContainer = "";
    try {
      const sequence = (await events.call("listEvents", { afterSequence: Number.MAX_SAFE_INTEGER, pageSize: 1, types: [], resourcePrefix: "", principal: "", jail: "", address: "" })).lastSequence;
      await fw.call("applyRuleset", managedApply([base[0]!, rule({ chain: "INPUT", source: { address: attackerV4 }, target: drop }), base[1]!, base[2]!], { confirmWithin: 2 }));
      // With the server paused, its rollback cannot come before these checks and Docker's change, however slow the machine.
      await f.server.whilePaused(async () => {
        assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false);
        assert.equal(foreign(), baseline);
        // `docker run -p 8081:80` while the change waits for its confirmation
        hosts.victim.exec("iptables", ["-w", "-t", "filter", "-I", "DOCKER", "-d", `${CONTAINER}/32`, "!", "-i", "docker0", "-o", "docker0", "-p", "tcp", "-m", "tcp", "--dport", "81", "-j", "ACCEPT"]);
        withNewContainer = foreign();
      });
      await waitFor("the safe-mode rollback", async () => (await events.call("listEvents", { afterSequence: sequence, pageSize: 0, types: [EventType.EVENT_TYPE_RULESET_ROLLED_BACK], resourcePrefix: filterOf("ipv4"), principal: "", jail: "", address: "" })).events.length > 0);
    } finally {
      events.close();
    }
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true, "rolled back");
    assert.deepEqual(await managed(), before, "the managed rules as they were, same ids");
    assert.equal(foreign(), withNewContainer, "Docker's rules, the one added during the window too");
    assert.match(input()[0]!, /-j f2b-sshd$/);
    hosts.victim.exec("iptables", ["-w", "-t", "filter", "-D", "DOCKER", "-d", `${CONTAINER}/32`, "!", "-i", "docker0", "-o", "docker0", "-p", "tcp", "-m", "tcp", "--dport", "81", "-j", "ACCEPT"]);
    assert.equal(foreign(), baseline);
    assert.equal(await throughDnat(), true);
  });

  it("panic mode drops everything, then gives every rule back exactly as it was", async () => {
    const filterBefore = save("filter");
    await fw.call("enablePanicMode", {});
    assert.equal(await throughDnat(), false, "panic: nothing reaches the container");
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false);
    assert.equal(foreign(), baseline, "panic removes or moves none of them");
    await fw.call("disablePanicMode", {});
    assert.equal(save("filter"), filterBefore, "the filter table is back as it was, line for line");
    assert.equal(foreign(), baseline);
    assert.equal(await throughDnat(), true);
  });

  it("a restart reconciles lost managed rules without touching the neighbours'", async () => {
    const before = await managed();
    await f.server.kill("SIGTERM");
    hosts.victim.exec("iptables", ["-w", "-D", "INPUT", "-p", "tcp", "-m", "tcp", "--dport", "25", "-j", "ACCEPT"]); // lost
    await f.server.restart();
    fw = f.firewallAs("admin");
    const repaired = await managed();
    assert.deepEqual(repaired.map((line) => line.split(" ")[0]).sort(), before.map((line) => line.split(" ")[0]).sort(), "every managed rule is back");
    assert.equal(foreign(), baseline);
    assert.match(input()[0]!, /-j f2b-sshd$/);
    assert.equal(await throughDnat(), true);
  });

  it("replace_foreign replaces them, when asked for", async () => {
    const applied = await fw.call("applyRuleset", applyRequest({ parent: filterOf("ipv4"), chains: [{ name: "pc-mail" }], rules: base, replaceForeign: true }));
    assert.equal(applied.ruleCount, base.length);
    assert.doesNotMatch(save("filter"), /DOCKER|f2b-/);
    assert.match(save("nat"), /DNAT --to-destination 198\.51\.100\.2:80/, "the nat table is never written");
    assert.equal(input().length, 2);
  });
});
