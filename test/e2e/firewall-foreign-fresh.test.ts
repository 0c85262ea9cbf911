// An ApplyRuleset knows the table Portcullis wrote itself without reading it again (the nftables ruleset generation
// has not moved): a change another tool commits just before the next apply must still be seen, and refused (whole
// table) or kept in place with its counters (managed scope).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { RulesetScope } from "../../server/src/gen/portcullis/v1/firewall.js";
import { Netns } from "../harness/netns.js";
import { canConnect } from "../harness/tcp.js";
import { rejectsWith, type FirewallTestClient } from "../harness/grpc-clients.js";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";
import { rest } from "../harness/rest.js";
import { accept, applyRequest, filterOf, rule, tcpPort, TargetKind } from "../harness/firewall-requests.js";

describe("firewall: another tool's change just before a whole-table apply is seen", () => {
  let netns: Netns;
  let f: ServerFixture;
  let fw: FirewallTestClient;
  const ruleset = applyRequest({
    parent: filterOf("ipv4"),
    chains: [{ name: "pc-web" }],
    rules: [
      rule({ chain: "INPUT", inInterface: { name: "lo" }, target: accept }),
      rule({ chain: "INPUT", ...tcpPort(443), target: { kind: TargetKind.TARGET_KIND_JUMP, chain: "pc-web" } }),
      rule({ chain: "pc-web", ...tcpPort(443), target: accept }),
    ],
  });
  let scrapes = 0;
  /** iptables-save runs so far, but those of the scrapes (the rules gauge reads the table). */
  const saves = async (): Promise<number> => {
    const metrics = (await rest(f.server, "GET", "/metrics")).text;
    scrapes++;
    return Number(/^portcullis_kernel_command_duration_seconds_count\{command="iptables-save"\} (\d+)$/m.exec(metrics)![1]) - scrapes;
  };
  const iptables = (...args: string[]): string => netns.exec("iptables", ["-w", ...args]);
  const restoreNoflush = (text: string): string => netns.exec("iptables-restore", ["--noflush"], text);

  before(async () => {
    netns = new Netns();
    f = await startServerFixture(netns);
    fw = f.firewall;
  });
  after(async () => {
    await f?.close();
    netns?.destroy();
  });

  it("the table Portcullis just wrote is not read again", async () => {
    await fw.call("applyRuleset", ruleset);
    const before = await saves();
    for (let i = 0; i < 3; i++) await fw.call("applyRuleset", ruleset);
    assert.equal(await saves(), before, "no iptables-save while nothing else changed the ruleset");
  });

  // Each change is made by another program right before the apply (the apply is sent as soon as it returned), after
  // an apply that left the table known; each round undoes it and applies again, so every round starts known.
  const changes: ReadonlyArray<{ what: string; make: () => void; undo: () => void; named: RegExp }> = [
    { what: "a rule appended with iptables", make: () => iptables("-A", "INPUT", "-s", "203.0.113.7", "-j", "DROP"), undo: () => iptables("-D", "INPUT", "-s", "203.0.113.7", "-j", "DROP"), named: /INPUT \(1 rule\)/ },
    {
      what: "fail2ban's chain and its jump at the top of INPUT",
      make: () => {
        iptables("-N", "f2b-sshd");
        iptables("-A", "f2b-sshd", "-j", "RETURN");
        iptables("-I", "INPUT", "-p", "tcp", "-m", "multiport", "--dports", "22", "-j", "f2b-sshd");
      },
      undo: () => {
        iptables("-D", "INPUT", "-p", "tcp", "-m", "multiport", "--dports", "22", "-j", "f2b-sshd");
        iptables("-F", "f2b-sshd");
        iptables("-X", "f2b-sshd");
      },
      named: /f2b-sshd \(chain deleted, 1 rule\)/,
    },
    { what: "an empty chain made by iptables-restore --noflush, as Docker makes DOCKER-USER", make: () => restoreNoflush("*filter\n:DOCKER-USER - [0:0]\nCOMMIT\n"), undo: () => iptables("-X", "DOCKER-USER"), named: /DOCKER-USER \(chain deleted, 0 rules\)/ },
    { what: "a rule inserted in Portcullis's own chain", make: () => iptables("-I", "pc-web", "-s", "198.51.100.9", "-j", "DROP"), undo: () => iptables("-D", "pc-web", "-s", "198.51.100.9", "-j", "DROP"), named: /pc-web \(1 rule\)/ },
  ];
  for (const change of changes) {
    it(`${change.what} is refused with FOREIGN_RULES, every time`, async () => {
      for (let round = 0; round < 5; round++) {
        await fw.call("applyRuleset", ruleset);
        const known = await saves();
        await fw.call("applyRuleset", ruleset);
        assert.equal(await saves(), known, "the table was known before the change");
        change.make();
        const kernel = netns.exec("iptables-save", ["-t", "filter"]).replace(/^#.*\n/gm, "");
        const error = await rejectsWith(fw.call("applyRuleset", ruleset), status.FAILED_PRECONDITION, "FOREIGN_RULES");
        assert.match(error.details, change.named);
        assert.equal(netns.exec("iptables-save", ["-t", "filter"]).replace(/^#.*\n/gm, ""), kernel, "nothing changed");
        change.undo();
      }
    });
  }

  it("a change in another table or family makes the table be read again, and the apply goes ahead", async () => {
    await fw.call("applyRuleset", ruleset);
    const before = await saves();
    iptables("-t", "nat", "-N", "DOCKER");
    netns.exec("ip6tables", ["-w", "-A", "INPUT", "-s", "2001:db8::9", "-j", "DROP"]);
    await fw.call("applyRuleset", ruleset);
    assert.equal(await saves(), before + 1, "read once");
    await fw.call("applyRuleset", ruleset);
    assert.equal(await saves(), before + 1, "then known again");
    assert.match(netns.exec("iptables-save", ["-t", "nat"]), /^:DOCKER - /m, "the nat table is not the apply's");
  });
});

// A managed-scope apply puts other tools' rules back, with their counters, into the chains it rewrites. When the
// table is known (nothing committed since Portcullis last wrote it) it reads only those counters instead of the
// whole table: packets move counters without moving the ruleset generation, so they must still be read every time.
describe("firewall: managed-scope applies keep other tools' rules in place, with their counters", () => {
  let netns: Netns;
  let f: ServerFixture;
  let fw: FirewallTestClient;
  let scrapes = 0;
  const saves = async (): Promise<number> => {
    const metrics = (await rest(f.server, "GET", "/metrics")).text;
    scrapes++;
    return Number(/^portcullis_kernel_command_duration_seconds_count\{command="iptables-save"\} (\d+)$/m.exec(metrics)![1]) - scrapes;
  };
  const iptables = (...args: string[]): string => netns.exec("iptables", ["-w", ...args]);
  /** The filter table with counters, without comments. */
  const counted = (): string => netns.exec("iptables-save", ["-c", "-t", "filter"]).replace(/^#.*\n/gm, "");
  /** INPUT's policy counters and the lines of INPUT, f2b-sshd and FORWARD that are not Portcullis's, with counters, in order. */
  const foreign = (): string[] => counted().split("\n").filter((line) => /^:INPUT |-A (INPUT|FORWARD|f2b-sshd) /.test(line) && !/pc-web|--dport (443|8443) /.test(line));
  /** Two managed rulesets used in turn, so that every apply rewrites INPUT. */
  const rulesets = [443, 8443].map((port) => applyRequest({
    parent: filterOf("ipv4"),
    chains: [{ name: "pc-web" }],
    rules: [
      rule({ chain: "INPUT", ...tcpPort(port), target: { kind: TargetKind.TARGET_KIND_JUMP, chain: "pc-web" } }),
      rule({ chain: "pc-web", ...tcpPort(port), target: accept }),
    ],
    scope: RulesetScope.RULESET_SCOPE_MANAGED,
  }));
  let turn = 0;
  const managedApply = () => fw.call("applyRuleset", rulesets[turn++ % 2]!);
  /** Packets through INPUT: a connect to a closed port passes fail2ban's jump (port 22) or meets the policy. */
  const traffic = async (port: number, times: number): Promise<void> => {
    for (let i = 0; i < times; i++) await canConnect(netns.name, "127.0.0.1", port, 200);
  };

  before(async () => {
    netns = new Netns();
    netns.exec("ip", ["link", "set", "lo", "up"]);
    f = await startServerFixture(netns);
    fw = f.firewall;
    // fail2ban's chain and jump on top of INPUT, Docker's jump in FORWARD, with counters of their own.
    netns.exec("iptables-restore", ["--noflush", "--counters"], "*filter\n:f2b-sshd - [0:0]\n:DOCKER-USER - [0:0]\n[3:180] -A f2b-sshd -j RETURN\n[4:240] -A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd\n[9:900] -A FORWARD -j DOCKER-USER\nCOMMIT\n");
  });
  after(async () => {
    await f?.close();
    netns?.destroy();
  });

  it("reads no table while nothing else changed, and every apply keeps the counters packets moved since", async () => {
    await managedApply();
    await managedApply();
    const known = await saves();
    for (let round = 0; round < 4; round++) {
      await traffic(22, 2);
      await traffic(25, 1);
      const before = foreign();
      assert.match(before.join("\n"), /^\[[1-9]\d*:\d+\] -A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd$/m, "the jump counted packets");
      const answer = await managedApply();
      assert.deepEqual(foreign(), before, "foreign rules and INPUT's policy counters as they were");
      const input = answer.chains.find((chain) => chain.name.endsWith("/chains/INPUT"))!;
      assert.equal(`:INPUT ACCEPT [${input.packets}:${input.bytes}]`, before[0], "the answer has INPUT's policy counters");
      assert.match(counted(), /^\[\d+:\d+\] -A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd\n\[0:0\] -A INPUT -p tcp -m tcp --dport (443|8443) -j pc-web$/m, "the jump still on top");
    }
    assert.equal(await saves(), known, "no iptables-save");
  });

  // Each made by another program right after an apply left the table known, each with counters of its own.
  const changes: ReadonlyArray<{ what: string; make: () => void; undo: () => void }> = [
    { what: "a rule inserted between fail2ban's jump and the managed rules", make: () => iptables("-I", "INPUT", "2", "-c", "5", "500", "-s", "203.0.113.7", "-j", "DROP"), undo: () => iptables("-D", "INPUT", "-s", "203.0.113.7", "-j", "DROP") },
    { what: "a rule appended after the managed rules", make: () => iptables("-A", "INPUT", "-c", "7", "700", "-s", "203.0.113.8", "-j", "DROP"), undo: () => iptables("-D", "INPUT", "-s", "203.0.113.8", "-j", "DROP") },
    { what: "a rule inserted on top of INPUT", make: () => iptables("-I", "INPUT", "-c", "11", "1100", "-s", "203.0.113.9", "-j", "REJECT"), undo: () => iptables("-D", "INPUT", "-s", "203.0.113.9", "-j", "REJECT") },
    // As many rules as before: only the generation tells that the table changed.
    { what: "fail2ban's jump replaced by another rule in its place", make: () => iptables("-R", "INPUT", "1", "-c", "13", "1300", "-p", "tcp", "--dport", "2222", "-j", "f2b-sshd"), undo: () => iptables("-R", "INPUT", "1", "-p", "tcp", "-m", "multiport", "--dports", "22", "-j", "f2b-sshd") },
    { what: "fail2ban's jump taken out", make: () => iptables("-D", "INPUT", "-p", "tcp", "-m", "multiport", "--dports", "22", "-j", "f2b-sshd"), undo: () => iptables("-I", "INPUT", "-p", "tcp", "-m", "multiport", "--dports", "22", "-j", "f2b-sshd") },
  ];
  for (const change of changes) {
    it(`${change.what} right before a managed-scope apply stays where it is, with its counters, every time`, async () => {
      for (let round = 0; round < 4; round++) {
        await managedApply();
        const known = await saves();
        await managedApply();
        assert.equal(await saves(), known, "the table was known before the change");
        change.make();
        await traffic(22, 1);
        const before = foreign();
        await managedApply();
        assert.deepEqual(foreign(), before, "every foreign line as it was, where it was, with its counters");
        change.undo();
      }
    });
  }
});

describe("firewall: a whole-table apply that repeats another tool's rules leaves them that tool's", () => {
  let netns: Netns;
  let f: ServerFixture;
  let fw: FirewallTestClient;
  const DROP_LINE = "-A INPUT -s 203.0.113.7/32 -j DROP";
  const managedOf = async (): Promise<Array<[string, boolean]>> => (await fw.call("exportRuleset", { parent: filterOf("ipv4") })).rules.map((r) => [r.text, r.managed]);

  before(async () => {
    netns = new Netns();
    f = await startServerFixture(netns);
    fw = f.firewall;
    netns.exec("iptables", ["-w", "-A", "INPUT", "-s", "203.0.113.7", "-j", "DROP"]);
  });
  after(async () => {
    await f?.close();
    netns?.destroy();
  });

  it("stays listed as not managed, and a managed-scope apply after it keeps it in the kernel", async () => {
    // As an apply built from an export does: the other tool's rule written again, where it is.
    await fw.call("applyRuleset", applyRequest({
      parent: filterOf("ipv4"),
      chains: [],
      rules: [rule({ chain: "INPUT", source: { address: "203.0.113.7" }, target: { kind: TargetKind.TARGET_KIND_DROP } }), rule({ chain: "INPUT", ...tcpPort(25), target: accept })],
    }));
    assert.deepEqual(await managedOf(), [[DROP_LINE, false], ["-A INPUT -p tcp -m tcp --dport 25 -j ACCEPT", true]]);
    // Right after, with the table as this apply left it: the managed scope replaces the managed rule only.
    await fw.call("applyRuleset", applyRequest({ parent: filterOf("ipv4"), chains: [], rules: [rule({ chain: "INPUT", ...tcpPort(587), target: accept })], scope: RulesetScope.RULESET_SCOPE_MANAGED }));
    assert.deepEqual(netns.exec("iptables", ["-S", "INPUT"]).trim().split("\n").slice(1), [DROP_LINE, "-A INPUT -p tcp -m tcp --dport 587 -j ACCEPT"]);
    assert.deepEqual(await managedOf(), [[DROP_LINE, false], ["-A INPUT -p tcp -m tcp --dport 587 -j ACCEPT", true]]);
  });
});
