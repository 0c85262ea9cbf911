import type { EventStore } from "../store/event-store.js";
import { delayUntil } from "../timer-delay.js";
import { matchesFilter, type EventFilter, type EventInput, type EventOrigin, type HostEvent } from "./event-model.js";

/** How many live events a subscriber may fall behind before its stream is ended (it resumes from its sequence). */
const MAX_BACKLOG = 100_000;
const REPLAY_PAGE = 1000;

export class SubscriberTooSlow extends Error {}

/**
 * The host's event log: every event is stored (with its sequence) before anyone hears of it, so a subscriber that
 * reconnects with the last sequence it saw can be given exactly what it missed.
 */
export class EventLog {
  readonly #store: EventStore;
  readonly #listeners = new Set<(event: HostEvent) => void>();
  #watching = 0;

  constructor(store: EventStore) {
    this.#store = store;
  }

  append(input: EventInput, principal: string, origin: EventOrigin): HostEvent {
    const event = this.#store.append({ time: Date.now(), type: input.type, resource: input.resource, principal, origin, attributes: input.attributes ?? {} });
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // one broken listener must not stop delivery to the others
      }
    }
    return event;
  }

  /**
   * Events between two sequences (exclusive; `beforeSequence` undefined: no upper bound) that pass the filter: the
   * oldest first, or with `newestFirst` the newest first (a page back through the log).
   */
  list(afterSequence: number, limit: number, filter: EventFilter, order: { newestFirst?: boolean; beforeSequence?: number } = {}): { events: HostEvent[]; lastSequence: number } {
    const events = order.newestFirst === true
      ? this.#store.pageBackwards(afterSequence, order.beforeSequence, limit, filter)
      : this.#store.page(afterSequence, limit, filter, order.beforeSequence);
    return { events, lastSequence: this.#store.lastSequence() };
  }

  /**
   * The events an export holds, in pages, oldest first: those that pass the filter up to the newest event recorded
   * when it began, at most `max` of them.
   */
  *exported(afterSequence: number, filter: EventFilter, max: number): Generator<HostEvent[]> {
    const last = this.#store.lastSequence();
    let after = afterSequence;
    let left = max;
    while (left > 0) {
      const page = this.#store.page(after, Math.min(REPLAY_PAGE, left), filter).filter((event) => event.sequence <= last);
      if (page.length === 0) return;
      yield page;
      left -= page.length;
      after = page[page.length - 1]!.sequence;
      if (after >= last) return;
    }
  }

  /** The newest `limit` events that pass the filter, newest first. */
  latest(limit: number, filter: EventFilter): HostEvent[] {
    return this.#store.latest(limit, filter);
  }

  /**
   * Replays everything after `afterSequence`, then follows live, without gaps or duplicates: live events are
   * buffered from the start, and everything is delivered in sequence order, each sequence once. With an end time the
   * stream ends there: after the replay when it is past, or when the clock reaches it.
   */
  async *watch(afterSequence: number, filter: EventFilter, signal: AbortSignal): AsyncGenerator<HostEvent> {
    const backlog: HostEvent[] = [];
    let wake: (() => void) | undefined;
    const listener = (event: HostEvent): void => {
      backlog.push(event);
      wake?.();
    };
    this.#listeners.add(listener);
    this.#watching++;
    const onAbort = (): void => wake?.();
    signal.addEventListener("abort", onAbort);
    let ended = false;
    const end = filter.endTime === undefined ? undefined : setTimeout(() => {
      ended = true;
      wake?.();
    }, delayUntil(filter.endTime));
    try {
      let last = afterSequence;
      for (;;) {
        const page = this.#store.page(last, REPLAY_PAGE, filter);
        for (const event of page) {
          if (signal.aborted) return;
          last = event.sequence;
          yield event;
        }
        if (page.length < REPLAY_PAGE) break;
      }
      while (!signal.aborted && !ended) {
        const event = backlog.shift();
        if (event === undefined) {
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
          continue;
        }
        if (backlog.length > MAX_BACKLOG) throw new SubscriberTooSlow("subscriber fell too far behind");
        if (event.sequence <= last) continue; // already replayed from the store
        last = event.sequence;
        if (filter.endTime !== undefined && event.time >= filter.endTime) return;
        if (matchesFilter(event, filter)) yield event;
      }
    } finally {
      clearTimeout(end);
      this.#listeners.delete(listener);
      this.#watching--;
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Hears every event as it is recorded (after it is stored); returns the unsubscribe. */
  subscribe(listener: (event: HostEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Open event streams (WatchEvents calls and REST event streams). */
  get watcherCount(): number {
    return this.#watching;
  }

  lastSequence(): number {
    return this.#store.lastSequence();
  }

  prune(maxEvents: number, maxAgeMs: number): void {
    this.#store.prune(maxEvents, maxAgeMs);
  }

  /** The oldest sequence still kept (0 when the log is empty). */
  firstSequence(): number {
    return this.#store.firstSequence();
  }
}
