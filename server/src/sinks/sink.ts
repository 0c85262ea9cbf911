import type { HostEvent } from "../events/event-model.js";

/** A destination for the event stream (a file, a syslog collector, a webhook). */
export interface EventSink {
  /** Delivers events in order; resolves once they are handed over, rejects if none or only some could be. */
  deliver(events: readonly HostEvent[]): Promise<void>;
  /** For a sink that can tell what it already holds (a file): the last sequence delivered, read from the sink itself. */
  lastDelivered?(): Promise<number | undefined>;
  close(): Promise<void>;
}

/** An event as sinks write it: the SDK's HostEvent shape (ISO time), one JSON object. */
export function eventJson(event: HostEvent): string {
  return JSON.stringify({
    sequence: event.sequence,
    time: new Date(event.time).toISOString(),
    type: event.type,
    resource: event.resource,
    principal: event.principal,
    origin: event.origin,
    attributes: event.attributes,
  });
}
