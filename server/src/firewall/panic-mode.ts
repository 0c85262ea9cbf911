import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import type { IptablesDriver } from "../drivers/iptables-driver.js";
import type { FirewallStore } from "../store/firewall-store.js";
import { familyOfAddress, type ApiEndpoint } from "./lockout-guard.js";
import { panicOffText, panicOnText, panicRules, panicRulesOnTop } from "./panic-rules.js";
import type { TableAccess } from "./table-access.js";

export interface PanicStatus {
  readonly enabled: boolean;
  readonly managementAddresses: readonly string[];
}

/**
 * Panic mode: the switch that cuts a host off but for the API from the management addresses (the rules are in
 * panic-rules.ts). Its saved policies are in the store, so it stays on across restarts, and other changes of rules
 * are refused while it is on.
 */
export class PanicMode {
  readonly #iptables: IptablesDriver;
  readonly #store: FirewallStore;
  readonly #tables: TableAccess;
  readonly #log: Logger;
  readonly #api: ApiEndpoint;
  readonly #management: readonly string[];

  constructor(deps: { iptables: IptablesDriver; store: FirewallStore; tables: TableAccess; log: Logger; api: ApiEndpoint; managementAddresses: readonly string[] }) {
    this.#iptables = deps.iptables;
    this.#store = deps.store;
    this.#tables = deps.tables;
    this.#log = deps.log;
    this.#api = deps.api;
    this.#management = deps.managementAddresses;
  }

  get enabled(): boolean {
    return this.#store.panicSnapshots().length > 0;
  }

  status(): PanicStatus {
    return { enabled: this.enabled, managementAddresses: this.#management };
  }

  refuseChanges(): void {
    if (this.enabled) throw new ServerError("PANIC_MODE", "panic mode is on; disable it before changing rules");
  }

  /**
   * Drops everything but the API port from the management addresses, in both families: rules on top of the built-in
   * chains and DROP policies (see panic-rules.ts), so that every other rule, of Portcullis or of other tools, stays
   * where it is. Saves the policies it replaces.
   */
  async enable(): Promise<PanicStatus> {
    return this.#tables.lockedInBothFamilies("filter", async () => {
      if (this.enabled) throw new ServerError("PANIC_MODE", "panic mode is already on; disable it first");
      for (const family of ["ipv4", "ipv6"] as const) {
        const rules = panicRules(family, this.#management.filter((address) => familyOfAddress(address) === family), this.#api.port);
        this.#store.putPanicSnapshot(family, await this.#iptables.save(family, "filter", false));
        await this.#iptables.change(family, panicOnText(rules));
      }
      this.#log.warn({ managementAddresses: this.#management, port: this.#api.port }, "panic mode enabled: all traffic but the API from management addresses is dropped");
      return this.status();
    });
  }

  /** Removes panic mode's rules and puts the saved policies back; nothing else changes. */
  async disable(): Promise<PanicStatus> {
    return this.#tables.lockedInBothFamilies("filter", async () => {
      const snapshots = this.#store.panicSnapshots();
      if (snapshots.length === 0) throw new ServerError("PANIC_MODE", "panic mode is not on");
      for (const snapshot of snapshots) {
        const current = await this.#tables.snapshot(snapshot.family, "filter");
        if (panicRulesOnTop(current.rules)) await this.#iptables.change(snapshot.family, panicOffText(current.rules, snapshot.kernel));
        else await this.#iptables.restore(snapshot.family, snapshot.kernel);
      }
      this.#store.clearPanic();
      this.#log.warn("panic mode disabled: the previous rulesets are back");
      return this.status();
    });
  }
}
