import type { ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import type { Logger } from "../logger.js";
import { decodeMessage } from "./fleet-operation.js";
import { isTransient, type FleetApplier } from "./fleet-applier.js";
import type { JetStreamLink, Linked } from "./jetstream-link.js";

/** A message whose operations could not be applied now (fail2ban away) comes back after this long. */
const REDELIVER_MS = 2_000;
const EXPIRY_CHECK_MS = 1_000;
/** Messages the consumer asks for ahead of the one being applied. */
const PREFETCH = 64;

/**
 * This node's side of the stream: its durable consumer hands each message to the applier and acknowledges it once
 * applied (or refused, which is recorded); a node that was away gets everything it missed from its consumer's
 * position. Also lifts shared jail bans whose absolute expiry has come.
 */
export class FleetConsumer {
  readonly #link: JetStreamLink;
  readonly #applier: FleetApplier;
  readonly #log: Logger;
  #messages: ConsumerMessages | undefined;
  #consuming = false;
  #closed = false;
  #expiry: NodeJS.Timeout | undefined;
  #expiring = false;

  constructor(deps: { link: JetStreamLink; applier: FleetApplier; log: Logger }) {
    this.#link = deps.link;
    this.#applier = deps.applier;
    this.#log = deps.log;
  }

  start(): void {
    this.#link.onLinked((linked) => {
      if (this.#consuming) return;
      this.#consuming = true;
      void this.#consume(linked).finally(() => (this.#consuming = false));
    });
    this.#expiry = setInterval(() => {
      if (this.#expiring) return;
      this.#expiring = true;
      this.#applier.expire()
        .catch((error: unknown) => this.#log.warn({ err: error }, "fleet: lifting expired shared bans failed; retrying"))
        .finally(() => (this.#expiring = false));
    }, EXPIRY_CHECK_MS);
    this.#expiry.unref();
  }

  async #consume(linked: Linked): Promise<void> {
    while (!this.#closed) {
      try {
        this.#messages = await linked.consumer.consume({ max_messages: PREFETCH });
        for await (const message of this.#messages) {
          if (this.#closed) break;
          await this.#handle(message);
        }
      } catch (error) {
        if (this.#closed) return;
        this.#log.warn({ err: error }, "fleet: consuming the stream failed; resuming");
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  async #handle(message: JsMsg): Promise<void> {
    const operations = decodeMessage(message.data);
    if ("problem" in operations) {
      // Not ours to apply (a newer format, or garbage): never redelivered.
      this.#log.error({ seq: message.seq, problem: operations.problem }, "fleet: a stream message is not a batch of shared bans; skipped");
      message.term();
      return;
    }
    try {
      await this.#applier.apply(operations);
      message.ack();
    } catch (error) {
      if (isTransient(error)) {
        this.#log.warn({ err: error, seq: message.seq }, "fleet: shared bans could not be applied now; redelivery later");
        message.nak(REDELIVER_MS);
      } else {
        this.#log.error({ err: error, seq: message.seq }, "fleet: shared bans failed");
        message.term();
      }
    }
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#expiry);
    this.#messages?.stop();
  }
}
