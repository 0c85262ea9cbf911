/** Whoever waits for the answer to one command written to a long-lived process. */
export interface Waiter<A> {
  readonly resolve: (answer: A) => void;
  readonly reject: (error: Error) => void;
}

/**
 * The commands written to a long-lived process (ipset -, iptables-restore) and not answered yet, oldest first: the
 * process answers them in the order it read them, each within a deadline, and when it dies all are refused.
 */
export class AnswerQueue<T extends Waiter<A>, A> {
  readonly #waiting: Array<{ readonly item: T; readonly timer: NodeJS.Timeout }> = [];
  readonly #timeoutMs: number;
  readonly #onTimeout: (item: T) => void;

  /** `onTimeout`: a command was not answered within `timeoutMs` (the process is stuck: end it, refuse the rest). */
  constructor(timeoutMs: number, onTimeout: (item: T) => void) {
    this.#timeoutMs = timeoutMs;
    this.#onTimeout = onTimeout;
  }

  get length(): number {
    return this.#waiting.length;
  }

  /** The command answered next, if any. */
  get oldest(): T | undefined {
    return this.#waiting[0]?.item;
  }

  /** A command was written to the process: it gets the first answer not taken by an earlier one. */
  written(item: T): void {
    this.#waiting.push({ item, timer: setTimeout(() => this.#onTimeout(item), this.#timeoutMs) });
  }

  /** The process answered its oldest command; false when no command was waiting for it. */
  answer(answer: A): boolean {
    const oldest = this.#waiting.shift();
    if (oldest === undefined) return false;
    clearTimeout(oldest.timer);
    oldest.item.resolve(answer);
    return true;
  }

  /** Refuses every waiting command (the process died or was killed), oldest first. */
  rejectAll(error: Error | ((item: T) => Error)): void {
    const waiting = this.#waiting.splice(0);
    for (const { item, timer } of waiting) {
      clearTimeout(timer);
      item.reject(typeof error === "function" ? error(item) : error);
    }
  }
}
