import {
  EventOrigin,
  EventType as WireType,
  eventTypeToJSON,
  type Event,
  type EventServiceServer,
  type EventServiceService,
} from "@portcullis/sdk/gen/portcullis/v1/events.js";
import { ServerError } from "../errors.js";
import { SubscriberTooSlow, type EventLog } from "../events/event-log.js";
import { EVENT_TYPES, type EventFilter, type EventType, type HostEvent } from "../events/event-model.js";
import type { AuditStore } from "../store/audit-store.js";
import { operation, streamOperation, type OperationsOf } from "./operation.js";
import { decodePageToken, encodePageToken, pageSize } from "./pagination.js";

export type EventOperations = OperationsOf<typeof EventServiceService, EventServiceServer>;

/** The EventService contract mapped onto the event log and the audit log. */
export function eventOperations(events: EventLog, audit: AuditStore): EventOperations {
  return {
    watchEvents: streamOperation("viewer", () => "events", async (request, _principal, write, signal) => {
      try {
        for await (const event of events.watch(request.afterSequence, filterOf(request.types, request.resourcePrefix), signal)) await write(toEvent(event));
      } catch (error) {
        if (error instanceof SubscriberTooSlow) throw new ServerError("SUBSCRIBER_TOO_SLOW", "this subscriber fell more than 100,000 events behind; reconnect with the last sequence you received", {});
        throw error;
      }
    }),

    listEvents: operation("viewer", () => "events", async (request) => {
      const { events: found, lastSequence } = events.list(request.afterSequence, pageSize(request.pageSize, 1000, 10_000), filterOf(request.types, request.resourcePrefix));
      return { events: found.map(toEvent), lastSequence };
    }),

    listAuditRecords: operation("viewer", () => "audit", async (request) => {
      const size = pageSize(request.pageSize, 100, 1000);
      const before = Number(decodePageToken(request.pageToken, "audit") || "0");
      const records = audit.page(before, size + 1);
      const page = records.slice(0, size);
      return {
        records: page.map((record) => ({ time: new Date(record.time), principal: record.principal, role: record.role, method: record.method, resource: record.resource, code: record.code, reason: record.detail ?? "", originNode: record.originNode ?? "" })),
        nextPageToken: records.length > size ? encodePageToken("audit", String(page[page.length - 1]!.id)) : "",
      };
    }),
  };
}

function filterOf(types: readonly WireType[], resourcePrefix: string): EventFilter {
  return {
    types: types.map((type, i) => {
      const name = eventTypeToJSON(type).replace(/^EVENT_TYPE_/, "");
      if (!(EVENT_TYPES as readonly string[]).includes(name)) throw new ServerError("INVALID_FILTER", `types[${i}] is not an event type`, { field: `types[${i}]` });
      return name as EventType;
    }),
    ...(resourcePrefix === "" ? {} : { resourcePrefix }),
  };
}

const ORIGINS: Readonly<Record<HostEvent["origin"], EventOrigin>> = {
  api: EventOrigin.EVENT_ORIGIN_API,
  system: EventOrigin.EVENT_ORIGIN_SYSTEM,
  fail2ban: EventOrigin.EVENT_ORIGIN_FAIL2BAN,
  fleet: EventOrigin.EVENT_ORIGIN_FLEET,
};

function toEvent(event: HostEvent): Event {
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
