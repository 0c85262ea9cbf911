import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import type { EventLog } from "../events/event-log.js";
import type { JailBanStore } from "../store/jail-ban-store.js";
import type { JailService } from "./jail-service.js";
import type { AllowlistService } from "./allowlist-service.js";
import type { JailEnforcement } from "./jail-enforcement.js";

/** A jail's whole ban list is read at least every this many looks, even when its counters did not move. */
const FULL_LOOK_EVERY = 20;

/**
 * Turns fail2ban's own decisions (a jail banning after failures, a ban expiring) into BAN/UNBAN events by comparing
 * each jail's ban list over the socket (≈ 0.3 ms a jail) with the list last seen, which is kept in SQLite: bans made
 * or lifted while Portcullis was down are reported at the next look. Bans made through the API are recorded by the
 * API path itself (under the same per-jail lock, see observe), so they are not reported twice. Each look also puts the
 * host allowlist back into jails that lost it (a fail2ban restart or reload resets ignoreip).
 */
export class BanWatcher {
  readonly #jails: JailService;
  readonly #bans: JailBanStore;
  readonly #allowlist: AllowlistService;
  #enforcement: JailEnforcement | undefined;
  readonly #events: EventLog;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  /** Whether fail2ban answered at the last look (undefined before the first). */
  #up: boolean | undefined;
  readonly #socket: string;
  /** Each jail's ban counters at the last look at its list, and whether that look left something to settle. */
  readonly #lastLook = new Map<string, { counters: string; unsettled: boolean; version: number; looks: number }>();
  /** Each jail's ban list at the last look. */
  readonly #lastSeen = new Map<string, Set<string>>();

  /** `bans`: the record of each jail's bans that the API, the Portcullis action and this watcher keep. */
  constructor(deps: { jails: JailService; bans: JailBanStore; allowlist: AllowlistService; events: EventLog; log: Logger; socket: string }) {
    this.#socket = deps.socket;
    this.#jails = deps.jails;
    this.#bans = deps.bans;
    this.#allowlist = deps.allowlist;
    this.#events = deps.events;
    this.#log = deps.log;
  }

  /**
   * From now on, jails that ban through the Portcullis action get their sets and rules at the first look (fail2ban
   * may have started them while Portcullis was down, so the action's start did not reach it).
   */
  start(intervalMs: number, enforcement?: JailEnforcement): void {
    this.#enforcement = enforcement;
    this.#timer = setInterval(() => void this.poll(), intervalMs);
    this.#timer.unref();
    void this.poll();
  }

  close(): void {
    clearInterval(this.#timer);
  }

  async poll(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      for (const jail of await this.#jails.names()) {
        if (this.#enforcement !== undefined && (await this.#jails.usesPortcullisAction(jail))) await this.#enforcement.start(jail);
        const { added, removed } = await this.observe(jail);
        for (const address of added) this.#events.append({ type: "BAN", resource: `jails/${jail}/bans/${address}`, attributes: { jail, address } }, "fail2ban", "fail2ban");
        for (const address of removed) this.#events.append({ type: "UNBAN", resource: `jails/${jail}/bans/${address}`, attributes: { jail, address } }, "fail2ban", "fail2ban");
      }
      await this.#allowlist.syncJails();
      this.#reachable(true);
    } catch (error) {
      if (!(error instanceof ServerError && error.reason === "FAIL2BAN_UNAVAILABLE")) this.#log.warn({ err: error }, "reading fail2ban's bans failed");
      else this.#reachable(false, error.message);
    } finally {
      this.#running = false;
    }
  }

  /**
   * Compares a jail's ban list with the one last seen and records the difference: the bans and unbans fail2ban made
   * by itself (or that happened while Portcullis was down). Under the jail's ban lock, so that a ban made through the
   * API between reading the list and the record is never mistaken for one of fail2ban's (or for an unban); and
   * dropped when the Portcullis action recorded a change meanwhile (it reports without the lock: fail2ban calls it
   * while the API waits for fail2ban under the lock), to be looked at again next time.
   */
  async observe(jail: string): Promise<{ added: string[]; removed: string[] }> {
    // With the Portcullis action the action reports each change as it happens; a difference seen here may be one whose
    // report is on its way (fail2ban lists a ban a moment before it calls the action), so it counts only when the
    // previous look saw it too: what is left is what happened while Portcullis was down.
    const settle = await this.#jails.usesPortcullisAction(jail);
    return this.#jails.withBanLock([jail], async () => {
      const version = this.#bans.version(jail);
      // Counters first: `status <jail> short` is one cheap round trip, while the list (≈ 10 ms for 10k bans, during
      // which fail2ban answers nobody else) is read only when they moved, when the last look left something to
      // settle or our record changed since, and at least every FULL_LOOK_EVERY looks.
      const status = await this.#jails.counters(jail);
      const counters = `${status.currentlyBanned}/${status.totalBanned}`;
      const last = this.#lastLook.get(jail);
      if (last !== undefined && last.counters === counters && !last.unsettled && last.version === version && last.looks < FULL_LOOK_EVERY) {
        last.looks++;
        return { added: [], removed: [] };
      }
      const now = new Set(await this.#jails.banned(jail));
      const previous = this.#lastSeen.get(jail);
      this.#lastSeen.set(jail, now);
      if (this.#bans.version(jail) !== version) {
        this.#lastLook.delete(jail);
        return { added: [], removed: [] };
      }
      const before = this.#bans.addresses(jail);
      const differ = { added: [...now].filter((address) => !before.has(address)), removed: [...before].filter((address) => !now.has(address)) };
      const taken = !settle ? differ : {
        added: differ.added.filter((address) => previous?.has(address) === true),
        removed: differ.removed.filter((address) => previous?.has(address) === false),
      };
      const recorded = this.#bans.record(jail, taken.added, taken.removed);
      const unsettled = taken.added.length !== differ.added.length || taken.removed.length !== differ.removed.length;
      this.#lastLook.set(jail, { counters, unsettled, version: this.#bans.version(jail), looks: 0 });
      return recorded;
    });
  }

  /**
   * fail2ban's reachability changes become events: down after it had answered, up after it had not. A server that
   * starts while fail2ban is absent records nothing until fail2ban first answers (hosts without fail2ban stay quiet).
   */
  #reachable(up: boolean, reason = ""): void {
    const was = this.#up;
    this.#up = up;
    if (was === up || (was === undefined && up)) return;
    if (up) {
      this.#log.info("fail2ban is reachable again");
      this.#events.append({ type: "FAIL2BAN_UP", resource: "fail2ban", attributes: { socket: this.#socket } }, "system", "system");
    } else {
      this.#log.warn({ reason }, "fail2ban is not reachable; jail events resume when it is back");
      if (was === true) this.#events.append({ type: "FAIL2BAN_DOWN", resource: "fail2ban", attributes: { socket: this.#socket, reason } }, "system", "system");
    }
  }
}
