import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import type { EventLog } from "../events/event-log.js";
import { tableName } from "../names.js";
import type { IptablesDriver } from "../drivers/iptables-driver.js";
import type { FirewallStore } from "../store/firewall-store.js";
import { delayUntil } from "../timer-delay.js";
import { rollbackPlan } from "./rollback-plan.js";
import type { Family, Table } from "./rule-model.js";
import type { TableAccess } from "./table-access.js";

const MAX_CONFIRM_SECONDS = 3600;

/**
 * Safe mode: a change made with confirm_within rolls its table back unless confirmed in time. The table as it was is
 * stored before the change (so a rollback survives a restart) and a timer per table does the rollback.
 */
export class SafeMode {
  readonly #iptables: IptablesDriver;
  readonly #store: FirewallStore;
  readonly #tables: TableAccess;
  readonly #events: EventLog;
  readonly #log: Logger;
  readonly #timers = new Map<string, NodeJS.Timeout>();

  constructor(deps: { iptables: IptablesDriver; store: FirewallStore; tables: TableAccess; events: EventLog; log: Logger }) {
    this.#iptables = deps.iptables;
    this.#store = deps.store;
    this.#tables = deps.tables;
    this.#events = deps.events;
    this.#log = deps.log;
  }

  close(): void {
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  /**
   * Makes a change, the caller holding the table's lock; with confirmWithin, snapshots the table before it and arms
   * the rollback, returning its deadline.
   */
  async run(family: Family, table: Table, confirmWithin: number | undefined, change: () => Promise<void>): Promise<number | undefined> {
    if (confirmWithin === undefined || confirmWithin === 0) {
      await change();
      return undefined;
    }
    if (!Number.isInteger(confirmWithin) || confirmWithin < 1 || confirmWithin > MAX_CONFIRM_SECONDS) {
      throw new ServerError("INVALID_TIMEOUT", `confirm_within must be from 1 to ${MAX_CONFIRM_SECONDS} seconds`, { field: "confirm_within" });
    }
    const existing = this.#store.rollbacks().find((rollback) => rollback.family === family && rollback.table === table);
    // A second change while one is pending keeps the first snapshot: a rollback returns to the last confirmed state.
    const deadline = existing?.deadline ?? Date.now() + confirmWithin * 1000;
    if (existing === undefined) {
      const kernel = await this.#iptables.save(family, table, false);
      this.#store.putRollback({ family, table, deadline, kernel, managed: this.#store.table(family, table) });
    }
    try {
      await change();
    } catch (error) {
      if (existing === undefined) this.#store.deleteRollback(family, table);
      throw error;
    }
    this.#arm(family, table, deadline);
    return deadline;
  }

  /** Keeps what safe mode applied: the pending rollback is dropped. */
  async confirm(family: Family, table: Table): Promise<void> {
    return this.#tables.locked(family, table, async () => {
      if (!this.#store.rollbacks().some((rollback) => rollback.family === family && rollback.table === table)) {
        throw new ServerError("NO_PENDING_ROLLBACK", `no safe-mode change of the ${family} ${table} table is waiting for confirmation`, { family, table });
      }
      this.#store.deleteRollback(family, table);
      clearTimeout(this.#timers.get(`${family}/${table}`));
      this.#timers.delete(`${family}/${table}`);
      this.#log.info({ family, table }, "safe-mode change confirmed");
    });
  }

  /** After a start: arms the recorded rollbacks (those past their deadline roll back at once). */
  resume(): void {
    for (const rollback of this.#store.rollbacks()) {
      if (!this.#timers.has(`${rollback.family}/${rollback.table}`)) this.#arm(rollback.family, rollback.table as Table, rollback.deadline);
    }
  }

  #arm(family: Family, table: Table, deadline: number): void {
    const key = `${family}/${table}`;
    clearTimeout(this.#timers.get(key));
    const timer = setTimeout(() => void this.#rollBack(family, table), delayUntil(deadline));
    timer.unref();
    this.#timers.set(key, timer);
  }

  async #rollBack(family: Family, table: Table): Promise<void> {
    this.#timers.delete(`${family}/${table}`);
    try {
      await this.#tables.locked(family, table, async () => {
        const rollback = this.#store.rollbacks().find((candidate) => candidate.family === family && candidate.table === table);
        if (rollback === undefined) return;
        const plan = rollbackPlan(family, table, rollback.kernel, rollback.managed, await this.#tables.snapshot(family, table), this.#tables.ownedChains(family, table));
        if (plan.whole) {
          await this.#iptables.restore(family, rollback.kernel);
        } else {
          const feed = this.#iptables.changeFeed(family);
          await feed.commit(plan.text);
          await feed.done();
        }
        this.#store.replaceTable(family, table, rollback.managed);
        this.#store.deleteRollback(family, table);
        this.#log.warn({ family, table }, "safe-mode change not confirmed in time: previous ruleset restored");
        this.#events.append({ type: "RULESET_ROLLED_BACK", resource: tableName({ family, table }) }, "system", "system");
      });
    } catch (error) {
      this.#log.error({ err: error, family, table }, "safe-mode rollback failed; retrying in 5 s");
      this.#arm(family, table, Date.now() + 5000);
    }
  }
}
