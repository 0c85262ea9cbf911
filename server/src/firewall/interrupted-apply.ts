import type { Logger } from "../logger.js";
import type { EventLog } from "../events/event-log.js";
import { tableName } from "../names.js";
import type { IptablesDriver } from "../drivers/iptables-driver.js";
import { parseIptablesSave } from "../drivers/parse/iptables-save.js";
import type { FirewallStore } from "../store/firewall-store.js";
import type { ManagedLines, Table } from "./rule-model.js";
import type { TableAccess } from "./table-access.js";

/**
 * Finishes the ApplyRulesets a stop cut between the kernel's commit and the store's publish (kill -9, a crash, a
 * store that failed just then): each left a sealed stage (TableStage.seal). The kernel's commit is one transaction,
 * so the table holds the managed rules from before or the staged ones, whole; the stage is published if it holds the
 * staged ones and dropped if not. Runs before the repair of managed state, which would otherwise take the staged rules
 * in the kernel for another tool's and add the previous ones back beside them.
 */
export async function finishInterruptedApplies(deps: { iptables: IptablesDriver; store: FirewallStore; tables: TableAccess; events: EventLog; log: Logger }): Promise<void> {
  const { iptables, store, tables, events, log } = deps;
  for (const { family, table } of store.sealedStages()) {
    await tables.locked(family, table as Table, async () => {
      // Read again under the lock: an apply under way holds it, and publishes or drops its own stage.
      const stage = store.sealedStages().find((candidate) => candidate.family === family && candidate.table === table);
      if (stage === undefined) return;
      const parsed = parseIptablesSave(await iptables.save(family, table, false)).find((candidate) => candidate.name === table);
      const kernel = new Map<string, number>();
      for (const rule of parsed?.rules ?? []) kernel.set(rule.key, (kernel.get(rule.key) ?? 0) + 1);
      const staged = store.sealedLines(stage);
      const resource = tableName({ family, table });
      if (kernelHolds(kernel, store.managedLines(family, table), staged) === "staged") {
        store.publishSealed(stage);
        log.warn({ family, table }, "an apply cut short after the kernel took it: its rules are now the managed ones");
        events.append({ type: "RULESET_APPLIED", resource, attributes: { rule_count: String(count(staged) - stage.dropped.length), interrupted: "true" } }, "system", "system");
      } else {
        store.dropSealed(stage);
        log.warn({ family, table }, "an apply cut short before the kernel took it: the managed rules stay as they were");
      }
    });
  }
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
