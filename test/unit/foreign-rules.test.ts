import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseIptablesSave, parseRuleLine } from "../../server/src/drivers/parse/iptables-save.js";
import { foreignRulesError, wholeTableForeign, type DeclaredChains } from "../../server/src/firewall/foreign-rules.js";
import { ManagedScopeChange, type ManagedRuleLine } from "../../server/src/firewall/managed-scope.js";
import { panicOffText, panicOnText, panicRules, panicRulesOnTop } from "../../server/src/firewall/panic-rules.js";
import { rollbackPlan } from "../../server/src/firewall/rollback-plan.js";
import { identifyRules } from "../../server/src/firewall/rule-identity.js";
import { diffManagedRules } from "../../server/src/firewall/ruleset-diff.js";
import { splitTable, withCounters } from "../../server/src/firewall/table-split.js";
import type { TableViews } from "../../server/src/firewall/table-reader.js";

const F2B = "-A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd";
const LO = "-A INPUT -i lo -j ACCEPT";
const SMTP = "-A INPUT -p tcp -m tcp --dport 25 -j ACCEPT";
const IMAP = "-A INPUT -p tcp -m tcp --dport 143 -j ACCEPT";
const LOG = '-A INPUT -j LOG --log-prefix "late "';

/** A filter table as a read gives it: `managed` lines are Portcullis's, the rest another tool's. */
function tableOf(lines: readonly string[], managed: readonly string[], userChains: readonly string[] = []): TableViews {
  const text = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]", ...userChains.map((chain) => `:${chain} - [0:0]`), ...lines.map((line) => `[3:180] ${line}`), "COMMIT", ""].join("\n");
  const parsed = parseIptablesSave(text)[0]!;
  const ids = new Map<string, string[]>();
  managed.forEach((line, i) => ids.set(line, [...(ids.get(line) ?? []), `m${i}`]));
  const identities = identifyRules("ipv4", "filter", parsed.rules, ids);
  return { chains: parsed.chains.map((chain) => ({ ...chain, ruleCount: 0, references: 0 })), rules: parsed.rules.map((rule, i) => ({ ...rule, ...identities[i]! })) };
}

const ruleLine = (line: string): ManagedRuleLine => ({ ...parseRuleLine(line), line });
const builtins = (extra: Array<[string, { builtin: boolean; policy?: "ACCEPT" | "DROP" }]> = []): DeclaredChains =>
  new Map([["INPUT", { builtin: true }], ["FORWARD", { builtin: true }], ["OUTPUT", { builtin: true }], ...extra]);

/** The whole text of a managed-scope change, as the service feeds it. */
function managedText(change: ManagedScopeChange, current: TableViews, owned: ReadonlySet<string>, rules: readonly ManagedRuleLine[]): { text: string; plan: ReturnType<ManagedScopeChange["plan"]> } {
  let text = change.prologue();
  for (const rule of rules) text += `${change.beforeRule(rule.chain)}${rule.line}\n`;
  const plan = change.plan(current, owned, rules);
  return { text: `${text}${plan.epilogue}COMMIT\n`, plan };
}

describe("ruleset diff", () => {
  it("reports an insert, a delete and an edit as exactly that, chain by chain", () => {
    const before = new Map([["INPUT", ["a", "b", "c"]], ["FORWARD", ["x"]]]);
    assert.deepEqual(diffManagedRules(before, new Map([["INPUT", ["a", "n", "b", "c"]], ["FORWARD", ["x"]]])), { added: ["n"], removed: [], changed: [], unchanged: 4 });
    assert.deepEqual(diffManagedRules(before, new Map([["INPUT", ["a", "c"]]])), { added: [], removed: ["b", "x"], changed: [], unchanged: 2 });
    assert.deepEqual(diffManagedRules(before, new Map([["INPUT", ["a", "B", "c"]], ["FORWARD", ["x"]]])), { added: [], removed: [], changed: [{ before: "b", after: "B" }], unchanged: 3 });
  });
});

