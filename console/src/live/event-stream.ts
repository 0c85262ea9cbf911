import type { Event } from "../api/client";
import { EVENT_TYPES } from "../api/event-types";

export type StreamState = "connecting" | "live" | "reconnecting";

/** Query parameters of GET /v1/events besides afterSequence (types, resourcePrefix, …), as the contract names them. */
export type StreamQuery = Readonly<Record<string, string | readonly string[] | undefined>>;

/** How long to wait before opening a new stream when the browser gave up on one (an error answer, a server restart). */
const REOPEN_MS = 2000;

/**
 * The host's event log over Server-Sent Events (GET /v1/events). Each SSE `id` is the event's sequence: while the
 * EventSource reconnects by itself it sends Last-Event-ID and the server resumes right after it; when the browser
 * gives up (the server refused or went away), a new EventSource starts after the last sequence delivered. Events at or
 * below that sequence are dropped, so a resume never shows an event twice, and nothing is skipped.
 */
export class EventStream {
  #last: number;
  #source: EventSource | undefined;
  #reopen: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  readonly #query: StreamQuery;
  readonly #onEvent: (event: Event) => void;
  readonly #onState: (state: StreamState) => void;

  /** Follows the events after `afterSequence` (those already shown). */
  constructor(query: StreamQuery, afterSequence: number, onEvent: (event: Event) => void, onState: (state: StreamState) => void = () => {}) {
    this.#query = query;
    this.#last = afterSequence;
    this.#onEvent = onEvent;
    this.#onState = onState;
    this.#open();
  }

  /** The sequence of the last event delivered. */
  get lastSequence(): number {
    return this.#last;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#reopen);
    this.#source?.close();
  }

  #open(): void {
    const params = new URLSearchParams({ afterSequence: String(this.#last) });
    for (const [name, value] of Object.entries(this.#query)) {
      if (value === undefined || value === "") continue;
      for (const item of typeof value === "string" ? [value] : value) params.append(name, item);
    }
    const source = new EventSource(`/v1/events?${params.toString()}`);
    this.#source = source;
    this.#onState("connecting");
    const deliver = (message: MessageEvent<string>): void => this.#deliver(message);
    // The server names each SSE event after its type; unnamed ones would arrive as "message".
    for (const type of EVENT_TYPES) source.addEventListener(type, deliver);
    source.addEventListener("message", deliver);
    source.addEventListener("open", () => this.#onState("live"));
    source.addEventListener("error", (event) => {
      // A named `error` event with data is the server ending the stream with a problem (e.g. this subscriber fell
      // too far behind); a plain error event is the connection failing.
      if (event instanceof MessageEvent || source.readyState === EventSource.CLOSED) {
        source.close();
        this.#scheduleReopen();
        return;
      }
      this.#onState("reconnecting");
    });
  }

  #scheduleReopen(): void {
    if (this.#closed) return;
    this.#onState("reconnecting");
    clearTimeout(this.#reopen);
    this.#reopen = setTimeout(() => {
      if (!this.#closed) this.#open();
    }, REOPEN_MS);
  }

  #deliver(message: MessageEvent<string>): void {
    let event: Event;
    try {
      event = JSON.parse(message.data) as Event;
    } catch {
      return;
    }
    const sequence = Number(event.sequence);
    if (!(sequence > this.#last)) return;
    this.#last = sequence;
    this.#onEvent(event);
  }
}
