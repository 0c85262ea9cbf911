import { ServerError } from "../errors.js";

/** How long an API call waits for the Portcullis action to report its change in the kernel. */
const ENFORCEMENT_TIMEOUT_MS = 10_000;

/** A wait for the action's reports of some addresses: `until(count)` resolves once `count` of them came. */
export interface Enforcement {
  until(count: number): Promise<void>;
  dispose(): void;
}

const ALREADY_ENFORCED: Enforcement = { until: async () => undefined, dispose: () => undefined };

/**
 * API calls waiting for the Portcullis action (which applies fail2ban's changes after fail2ban has answered) to
 * report that their bans or unbans are in the kernel. For jails without the action the change is in the kernel once
 * fail2ban answers, and there is nothing to wait for.
 */
export class EnforcementWaiters {
  readonly #waiters = new Set<EnforcementWaiter>();

  /**
   * A wait for the action's report of these addresses' bans or unbans. Set up before fail2ban is asked, so that a
   * report arriving before fail2ban's answer is not missed; `until(count)` then waits for `count` of them (what
   * fail2ban says it changed).
   */
  expect(jail: string, op: "ban" | "unban", addresses: readonly string[], viaAction: boolean): Enforcement {
    if (!viaAction) return ALREADY_ENFORCED;
    const waiter = new EnforcementWaiter(jail, op, addresses);
    this.#waiters.add(waiter);
    return { until: (count) => waiter.until(count), dispose: () => this.#waiters.delete(waiter) };
  }

  /** The action's changes are in the kernel: calls waiting for them may answer. */
  enforced(jail: string, op: "ban" | "unban", addresses: readonly string[]): void {
    for (const waiter of this.#waiters) if (waiter.jail === jail && waiter.op === op) waiter.saw(addresses);
  }
}

/** Counts the action's reports for a set of addresses until as many as fail2ban changed have come. */
class EnforcementWaiter {
  readonly jail: string;
  readonly op: "ban" | "unban";
  readonly #pending: Set<string>;
  #seen = 0;
  #needed = Infinity;
  #wake: (() => void) | undefined;

  constructor(jail: string, op: "ban" | "unban", addresses: readonly string[]) {
    this.jail = jail;
    this.op = op;
    this.#pending = new Set(addresses);
  }

  saw(addresses: readonly string[]): void {
    for (const address of addresses) if (this.#pending.delete(address)) this.#seen++;
    if (this.#seen >= this.#needed) this.#wake?.();
  }

  async until(count: number): Promise<void> {
    this.#needed = count;
    if (this.#seen >= count) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        this.#wake = resolve;
        timer = setTimeout(() => reject(new ServerError("ACTION_TIMEOUT", `fail2ban made the ${this.op} in jail ${this.jail}, but the Portcullis action did not report it in the kernel within ${ENFORCEMENT_TIMEOUT_MS / 1000} s; see fail2ban's log`, { jail: this.jail })), ENFORCEMENT_TIMEOUT_MS);
      });
    } finally {
      clearTimeout(timer);
    }
  }
}
