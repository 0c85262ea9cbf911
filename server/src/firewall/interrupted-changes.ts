import type { Logger } from "../logger.js";
import type { EventLog } from "../events/event-log.js";
import { tableName } from "../names.js";
import type { IptablesDriver } from "../drivers/iptables-driver.js";
import { parseIptablesSave } from "../drivers/parse/iptables-save.js";
import { renderRuleLine } from "../drivers/iptables-render.js";
import type { FirewallStore, RuleChange } from "../store/firewall-store.js";
import type { Family, ManagedLines, Table } from "./rule-model.js";
import type { TableAccess } from "./table-access.js";

/**
 * Finishes the changes a stop cut between the kernel's commit and the store (kill -9, a crash, a store that failed
 * just then): an ApplyRuleset leaves a sealed stage (TableStage.seal), a change of single rules a sealed RuleChange.
 * The kernel's commit is one transaction, so the table holds the managed rules from before or those after the change,
 * whole; the change is recorded if it holds the latter and dropped if not. Runs before requests are taken and before
 * the repair of managed state, which would otherwise take the new rules in the kernel for another tool's and add the
 * previous ones back beside them.
 */
export async function finishInterruptedChanges(deps: { iptables: IptablesDriver; store: FirewallStore; tables: TableAccess; events: EventLog; log: Logger }): Promise<void> {
  const { iptables, store, tables, events, log } = deps;
  const kernelLines = async (family: Family, table: string): Promise<Map<string, number>> => {
    const parsed = parseIptablesSave(await iptables.save(family, table, false)).find((candidate) => candidate.name === table);
    const kernel = new Map<string, number>();
    for (const rule of parsed?.rules ?? []) kernel.set(rule.key, (kernel.get(rule.key) ?? 0) + 1);
    return kernel;
  };
  for (const { family, table } of store.sealedStages()) {
    await tables.locked(family, table as Table, async () => {
      // Read again under the lock: an apply under way holds it, and publishes or drops its own stage.
      const stage = store.sealedStages().find((candidate) => candidate.family === family && candidate.table === table);
      if (stage === undefined) return;
      const staged = store.sealedLines(stage);
      const resource = tableName({ family, table });
      if (kernelHolds(await kernelLines(family, table), store.managedLines(family, table), staged) === "staged") {
        store.publishSealed(stage);
        log.warn({ family, table }, "an apply cut short after the kernel took it: its rules are now the managed ones");
        events.append({ type: "RULESET_APPLIED", resource, attributes: { rule_count: String(count(staged) - stage.dropped.length), interrupted: "true" } }, "system", "system");
      } else {
        store.dropSealed(stage);
        log.warn({ family, table }, "an apply cut short before the kernel took it: the managed rules stay as they were");
      }
    });
  }
  for (const { family, table } of store.sealedRuleChanges()) {
    await tables.locked(family, table as Table, async () => {
      const sealed = store.sealedRuleChanges().find((candidate) => candidate.family === family && candidate.table === table);
      if (sealed === undefined) return;
      const { before, after } = ruleChangeLines(store, family, table, sealed.change);
      if (kernelHolds(await kernelLines(family, table), before, after) === "staged") {
        store.commitRuleChange(family, table, sealed.change);
        log.warn({ family, table, change: sealed.change.kind }, "a rule change cut short after the kernel took it: recorded now");
      } else {
        store.dropRuleChange(family, table);
        log.warn({ family, table, change: sealed.change.kind }, "a rule change cut short before the kernel took it: dropped");
      }
    });
  }
}

/** The managed lines a change of single rules touches, as they are recorded and as they would be after it. */
function ruleChangeLines(store: FirewallStore, family: Family, table: string, change: RuleChange): { before: ManagedLines; after: ManagedLines } {
  const managed = store.managedLines(family, table);
  const before = new Map<string, string[]>();
  const after = new Map<string, string[]>();
  const touch = (line: string): string[] => {
    if (!before.has(line)) {
      before.set(line, [...(managed.get(line) ?? [])]);
      after.set(line, [...(managed.get(line) ?? [])]);
    }
    return after.get(line)!;
  };
  /** Takes a recorded rule's id off its line; gives the rule's chain (undefined: not recorded). */
  const remove = (id: string): string | undefined => {
    const rule = store.rule(id);
    if (rule === undefined) return undefined;
    const ids = touch(renderRuleLine(rule.chain, rule.spec));
    if (ids.includes(id)) ids.splice(ids.indexOf(id), 1);
    return rule.chain;
  };
  if (change.kind === "add") for (const rule of change.rules) touch(renderRuleLine(rule.chain, rule.spec)).push(rule.id);
  else if (change.kind === "replace") {
    const chain = remove(change.id);
    if (chain !== undefined) touch(renderRuleLine(chain, change.spec)).push(change.newId);
  } else remove(change.id);
  return { before, after };
}

/**
 * Which of two versions of a table's managed rules the kernel holds, judged on the lines whose count differs between
 * them: a line agrees with the version whose count the kernel has. More agreement with the staged version decides
 * for it; otherwise (a tie, as with two equal rulesets or a table a reboot emptied) the previous version stays.
 */
export function kernelHolds(kernel: ReadonlyMap<string, number>, before: ManagedLines, staged: ManagedLines): "before" | "staged" {
  let forStaged = 0;
  let forBefore = 0;
  for (const line of new Set([...before.keys(), ...staged.keys()])) {
    const was = before.get(line)?.length ?? 0;
    const next = staged.get(line)?.length ?? 0;
    if (was === next) continue;
    const held = kernel.get(line) ?? 0;
    if (held === next) forStaged++;
    else if (held === was) forBefore++;
  }
  return forStaged > forBefore ? "staged" : "before";
}

function count(lines: ManagedLines): number {
  let total = 0;
  for (const ids of lines.values()) total += ids.length;
  return total;
}
