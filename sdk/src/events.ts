import { EventServiceService, eventTypeFromJSON, EventType, ExportFormat, type BanTimeline as WireTimeline, type ExportEventsRequest, type ExportEventsResponse, type GetBanTimelineRequest, type GetTopOffendersRequest, type ListAuditRecordsRequest, type ListAuditRecordsResponse, type ListEventsRequest, type ListEventsResponse, type TopOffenders as WireTopOffenders } from "./transport/wire.js";
import type { CancellationToken } from "./base/cancellation.js";
import type { Event } from "./base/event.js";
import { Disposable } from "./base/disposable.js";
import type { ActivityWindow, AuditFilter, AuditRecord, BanTimeline, EventFilter, HostEvent, TopOffenders } from "./api.js";
import type { Channel } from "./transport/channel.js";
import { auditRecord, banTimeline, hostEvent, topOffenders, wireWindow } from "./transport/convert.js";
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
   * Events after a sequence (0: from the oldest kept) and before another (`before`, undefined: up to the newest),
   * oldest first, at most `limit`; with `newestFirst` the newest first (page back by passing the last event's sequence
   * as `before`). The filter (types such as "BAN", a resource prefix such as "jails/", a principal, a jail, an
   * address, a time range) narrows it.
   */
  async list(options: EventFilter & { readonly after?: number; readonly before?: number; readonly newestFirst?: boolean; readonly limit?: number } = {}, token?: CancellationToken): Promise<EventPage> {
    const request: ListEventsRequest = {
      afterSequence: options.after ?? 0,
      pageSize: options.limit ?? 1000,
      ...(options.before === undefined ? {} : { beforeSequence: options.before }),
      ...(options.newestFirst === true ? { orderBy: "sequence desc" } : {}),
      ...wireFilter(options),
    };
    const page = await this.#channel.unary<ListEventsRequest, ListEventsResponse>(EventServiceService, "listEvents", request, token, true);
    return Object.freeze({ events: Object.freeze(page.events.map(hostEvent)), lastSequence: page.lastSequence });
  }

  /**
   * The stored events that pass the filter, as a file: CSV (default; safe to open in a spreadsheet) or JSON lines,
   * in pieces as they arrive. The export ends with the newest event recorded when it began.
   */
  async *export(options: EventFilter & { readonly after?: number; readonly format?: "csv" | "jsonl" } = {}, token?: CancellationToken): AsyncIterable<Uint8Array> {
    const request: ExportEventsRequest = {
      format: options.format === "jsonl" ? ExportFormat.EXPORT_FORMAT_JSON_LINES : ExportFormat.EXPORT_FORMAT_CSV,
      afterSequence: options.after ?? 0,
      ...wireFilter(options),
    };
    const pieces: Uint8Array[] = [];
    let ended = false;
    let failure: PortcullisError | undefined;
    let wake: (() => void) | undefined;
    const call = this.#channel.stream<ExportEventsRequest, ExportEventsResponse>(EventServiceService, "exportEvents", request, (piece) => {
      pieces.push(piece.data);
      wake?.();
    }, (error) => {
      ended = true;
      failure = error;
      wake?.();
    });
    const cancelled = token?.onCancellationRequested(() => call.cancel());
    try {
      for (;;) {
        const piece = pieces.shift();
        if (piece !== undefined) {
          yield piece;
          continue;
        }
        if (failure !== undefined) throw failure;
        if (token?.isCancellationRequested === true) throw new PortcullisError("Cancelled", "the export was cancelled");
        if (ended) return;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      cancelled?.dispose();
      if (!ended) call.cancel();
    }
  }

  /** Bans and unbans per bucket of a window (default "day"), of one jail or all, every bucket included. */
  async timeline(options: { readonly window?: ActivityWindow; readonly jail?: string } = {}, token?: CancellationToken): Promise<BanTimeline> {
    const request: GetBanTimelineRequest = { window: wireWindow(options.window), jail: options.jail === undefined ? "" : `jails/${options.jail}` };
    return banTimeline(await this.#channel.unary<GetBanTimelineRequest, WireTimeline>(EventServiceService, "getBanTimeline", request, token, true));
  }

  /** The most banned addresses and networks (/24, /64) of a window (default "day"); at most `limit` (default 10) of each. */
  async topOffenders(options: { readonly window?: ActivityWindow; readonly jail?: string; readonly limit?: number } = {}, token?: CancellationToken): Promise<TopOffenders> {
    const request: GetTopOffendersRequest = { window: wireWindow(options.window), jail: options.jail === undefined ? "" : `jails/${options.jail}`, limit: options.limit ?? 0 };
    return topOffenders(await this.#channel.unary<GetTopOffendersRequest, WireTopOffenders>(EventServiceService, "getTopOffenders", request, token, true));
  }
}

/** An event filter's wire fields. */
function wireFilter(filter: EventFilter): Pick<ListEventsRequest, "types" | "resourcePrefix" | "principal" | "jail" | "address" | "startTime" | "endTime"> {
  const types = (filter.types ?? []).map((type) => {
    const value = eventTypeFromJSON(`EVENT_TYPE_${type}`);
    if (value === EventType.UNRECOGNIZED) throw new PortcullisError("InvalidArgument", `${type} is not an event type`);
    return value;
  });
  return {
    types,
    resourcePrefix: filter.resourcePrefix ?? "",
    principal: filter.principal ?? "",
    jail: filter.jail === undefined ? "" : `jails/${filter.jail}`,
    address: filter.address ?? "",
    ...(filter.since === undefined ? {} : { startTime: filter.since }),
    ...(filter.until === undefined ? {} : { endTime: filter.until }),
  };
}

/** The audit log of every call that tried a change: `client.audit`. */
export class Audit {
  readonly #channel: Channel;

  /** @internal */
  constructor(channel: Channel) {
    this.#channel = channel;
  }

  /** Every record that passes the filter, newest first (all pages). */
  async records(filter: AuditFilter = {}, token?: CancellationToken): Promise<readonly AuditRecord[]> {
    const all: AuditRecord[] = [];
    const request = (pageToken: string): ListAuditRecordsRequest => ({
      pageSize: 1000,
      pageToken,
      principal: filter.principal ?? "",
      method: filter.method ?? "",
      resourcePrefix: filter.resourcePrefix ?? "",
      ...(filter.since === undefined ? {} : { startTime: filter.since }),
      ...(filter.until === undefined ? {} : { endTime: filter.until }),
    });
    const pages = this.#channel.pages<ListAuditRecordsRequest, ListAuditRecordsResponse>(EventServiceService, "listAuditRecords", request, token);
    for await (const page of pages) all.push(...page.records.map(auditRecord));
    return Object.freeze(all);
  }
}
