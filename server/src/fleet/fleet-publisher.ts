import type { Logger } from "../logger.js";
import type { FleetStore } from "../store/fleet-store.js";
import { encodeMessage, OPERATIONS_PER_MESSAGE } from "./fleet-operation.js";
import type { JetStreamLink } from "./jetstream-link.js";

/** How often the outbox is looked at even without a kick (a publish that failed, NATS back without a reconnect event). */
const RETRY_MS = 1_000;
const PUBLISH_TIMEOUT_MS = 5_000;

/**
 * Drains the outbox into the stream, oldest first, a message of up to OPERATIONS_PER_MESSAGE operations at a time,
 * deleting each batch only once JetStream acknowledged it. A batch published twice (an ack lost to a NATS failover) is
 * dropped by the stream's duplicate window, and by every consumer's record of operation ids after it.
 */
export class FleetPublisher {
  readonly #link: JetStreamLink;
  readonly #store: FleetStore;
  readonly #log: Logger;
  #running = false;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(deps: { link: JetStreamLink; store: FleetStore; log: Logger }) {
    this.#link = deps.link;
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
    while (!this.#closed) {
      const linked = this.#link.linked;
      if (linked === undefined) return;
      const { operations, lastSeq } = this.#store.pending(OPERATIONS_PER_MESSAGE);
      if (operations.length === 0) return;
      try {
        await linked.js.publish(this.#link.subjects.bans, encodeMessage(operations), { msgID: `${operations[0]!.id}-${operations.length}`, timeout: PUBLISH_TIMEOUT_MS });
      } catch (error) {
        this.#log.warn({ err: error, queued: this.#store.outboxSize() }, "fleet: publishing shared bans failed; retrying");
        return;
      }
      this.#store.sent(lastSeq);
    }
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
  }
}
