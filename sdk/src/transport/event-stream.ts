import { EventServiceService, ListEventsRequest, WatchEventsRequest, type Event as WireEvent, type ListEventsResponse } from "../gen/portcullis/v1/events.js";
import { EventEmitter, type Event } from "../base/event.js";
import type { HostEvent } from "../api.js";
import type { Channel } from "./channel.js";
import { hostEvent } from "./convert.js";

const BACKOFF_MS = [100, 250, 500, 1000, 2000];

/**
 * One WatchEvents stream under every event of the client: opened when the first listener subscribes, from the event
 * log's newest sequence at that moment (or after a given sequence: replay, then live); when it breaks (a server
 * restart), reopened with backoff after the last sequence seen, so that listeners miss nothing and see nothing twice;
 * closed when the last listener goes.
 */
export class EventStream {
  readonly #channel: Channel;
  readonly #emitter: EventEmitter<HostEvent>;
  #call: { cancel(): void } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #last: number | undefined;
  #failures = 0;
  #active = false;
  /** Settles once the stream's starting sequence is known (see ready). */
  #started: Promise<void> = Promise.resolve();

  readonly #after: number | undefined;

  /** `after`: start after this sequence (0: from the oldest event kept) instead of from now. */
  constructor(channel: Channel, after?: number) {
    this.#channel = channel;
    this.#after = after;
    this.#emitter = new EventEmitter<HostEvent>({ onFirstListenerAdd: () => this.#start(), onLastListenerRemove: () => this.#stop() });
  }

  /**
   * Resolves once the stream knows where it starts: a change made after that is delivered. The client's writes wait
   * for it, so that a write made right after subscribing is always seen by the subscription.
   */
  ready(): Promise<void> {
    return this.#started;
  }

  /** Every event on the host from the moment of subscribing. */
  get event(): Event<HostEvent> {
    return this.#emitter.event;
  }

  dispose(): void {
    this.#emitter.dispose();
    this.#stop();
  }

  #start(): void {
    this.#active = true;
    this.#last = this.#after;
    this.#connect();
  }

  #stop(): void {
    this.#active = false;
    clearTimeout(this.#timer);
    this.#call?.cancel();
    this.#call = undefined;
  }

  #connect(): void {
    if (!this.#active) return;
    const open = (after: number): void => {
      if (!this.#active) return;
      this.#last = after;
      this.#call = this.#channel.stream<WatchEventsRequest, WireEvent>(EventServiceService, "watchEvents", WatchEventsRequest.fromPartial({ afterSequence: after }), (wire) => {
        this.#failures = 0;
        if (wire.sequence <= (this.#last ?? 0)) return;
        this.#last = wire.sequence;
        this.#emitter.fire(hostEvent(wire));
      }, () => this.#retry());
    };
    if (this.#last !== undefined) return open(this.#last);
    // Listeners hear what happens from now: start after the newest event in the log.
    this.#started = this.#channel.unary<ListEventsRequest, ListEventsResponse>(EventServiceService, "listEvents", ListEventsRequest.fromPartial({ afterSequence: Number.MAX_SAFE_INTEGER, pageSize: 1 }), undefined, true)
      .then((page) => open(page.lastSequence), () => this.#retry());
  }

  #retry(): void {
    this.#call = undefined;
    if (!this.#active) return;
    const delay = BACKOFF_MS[Math.min(this.#failures++, BACKOFF_MS.length - 1)]!;
    this.#timer = setTimeout(() => this.#connect(), delay);
    this.#timer.unref();
  }
}
