import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import type { KeyedLock } from "../keyed-lock.js";
import type { EventLog } from "../events/event-log.js";
import { ipsetName } from "../names.js";
import type { IpsetDriver } from "../drivers/ipset-driver.js";
import { renderAddLine } from "../drivers/parse/ipset-save.js";
import type { IpsetStore, StoredEntry } from "../store/ipset-store.js";
import { expandElement, normalizeElement } from "./element.js";
import { commentOf, toApply } from "./entry-preparation.js";
import { compatible } from "./ipset-definition.js";
import type { IpsetDefinition, KernelIpset } from "./ipset-model.js";
import { delLines } from "./restore-text.js";
import type { SetGrowth } from "./set-growth.js";

export interface ReconcileReport {
  readonly setsCreated: number;
  readonly entriesRestored: number;
  /** Entries in a managed kernel set that the store did not know (added by hand, or cut short by a crash). */
  readonly entriesRemoved: number;
  /** Records the kernel would not take (each reported as a STATE_REFUSED event and forgotten). */
  readonly recordsRefused: number;
}

/** Records of one set the kernel may refuse in a repair before the set is given up on (and reported). */
const MAX_REFUSED_RECORDS = 100;

/** The repair of the kernel's managed sets from the store, at start and periodically: the store is the truth. */
export class IpsetReconciler {
  readonly #kernel: IpsetDriver;
  readonly #store: IpsetStore;
  readonly #lock: KeyedLock;
  readonly #growth: SetGrowth;
  readonly #events: EventLog;
  readonly #log: Logger;

  constructor(deps: { kernel: IpsetDriver; store: IpsetStore; lock: KeyedLock; growth: SetGrowth; events: EventLog; log: Logger }) {
    this.#kernel = deps.kernel;
    this.#store = deps.store;
    this.#lock = deps.lock;
    this.#growth = deps.growth;
    this.#events = deps.events;
    this.#log = deps.log;
  }

  /**
   * Makes each managed kernel set hold exactly the live recorded entries again (after a reboot, `ipset flush`,
   * `ipset destroy` or `ipset add` by hand, or a crash mid-batch), with their remaining timeouts; expired entries are
   * forgotten, not resurrected. With `full` false, a set whose kernel entry count equals the recorded count is trusted
   * without reading its entries. A record the kernel refuses (or one that no longer validates) is reported as a
   * STATE_REFUSED event, logged and forgotten; it never keeps the rest, or the server, from starting.
   */
  async reconcile(full: boolean): Promise<ReconcileReport> {
    const now = Date.now();
    this.#store.purgeExpired(now);
    const kernel = new Map((await this.#kernel.list()).map((set) => [set.definition.name, set]));
    const report = { setsCreated: 0, entriesRestored: 0, entriesRemoved: 0, recordsRefused: 0 };
    await this.#growth.removeLeftovers(kernel.values());
    for (const definition of this.#store.sets()) {
      await this.#lock.with([definition.name], async () => {
        try {
          await this.#reconcileSet(definition, kernel.get(definition.name), full, now, report);
        } catch (error) {
          const reason = error instanceof ServerError ? error.reason : "KERNEL_COMMAND_FAILED";
          this.#log.error({ ipset: definition.name, reason, error: String(error) }, "managed set could not be repaired; left as it is");
          this.#events.append({ type: "STATE_REFUSED", resource: ipsetName(definition.name), attributes: { reason } }, "system", "system");
        }
      });
    }
    if (report.setsCreated + report.entriesRestored + report.entriesRemoved + report.recordsRefused > 0) this.#log.warn(report, "kernel ipset state repaired from the store");
    return report;
  }

  async #reconcileSet(definition: IpsetDefinition, current: KernelIpset | undefined, full: boolean, now: number, report: { setsCreated: number; entriesRestored: number; entriesRemoved: number; recordsRefused: number }): Promise<void> {
    const name = definition.name;
    if (current === undefined) {
      await this.#kernel.create(definition);
      report.setsCreated++;
    } else if (!compatible(current.definition, definition)) {
      this.#log.error({ ipset: name, kernel: current.definition.typeName, recorded: definition.typeName }, "kernel set differs from the managed definition; left alone");
      return;
    } else if (!full && current.entryCount === this.#store.count(name, now)) {
      return;
    }
    const present = current === undefined ? new Set<string>() : new Set((await this.#kernel.entries(name)).map((entry) => entry.element));
    const missing: StoredEntry[] = [];
    const lines: string[] = [];
    const refused: Array<{ element: string; error: ServerError }> = [];
    for (const entry of this.#store.liveEntries(name, now)) {
      if (present.delete(entry.element)) continue;
      try {
        // The record passes the checks a request would (it may come from an older version, or a hand-edited store).
        if (normalizeElement(definition, entry.element) !== entry.element || expandElement(definition.typeName, entry.element).length > 1) {
          throw new ServerError("INVALID_ELEMENT", `recorded element ${entry.element} is not in the form the kernel holds`, { element: entry.element });
        }
        if (entry.comment !== undefined) commentOf(definition, entry.comment, "comment");
        lines.push(renderAddLine(name, toApply(definition, entry, now)));
        missing.push(entry);
      } catch (error) {
        if (!(error instanceof ServerError)) throw error;
        refused.push({ element: entry.element, error });
      }
    }
    const kernelRefused = await this.#kernel.restoreSkipping(lines, MAX_REFUSED_RECORDS);
    for (const { index, error } of kernelRefused) refused.push({ element: missing[index]!.element, error });
    // What is left in `present` is in the kernel but not recorded: not part of the desired state.
    const extra = [...present];
    if (extra.length > 0) await this.#kernel.restore(delLines(name, extra));
    if (refused.length > 0) this.#store.deleteEntries(name, refused.map((record) => record.element));
    for (const { element, error } of refused) {
      this.#log.error({ ipset: name, element, reason: error.reason, error: error.message }, "recorded entry refused; forgotten");
      this.#events.append({ type: "STATE_REFUSED", resource: ipsetName(name), attributes: { element, reason: error.reason } }, "system", "system");
    }
    const applied = missing.length - kernelRefused.length;
    report.entriesRestored += applied;
    report.entriesRemoved += extra.length;
    report.recordsRefused += refused.length;
    if (current === undefined || applied + extra.length > 0) {
      this.#events.append({ type: "STATE_REPAIRED", resource: ipsetName(name), attributes: { count: String(applied), ...(extra.length > 0 ? { removed: String(extra.length) } : {}), ...(current === undefined ? { recreated: "true" } : {}) } }, "system", "system");
    }
  }
}