describe("replacing a whole table and the rules of other tools", () => {
  const current = tableOf([F2B, LO, SMTP, "-A FORWARD -j DOCKER-USER", "-A f2b-sshd -j RETURN"], [LO, SMTP], ["DOCKER-USER", "f2b-sshd"]);

  it("loses the foreign rules and chains the new table does not have, and names them in FOREIGN_RULES", () => {
    const declared = builtins([["INPUT", { builtin: true, policy: "ACCEPT" }]]);
    const result = wholeTableForeign(current, new Set(), declared, [{ chain: "INPUT", line: LO }]);
    assert.deepEqual(result.loss.chains, ["DOCKER-USER", "f2b-sshd"]);
    assert.deepEqual(result.loss.rules.map((rule) => rule.text), [F2B, "-A FORWARD -j DOCKER-USER", "-A f2b-sshd -j RETURN"]);
    const error = foreignRulesError(result.loss, "ipv4", "filter", "Use scope MANAGED.");
    assert.equal(error.reason, "FOREIGN_RULES");
    assert.match(error.message, /3 rule\(s\) of other tools .*DOCKER-USER \(chain deleted, 0 rules\), f2b-sshd \(chain deleted, 1 rule\), INPUT \(1 rule\), FORWARD \(1 rule\)\. Use scope MANAGED\.$/);
    assert.deepEqual(error.metadata, { chains: "DOCKER-USER,f2b-sshd,INPUT,FORWARD", rules: "3" });
  });

  it("keeps the foreign rules the new table repeats in their chain and order: they stay foreign", () => {
    const declared = builtins([["DOCKER-USER", { builtin: false }], ["f2b-sshd", { builtin: false }]]);
    const rules = [{ chain: "INPUT", line: F2B }, { chain: "INPUT", line: IMAP }, { chain: "FORWARD", line: "-A FORWARD -j DOCKER-USER" }, { chain: "f2b-sshd", line: "-A f2b-sshd -j RETURN" }];
    const result = wholeTableForeign(current, new Set(), declared, rules);
    assert.deepEqual(result.loss, { chains: [], rules: [] });
    assert.deepEqual(result.keptIndices, [0, 2, 3]);
    assert.deepEqual(result.keptChains, ["DOCKER-USER", "f2b-sshd"]);
    const respelled = wholeTableForeign(current, new Set(), declared, [{ chain: "INPUT", line: "-A INPUT -p tcp -m tcp --dport 22 -j f2b-sshd" }, ...rules.slice(1)]);
    assert.deepEqual(respelled.loss.rules.map((rule) => rule.text), [F2B], "the same match in another spelling would change the line");
  });
});

