import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import { canonicalNetwork, parseNetworkCanonical } from "../addresses.js";
import type { EventLog } from "../events/event-log.js";
import type { ApiCall } from "../events/api-call.js";
import { banName } from "../names.js";
import { KeyedLock } from "../keyed-lock.js";
import { delayUntil } from "../timer-delay.js";
import type { AllowlistRow, AllowlistStore } from "../store/allowlist-store.js";
import { expired, type Allowlist } from "./allowlist.js";
import type { JailService } from "./jail-service.js";
import { TEN_YEARS_SECONDS, validateNote } from "./jail-checks.js";

/**
 * Changes to the host allowlist, and keeping fail2ban in step with it. BanIp consults the allowlist (JailService);
 * fail2ban's own detections skip its entries because every running jail has each of them in its ignoreip (put back
 * after fail2ban restarts or reloads: `syncJails` runs with every BanWatcher look); adding an entry lifts the jail
 * bans it covers; an expired entry is removed like a deleted one, with an event.
 */
export class AllowlistService {
  readonly #allowlist: Allowlist;
  readonly #store: AllowlistStore;
  readonly #jails: JailService;
  readonly #events: EventLog;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  /** One sync at a time: two that both read an entry as present would both delete it, and fail2ban refuses the second. */
  readonly #syncing = new KeyedLock();

  constructor(deps: { allowlist: Allowlist; store: AllowlistStore; jails: JailService; events: EventLog; log: Logger }) {
    this.#allowlist = deps.allowlist;
    this.#store = deps.store;
    this.#jails = deps.jails;
    this.#events = deps.events;
    this.#log = deps.log;
    this.#schedule();
  }

  close(): void {
    clearTimeout(this.#timer);
  }

  list(): AllowlistRow[] {
    return this.#allowlist.list();
  }

  /** Adds or renews an entry; returns it and the jail bans it lifted (ALLOWLIST_ENTRY_ADDED, then an UNBAN each). */
  async add(network: string, comment: string, timeoutSeconds: number, call: ApiCall): Promise<{ entry: AllowlistRow; lifted: Array<{ jail: string; address: string }> }> {
    const canonical = canonicalNetwork(network, "network");
    validateNote(comment, "comment");
    if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 0 || timeoutSeconds > TEN_YEARS_SECONDS) {
      throw new ServerError("INVALID_TIMEOUT", `timeout must be 0 (never) to ${TEN_YEARS_SECONDS} seconds, got ${timeoutSeconds}`, { field: "timeout" });
    }
    const now = Date.now();
    const entry: AllowlistRow = { network: canonical, comment, createdAt: now, ...(timeoutSeconds === 0 ? {} : { expiresAt: now + timeoutSeconds * 1000 }), createdBy: call.principal };
    this.#allowlist.put(entry);
    this.#schedule();
    const lifted: Array<{ jail: string; address: string }> = [];
    // With fail2ban down the entry holds for BanIp at once, and reaches the jails at the watcher's first look after.
    if (await this.#jails.reachable()) {
      await this.syncJails();
      for (const jail of await this.#jails.names()) {
        for (const address of await this.#jails.banned(jail)) {
          if (this.#allowlist.covering(address)?.network !== canonical) continue;
          await this.#jails.unbanHere(jail, address);
          lifted.push({ jail, address });
        }
      }
    }
    call.record({
      type: "ALLOWLIST_ENTRY_ADDED",
      resource: "allowlist",
      attributes: { network: entry.network, comment: entry.comment, ...(entry.expiresAt === undefined ? {} : { expire_time: new Date(entry.expiresAt).toISOString() }) },
    });
    for (const { jail, address } of lifted) call.record({ type: "UNBAN", resource: banName(jail, address), attributes: { jail, address } });
    return { entry, lifted };
  }

  /** Removes an entry, and takes it out of the jails' ignoreip where the allowlist put it. */
  async remove(network: string, call: ApiCall): Promise<void> {
    const canonical = canonicalNetwork(network, "network");
    if (!this.#allowlist.delete(canonical)) throw new ServerError("ENTRY_NOT_FOUND", `${canonical} is not on the allowlist`, { field: "network", value: canonical });
    this.#schedule();
    if (await this.#jails.reachable()) await this.syncJails();
    call.record({ type: "ALLOWLIST_ENTRY_REMOVED", resource: "allowlist", attributes: { network: canonical, reason: "removed" } });
  }

  /**
   * Makes every running jail's ignoreip hold every entry, and takes back what the allowlist put there for entries
   * that are gone. Idempotent; one `get ignoreip` per jail when nothing changed.
   */
  syncJails(): Promise<void> {
    return this.#syncing.with(["jails"], () => this.#syncJailsNow());
  }

  async #syncJailsNow(): Promise<void> {
    const wanted = new Set(this.#allowlist.list().map((entry) => entry.network));
    const applied = this.#store.applied();
    for (const jail of await this.#jails.names()) {
      const present = new Set<string>();
      for (const item of await this.#jails.ignoreList(jail)) {
        const parsed = parseNetworkCanonical(item);
        if (!("problem" in parsed)) present.add(parsed.network);
      }
      for (const network of wanted) {
        if (present.has(network)) continue;
        await this.#jails.addIgnore(jail, network);
        this.#store.markApplied(network, jail);
      }
      for (const pair of applied) {
        if (pair.jail !== jail || wanted.has(pair.network)) continue;
        if (present.has(pair.network)) await this.#jails.removeIgnore(jail, pair.network);
        this.#store.unmarkApplied(pair.network, jail);
      }
    }
  }

  /** A timer for the soonest expiry. */
  #schedule(): void {
    clearTimeout(this.#timer);
    const next = Math.min(...this.#allowlist.stored().map((entry) => entry.expiresAt ?? Infinity));
    if (next === Infinity) return;
    this.#timer = setTimeout(() => this.#expire(), delayUntil(next));
    this.#timer.unref();
  }

  #expire(): void {
    const now = Date.now();
    for (const entry of this.#allowlist.stored()) {
      if (!expired(entry, now)) continue;
      this.#allowlist.delete(entry.network);
      this.#events.append({ type: "ALLOWLIST_ENTRY_REMOVED", resource: "allowlist", attributes: { network: entry.network, reason: "expired" } }, "system", "system");
    }
    this.#schedule();
    void this.#jails.reachable()
      .then((up) => (up ? this.syncJails() : undefined))
      .catch((error: unknown) => this.#log.warn({ err: error }, "taking expired allowlist entries out of the jails failed"));
  }
}
