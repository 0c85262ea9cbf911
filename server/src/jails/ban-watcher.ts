import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import type { EventLog } from "../events/event-log.js";
import type { JailService } from "./jail-service.js";
import type { AllowlistService } from "./allowlist-service.js";
import type { JailEnforcement } from "./jail-enforcement.js";

/**
 * Turns fail2ban's own decisions (a jail banning after failures, a ban expiring) into BAN/UNBAN events by comparing
 * each jail's ban list over the socket (≈ 0.3 ms a jail) with the list last seen, which is kept in SQLite: bans made
 * or lifted while Portcullis was down are reported at the next look. Bans made through the API are recorded by the
 * API path itself (under the same per-jail lock, see JailService.observeBans), so they are not reported twice. Each
 * look also puts the host allowlist back into jails that lost it (a fail2ban restart or reload resets ignoreip).
 */
export class BanWatcher {
  readonly #jails: JailService;
  readonly #allowlist: AllowlistService;
  #enforcement: JailEnforcement | undefined;
  readonly #events: EventLog;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  /** Whether fail2ban answered at the last look (undefined before the first). */
  #up: boolean | undefined;
  readonly #socket: string;

  constructor(deps: { jails: JailService; allowlist: AllowlistService; events: EventLog; log: Logger; socket: string }) {
    this.#socket = deps.socket;
    this.#jails = deps.jails;
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
        const { added, removed } = await this.#jails.observeBans(jail);
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