describe("a managed-scope change", () => {
  it("rewrites only chains with managed rules: foreign rules before the first managed one stay before, the others after, with their counters", () => {
    const current = tableOf([F2B, LO, SMTP, LOG, "-A FORWARD -j DOCKER-USER"], [LO, SMTP], ["DOCKER-USER", "f2b-sshd"]);
    const change = new ManagedScopeChange("filter", builtins());
    const { text, plan } = managedText(change, current, new Set(), [ruleLine(LO), ruleLine(IMAP)]);
    assert.equal(text, [
      "*filter",
      "-F INPUT",
      LO,
      IMAP,
      `[3:180] -I INPUT 1 ${F2B.slice("-A INPUT ".length)}`,
      `[3:180] ${LOG}`,
      "COMMIT",
      "",
    ].join("\n"), "FORWARD (Docker's jump only) is not touched");
    assert.deepEqual(plan.diff().changed, [{ before: SMTP, after: IMAP }]);
    assert.equal(plan.diff().unchanged, 1);
    assert.deepEqual(plan.diff().foreignKept, [F2B, LOG, "-A FORWARD -j DOCKER-USER"]);
    assert.deepEqual([...plan.view.rules.get("INPUT")!].map((rule) => rule.spec.target.kind), ["JUMP", "ACCEPT", "ACCEPT", "LOG"]);
    assert.equal(plan.view.policies.get("FORWARD"), "DROP", "policies not named stay");
    assert.equal(plan.text(), ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]", ":DOCKER-USER - [0:0]", ":f2b-sshd - [0:0]", F2B, LO, IMAP, LOG, "-A FORWARD -j DOCKER-USER", "COMMIT", ""].join("\n"), "the table it leaves");
  });

  it("puts foreign rules back with the counters it is given for them (read by position when the table was known)", () => {
    const current = tableOf([F2B, LO, LOG], [LO]);
    const counted = withCounters(current, new Map([["INPUT", new Map([[1, { packets: 7, bytes: 420 }], [3, { packets: 2, bytes: 90 }]])]]), new Map([["INPUT", { packets: 5, bytes: 300 }]]));
    const { text, plan } = managedText(new ManagedScopeChange("filter", builtins()), counted, new Set(), [ruleLine(IMAP)]);
    assert.equal(text, ["*filter", "-F INPUT", IMAP, `[7:420] -I INPUT 1 ${F2B.slice("-A INPUT ".length)}`, `[2:90] ${LOG}`, "COMMIT", ""].join("\n"));
    assert.deepEqual(plan.chains().map((chain) => [chain.name, chain.packets, chain.bytes]), [["INPUT", 5, 300], ["FORWARD", 0, 0], ["OUTPUT", 0, 0]]);
    const split = splitTable("ipv4", "filter", `*filter\n:INPUT ACCEPT [0:0]\n[1:1] ${F2B}\n[1:1] ${LO}\nCOMMIT\n`, new Map([[LO, ["m0"]]]));
    const again = withCounters(split, new Map([["INPUT", new Map([[1, { packets: 9, bytes: 9 }]])]]), new Map());
    assert.deepEqual(again.rules.map((rule) => [rule.text, rule.packets, rule.managed, rule.id]), [[F2B, 9, false, split.rules[0]!.id], [LO, 1, true, "m0"]]);
  });

  it("appends to a chain without managed rules after the foreign ones, and empties chains whose managed rules all go", () => {
    const current = tableOf([LO, "-A FORWARD -j DOCKER-USER", "-A FORWARD -j DOCKER-FORWARD"], [LO], ["DOCKER-USER", "DOCKER-FORWARD"]);
    const change = new ManagedScopeChange("filter", builtins([["FORWARD", { builtin: true, policy: "DROP" }]]));
    const { text, plan } = managedText(change, current, new Set(), [ruleLine("-A FORWARD -s 203.0.113.0/24 -j DROP")]);
    assert.equal(text, [
      "*filter",
      "-P FORWARD DROP",
      "-F FORWARD",
      "-A FORWARD -s 203.0.113.0/24 -j DROP",
      "-F INPUT",
      "[3:180] -I FORWARD 1 -j DOCKER-USER",
      "[3:180] -I FORWARD 2 -j DOCKER-FORWARD",
      "COMMIT",
      "",
    ].join("\n"));
    assert.deepEqual(plan.diff().removed, [LO]);
    assert.deepEqual(plan.diff().added, ["-A FORWARD -s 203.0.113.0/24 -j DROP"]);
  });

  it("deletes the managed chains it leaves out; foreign rules in or jumping to them are its only possible loss", () => {
    const current = tableOf(["-A INPUT -j pc-old", "-A pc-old -j ACCEPT", "-A FORWARD -j pc-old"], ["-A INPUT -j pc-old", "-A pc-old -j ACCEPT"], ["pc-old"]);
    const change = new ManagedScopeChange("filter", builtins([["pc-new", { builtin: false }]]));
    const { text, plan } = managedText(change, current, new Set(["pc-old"]), [ruleLine("-A pc-new -j ACCEPT"), ruleLine("-A INPUT -j pc-new")]);
    assert.deepEqual(plan.loss.rules.map((rule) => rule.text), ["-A FORWARD -j pc-old"]);
    assert.equal(text, ["*filter", ":pc-new - [0:0]", "-A pc-new -j ACCEPT", "-F INPUT", "-A INPUT -j pc-new", "-D FORWARD -j pc-old", "-F pc-old", "-X pc-old", "COMMIT", ""].join("\n"));
    assert.deepEqual(plan.owned, ["pc-new"]);
    assert.deepEqual(plan.diff().chainsCreated, ["pc-new"]);
    assert.deepEqual(plan.diff().chainsDeleted, ["pc-old"]);
    assert.deepEqual(plan.chains().map((chain) => [chain.name, chain.ruleCount, chain.references]), [["INPUT", 1, 0], ["FORWARD", 0, 0], ["OUTPUT", 0, 0], ["pc-new", 1, 1]]);
    assert.equal(plan.text(), ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]", ":pc-new - [0:0]", "-A INPUT -j pc-new", "-A pc-new -j ACCEPT", "COMMIT", ""].join("\n"), "the table it leaves");
  });

  it("may hold managed rules in another tool's chain (DOCKER-USER), which stays that tool's", () => {
    const current = tableOf(["-A DOCKER-USER -j RETURN"], [], ["DOCKER-USER"]);
    const change = new ManagedScopeChange("filter", builtins([["DOCKER-USER", { builtin: false }]]));
    const { text, plan } = managedText(change, current, new Set(), [ruleLine("-A DOCKER-USER -s 203.0.113.9/32 -j DROP")]);
    assert.equal(text, ["*filter", ":DOCKER-USER - [0:0]", "-A DOCKER-USER -s 203.0.113.9/32 -j DROP", "[3:180] -I DOCKER-USER 1 -j RETURN", "COMMIT", ""].join("\n"));
    assert.deepEqual(plan.owned, []);
  });
});

