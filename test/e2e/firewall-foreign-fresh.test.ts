// A whole-table ApplyRuleset knows the table it wrote itself without reading it again (the nftables ruleset generation
// has not moved): a change another tool commits just before the next apply must still be seen, and refused.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { Netns } from "../harness/netns.js";
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
