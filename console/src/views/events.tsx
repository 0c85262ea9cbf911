import type { JSX } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { api, messageOf, toNumber, unwrap, type Event, type EventType } from "../api/client";
import { EVENT_LABELS, EVENT_TYPES, labelOf } from "../api/event-types";
import { Problem } from "../components/problem";
import { formatTime } from "../format";
import { EventStream, type StreamQuery, type StreamState } from "../live/event-stream";
import { newestSequence } from "../live/host-events";
import { Link } from "../router";

/** How far back the tail starts (in sequences), and how many rows it keeps. */
const WINDOW = 1000;
const KEEP = 500;

interface Filters {
  readonly type: EventType | "";
  readonly resourcePrefix: string;
}

function queryOf(filters: Filters): StreamQuery {
  return { types: filters.type === "" ? undefined : [filters.type], resourcePrefix: filters.resourcePrefix };
}

/** The recent events that match, oldest first, and the sequence the live tail continues from. */
async function recentEvents(filters: Filters): Promise<{ events: Event[]; after: number }> {
  const newest = await newestSequence();
  const events: Event[] = [];
  let after = Math.max(0, newest - WINDOW);
  for (;;) {
    const page = await unwrap(api.GET("/v1/events:list", {
      params: { query: { afterSequence: after, pageSize: 1000, ...(filters.type === "" ? {} : { types: [filters.type] }), ...(filters.resourcePrefix === "" ? {} : { resourcePrefix: filters.resourcePrefix }) } },
    }));
    const found = page.events ?? [];
    events.push(...found);
    if (found.length < 1000) return { events: events.slice(-KEEP), after: Math.max(after, toNumber(page.lastSequence)) };
    after = toNumber(found[found.length - 1]?.sequence);
  }
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
  const [filters, setFilters] = useState<Filters>({ type: "", resourcePrefix: "" });
  const [events, setEvents] = useState<readonly Event[]>([]);
  const [error, setError] = useState<string | undefined>(undefined);
  const [state, setState] = useState<StreamState>("connecting");
  const [paused, setPaused] = useState(false);
  const held = useRef<Event[]>([]);
  const pausedRef = useRef(paused);
  pausedRef.current = paused;
  const [heldCount, setHeldCount] = useState(0);
  useEffect(() => {
    let stream: EventStream | undefined;
    let gone = false;
    setEvents([]);
    setError(undefined);
    held.current = [];
    setHeldCount(0);
    recentEvents(filters).then(
      ({ events: recent, after }) => {
        if (gone) return;
        setEvents([...recent].reverse());
        stream = new EventStream(queryOf(filters), after, (event) => {
          if (pausedRef.current) {
            held.current.push(event);
            setHeldCount(held.current.length);
            return;
          }
          setEvents((list) => [event, ...list].slice(0, KEEP));
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
    setEvents((list) => [...waiting, ...list].slice(0, KEEP));
    setPaused(false);
  };
  return (
    <section aria-labelledby="events-title">
      <h1 id="events-title" tabIndex={-1}>Events</h1>
      <EventFilters filters={filters} onChange={setFilters} />
      <div class="tail-bar">
        <span role="status">{state === "live" ? "Following new events." : state === "connecting" ? "Connecting…" : "Connection lost; resuming after the last event shown…"}</span>
        {paused ? <button type="button" onClick={resume}>Resume ({heldCount} new)</button> : <button type="button" onClick={() => setPaused(true)}>Pause</button>}
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
    </section>
  );
}

function EventFilters(props: { filters: Filters; onChange: (filters: Filters) => void }): JSX.Element {
  const [type, setType] = useState(props.filters.type);
  const [resourcePrefix, setResourcePrefix] = useState(props.filters.resourcePrefix);
  return (
    <form class="inline-form filters" aria-label="Event filters" onSubmit={(event) => {
      event.preventDefault();
      props.onChange({ type, resourcePrefix: resourcePrefix.trim() });
    }}>
      <label>Type
        <select value={type} onChange={(event) => setType(event.currentTarget.value as EventType | "")}>
          <option value="">All types</option>
          {EVENT_TYPES.map((item) => <option key={item} value={item}>{EVENT_LABELS[item]}</option>)}
        </select>
      </label>
      <label>Resource starts with<input type="text" placeholder="e.g. jails/sshd" value={resourcePrefix} onInput={(event) => setResourcePrefix(event.currentTarget.value)} /></label>
      <button type="submit">Apply filters</button>
    </form>
  );
}
