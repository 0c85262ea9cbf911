import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { expectError } from "./helpers/expect-error.js";
import { parseIptablesSave, parseRuleLine, unmanagedRuleId } from "../../server/src/drivers/parse/iptables-save.js";
import { renderRule, renderRuleLine, renderTable } from "../../server/src/drivers/iptables-render.js";
import { validateRuleSpec } from "../../server/src/firewall/rule-validation.js";
import { identifyRules } from "../../server/src/firewall/rule-identity.js";
import type { Family, ParsedRule, ParsedTable, RuleSpec } from "../../server/src/firewall/rule-model.js";
import { MAIL_CHAINS, MAIL_RULES, RENDERED_V4, RENDERED_V6, type FixtureRule } from "./fixtures/iptables-rules.js";

// Real output of iptables 1.8.9 (nf_tables), captured in network namespaces by fixtures/capture-iptables.ts; the
// commands that built each dump are in its header.
const fixture = (name: string): string => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8");
const tableOf = (text: string, name: string): ParsedTable => {
  const table = parseIptablesSave(text).find((candidate) => candidate.name === name);
  assert.ok(table !== undefined, `table ${name}`);
  return table;
};
const rulesOf = (table: ParsedTable, chain: string): ParsedRule[] => table.rules.filter((rule) => rule.chain === chain);
const ruleAt = (table: ParsedTable, chain: string, position: number): ParsedRule => {
  const rule = rulesOf(table, chain)[position - 1];
  assert.ok(rule !== undefined, `${chain} rule ${position}`);
  return rule;
};
const summary = (rules: readonly ParsedRule[]): Array<[string, boolean]> => rules.map((rule) => [rule.text, rule.modeled]);
const ports = (...list: Array<number | [number, number]>) => ({
  ports: list.map((port) => (typeof port === "number" ? { first: port, last: port } : { first: port[0], last: port[1] })),
  negate: false,
});

/** The rendered rules must be the first rules of their chains in the dump, as text and as parsed specs. */
function assertRenderedMatchDump(family: Family, rules: readonly FixtureRule[], table: ParsedTable): void {
  for (const chain of new Set(rules.map((rule) => rule.chain))) {
    const dumped = rulesOf(table, chain);
    for (const [i, rule] of rules.filter((candidate) => candidate.chain === chain).entries()) {
      const spec = validateRuleSpec(family, rule.spec, rule.chain);
      const parsed = dumped[i];
      assert.ok(parsed !== undefined, `${chain} rule ${i + 1} missing from the dump`);
      assert.equal(renderRuleLine(rule.chain, spec), parsed.text);
      assert.deepEqual(parsed.spec, spec, parsed.text);
      assert.equal(parsed.key, parsed.text, "a rendered rule is recognised by its canonical line");
      assert.equal(parsed.modeled, true, parsed.text);
      assert.equal(parsed.position, i + 1);
    }
  }
}

