import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import type { EventLog } from "../events/event-log.js";
import { banName } from "../names.js";
import { delayUntil } from "../timer-delay.js";
import type { JailBanStore } from "../store/jail-ban-store.js";

/** A lift that failed (fail2ban down, say) is tried again after this long. */
const RETRY_MS = 5_000;

/** What lifting a ban asks of the jails: an unban on this host, without events (see JailService.unbanHere). */
export interface BanLifter {
  unbanHere(jail: string, address: string): Promise<string[]>;
}

/**
 * Lifts the bans that BanIp gave a duration of their own, when it ends: fail2ban has no per-ban bantime, so it holds
 * them for the jail's bantime (never shorter: BanIp refuses a longer duration) and Portcullis unbans them on time. The
 * expiry is stored with the ban's row (JailBanStore), so one timer for the soonest survives restarts and `kill -9`:
 * bans that came due while the server was down are lifted as soon as it starts.
 */
export class BanExpiry {
  readonly #store: JailBanStore;
  readonly #events: EventLog;
  readonly #log: Logger;
  #lifter: BanLifter | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #closed = false;

  constructor(deps: { store: JailBanStore; events: EventLog; log: Logger }) {
    this.#store = deps.store;
    this.#events = deps.events;
    this.#log = deps.log;
  }

  /** Starts lifting due bans through `lifter` (the jail service, which needs this to be built first). */
  start(lifter: BanLifter): void {
    this.#lifter = lifter;
    this.#schedule();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  /** Sets when Portcullis lifts bans (undefined: fail2ban's bantime decides again), and rearms the timer. */
  set(jail: string, addresses: readonly string[], expiresAt: number | undefined): void {
    // Plain bans (most of them, batches of 100k too) cost nothing while no ban has a duration.
    if (expiresAt === undefined && this.#store.nextExpiry() === undefined) return;
    this.#store.setExpiry(jail, addresses, expiresAt);
    this.#schedule();
  }

  /** A timer for the soonest expiry, not before `notBefore`. */
  #schedule(notBefore = 0): void {
    clearTimeout(this.#timer);
    if (this.#closed || this.#lifter === undefined || this.#running) return;
    const next = this.#store.nextExpiry();
    if (next === undefined) return;
    this.#timer = setTimeout(() => void this.#expire(), delayUntil(Math.max(next, notBefore)));
    this.#timer.unref();
  }

  async #expire(): Promise<void> {
    const lifter = this.#lifter;
    if (lifter === undefined) return;
    this.#running = true;
    let failed = false;
    try {
      for (const ban of this.#store.due(Date.now())) {
        if (this.#closed) return;
        try {
          await lifter.unbanHere(ban.jail, ban.address);
          this.#events.append({ type: "UNBAN", resource: banName(ban.jail, ban.address), attributes: { jail: ban.jail, address: ban.address, reason: "expired" } }, "system", "system");
        } catch (error) {
          if (error instanceof ServerError && (error.reason === "BAN_NOT_FOUND" || error.reason === "JAIL_NOT_FOUND")) {
            // Already gone (an unban, a stopped jail): nothing to lift, nothing left to keep.
            this.#store.record(ban.jail, [], [ban.address]);
            continue;
          }
          failed = true;
          // unbanHere puts the ban's row back when fail2ban failed, without its expiry.
          this.#store.setExpiry(ban.jail, [ban.address], ban.expiresAt);
          this.#log.warn({ err: error, jail: ban.jail, address: ban.address }, "lifting a ban at the end of its duration failed; retrying");
        }
      }
    } finally {
      this.#running = false;
      this.#schedule(failed ? Date.now() + RETRY_MS : 0);
    }
  }
}
