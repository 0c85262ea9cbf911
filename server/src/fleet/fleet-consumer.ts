import type { ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import type { Logger } from "../logger.js";
import { decodeMessage, parseMessageId, type FleetOperation } from "./fleet-model.js";
import { isTransient, isUnavailable, type FleetApplier } from "./fleet-applier.js";
import type { JetStreamLink, Linked } from "./jetstream-link.js";

/** A message whose operations could not be applied now (fail2ban away) comes back after this long. */
const REDELIVER_MS = 2_000;
/** Deliveries of a message that fails unexpectedly (a bug, a tool refusing it) before it is given up. */
const MAX_UNEXPECTED_DELIVERIES = 5;
const EXPIRY_CHECK_MS = 1_000;
/**
 * How long each pull request lives. Its idle heartbeats (every half of it) are how the client notices that the
 * consumer's leader moved (a NATS server died): short, so that a node resumes within seconds, not the default 30.
 */
const PULL_EXPIRES_MS = 2_000;
/** Messages the consumer asks for ahead of the ones being applied. */
const PREFETCH = 64;
/** Bytes of messages applied as one batch (≈ 20 full messages of 500 operations). */
const BATCH_BYTES = 2_000_000;

/**
 * This node's side of the stream: its durable consumer hands each message to the applier and acknowledges it once
 * applied (or refused, which is recorded); a node that was away gets everything it missed from its consumer's
 * position. Also lifts shared jail bans whose absolute expiry has come.
 */
export class FleetConsumer {
  readonly #link: JetStreamLink;
  readonly #applier: FleetApplier;
  readonly #log: Logger;
  readonly #node: string;
  #messages: ConsumerMessages | undefined;
  #consuming = false;
  #closed = false;
  #expiry: NodeJS.Timeout | undefined;
  #expiring = false;
  readonly #queue: JsMsg[] = [];
  #working = false;

  constructor(deps: { link: JetStreamLink; applier: FleetApplier; node: string; log: Logger }) {
    this.#link = deps.link;
    this.#node = deps.node;
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
        this.#messages = await linked.consumer.consume({ max_messages: PREFETCH, expires: PULL_EXPIRES_MS });
        for await (const message of this.#messages) {
          if (this.#closed) break;
          this.#queue.push(message);
          this.#work();
        }
      } catch (error) {
        if (this.#closed) return;
        this.#log.warn({ err: error }, "fleet: consuming the stream failed; resuming");
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  /**
   * Applies what has arrived meanwhile as one batch: a lone message goes at once (no waiting for company), while a
   * backlog (a BatchBanIp, a node catching up) is applied many messages at a time, so that the fixed cost of a kernel
   * change and of a commit is paid per batch rather than per message.
   */
  #work(): void {
    if (this.#working || this.#closed) return;
    this.#working = true;
    void (async () => {
      try {
        while (this.#queue.length > 0 && !this.#closed) {
          const batch: JsMsg[] = [];
          let size = 0;
          while (this.#queue.length > 0 && size < BATCH_BYTES) {
            const message = this.#queue.shift()!;
            batch.push(message);
            size += message.data.length;
          }
          await this.#handle(batch);
        }
      } finally {
        this.#working = false;
      }
    })();
  }

  async #handle(messages: readonly JsMsg[]): Promise<void> {
    const good: JsMsg[] = [];
    const operations: FleetOperation[] = [];
    for (const message of messages) {
      // This node's own messages hold operations it recorded when it made them: nothing to decode or apply.
      const id = parseMessageId(message.headers?.get("Nats-Msg-Id"));
      if (id?.node === this.#node && this.#applier.seen(id.firstId)) {
        message.ack();
        continue;
      }
      const decoded = decodeMessage(message.data);
      if ("problem" in decoded) {
        // Not ours to apply (a newer format, or garbage): never redelivered.
        this.#log.error({ seq: message.seq, problem: decoded.problem }, "fleet: a stream message is not a batch of shared bans; skipped");
        message.term();
        continue;
      }
      good.push(message);
      operations.push(...decoded);
    }
    if (operations.length === 0) return;
    try {
      await this.#applier.apply(operations);
      for (const message of good) message.ack();
    } catch (error) {
      // What was applied is recorded by id: the redelivery skips it.
      // Unavailable (fail2ban down): retried for as long as it takes. Unexpected: a few times, then given up, loudly.
      const retry = isUnavailable(error) || (isTransient(error) && Math.max(...good.map((message) => message.info.deliveryCount)) < MAX_UNEXPECTED_DELIVERIES);
      if (retry) {
        this.#log.warn({ err: error, first: good[0]!.seq }, "fleet: shared bans could not be applied now; redelivery later");
        for (const message of good) message.nak(REDELIVER_MS);
      } else {
        this.#log.error({ err: error, first: good[0]!.seq }, "fleet: shared bans failed");
        for (const message of good) message.term();
      }
    }
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#expiry);
    this.#messages?.stop();
  }
}