describe("rendering matches what the kernel prints back", () => {
  it("iptables: every rendered rule is printed as exactly the text we rendered, and parses to the same spec", () => {
    const table = tableOf(fixture("iptables-rendered.txt"), "filter");
    assert.equal(table.rules.length, RENDERED_V4.length);
    assertRenderedMatchDump("ipv4", RENDERED_V4, table);
  });

  it("ip6tables: the same, next to rules made by ip6tables itself", () => {
    const table = tableOf(fixture("ip6tables-rendered.txt"), "filter");
    assertRenderedMatchDump("ipv6", RENDERED_V6, table);
    const foreign = rulesOf(table, "INPUT").slice(RENDERED_V6.filter((rule) => rule.chain === "INPUT").length);
    assert.deepEqual(summary(foreign), [
      ["-A INPUT -s 2001:db8::/32 -p udp -m udp --sport 53 -j ACCEPT", true],
      ["-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 128 -j ACCEPT", false],
      ["-A INPUT -m hl --hl-eq 255 -j ACCEPT", false],
    ]);
    assert.deepEqual(foreign[0]?.spec, {
      source: { address: "2001:db8::/32", negate: false }, protocol: "udp", sourcePort: ports(53), target: { kind: "ACCEPT" },
    });
    assert.deepEqual(foreign[1]?.spec, { protocol: "ipv6-icmp", target: { kind: "ACCEPT" } });
    assert.deepEqual(summary(rulesOf(table, "OUTPUT")), [["-A OUTPUT -m rt --rt-type 0 -j DROP", false]]);
  });

  it("renderTable gives the mail server's table exactly as iptables-save printed it after iptables-restore", () => {
    const rules = MAIL_RULES.map((rule) => ({ ...rule, spec: validateRuleSpec("ipv4", rule.spec, rule.chain) }));
    const rendered = renderTable("filter", MAIL_CHAINS, rules);
    const dumped = fixture("iptables-mail.txt").split("\n")
      .filter((line) => line !== "" && !line.startsWith("#"))
      .map((line) => line.replace(/^\[\d+:\d+\] /, "").replace(/ \[\d+:\d+\]$/, " [0:0]"));
    assert.equal(rendered, `${dumped.join("\n")}\n`);
  });

  it("parse(render(x)) round-trips without the kernel too", () => {
    const rules = RENDERED_V4.map((rule) => ({ ...rule, spec: validateRuleSpec("ipv4", rule.spec) }));
    const table = tableOf(renderTable("filter", [{ name: "pc-chain" }], rules), "filter");
    assert.deepEqual(table.rules.map((rule) => [rule.chain, rule.spec, rule.modeled]),
      rules.map((rule) => [rule.chain, rule.spec, true]));
  });

  it("renderRule returns the unquoted arguments after -A CHAIN, in the canonical order", () => {
    const spec = validateRuleSpec("ipv4", {
      source: { address: "192.0.2.0/24", negate: true }, destination: { address: "198.51.100.1", negate: false },
      inInterface: { name: "eth0", negate: false }, outInterface: { name: "eth1", negate: false },
      protocol: "tcp", sourcePort: ports(1, 2), destinationPort: ports(443),
      matchSet: { set: "allow", directions: ["src"], negate: false }, states: ["NEW"], comment: "web in", target: { kind: "ACCEPT" },
    });
    assert.deepEqual(renderRule("FORWARD", spec), [
      "!", "-s", "192.0.2.0/24", "-d", "198.51.100.1/32", "-i", "eth0", "-o", "eth1", "-p", "tcp",
      "-m", "tcp", "--dport", "443", "-m", "multiport", "--sports", "1,2", "-m", "set", "--match-set", "allow", "src",
      "-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "web in",
      "-j", "ACCEPT",
    ]);
    assert.equal(renderRuleLine("INPUT", { target: { kind: "LOG", prefix: `it's \\ ok` } }), `-A INPUT -j LOG --log-prefix "it\\'s \\\\ ok"`);
  });
});

describe("parseRuleLine: a stored canonical line gives back its spec (ApplyRuleset stores lines)", () => {
  it("every fixture rule, ipv4 and ipv6, parses back to exactly its normalized spec", () => {
    for (const [family, rules] of [["ipv4", RENDERED_V4], ["ipv6", RENDERED_V6], ["ipv4", MAIL_RULES]] as const) {
      for (const rule of rules) {
        const spec = validateRuleSpec(family, rule.spec);
        assert.deepEqual(parseRuleLine(renderRuleLine(rule.chain, spec)), { chain: rule.chain, spec }, renderRuleLine(rule.chain, spec));
      }
    }
  });

  it("a jump to a user chain stays a jump (the line alone cannot say the chain exists)", () => {
    const spec = validateRuleSpec("ipv4", { protocol: "tcp", target: { kind: "JUMP", chain: "f2b-sshd", goto: false } });
    assert.deepEqual(parseRuleLine(renderRuleLine("INPUT", spec)).spec, spec);
  });

  it("refuses a line it cannot model fully", () => {
    assert.throws(() => parseRuleLine("-A INPUT -m hl --hl-eq 255 -j ACCEPT"), { reason: "INVALID_DUMP" });
    assert.throws(() => parseRuleLine(":INPUT ACCEPT [0:0]"), { reason: "INVALID_DUMP" });
  });
});

