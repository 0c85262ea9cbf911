import type { Logger } from "../logger.js";
import type { EventLog } from "../events/event-log.js";
import { tableName } from "../names.js";
import type { IptablesDriver } from "../drivers/iptables-driver.js";
import { renderRuleLine } from "../drivers/iptables-render.js";
import type { FirewallStore } from "../store/firewall-store.js";
import { WRITABLE_TABLES } from "./rule-model.js";
import type { TableAccess } from "./table-access.js";

/**
 * The repair of the kernel's managed firewall state from the store, at start and periodically: managed chains,
 * policies and rules the kernel lost (a reboot, a flush by hand) come back, rules appended in their recorded order.
 */
export async function restoreManagedState(deps: { iptables: IptablesDriver; store: FirewallStore; tables: TableAccess; events: EventLog; log: Logger }): Promise<{ rulesRestored: number }> {
  const { iptables, store, tables, events, log } = deps;
  let rulesRestored = 0;
  for (const family of ["ipv4", "ipv6"] as const) {
    for (const table of WRITABLE_TABLES) {
      const managed = store.table(family, table);
      if (managed.chains.length === 0 && managed.rules.length === 0) continue;
      await tables.locked(family, table, async () => {
        const snapshot = await tables.snapshot(family, table);
        const lines: string[] = [];
        for (const chain of managed.chains) {
          const present = snapshot.chains.find((candidate) => candidate.name === chain.chain);
          if (present === undefined && chain.policy === undefined) lines.push(`:${chain.chain} - [0:0]`);
          if (present !== undefined && chain.policy !== undefined && present.policy !== chain.policy) lines.push(`:${chain.chain} ${chain.policy} [0:0]`);
        }
        const ids = new Set(snapshot.rules.map((rule) => rule.id));
        for (const rule of managed.rules) {
          if (ids.has(rule.id)) continue;
          lines.push(renderRuleLine(rule.chain, rule.spec));
          rulesRestored++;
        }
        if (lines.length === 0) return;
        await iptables.change(family, `*${table}\n${lines.join("\n")}\nCOMMIT\n`);
        log.warn({ family, table, lines: lines.length }, "managed firewall state restored in the kernel");
        events.append({ type: "STATE_REPAIRED", resource: tableName({ family, table }), attributes: { count: String(lines.length) } }, "system", "system");
      });
    }
  }
  return { rulesRestored };
}
