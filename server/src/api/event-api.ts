import {
  ActivityWindow,
  EventOrigin,
  Event as WireEvent,
  EventType as WireType,
  ExportFormat,
  eventTypeToJSON,
  type Event,
  type EventServiceServer,
  type EventServiceService,
} from "../gen/portcullis/v1/events.js";
import { parseNetworkCanonical } from "../addresses.js";
import { ServerError } from "../errors.js";
import { SubscriberTooSlow, type EventLog } from "../events/event-log.js";
import { EVENT_TYPES, type EventFilter, type EventType, type HostEvent } from "../events/event-model.js";
import { WINDOWS, windowBuckets, type BanHistory, type WindowName } from "../events/ban-history.js";
import { CSV_HEADER, csvRecord } from "../events/event-csv.js";
import type { AuditFilter, AuditStore } from "../store/audit-store.js";
import { operation, streamOperation, type OperationsOf } from "./operation.js";
import { decodePageToken, encodePageToken, pageSize } from "./pagination.js";

export type EventOperations = OperationsOf<typeof EventServiceService, EventServiceServer>;

/** An export holds at most this many events (the log's default retention). */
const MAX_EXPORT = 1_000_000;
/** Export chunks are sent once they hold about this many bytes (whole lines). */
const EXPORT_CHUNK_BYTES = 64 * 1024;
const JAIL_PREFIX = "jails/";

/** The EventService contract mapped onto the event log, the ban history and the audit log. */
export function eventOperations(events: EventLog, audit: AuditStore, history: BanHistory): EventOperations {
  return {
    watchEvents: streamOperation("viewer", () => "events", async (request, _principal, write, signal) => {
      const filter = filterOf(request);
      try {
        for await (const event of events.watch(request.afterSequence, filter, signal)) await write(toEvent(event));
      } catch (error) {
        if (error instanceof SubscriberTooSlow) throw new ServerError("SUBSCRIBER_TOO_SLOW", "this subscriber fell more than 100,000 events behind; reconnect with the last sequence you received", {});
        throw error;
      }
    }),

    listEvents: operation("viewer", () => "events", async (request) => {
      const order = { newestFirst: newestFirst(request.orderBy ?? ""), ...(request.beforeSequence === undefined || request.beforeSequence === 0 ? {} : { beforeSequence: request.beforeSequence }) };
      const { events: found, lastSequence } = events.list(request.afterSequence, pageSize(request.pageSize, 1000, 10_000), filterOf(request), order);
      return { events: found.map(toEvent), lastSequence };
    }),

    listAuditRecords: operation("viewer", () => "audit", async (request) => {
      const size = pageSize(request.pageSize, 100, 1000);
      const filter: AuditFilter = {
        ...(request.principal === "" ? {} : { principal: request.principal }),
        ...(request.method === "" ? {} : { method: request.method }),
        ...(request.resourcePrefix === "" ? {} : { resourcePrefix: request.resourcePrefix }),
        ...timeRange(request.startTime, request.endTime),
      };
      const before = Number(decodePageToken(request.pageToken, "audit") || "0");
      const records = audit.page(before, size + 1, filter);
      const page = records.slice(0, size);
      return {
        records: page.map((record) => ({ time: new Date(record.time), principal: record.principal, role: record.role, method: record.method, resource: record.resource, code: record.code, reason: record.detail ?? "", originNode: record.originNode ?? "" })),
        nextPageToken: records.length > size ? encodePageToken("audit", String(page[page.length - 1]!.id)) : "",
      };
    }),

    exportEvents: streamOperation("viewer", () => "events", async (request, _principal, write, signal) => {
      const filter = filterOf(request);
      const csv = request.format !== ExportFormat.EXPORT_FORMAT_JSON_LINES;
      if (request.format === ExportFormat.UNRECOGNIZED || request.format < 0 || request.format > ExportFormat.EXPORT_FORMAT_JSON_LINES) {
        throw new ServerError("INVALID_FILTER", "format must be EXPORT_FORMAT_CSV or EXPORT_FORMAT_JSON_LINES", { field: "format" });
      }
      const contentType = csv ? "text/csv; charset=utf-8" : "application/x-ndjson";
      const line = csv ? csvRecord : (event: HostEvent): string => `${JSON.stringify(WireEvent.toJSON(toEvent(event)))}\n`;
      // The first piece goes out at once (the CSV header, or nothing): a download starts even when no event matches.
      let text = csv ? CSV_HEADER : "";
      let sent = false;
      for (const page of events.exported(request.afterSequence, filter, MAX_EXPORT)) {
        for (const event of page) text += line(event);
        if (signal.aborted) return;
        if (text.length >= EXPORT_CHUNK_BYTES || !sent) {
          await write({ contentType, data: Buffer.from(text) });
          text = "";
          sent = true;
        }
      }
      if (text !== "" || !sent) await write({ contentType, data: Buffer.from(text) });
    }),

    getBanTimeline: operation("viewer", () => "events", async (request) => {
      const window = windowOf(request.window);
      const jail = jailOf(request.jail);
      await history.ready;
      return {
        window: request.window === ActivityWindow.ACTIVITY_WINDOW_UNSPECIFIED ? ActivityWindow.ACTIVITY_WINDOW_DAY : request.window,
        bucketSeconds: WINDOWS[window].bucketMs / 1000,
        buckets: history.timeline(window, jail).map((bucket) => ({ startTime: new Date(bucket.start), bans: bucket.bans, unbans: bucket.unbans })),
      };
    }),

    getTopOffenders: operation("viewer", () => "events", async (request) => {
      const window = windowOf(request.window);
      const limit = pageSize(request.limit, 10, 100, "limit");
      await history.ready;
      const found = history.topOffenders(windowBuckets(window, Date.now()).start, jailOf(request.jail), limit);
      const toOffender = (offender: (typeof found.addresses)[number]) => ({
        address: offender.address,
        banCount: offender.bans,
        lastBanTime: new Date(offender.lastBan),
        jails: offender.jails.map((jail) => JAIL_PREFIX + jail),
        addressCount: offender.addresses,
      });
      return {
        window: request.window === ActivityWindow.ACTIVITY_WINDOW_UNSPECIFIED ? ActivityWindow.ACTIVITY_WINDOW_DAY : request.window,
        addresses: found.addresses.map(toOffender),
        networks: found.networks.map(toOffender),
      };
    }),
  };
}

