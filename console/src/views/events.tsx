import type { JSX } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { api, messageOf, toNumber, unwrap, type Event, type EventType } from "../api/client";
import { EVENT_LABELS, EVENT_TYPES, labelOf } from "../api/event-types";
import { Problem } from "../components/problem";
import { formatTime } from "../format";
import { EventStream, type StreamState } from "../live/event-stream";
import { Link } from "../router";

/** How many rows the tail keeps. */
const KEEP = 500;

export interface Filters {
  readonly type: EventType | "";
  readonly resourcePrefix: string;
  readonly principal: string;
  /** A jail's name (`sshd`). */
  readonly jail: string;
  readonly address: string;
  /** ISO times, or "". */
  readonly startTime: string;
  readonly endTime: string;
}

const NO_FILTERS: Filters = { type: "", resourcePrefix: "", principal: "", jail: "", address: "", startTime: "", endTime: "" };

/** The filters as the query parameters ListEvents, WatchEvents and ExportEvents share (empty ones left out). */
export function filterQuery(filters: Filters): { types?: EventType[]; resourcePrefix?: string; principal?: string; jail?: string; address?: string; startTime?: string; endTime?: string } {
  return {
    ...(filters.type === "" ? {} : { types: [filters.type] }),
    ...(filters.resourcePrefix === "" ? {} : { resourcePrefix: filters.resourcePrefix }),
    ...(filters.principal === "" ? {} : { principal: filters.principal }),
    ...(filters.jail === "" ? {} : { jail: `jails/${filters.jail}` }),
    ...(filters.address === "" ? {} : { address: filters.address }),
    ...(filters.startTime === "" ? {} : { startTime: filters.startTime }),
    ...(filters.endTime === "" ? {} : { endTime: filters.endTime }),
  };
}

/** Where the filtered events download as a file (the server answers it as an attachment). */
export function exportHref(filters: Filters, format: "EXPORT_FORMAT_CSV" | "EXPORT_FORMAT_JSON_LINES"): string {
  const params = new URLSearchParams({ format });
  for (const [name, value] of Object.entries(filterQuery(filters))) {
    for (const item of typeof value === "string" ? [value] : value) params.append(name, item);
  }
  return `/v1/events:export?${params.toString()}`;
}

/** Events per ListEvents call: the first page (the newest matching) and each page of older ones. */
const PAGE = 200;

/**
 * The newest matching events before a sequence (undefined: up to the newest), newest first, as the server pages back
 * through its log (`order_by: sequence desc`), and the log's newest sequence as of that page: the live tail continues
 * after it, so the page and the tail leave no gap between them.
 */
async function newestEvents(filters: Filters, before?: number): Promise<{ events: Event[]; last: number }> {
  const query = { orderBy: "sequence desc", pageSize: PAGE, ...(before === undefined ? {} : { beforeSequence: before }), ...filterQuery(filters) };
  const page = await unwrap(api.GET("/v1/events:list", { params: { query } }));
  return { events: page.events ?? [], last: toNumber(page.lastSequence) };
}

/** `key=value` pairs of an event's attributes, as text. */
function details(event: Event): string {
  return Object.entries(event.attributes ?? {}).map(([key, value]) => `${key}=${value}`).join(" ");
}

/**
 * The live tail of the event log: the recent events that match the filters, then every new one as it happens (SSE,
 * filtered by the server). After a lost connection the stream resumes after the last event shown: no gaps, no repeats.
 */
