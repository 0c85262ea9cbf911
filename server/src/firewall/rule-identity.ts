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
