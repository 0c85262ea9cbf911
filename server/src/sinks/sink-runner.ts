import type { Logger } from "../logger.js";
import type { EventLog } from "../events/event-log.js";
import type { SinkStore } from "../store/sink-store.js";
import type { EventSink } from "./sink.js";

/** Events per delivery: a collector that was down catches up in batches of this size. */
const BATCH = 500;
const RETRY_MS = [1000, 2000, 5000, 10_000, 30_000];

/**
 * Feeds one sink from the event log, from its own stored position: it reads what follows the position, records the
 * batch as in flight, delivers it, and only then moves the position, so a collector that is down gets what it missed
 * when it is back, in order and once; a batch whose answer was lost (a timeout, a crash) is sent again as it was. Runs beside the API and never blocks it; a failing sink only retries with backoff.
 */
export class SinkRunner {
  readonly #name: string;
  readonly #sink: EventSink;
  readonly #events: EventLog;
  readonly #store: SinkStore;
  readonly #log: Logger;
  #unsubscribe: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #again = false;
  #failures = 0;
  #closed = false;
  #resumed = false;

  /** `startAt`: on the first start (no stored position), "now" skips the events already in the log; "oldest" does not. */
  constructor(name: string, sink: EventSink, deps: { events: EventLog; store: SinkStore; log: Logger }, startAt: "now" | "oldest") {
    this.#name = name;
    this.#sink = sink;
    this.#events = deps.events;
    this.#store = deps.store;
    this.#log = deps.log.child({ sink: name });
    if (this.#store.position(name) === undefined) this.#store.setPosition(name, startAt === "now" ? this.#events.lastSequence() : 0);
  }

  start(): void {
    this.#unsubscribe = this.#events.subscribe(() => this.#kick());
    this.#kick();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#unsubscribe?.();
    clearTimeout(this.#timer);
    await this.#sink.close();
  }

  /** Delivers what is pending, unless a delivery or a retry wait is under way (it will pick new events up). */
  #kick(): void {
    if (this.#closed) return;
    if (this.#running || this.#timer !== undefined) {
      this.#again = true;
      return;
    }
    this.#running = true;
    void this.#drain().finally(() => {
      this.#running = false;
      if (this.#again && this.#timer === undefined) {
        this.#again = false;
        this.#kick();
      }
    });
  }

  async #drain(): Promise<void> {
    if (!this.#resumed) {
      this.#resumed = true;
      // The sink's own record wins when it is ahead: the server may have died between a delivery and storing it.
      const delivered = await this.#sink.lastDelivered?.().catch((error: unknown) => {
        this.#log.warn({ err: error }, "cannot read what the sink already holds; resuming from the stored position");
        return undefined;
      });
      // A file older than this event log (a fresh data dir) says nothing about it.
      if (delivered !== undefined && delivered > (this.#store.position(this.#name) ?? 0) && delivered <= this.#events.lastSequence()) this.#store.setPosition(this.#name, delivered);
    }
    for (;;) {
      if (this.#closed) return;
      this.#again = false;
      const position = this.#store.position(this.#name) ?? 0;
      const pending = this.#events.list(position, BATCH, {}).events;
      if (pending.length === 0) return;
      // A batch sent and not acknowledged (a failed answer, or the server died waiting for it) goes again unchanged,
      // never merged with newer events: a receiver that took it can recognise it by its range and drop it.
      const inFlight = this.#store.inFlight(this.#name);
      const through = inFlight !== undefined && inFlight > position ? inFlight : pending[pending.length - 1]!.sequence;
      const events = pending.filter((event) => event.sequence <= through);
      if (events.length === 0) {
        this.#store.setPosition(this.#name, through); // its events left the log (retention) before they went again
        continue;
      }
      if (inFlight !== through) this.#store.setInFlight(this.#name, through);
      try {
        await this.#sink.deliver(events);
      } catch (error) {
        const delay = RETRY_MS[Math.min(this.#failures++, RETRY_MS.length - 1)]!;
        if (this.#failures === 1 || this.#failures % 10 === 0) this.#log.warn({ err: error, after: position, retryInMs: delay }, "sink delivery failed; retrying");
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.#kick();
        }, delay);
        this.#timer.unref();
        return;
      }
      if (this.#failures > 0) this.#log.info({ after: position }, "sink delivering again");
      this.#failures = 0;
      this.#store.setPosition(this.#name, through);
    }
  }
}
