import { parseIptablesSave } from "../drivers/parse/iptables-save.js";
import { renderRuleLine } from "../drivers/iptables-render.js";
import type { ManagedTable } from "../store/firewall-store.js";
import type { DeclaredChain, DeclaredChains } from "./foreign-rules.js";
import { ManagedScopeChange } from "./managed-scope.js";
import { identifyRules } from "./rule-identity.js";
import type { Family, Table } from "./rule-model.js";
import type { RuleView, TableViews } from "./table-reader.js";

/**
 * How a safe-mode rollback puts the table back. The managed rules, the chains Portcullis created and the policies
 * return to what they were before the change, as a managed-scope change (`text`, for `iptables-restore --noflush
 * --counters`): rules of other tools stay as they are now, those added since included. Only when the change itself
 * removed rules or chains of other tools (an apply with replace_foreign) does the whole saved table come back
 * (`whole`), as that is the only way to have them again.
 */
export function rollbackPlan(family: Family, table: Table, saved: string, savedManaged: ManagedTable, current: TableViews, ownedNow: ReadonlySet<string>): { whole: true } | { whole: false; text: string } {
  const parsed = parseIptablesSave(saved).find((candidate) => candidate.name === table) ?? { name: table, chains: [], rules: [] };
  const lines = new Map<string, string[]>();
  for (const rule of savedManaged.rules) {
    const line = renderRuleLine(rule.chain, rule.spec);
    lines.set(line, [...(lines.get(line) ?? []), rule.id]);
  }
  const identities = identifyRules(family, table, parsed.rules, lines);
  const savedRules: RuleView[] = parsed.rules.map((rule, i) => ({ ...rule, ...identities[i]! }));
  const owned = new Set(savedManaged.chains.filter((chain) => chain.policy === undefined).map((chain) => chain.chain));
  const currentChains = new Set(current.chains.map((chain) => chain.name));
  const foreignChainGone = parsed.chains.some((chain) => !chain.builtin && !owned.has(chain.name) && !currentChains.has(chain.name));
  if (foreignChainGone || !contains(foreignLines(current.rules), foreignLines(savedRules))) return { whole: true };

  const declared: DeclaredChains = new Map<string, DeclaredChain>(
    parsed.chains
      .filter((chain) => chain.builtin || owned.has(chain.name))
      .map((chain) => [chain.name, { builtin: chain.builtin, ...(chain.policy === undefined ? {} : { policy: chain.policy }) }]),
  );
  const rules = savedRules.filter((rule) => rule.managed).map((rule) => ({ chain: rule.chain, spec: rule.spec, line: rule.key }));
  const change = new ManagedScopeChange(table, declared);
  let text = change.prologue();
  for (const rule of rules) text += `${change.beforeRule(rule.chain)}${rule.line}\n`;
  return { whole: false, text: `${text}${change.plan(current, ownedNow, rules).epilogue}COMMIT\n` };
}

function foreignLines(rules: readonly RuleView[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const rule of rules) if (!rule.managed) counts.set(rule.text, (counts.get(rule.text) ?? 0) + 1);
  return counts;
}

function contains(outer: ReadonlyMap<string, number>, inner: ReadonlyMap<string, number>): boolean {
  for (const [line, count] of inner) if ((outer.get(line) ?? 0) < count) return false;
  return true;
}