export function EventsView(): JSX.Element {
  const [filters, setFilters] = useState<Filters>(NO_FILTERS);
  // A range with an end is history: the server ends a stream there, so it is listed, not followed.
  const follow = filters.endTime === "";
  const [events, setEvents] = useState<readonly Event[]>([]);
  const [error, setError] = useState<string | undefined>(undefined);
  const [state, setState] = useState<StreamState>("connecting");
  const [paused, setPaused] = useState(false);
  const held = useRef<Event[]>([]);
  const pausedRef = useRef(paused);
  pausedRef.current = paused;
  const [heldCount, setHeldCount] = useState(0);
  const [older, setOlder] = useState<"none" | "more" | "loading">("none");
  useEffect(() => {
    let stream: EventStream | undefined;
    let gone = false;
    setEvents([]);
    setError(undefined);
    setOlder("none");
    held.current = [];
    setHeldCount(0);
    newestEvents(filters).then(
      ({ events: recent, last }) => {
        if (gone) return;
        setEvents(recent);
        setOlder(recent.length === PAGE ? "more" : "none");
        if (!follow) return;
        stream = new EventStream(filterQuery(filters), last, (event) => {
          if (pausedRef.current) {
            held.current.push(event);
            setHeldCount(held.current.length);
            return;
          }
          // The tail keeps KEEP rows, or as many as older pages brought in: the oldest go as new ones come.
          setEvents((list) => [event, ...list].slice(0, Math.max(KEEP, list.length)));
        }, setState);
      },
      (failure: unknown) => !gone && setError(messageOf(failure)),
    );
    return () => {
      gone = true;
      stream?.close();
    };
  }, [filters]);
  const resume = (): void => {
    const waiting = held.current.reverse();
    held.current = [];
    setHeldCount(0);
    setEvents((list) => [...waiting, ...list].slice(0, Math.max(KEEP, list.length)));
    setPaused(false);
  };
  const showOlder = (): void => {
    const oldest = events[events.length - 1];
    if (oldest === undefined) return;
    setOlder("loading");
    newestEvents(filters, toNumber(oldest.sequence)).then(
      ({ events: page }) => {
        setEvents((list) => [...list, ...page]);
        setOlder(page.length === PAGE ? "more" : "none");
      },
      (failure: unknown) => {
        setError(messageOf(failure));
        setOlder("more");
      },
    );
  };
  return (
    <section aria-labelledby="events-title">
      <h1 id="events-title" tabIndex={-1}>Events</h1>
      <EventFilters filters={filters} onChange={setFilters} />
      <div class="tail-bar">
        <span role="status">{!follow ? "The range has an end: new events are not followed." : state === "live" ? "Following new events." : state === "connecting" ? "Connecting…" : "Connection lost; resuming after the last event shown…"}</span>
        {!follow ? null : paused ? <button type="button" onClick={resume}>Resume ({heldCount} new)</button> : <button type="button" onClick={() => setPaused(true)}>Pause</button>}
        <span class="tabs-gap" />
        <a class="button-link" href={exportHref(filters, "EXPORT_FORMAT_CSV")} download>Export CSV</a>
        <a class="button-link" href={exportHref(filters, "EXPORT_FORMAT_JSON_LINES")} download>Export JSON lines</a>
      </div>
      <Problem error={error} what="Events could not be read" />
      <table id="events">
        <caption class="visually-hidden">Events, newest first</caption>
        <thead>
          <tr>
            <th scope="col" class="number">Seq</th>
            <th scope="col">Time</th>
            <th scope="col">Event</th>
            <th scope="col">Resource</th>
            <th scope="col">By</th>
            <th scope="col">Details</th>
          </tr>
        </thead>
        <tbody>
          {events.map((event) => (
            <tr key={String(event.sequence)} data-sequence={String(event.sequence)}>
              <td class="number">{String(event.sequence)}</td>
              <td>{formatTime(event.time)}</td>
              <td>{labelOf(event.type)}</td>
              <td class="wrap">{event.resource}</td>
              <td>{event.principal}{event.origin === "EVENT_ORIGIN_FAIL2BAN" ? " (fail2ban)" : event.origin === "EVENT_ORIGIN_FLEET" ? " (fleet)" : ""}</td>
              <td class="wrap">
                {event.attributes?.address === undefined ? null : <><Link to={{ view: "address", address: event.attributes.address }}>{event.attributes.address}</Link>{" "}</>}
                {details(event)}
              </td>
            </tr>
          ))}
          {events.length === 0 && error === undefined ? <tr><td colSpan={6}>No events match.</td></tr> : null}
        </tbody>
      </table>
      {older === "none" ? null : (
        <nav class="pager" aria-label="Older events">
          <button type="button" disabled={older === "loading"} onClick={showOlder}>Show older events</button>
        </nav>
      )}
    </section>
  );
}

/** A datetime-local value (the browser's time zone) as an ISO time, and back. */
function isoOf(local: string): string {
  return local === "" ? "" : new Date(local).toISOString();
}

function EventFilters(props: { filters: Filters; onChange: (filters: Filters) => void }): JSX.Element {
  const [draft, setDraft] = useState({ ...props.filters, startTime: "", endTime: "" });
  const set = (key: keyof Filters, value: string): void => setDraft((previous) => ({ ...previous, [key]: value }));
  const text = (key: "principal" | "jail" | "address" | "resourcePrefix", label: string, placeholder: string): JSX.Element => (
    <label>{label}<input type="text" placeholder={placeholder} value={draft[key]} onInput={(event) => set(key, event.currentTarget.value)} /></label>
  );
  return (
    <form class="inline-form filters" aria-label="Event filters" onSubmit={(event) => {
      event.preventDefault();
      props.onChange({
        type: draft.type,
        resourcePrefix: draft.resourcePrefix.trim(),
        principal: draft.principal.trim(),
        jail: draft.jail.trim().replace(/^jails\//, ""),
        address: draft.address.trim(),
        startTime: isoOf(draft.startTime),
        endTime: isoOf(draft.endTime),
      });
    }}>
      <label>Type
        <select value={draft.type} onChange={(event) => set("type", event.currentTarget.value)}>
          <option value="">All types</option>
          {EVENT_TYPES.map((item) => <option key={item} value={item}>{EVENT_LABELS[item]}</option>)}
        </select>
      </label>
      {text("jail", "Jail", "e.g. sshd")}
      {text("address", "Address or network", "e.g. 192.0.2.7")}
      {text("principal", "By", "certificate, fail2ban or system")}
      {text("resourcePrefix", "Resource starts with", "e.g. ipsets/")}
      <label>From<input type="datetime-local" value={draft.startTime} onInput={(event) => set("startTime", event.currentTarget.value)} /></label>
      <label>Until<input type="datetime-local" value={draft.endTime} onInput={(event) => set("endTime", event.currentTarget.value)} /></label>
      <button type="submit">Apply filters</button>
    </form>
  );
}
