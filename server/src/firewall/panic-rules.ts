import { CHAIN_LINE } from "../drivers/parse/iptables-save.js";
import { renderRuleLine } from "../drivers/iptables-render.js";
import { validateRuleSpec } from "./rule-validation.js";
import type { Family, Policy, RuleSpec } from "./rule-model.js";
import type { RuleView } from "./table-reader.js";

const COMMENT = "portcullis panic mode";
const CHAINS = ["INPUT", "FORWARD", "OUTPUT"] as const;

/**
 * Panic mode's rules for one family, in order: per built-in chain of the filter table, ACCEPTs for the API's traffic
 * with the management addresses, then a DROP of everything else. They go on top of each chain, so nothing after them
 * (managed or other tools' rules, Docker's FORWARD jumps included) sees a packet; nothing is removed or moved, so that
 * turning panic mode off gives back every rule exactly as it was.
 */
export function panicRules(family: Family, managementAddresses: readonly string[], apiPort: number): Array<{ chain: string; line: string }> {
  const port = { ports: [{ first: apiPort, last: apiPort }], negate: false };
  const specs: Array<{ chain: string; spec: RuleSpec }> = [];
  for (const chain of CHAINS) {
    for (const address of managementAddresses) {
      const host = { address, negate: false };
      if (chain === "INPUT") specs.push({ chain, spec: { protocol: "tcp", source: host, destinationPort: port, comment: COMMENT, target: { kind: "ACCEPT" } } });
      if (chain === "OUTPUT") specs.push({ chain, spec: { protocol: "tcp", destination: host, sourcePort: port, comment: COMMENT, target: { kind: "ACCEPT" } } });
    }
    specs.push({ chain, spec: { comment: COMMENT, target: { kind: "DROP" } } });
  }
  return specs.map(({ chain, spec }) => ({ chain, line: renderRuleLine(chain, validateRuleSpec(family, spec)) }));
}

/** The restore text that turns panic mode on: the rules on top of their chains, and DROP policies. */
export function panicOnText(rules: ReadonlyArray<{ chain: string; line: string }>): string {
  const positions = new Map<string, number>();
  const lines = rules.map((rule) => {
    const position = (positions.get(rule.chain) ?? 0) + 1;
    positions.set(rule.chain, position);
    return `-I ${rule.chain} ${position} ${rule.line.slice(`-A ${rule.chain} `.length)}`;
  });
  return `*filter\n${lines.join("\n")}\n${CHAINS.map((chain) => `-P ${chain} DROP`).join("\n")}\nCOMMIT\n`;
}

/**
 * The restore text that turns panic mode off: every panic rule the table still has deleted (by content, whatever
 * management addresses it was made for), and the policies of the table saved when it was turned on.
 */
export function panicOffText(current: readonly RuleView[], saved: string): string {
  const lines = current.filter((rule) => rule.spec.comment === COMMENT).map((rule) => rule.text.replace(/^-A /, "-D "));
  for (const [chain, policy] of savedPolicies(saved)) lines.push(`-P ${chain} ${policy}`);
  return `*filter\n${lines.join("\n")}\nCOMMIT\n`;
}

/**
 * Whether the table has panic mode as this version makes it (its DROP rules on top of the chains). Panic mode turned
 * on by an earlier version replaced the whole table instead: only its saved table can give the rules back.
 */
export function panicRulesOnTop(current: readonly RuleView[]): boolean {
  return current.some((rule) => rule.spec.comment === COMMENT && rule.spec.target.kind === "DROP");
}

/** The built-in chains' policies in an `iptables-save -t filter` text. */
function savedPolicies(saved: string): Map<string, Policy> {
  const policies = new Map<string, Policy>();
  for (const line of saved.split("\n")) {
    const match = CHAIN_LINE.exec(line);
    if (match !== null && (match[2] === "ACCEPT" || match[2] === "DROP")) policies.set(match[1]!, match[2]);
  }
  return policies;
}
