import type { Logger } from "../logger.js";
import type { FleetStore } from "../store/fleet-store.js";
import { encodeMessage, messageId, OPERATIONS_PER_MESSAGE } from "./fleet-model.js";
import type { JetStreamLink } from "./jetstream-link.js";

/** How often the outbox is looked at even without a kick (a publish that failed, NATS back without a reconnect event). */
const RETRY_MS = 1_000;
const PUBLISH_TIMEOUT_MS = 5_000;

/**
 * Drains the outbox into the stream, oldest first, a message of up to OPERATIONS_PER_MESSAGE operations at a time,
 * deleting each batch only once JetStream acknowledged it. A batch published twice (an ack lost to a NATS failover) is
 * dropped by the stream's duplicate window, and by every consumer's record of operation ids after it.
 *
 * One message at a time: with several in flight, one refused during a leader election could be stored after a later
 * one that went through when it is published again (an unban before the ban it lifts). While a message waits for its
 * acknowledgement the outbox fills, so the next carries everything queued meanwhile (up to 500 operations).
 */
export class FleetPublisher {
  readonly #link: JetStreamLink;
  readonly #store: FleetStore;
  readonly #log: Logger;
  readonly #node: string;
  #running = false;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(deps: { link: JetStreamLink; store: FleetStore; node: string; log: Logger }) {
    this.#link = deps.link;
    this.#node = deps.node;
    this.#store = deps.store;
    this.#log = deps.log;
  }

  start(): void {
    this.#link.onLinked(() => this.kick());
    this.#timer = setInterval(() => this.kick(), RETRY_MS);
    this.#timer.unref();
  }

  /** Something was queued (or NATS is back): publish now. */
  kick(): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    void this.#drain().finally(() => {
      this.#running = false;
      if (this.#again) {
        this.#again = false;
        this.kick();
      }
    });
  }

  async #drain(): Promise<void> {
    try {
      while (!this.#closed) {
        const linked = this.#link.linked;
        if (linked === undefined) return;
        const { operations, lastSeq } = this.#store.pending(OPERATIONS_PER_MESSAGE);
        if (operations.length === 0) return;
        await linked.js.publish(this.#link.subjects.bans, encodeMessage(operations), { msgID: messageId(this.#node, operations[0]!.id, operations.length), timeout: PUBLISH_TIMEOUT_MS });
        this.#store.sent(lastSeq);
      }
    } catch (error) {
      // Left in the outbox: the next try publishes the same batch first (same message id).
      this.#log.warn({ err: error, queued: this.#store.outboxSize() }, "fleet: publishing shared bans failed; retrying");
    }
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
  }
}