describe("parseIptablesSave on real dumps", () => {
  it("(a) the mail server: chains, policies, counters, positions and comments", () => {
    const tables = parseIptablesSave(fixture("iptables-mail.txt"));
    assert.deepEqual(tables.map((table) => table.name), ["filter"]);
    const table = tableOf(fixture("iptables-mail.txt"), "filter");
    assert.deepEqual(table.chains, [
      { name: "INPUT", builtin: true, policy: "DROP", packets: 0, bytes: 0 },
      { name: "FORWARD", builtin: true, policy: "DROP", packets: 0, bytes: 0 },
      { name: "OUTPUT", builtin: true, policy: "ACCEPT", packets: 4, bytes: 200 },
    ]);
    assert.deepEqual(table.rules.map((rule) => [rule.position, rule.spec.comment, rule.packets, rule.bytes]), [
      [1, undefined, 4, 200], [2, undefined, 0, 0], [3, undefined, 0, 0],
      [4, "smtp", 0, 0], [5, "submissions", 0, 0], [6, "submission", 0, 0],
      [7, "pop3", 0, 0], [8, "pop3s", 0, 0], [9, "imap", 0, 0],
      [10, "imaps", 0, 0],
    ]);
    assert.deepEqual(ruleAt(table, "INPUT", 3).spec, { matchSet: { set: "fail2ban-dovecot", directions: ["src"], negate: false }, target: { kind: "DROP" } });
    assert.ok(table.rules.every((rule) => rule.modeled));
  });

  it("(b) Docker: nat and filter, jumps to its chains, MASQUERADE and DNAT, addrtype unmodeled", () => {
    const text = fixture("iptables-docker.txt");
    assert.deepEqual(parseIptablesSave(text).map((table) => table.name), ["filter", "nat"]);
    const filter = tableOf(text, "filter");
    assert.deepEqual(filter.chains.map((chain) => [chain.name, chain.builtin, chain.policy]), [
      ["INPUT", true, "ACCEPT"], ["FORWARD", true, "DROP"], ["OUTPUT", true, "ACCEPT"], ["DOCKER", false, undefined],
      ["DOCKER-ISOLATION-STAGE-1", false, undefined], ["DOCKER-ISOLATION-STAGE-2", false, undefined], ["DOCKER-USER", false, undefined],
    ]);
    assert.ok(filter.rules.every((rule) => rule.modeled));
    assert.deepEqual(rulesOf(filter, "FORWARD").map((rule) => rule.spec), [
      { target: { kind: "JUMP", chain: "DOCKER-USER", goto: false } },
      { target: { kind: "JUMP", chain: "DOCKER-ISOLATION-STAGE-1", goto: false } },
      { outInterface: { name: "docker0", negate: false }, states: ["RELATED", "ESTABLISHED"], target: { kind: "ACCEPT" } },
      { outInterface: { name: "docker0", negate: false }, target: { kind: "JUMP", chain: "DOCKER", goto: false } },
      { inInterface: { name: "docker0", negate: false }, outInterface: { name: "docker0", negate: true }, target: { kind: "ACCEPT" } },
      { inInterface: { name: "docker0", negate: false }, outInterface: { name: "docker0", negate: false }, target: { kind: "ACCEPT" } },
    ]);
    assert.deepEqual(ruleAt(filter, "DOCKER", 1).spec, {
      destination: { address: "172.17.0.2/32", negate: false }, inInterface: { name: "docker0", negate: true },
      outInterface: { name: "docker0", negate: false }, protocol: "tcp", destinationPort: ports(80), target: { kind: "ACCEPT" },
    });
    assert.deepEqual(rulesOf(filter, "DOCKER-ISOLATION-STAGE-2").map((rule) => rule.position), [1, 2]);

    const nat = tableOf(text, "nat");
    assert.deepEqual(summary(nat.rules), [
      ["-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER", false],
      ["-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER", false],
      ["-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE", true],
      ["-A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE", true],
      ["-A DOCKER -i docker0 -j RETURN", true],
      ["-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80", false],
    ]);
    // What is understood of an unmodeled rule is still there.
    assert.deepEqual(ruleAt(nat, "OUTPUT", 1).spec, { destination: { address: "127.0.0.0/8", negate: true }, target: { kind: "JUMP", chain: "DOCKER", goto: false } });
    assert.deepEqual(ruleAt(nat, "POSTROUTING", 1).spec, {
      source: { address: "172.17.0.0/16", negate: false }, outInterface: { name: "docker0", negate: true }, target: { kind: "OTHER", name: "MASQUERADE" },
    });
    assert.deepEqual(ruleAt(nat, "DOCKER", 2).spec.target, { kind: "OTHER", name: "DNAT" });
  });

  it("(c) fail2ban: multiport jump to f2b-sshd, the ipset variant, and a set named like a chain", () => {
    const table = tableOf(fixture("iptables-fail2ban.txt"), "filter");
    assert.deepEqual(rulesOf(table, "INPUT").slice(0, 2).map((rule) => [rule.spec, rule.modeled]), [
      [{ protocol: "tcp", destinationPort: ports(22), matchSet: { set: "f2b-sshd", directions: ["src"], negate: false }, target: { kind: "REJECT", rejectWith: "icmp-port-unreachable" } }, true],
      [{ protocol: "tcp", destinationPort: ports(22), target: { kind: "JUMP", chain: "f2b-sshd", goto: false } }, true],
    ]);
    assert.deepEqual(rulesOf(table, "f2b-sshd").map((rule) => [rule.position, rule.spec]), [
      [1, { source: { address: "192.0.2.100/32", negate: false }, target: { kind: "REJECT", rejectWith: "icmp-port-unreachable" } }],
      [2, { target: { kind: "RETURN" } }],
    ]);
    assert.deepEqual(ruleAt(table, "INPUT", 3).spec, { inInterface: { name: "lo", negate: false }, target: { kind: "ACCEPT" } });
  });

  it("ids survive rules inserted before them (and duplicate lines get distinct ids)", () => {
    const before = tableOf(fixture("iptables-fail2ban.txt"), "filter");
    const after = tableOf(fixture("iptables-fail2ban-restarted.txt"), "filter");
    // Portcullis manages the lo rule: it is recognised by content and keeps the id recorded for it.
    const managed = new Map([[ruleAt(before, "INPUT", 3).key, ["a00000000001"]]]);
    const idsBefore = identifyRules("ipv4", "filter", before.rules, managed).map((rule) => rule.id);
    const idsAfter = identifyRules("ipv4", "filter", after.rules, managed).map((rule) => rule.id);
    assert.equal(new Set(idsAfter).size, idsAfter.length, "ids are unique");
    for (const [i, rule] of before.rules.entries()) {
      const j = idsAfter.indexOf(idsBefore[i] ?? "");
      assert.ok(j >= 0, `${rule.text} lost its id`);
      assert.equal(after.rules[j]?.text, rule.text);
    }
    // The lo rule moved from position 3 to 4 and kept its (managed) id; the first ban moved from 1 to 2.
    assert.deepEqual([idsBefore[before.rules.indexOf(ruleAt(before, "INPUT", 3))], idsAfter[after.rules.indexOf(ruleAt(after, "INPUT", 4))]], ["a00000000001", "a00000000001"]);
    const ban = (table: ParsedTable, ids: string[], position: number): string =>
      ids[table.rules.indexOf(ruleAt(table, "f2b-sshd", position))] ?? "";
    assert.equal(ban(after, idsAfter, 2), ban(before, idsBefore, 1));
    assert.match(ban(after, idsAfter, 2), /^x[0-9a-f]{11}$/);
    const moved = ruleAt(after, "f2b-sshd", 2);
    assert.equal(unmanagedRuleId("ipv4", "filter", moved.chain, moved.text, 0), ban(after, idsAfter, 2));
    assert.notEqual(unmanagedRuleId("ipv6", "filter", moved.chain, moved.text, 0), ban(after, idsAfter, 2));
    assert.notEqual(unmanagedRuleId("ipv4", "filter", moved.chain, moved.text, 1), ban(after, idsAfter, 2));
  });

  it("(e) raw, mangle and filter rules with foreign matches and targets", () => {
    const text = fixture("iptables-misc.txt");
    assert.deepEqual(parseIptablesSave(text).map((table) => table.name), ["mangle", "raw", "filter"]);
    assert.deepEqual(summary(tableOf(text, "raw").rules), [
      ["-A PREROUTING -p udp -m udp --dport 53 -j CT --notrack", false],
      ["-A PREROUTING -i lo -j pc-raw", true],
      ["-A OUTPUT -o lo -j NOTRACK", true],
    ]);
    const raw = tableOf(text, "raw");
    assert.deepEqual(ruleAt(raw, "PREROUTING", 1).spec, { protocol: "udp", destinationPort: ports(53), target: { kind: "OTHER", name: "CT" } });
    assert.deepEqual([ruleAt(raw, "OUTPUT", 1).packets, ruleAt(raw, "OUTPUT", 1).bytes], [2, 100]);
    assert.deepEqual(summary(tableOf(text, "mangle").rules), [
      ["-A PREROUTING -m mark --mark 0x1 -j MARK --set-xmark 0x2/0xffffffff", false],
      ["-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT", true],
      ["-A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu", false],
      ["-A OUTPUT -m owner --uid-owner 0 -j ACCEPT", false],
      ["-A POSTROUTING -o lo -j DSCP --set-dscp 0x08", false],
    ]);
    const filter = tableOf(text, "filter");
    assert.deepEqual(summary(filter.rules), [
      ['-A INPUT -m limit --limit 5/min -j LOG --log-prefix "limited:" --log-tcp-options', false],
      ["-A INPUT -p tcp -m tcp --dport 22 -m recent --rcheck --seconds 60 --hitcount 4 --name ssh --mask 255.255.255.255 --rsource -j DROP", false],
      ["-A INPUT -f -j DROP", false],
      ["-A INPUT -p icmp -m icmp --icmp-type 8 -j ACCEPT", false],
      ["-A INPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT", false],
      ["-A INPUT -m state --state NEW,ESTABLISHED -j ACCEPT", true],
      ["-A INPUT -m conntrack ! --ctstate INVALID -j ACCEPT", false],
      ["-A INPUT -p tcp -m multiport --ports 80,443 -j ACCEPT", false],
      ["-A INPUT -m comment --comment one -m comment --comment two -m comment --comment three -j ACCEPT", false],
      ["-A INPUT -m comment --comment -m -j ACCEPT", true],
      ["-A INPUT -m addrtype --dst-type LOCAL -j ACCEPT", false],
      ["-A INPUT -s 192.0.2.1/32", false],
      ["-A INPUT -s 192.0.2.1/32", false],
      ["-A OUTPUT -o lo -j ACCEPT", true],
    ]);
    assert.deepEqual(ruleAt(filter, "INPUT", 1).spec.target, { kind: "LOG", prefix: "limited:" });
    assert.deepEqual(ruleAt(filter, "INPUT", 2).spec, { protocol: "tcp", destinationPort: ports(22), target: { kind: "DROP" } });
    assert.deepEqual(ruleAt(filter, "INPUT", 6).spec, { states: ["NEW", "ESTABLISHED"], target: { kind: "ACCEPT" } });
    assert.equal(ruleAt(filter, "INPUT", 9).spec.comment, "one");
    assert.equal(ruleAt(filter, "INPUT", 10).spec.comment, "-m");
    assert.deepEqual(ruleAt(filter, "INPUT", 12).spec, { source: { address: "192.0.2.1/32", negate: false }, target: { kind: "OTHER", name: "" } });
    const ids = identifyRules("ipv4", "filter", filter.rules, new Map()).map((rule) => rule.id);
    assert.notEqual(ids[11], ids[12], "identical lines are told apart by occurrence");
  });

  it("reads dumps without counters, and quoted text with escapes", () => {
    const withCounters = parseIptablesSave(fixture("iptables-docker.txt"));
    const without = parseIptablesSave(fixture("iptables-docker.txt").replace(/^\[\d+:\d+\] /gm, "").replace(/ \[\d+:\d+\]$/gm, ""));
    assert.deepEqual(without, withCounters);
    const table = tableOf([
      "*filter", ":INPUT ACCEPT", "-A INPUT -m comment --comment \"with \\\"quote\\\" and \\\\back\" -j DROP",
      "-A INPUT -m comment --comment user -m comment --comment \"pc:0123456789ab\" -j DROP",
      "-A INPUT -m comment --comment \"pc:abc123\" -j DROP", "COMMIT", "",
    ].join("\r\n"), "filter");
    assert.deepEqual(table.rules.map((rule) => [rule.spec.comment, rule.modeled]), [
      ['with "quote" and \\back', true], ["user", false], ["pc:abc123", true],
    ]);
  });

  it("refuses only structurally broken text, naming the line", () => {
    const broken = (text: string, line: number, message: RegExp): void =>
      expectError(() => parseIptablesSave(text), "INVALID_DUMP", { line: String(line) }, message);
    broken("-A INPUT -j DROP\n", 1, /outside a table/);
    broken("*filter\n:INPUT ACCEPT [0:0]\n-A OUTPUT -j DROP\nCOMMIT\n", 3, /chain OUTPUT, which the table does not declare/);
    broken("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m comment --comment \"open -j DROP\nCOMMIT\n", 3, /unterminated double quote/);
    broken("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j DROP\n", 4, /no COMMIT/);
    broken("*filter\n*nat\n", 2, /no COMMIT/);
    broken("*filter\n:INPUT MAYBE [0:0]\nCOMMIT\n", 2, /not a chain line/);
    broken("*filter\n:INPUT ACCEPT\n:INPUT ACCEPT\nCOMMIT\n", 3, /declared twice/);
    broken("*filter\n:INPUT ACCEPT\n-I INPUT -j DROP\nCOMMIT\n", 3, /neither a rule/);
    broken("*filter\n:INPUT ACCEPT\n[1:x] -A INPUT -j DROP\nCOMMIT\n", 3, /malformed counters/);
    assert.deepEqual(parseIptablesSave("# nothing\n\n"), []);
  });
});

