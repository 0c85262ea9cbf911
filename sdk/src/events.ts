import { EventServiceService, eventTypeFromJSON, EventType, type ListAuditRecordsRequest, type ListAuditRecordsResponse, type ListEventsRequest, type ListEventsResponse } from "./gen/portcullis/v1/events.js";
import type { CancellationToken } from "./base/cancellation.js";
import type { Event } from "./base/event.js";
import { Disposable } from "./base/disposable.js";
import type { AuditRecord, HostEvent } from "./api.js";
import type { Channel } from "./transport/channel.js";
import { auditRecord, hostEvent } from "./transport/convert.js";
import { PortcullisError } from "./errors.js";
import { EventStream } from "./transport/event-stream.js";

/** What {@link Events.list} returns: a page of the log and where the log ends. */
export interface EventPage {
  readonly events: readonly HostEvent[];
  /** The newest sequence in the log: pass it as `after` to continue. */
  readonly lastSequence: number;
}

/** The host's event log: `client.events`. */
export class Events {
  readonly #channel: Channel;

  /** Every change on the host from the moment of subscribing; resumes across reconnects without loss or repeats. */
  readonly onDidChange: Event<HostEvent>;

  /** @internal */
  constructor(channel: Channel, onDidChange: Event<HostEvent>) {
    this.#channel = channel;
    this.onDidChange = onDidChange;
  }

  /**
   * Every event after `sequence` (0: from the oldest kept), then every new one as it happens: a consumer that stored
   * the last sequence it handled resumes with no gap. Each subscription has its own stream, closed when disposed.
   */
  since(sequence: number): Event<HostEvent> {
    if (!Number.isSafeInteger(sequence) || sequence < 0) throw new PortcullisError("InvalidArgument", `sequence must be a whole number ≥ 0, not ${sequence}`);
    return (listener, thisArgs, disposables) => {
      const stream = new EventStream(this.#channel, sequence);
      const subscription = stream.event(listener, thisArgs);
      const disposable = new Disposable(() => {
        subscription.dispose();
        stream.dispose();
      });
      disposables?.push(disposable);
      return disposable;
    };
  }

  /**
   * Events after a sequence (0: from the oldest kept), oldest first, at most `limit`; `types` such as "BAN" and a
   * resource prefix such as "jails/" narrow it.
   */
  async list(options: { after?: number; limit?: number; types?: readonly string[]; resourcePrefix?: string } = {}, token?: CancellationToken): Promise<EventPage> {
    const types = (options.types ?? []).map((type) => {
      const value = eventTypeFromJSON(`EVENT_TYPE_${type}`);
      if (value === EventType.UNRECOGNIZED) throw new PortcullisError("InvalidArgument", `${type} is not an event type`);
      return value;
    });
    const request: ListEventsRequest = { afterSequence: options.after ?? 0, pageSize: options.limit ?? 1000, types, resourcePrefix: options.resourcePrefix ?? "" };
    const page = await this.#channel.unary<ListEventsRequest, ListEventsResponse>(EventServiceService, "listEvents", request, token, true);
    return Object.freeze({ events: Object.freeze(page.events.map(hostEvent)), lastSequence: page.lastSequence });
  }
}

/** The audit log of every call that tried a change: `client.audit`. */
export class Audit {
  readonly #channel: Channel;

  /** @internal */
  constructor(channel: Channel) {
    this.#channel = channel;
  }

  /** Every record, newest first (all pages). */
  async records(token?: CancellationToken): Promise<readonly AuditRecord[]> {
    const all: AuditRecord[] = [];
    const pages = this.#channel.pages<ListAuditRecordsRequest, ListAuditRecordsResponse>(EventServiceService, "listAuditRecords", (pageToken) => ({ pageSize: 1000, pageToken }), token);
    for await (const page of pages) all.push(...page.records.map(auditRecord));
    return Object.freeze(all);
  }
}
