import type { Logger } from "../logger.js";
import type { FleetStore } from "../store/fleet-store.js";
import { encodeMessage, messageId, OPERATIONS_PER_MESSAGE } from "./fleet-operation.js";
import type { JetStreamLink } from "./jetstream-link.js";

/** How often the outbox is looked at even without a kick (a publish that failed, NATS back without a reconnect event). */
const RETRY_MS = 1_000;
const PUBLISH_TIMEOUT_MS = 5_000;
/** Messages published before the first is acknowledged (a replicated stream acknowledges in a few ms each). */
const IN_FLIGHT = 8;

/**
 * Drains the outbox into the stream, oldest first, a message of up to OPERATIONS_PER_MESSAGE operations at a time,
 * deleting each batch only once JetStream acknowledged it. A batch published twice (an ack lost to a NATS failover) is
 * dropped by the stream's duplicate window, and by every consumer's record of operation ids after it.
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

  /**
   * Publishes up to IN_FLIGHT messages at a time (one connection keeps them in order) and deletes each from the
   * outbox once acknowledged, in order. On a failure the rest is left for the next try, which starts again from the
   * first unacknowledged batch: whatever went through twice is dropped by the stream's duplicate window or by the
   * consumers' records of operation ids.
   */
  async #drain(): Promise<void> {
    const inFlight: Array<{ lastSeq: number; acked: Promise<unknown> }> = [];
    let after = 0;
    try {
      while (!this.#closed) {
        const linked = this.#link.linked;
        if (linked === undefined) return;
        while (inFlight.length < IN_FLIGHT) {
          const { operations, lastSeq } = this.#store.pending(OPERATIONS_PER_MESSAGE, after);
          if (operations.length === 0) break;
          const acked = linked.js.publish(this.#link.subjects.bans, encodeMessage(operations), { msgID: messageId(this.#node, operations[0]!.id, operations.length), timeout: PUBLISH_TIMEOUT_MS });
          acked.catch(() => undefined); // awaited below, in order
          inFlight.push({ lastSeq, acked });
          after = lastSeq;
        }
        const oldest = inFlight.shift();
        if (oldest === undefined) return;
        await oldest.acked;
        this.#store.sent(oldest.lastSeq);
      }
    } catch (error) {
      this.#log.warn({ err: error, queued: this.#store.outboxSize() }, "fleet: publishing shared bans failed; retrying");
    } finally {
      await Promise.allSettled(inFlight.map((entry) => entry.acked));
    }
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
  }
}