describe("panic mode's rules", () => {
  it("go on top of the built-in chains and come off by content, with the saved policies", () => {
    const rules = panicRules("ipv4", ["198.51.100.10"], 50051);
    const on = panicOnText(rules);
    assert.match(on, /^-I INPUT 1 -s 198\.51\.100\.10\/32 -p tcp -m tcp --dport 50051 -m comment --comment "portcullis panic mode" -j ACCEPT$/m);
    assert.match(on, /^-I INPUT 2 -m comment --comment "portcullis panic mode" -j DROP$/m);
    assert.match(on, /^-I FORWARD 1 -m comment --comment "portcullis panic mode" -j DROP$/m);
    assert.match(on, /^-P FORWARD DROP$/m);
    const current = tableOf([...rules.map((rule) => rule.line), F2B], []);
    const off = panicOffText(current.rules, "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n");
    assert.equal(off.split("\n").filter((line) => line.startsWith("-D ")).length, rules.length);
    assert.doesNotMatch(off, /f2b-sshd/);
    assert.equal(panicRulesOnTop(current.rules), true);
    assert.equal(panicRulesOnTop(tableOf(rules.filter((rule) => !rule.line.endsWith("-j DROP")).map((rule) => rule.line), []).rules), false, "an earlier version's panic table (ACCEPTs, DROP policies)");
    assert.match(off, /^-P INPUT ACCEPT\n-P FORWARD DROP\n-P OUTPUT ACCEPT\nCOMMIT\n$/m);
  });
});

describe("a safe-mode rollback", () => {
  const saved = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]", ":f2b-sshd - [0:0]", F2B, LO, "-A f2b-sshd -j RETURN", "COMMIT", ""].join("\n");
  const savedManaged = { chains: [], rules: [{ id: "m0", chain: "INPUT", seq: 1, spec: parseRuleLine(LO).spec }] };

  it("puts the managed rules back as a managed-scope change, keeping foreign rules added since", () => {
    const current = tableOf([F2B, IMAP, "-A f2b-sshd -s 203.0.113.9/32 -j REJECT --reject-with icmp-port-unreachable", "-A f2b-sshd -j RETURN"], [IMAP], ["f2b-sshd"]);
    const plan = rollbackPlan("ipv4", "filter", saved, savedManaged, current, new Set());
    assert.equal(plan.whole, false);
    assert.equal(plan.whole ? "" : plan.text, ["*filter", "-P INPUT ACCEPT", "-P FORWARD DROP", "-P OUTPUT ACCEPT", "-F INPUT", LO, `[3:180] -I INPUT 1 ${F2B.slice("-A INPUT ".length)}`, "COMMIT", ""].join("\n"));
  });

  it("brings the whole saved table back when the change removed rules of other tools", () => {
    const current = tableOf([IMAP], [IMAP]);
    assert.deepEqual(rollbackPlan("ipv4", "filter", saved, savedManaged, current, new Set()), { whole: true });
  });
});

describe("a table split for an apply", () => {
  it("says what a full read says about every rule, parsing only the ones that are not managed lines", () => {
    const lines = [F2B, LO, SMTP, LO, "-A FORWARD -j DOCKER-USER", LOG, SMTP, "-A INPUT -p tcp --dport 25 -j ACCEPT"];
    const managed = [LO, SMTP, SMTP, "-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT"];
    const text = ["*filter", ":INPUT ACCEPT [7:420]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]", ":DOCKER-USER - [0:0]", ":f2b-sshd - [0:0]", ...lines.map((line, i) => `[${i}:${i * 60}] ${line}`), "COMMIT", ""].join("\n");
    const ids = new Map<string, string[]>();
    managed.forEach((line, i) => ids.set(line, [...(ids.get(line) ?? []), `m${i}`]));
    const full = parseIptablesSave(text)[0]!;
    const identities = identifyRules("ipv4", "filter", full.rules, ids);
    const split = splitTable("ipv4", "filter", text, ids);
    const shape = (rule: TableViews["rules"][number]) => [rule.chain, rule.position, rule.text, rule.managed, rule.packets, rule.bytes, JSON.stringify(rule.spec)];
    assert.deepEqual(split.rules.map(shape), full.rules.map((rule, i) => shape({ ...rule, ...identities[i]! })));
    assert.deepEqual(split.rules.map((rule) => rule.managed), [false, true, true, false, false, false, true, false], "the second LO is a copy nobody recorded; the respelled port 25 rule is not a third SMTP");
    assert.deepEqual(split.chains.map((chain) => [chain.name, chain.policy ?? "-"]), [["INPUT", "ACCEPT"], ["FORWARD", "DROP"], ["OUTPUT", "ACCEPT"], ["DOCKER-USER", "-"], ["f2b-sshd", "-"]]);
  });
});