describe("validateRuleSpec normalizes to what iptables-save prints", () => {
  const accept = { kind: "ACCEPT" } as const;
  it("addresses, protocols, defaults and order", () => {
    assert.deepEqual(validateRuleSpec("ipv4", {
      protocol: "all", source: { address: "0.0.0.0/0", negate: false }, destination: { address: "203.0.113.9/24", negate: false },
      inInterface: { name: "+", negate: false }, outInterface: { name: "", negate: true }, comment: "", states: ["ESTABLISHED", "INVALID"], target: accept,
    }), { destination: { address: "203.0.113.0/24", negate: false }, states: ["INVALID", "ESTABLISHED"], target: accept });
    assert.deepEqual(validateRuleSpec("ipv6", { protocol: "ICMPv6", source: { address: "2001:0DB8::0:1", negate: false }, target: { kind: "REJECT" } }),
      { protocol: "ipv6-icmp", source: { address: "2001:db8::1/128", negate: false }, target: { kind: "REJECT", rejectWith: "icmp6-port-unreachable" } });
    assert.deepEqual(validateRuleSpec("ipv4", { protocol: "tcp", destinationPort: { ports: [{ first: 22, last: 0 }], negate: false }, sourcePort: { ports: [], negate: false }, target: { kind: "REJECT", rejectWith: "" } }),
      { protocol: "tcp", destinationPort: ports(22), target: { kind: "REJECT", rejectWith: "icmp-port-unreachable" } });
    assert.deepEqual(validateRuleSpec("ipv4", { target: { kind: "LOG", prefix: "", level: "warning" } }), { target: { kind: "LOG" } });
    assert.deepEqual(validateRuleSpec("ipv4", { target: { kind: "LOG", level: "Info" } }), { target: { kind: "LOG", level: "6" } });
    assert.deepEqual(validateRuleSpec("ipv4", { matchSet: { set: "s", directions: ["src", "dst"], negate: false }, target: { kind: "JUMP", chain: "x", goto: false } }),
      { matchSet: { set: "s", directions: ["src", "dst"], negate: false }, target: { kind: "JUMP", chain: "x", goto: false } });
  });
});