const WINDOW_NAMES: ReadonlyMap<ActivityWindow, WindowName> = new Map([
  [ActivityWindow.ACTIVITY_WINDOW_UNSPECIFIED, "day"],
  [ActivityWindow.ACTIVITY_WINDOW_HOUR, "hour"],
  [ActivityWindow.ACTIVITY_WINDOW_DAY, "day"],
  [ActivityWindow.ACTIVITY_WINDOW_WEEK, "week"],
  [ActivityWindow.ACTIVITY_WINDOW_MONTH, "month"],
]);

/** An ActivityWindow as the ban history names it (unspecified: a day). */
export function windowOf(window: ActivityWindow): WindowName {
  const name = WINDOW_NAMES.get(window);
  if (name === undefined) throw new ServerError("INVALID_FILTER", "window must be ACTIVITY_WINDOW_HOUR, _DAY, _WEEK or _MONTH", { field: "window", value: String(window) });
  return name;
}

/** A `jails/{jail}` filter as the jail's name (empty: none). */
function jailOf(name: string, field = "jail"): string | undefined {
  if (name === "") return undefined;
  const jail = name.startsWith(JAIL_PREFIX) ? name.slice(JAIL_PREFIX.length) : "";
  if (!/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/.test(jail)) throw new ServerError("INVALID_FILTER", `${field} must look like "jails/{jail}", e.g. jails/sshd; got "${name.slice(0, 80)}"`, { field, value: name.slice(0, 80) });
  return jail;
}

/** A time range's bounds in ms (each optional); a range that ends before it starts is refused. */
function timeRange(start: Date | undefined, end: Date | undefined): { startTime?: number; endTime?: number } {
  if (start !== undefined && end !== undefined && end.getTime() < start.getTime()) {
    throw new ServerError("INVALID_FILTER", "end_time must not be before start_time", { field: "end_time" });
  }
  return { ...(start === undefined ? {} : { startTime: start.getTime() }), ...(end === undefined ? {} : { endTime: end.getTime() }) };
}

/** The filters every event request has in common. */
interface WireFilter {
  readonly types: readonly WireType[];
  readonly resourcePrefix: string;
  readonly principal: string;
  readonly jail: string;
  readonly address: string;
  readonly startTime?: Date | undefined;
  readonly endTime?: Date | undefined;
}

/** ListEvents' order_by (AIP-132: a field, then `desc` or `asc`): whether the newest come first. */
function newestFirst(orderBy: string): boolean {
  const words = orderBy.trim().split(/\s+/).filter((word) => word !== "");
  if (words.length === 0) return false;
  if (words[0] === "sequence" && words.length <= 2 && (words[1] === undefined || words[1] === "asc" || words[1] === "desc")) return words[1] === "desc";
  throw new ServerError("INVALID_ORDER_BY", `order_by must be "sequence" (oldest first) or "sequence desc" (newest first), got "${orderBy.slice(0, 100)}"`, { field: "order_by", value: orderBy.slice(0, 100) });
}

function filterOf(request: WireFilter): EventFilter {
  let address: string | undefined;
  if (request.address !== "") {
    const parsed = parseNetworkCanonical(request.address);
    if ("problem" in parsed) throw new ServerError("INVALID_ELEMENT", `address "${request.address.slice(0, 100)}": ${parsed.problem}`, { field: "address", value: request.address.slice(0, 100) });
    address = parsed.network;
  }
  const jail = jailOf(request.jail);
  return {
    types: request.types.map((type, i) => {
      const name = eventTypeToJSON(type).replace(/^EVENT_TYPE_/, "");
      if (!(EVENT_TYPES as readonly string[]).includes(name)) throw new ServerError("INVALID_FILTER", `types[${i}] is not an event type`, { field: `types[${i}]` });
      return name as EventType;
    }),
    ...(request.resourcePrefix === "" ? {} : { resourcePrefix: request.resourcePrefix }),
    ...(request.principal === "" ? {} : { principal: request.principal }),
    ...(jail === undefined ? {} : { jail }),
    ...(address === undefined ? {} : { address }),
    ...timeRange(request.startTime, request.endTime),
  };
}

const ORIGINS: Readonly<Record<HostEvent["origin"], EventOrigin>> = {
  api: EventOrigin.EVENT_ORIGIN_API,
  system: EventOrigin.EVENT_ORIGIN_SYSTEM,
  fail2ban: EventOrigin.EVENT_ORIGIN_FAIL2BAN,
  fleet: EventOrigin.EVENT_ORIGIN_FLEET,
};

export function toEvent(event: HostEvent): Event {
  return {
    sequence: event.sequence,
    time: new Date(event.time),
    type: WireType[`EVENT_TYPE_${event.type}`],
    resource: event.resource,
    principal: event.principal,
    origin: ORIGINS[event.origin],
    attributes: { ...event.attributes },
  };
}
