import { randomBytes } from "node:crypto";
import { unmanagedRuleId } from "../drivers/parse/iptables-save.js";
import type { Family, ManagedLines, ParsedRule } from "./rule-model.js";


export interface RuleIdentity {
  readonly id: string;
  readonly managed: boolean;
}

/** Ids for a table's rules, in order: recorded ids for managed content, content hashes for the rest. */
export function identifyRules(family: Family, table: string, rules: readonly ParsedRule[], managed: ManagedLines): RuleIdentity[] {
  const taken = new Map<string, number>();
  const seen = new Map<string, number>();
  const identities = new Array<RuleIdentity>(rules.length);
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    const ids = rule.modeled ? managed.get(rule.key) : undefined;
    if (ids !== undefined) {
      const used = taken.get(rule.key) ?? 0;
      if (used < ids.length) {
        taken.set(rule.key, used + 1);
        identities[i] = { id: ids[used]!, managed: true };
        continue;
      }
    }
    const key = `${rule.chain}\n${rule.text}`;
    const occurrence = seen.get(key) ?? 0;
    seen.set(key, occurrence + 1);
    identities[i] = { id: unmanagedRuleId(family, table, rule.chain, rule.text, occurrence), managed: false };
  }
  return identities;
}

/**
 * Fresh ids for new managed rules (12 hex digits). Many at once (ApplyRuleset) share a random prefix and count up: ids
 * in order make the store's id index grow at its end instead of at 10k random places.
 */
export function newRuleIds(count: number): string[] {
  if (count <= 1) return [randomBytes(6).toString("hex")];
  const prefix = randomBytes(3).toString("hex");
  return Array.from({ length: count }, (_, i) => `${prefix}${i.toString(16).padStart(6, "0")}`);
}