describe("validation errors name the field", () => {
  type Case = [label: string, family: Family, spec: RuleSpec, reason: Parameters<typeof expectError>[1], field: string, value: string, message: RegExp, chain?: string];
  const t = (target: RuleSpec["target"]): RuleSpec["target"] => target;
  const drop = t({ kind: "DROP" });
  const tcp = (spec: Partial<RuleSpec>): RuleSpec => ({ protocol: "tcp", target: drop, ...spec });
  const cases: Case[] = [
    ["bad address", "ipv4", { source: { address: "192.0.2.300", negate: false }, target: drop }, "INVALID_RULE", "rule.source", "192.0.2.300", /not an IP address/],
    ["host name", "ipv4", { destination: { address: "mail.example.com", negate: false }, target: drop }, "INVALID_RULE", "rule.destination", "mail.example.com", /host names are not accepted/],
    ["octal-looking address", "ipv4", { source: { address: "010.0.0.1", negate: false }, target: drop }, "INVALID_RULE", "rule.source", "010.0.0.1", /not an IP address/],
    ["netmask", "ipv4", { source: { address: "10.0.0.0/255.0.0.0", negate: false }, target: drop }, "INVALID_RULE", "rule.source", "10.0.0.0/255.0.0.0", /write \/24/],
    ["prefix too long", "ipv6", { source: { address: "2001:db8::/129", negate: false }, target: drop }, "INVALID_RULE", "rule.source", "2001:db8::/129", /0-128/],
    ["zone id", "ipv6", { source: { address: "fe80::1%eth0", negate: false }, target: drop }, "INVALID_RULE", "rule.source", "fe80::1%eth0", /not an IP address/],
    ["IPv6 in an ipv4 rule", "ipv4", { destination: { address: "2001:db8::1", negate: false }, target: drop }, "FAMILY_MISMATCH", "rule.destination", "2001:db8::1", /IPv6 address but the rule is for ipv4/],
    ["IPv4 in an ipv6 rule", "ipv6", { source: { address: "192.0.2.1", negate: false }, target: drop }, "FAMILY_MISMATCH", "rule.source", "192.0.2.1", /IPv4 address but the rule is for ipv6/],
    ["negated /0", "ipv4", { source: { address: "0.0.0.0/0", negate: true }, target: drop }, "INVALID_RULE", "rule.source", "0.0.0.0/0", /matches no packet/],
    ["port 0", "ipv4", tcp({ destinationPort: ports(0) }), "INVALID_RULE", "rule.destination_port", "0", /1-65535/],
    ["port 65536", "ipv4", tcp({ sourcePort: ports([1, 65536]) }), "INVALID_RULE", "rule.source_port", "65536", /1-65535/],
    ["backwards range", "ipv4", tcp({ destinationPort: ports([80, 22]) }), "INVALID_RULE", "rule.destination_port", "80:22", /write the lower port first \(22:80\)/],
    ["ports without protocol", "ipv4", { destinationPort: ports(25), target: drop }, "INVALID_RULE", "rule.destination_port", "25", /needs protocol tcp, udp, sctp or udplite; set rule.protocol/],
    ["ports with icmp", "ipv4", { protocol: "icmp", sourcePort: ports(1), target: drop }, "INVALID_RULE", "rule.source_port", "1", /not icmp/],
    ["ports with ! -p tcp", "ipv4", tcp({ protocolNegate: true, destinationPort: ports(1) }), "INVALID_RULE", "rule.destination_port", "1", /not ! tcp/],
    ["16 ports", "ipv4", tcp({ destinationPort: ports(...Array.from({ length: 16 }, (_, i) => i + 1)) }), "INVALID_RULE", "rule.destination_port", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16", /16 port slots.*at most 15/],
    ["8 ranges", "ipv4", tcp({ destinationPort: ports(...Array.from({ length: 8 }, (_, i): [number, number] => [i * 10 + 1, i * 10 + 2])) }), "INVALID_RULE", "rule.destination_port", "1:2,11:12,21:22,31:32,41:42,51:52,61:62,71:72", /range counts as two/],
    ["negated empty ports", "ipv4", tcp({ sourcePort: { ports: [], negate: true } }), "INVALID_RULE", "rule.source_port", "", /lists no ports/],
    ["unknown protocol", "ipv4", { protocol: "quic", target: drop }, "INVALID_RULE", "rule.protocol", "quic", /use one of tcp, udp, icmp/],
    ["protocol number", "ipv4", { protocol: "6", target: drop }, "INVALID_RULE", "rule.protocol", "6", /not supported/],
    ["icmp in ipv6", "ipv6", { protocol: "icmp", target: drop }, "INVALID_RULE", "rule.protocol", "icmp", /use ipv6-icmp in an ipv6 rule/],
    ["ipv6-icmp in ipv4", "ipv4", { protocol: "ipv6-icmp", target: drop }, "INVALID_RULE", "rule.protocol", "ipv6-icmp", /use icmp in an ipv4 rule/],
    ["! all", "ipv4", { protocol: "all", protocolNegate: true, target: drop }, "INVALID_RULE", "rule.protocol", "all", /matches no packet/],
    ["ipv6 reply in ipv4", "ipv4", { target: { kind: "REJECT", rejectWith: "icmp6-no-route" } }, "INVALID_RULE", "rule.target.reject_with", "icmp6-no-route", /not a reply for ipv4 rules; use one of icmp-net-unreachable/],
    ["ipv4 reply in ipv6", "ipv6", { target: { kind: "REJECT", rejectWith: "icmp-host-prohibited" } }, "INVALID_RULE", "rule.target.reject_with", "icmp-host-prohibited", /icmp6-adm-prohibited/],
    ["tcp-reset without protocol", "ipv4", { target: { kind: "REJECT", rejectWith: "tcp-reset" } }, "INVALID_RULE", "rule.target.reject_with", "tcp-reset", /set rule.protocol to tcp/],
    ["tcp-reset for udp", "ipv6", { protocol: "udp", target: { kind: "REJECT", rejectWith: "tcp-reset" } }, "INVALID_RULE", "rule.target.reject_with", "tcp-reset", /TCP packets only/],
    ["duplicate state", "ipv4", { states: ["NEW", "ESTABLISHED", "NEW"], target: drop }, "INVALID_RULE", "rule.states", "NEW", /lists NEW twice/],
    ["comment with a double quote", "ipv4", { comment: 'say "hi"', target: drop }, "INVALID_RULE", "rule.comment", 'say "hi"', /double quotes/],
    ["comment with a newline", "ipv4", { comment: "a\nb", target: drop }, "INVALID_RULE", "rule.comment", "a\nb", /control characters/],
    ["comment of 256 bytes", "ipv4", { comment: "é".repeat(128), target: drop }, "INVALID_RULE", "rule.comment", "é".repeat(128), /256 bytes.*at most 255/],
    ["log prefix of 30", "ipv4", { target: { kind: "LOG", prefix: "x".repeat(30) } }, "INVALID_RULE", "rule.target.log_prefix", "x".repeat(30), /at most 29 bytes/],
    ["log prefix with a tab", "ipv4", { target: { kind: "LOG", prefix: "a\tb" } }, "INVALID_RULE", "rule.target.log_prefix", "a\tb", /control characters/],
    ["log level", "ipv4", { target: { kind: "LOG", level: "loud" } }, "INVALID_RULE", "rule.target.log_level", "loud", /0-7 or emerg/],
    ["interface of 16", "ipv4", { inInterface: { name: "abcdefghijklmnop", negate: false }, target: drop }, "INVALID_RULE", "rule.in_interface", "abcdefghijklmnop", /1 to 15 characters/],
    ["wildcard inside", "ipv4", { outInterface: { name: "a+b", negate: false }, target: drop }, "INVALID_RULE", "rule.out_interface", "a+b", /ending in "\+"/],
    ["interface with a blank", "ipv4", { inInterface: { name: "eth 0", negate: false }, target: drop }, "INVALID_RULE", "rule.in_interface", "eth 0", /not a valid interface name/],
    ["! +", "ipv4", { inInterface: { name: "+", negate: true }, target: drop }, "INVALID_RULE", "rule.in_interface", "+", /matches no packet/],
    ["-o in INPUT", "ipv4", { outInterface: { name: "eth0", negate: false }, target: drop }, "INVALID_RULE", "rule.out_interface", "eth0", /INPUT .* no outgoing interface/, "INPUT"],
    ["-i in OUTPUT", "ipv6", { inInterface: { name: "eth0", negate: false }, target: drop }, "INVALID_RULE", "rule.in_interface", "eth0", /no incoming interface/, "OUTPUT"],
    ["bad jump chain", "ipv4", { target: { kind: "JUMP", chain: "my chain", goto: false } }, "INVALID_CHAIN_NAME", "rule.target.chain", "my chain", /1 to 28 characters/],
    ["jump chain of 29", "ipv4", { target: { kind: "JUMP", chain: "c".repeat(29), goto: true } }, "INVALID_CHAIN_NAME", "rule.target.chain", "c".repeat(29), /not a valid chain name/],
    ["jump to a built-in", "ipv4", { target: { kind: "JUMP", chain: "ACCEPT", goto: false } }, "INVALID_RULE", "rule.target.chain", "ACCEPT", /not a user chain/],
    ["jump to INPUT", "ipv4", { target: { kind: "JUMP", chain: "INPUT", goto: false } }, "INVALID_RULE", "rule.target.chain", "INPUT", /built-in chain/],
    ["set name", "ipv4", { matchSet: { set: "bad set", directions: ["src"], negate: false }, target: drop }, "INVALID_IPSET_NAME", "rule.match_set.set", "bad set", /not a valid ipset name/],
    ["no direction", "ipv4", { matchSet: { set: "s", directions: [], negate: false }, target: drop }, "INVALID_RULE", "rule.match_set.directions", "", /1 to 6 of src and dst/],
    ["seven directions", "ipv4", { matchSet: { set: "s", directions: ["src", "src", "src", "src", "src", "src", "src"], negate: false }, target: drop }, "INVALID_RULE", "rule.match_set.directions", "src,src,src,src,src,src,src", /1 to 6/],
    ["OTHER target", "ipv4", { target: { kind: "OTHER", name: "MASQUERADE" } }, "INVALID_RULE", "rule.target.kind", "MASQUERADE", /read-only/],
  ];
  for (const [label, family, spec, reason, field, value, message, chain] of cases) {
    it(label, () => expectError(() => validateRuleSpec(family, spec, chain), reason, { field, value }, message));
  }
});

describe("rendering refuses what cannot be written safely", () => {
  const drop = { kind: "DROP" } as const;
  it("even without validateRuleSpec", () => {
    expectError(() => renderRule("IN PUT", { target: drop }), "INVALID_CHAIN_NAME", { field: "rule.chain", value: "IN PUT" });
    expectError(() => renderRule("INPUT", { comment: "a\"b", target: drop }), "INVALID_RULE", { field: "rule.comment", value: "a\"b" });
    expectError(() => renderRuleLine("INPUT", { target: { kind: "LOG", prefix: "a\nb" } }), "INVALID_RULE", { field: "rule.target.log_prefix", value: "a\nb" });
    expectError(() => renderRule("INPUT", { source: { address: "1.2.3.4 -j ACCEPT", negate: false }, target: drop }), "INVALID_RULE", { field: "rule.source", value: "1.2.3.4 -j ACCEPT" });
    expectError(() => renderRule("INPUT", { protocol: "-j", target: drop }), "INVALID_RULE", { field: "rule.protocol", value: "-j" });
    expectError(() => renderRule("INPUT", { destinationPort: ports(22), target: drop }), "INVALID_RULE", { field: "rule.destination_port", value: "" });
    expectError(() => renderRule("INPUT", { protocol: "tcp", destinationPort: { ports: [], negate: false }, target: drop }), "INVALID_RULE", { field: "rule.destination_port", value: "" });
    expectError(() => renderRule("INPUT", { inInterface: { name: "eth0\n", negate: false }, target: drop }), "INVALID_RULE", { field: "rule.in_interface", value: "eth0\n" });
    expectError(() => renderRule("INPUT", { target: { kind: "OTHER", name: "" } }), "INVALID_RULE", { field: "rule.target.other", value: "" });
  });

  it("renderTable: built-ins first with policies, user chains, rules; refuses undeclared chains", () => {
    assert.equal(renderTable("filter", [{ name: "mine" }, { name: "INPUT", policy: "DROP" }], [
      { chain: "INPUT", spec: { target: { kind: "JUMP", chain: "mine", goto: false } } },
      { chain: "mine", spec: { target: { kind: "ACCEPT" } } },
    ]), [
      "*filter", ":INPUT DROP [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":mine - [0:0]", "-A INPUT -j mine",
      "-A mine -j ACCEPT", "COMMIT", "",
    ].join("\n"));
    assert.equal(renderTable("raw", [], []), "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n");
    expectError(() => renderTable("security", [], []), "INVALID_RULE", { field: "table", value: "security" });
    expectError(() => renderTable("filter", [{ name: "mine", policy: "DROP" }], []), "INVALID_RULE", { field: "chains[0].policy", value: "DROP" });
    expectError(() => renderTable("filter", [{ name: "INPUT" }, { name: "INPUT" }], []), "INVALID_RULE", { field: "chains[1].name", value: "INPUT" });
    expectError(() => renderTable("filter", [{ name: "bad name" }], []), "INVALID_CHAIN_NAME", { field: "chains[0].name", value: "bad name" });
    expectError(() => renderTable("filter", [], [{ chain: "other", spec: { target: drop } }]), "INVALID_RULE", { field: "rules[0].chain", value: "other" });
    expectError(() => renderTable("filter", [], [{ chain: "INPUT", spec: { target: { kind: "JUMP", chain: "gone", goto: true } } }]), "INVALID_RULE", { field: "rules[0].target.chain", value: "gone" });
  });
});
