import { useEffect, useRef, useState } from "preact/hooks";
import { api, unwrap, toNumber, type Event } from "../api/client";
import { EventStream, type StreamState } from "./event-stream";

/** The largest sequence the API takes: asking for the events after it returns none, only the newest sequence. */
const NEWEST = 9007199254740991;

type Listener = (event: Event) => void;

const listeners = new Set<Listener>();
const stateListeners = new Set<(state: StreamState) => void>();
let state: StreamState = "connecting";
let started = false;

/** The newest sequence in the host's event log. */
export async function newestSequence(): Promise<number> {
  const page = await unwrap(api.GET("/v1/events:list", { params: { query: { afterSequence: NEWEST, pageSize: 1 } } }));
  return toNumber(page.lastSequence);
}

/**
 * One stream of every new event of the host, shared by every open view (a ban fail2ban makes shows on the overview and
 * the jail page without a reload). Started on first use, from the newest event at that moment.
 */
function start(): void {
  if (started) return;
  started = true;
  const setState = (next: StreamState): void => {
    state = next;
    for (const listener of stateListeners) listener(next);
  };
  const open = (): void => {
    newestSequence().then(
      (after) => new EventStream({}, after, (event) => {
        for (const listener of listeners) listener(event);
      }, setState),
      () => {
        setState("reconnecting");
        setTimeout(open, 2000);
      },
    );
  };
  open();
}

/** Calls `handler` with each new event of the host while the component is mounted (the latest handler is used). */
export function useHostEvents(handler: Listener): void {
  const current = useRef(handler);
  current.current = handler;
  useEffect(() => {
    start();
    const listener: Listener = (event) => current.current(event);
    listeners.add(listener);
    return () => void listeners.delete(listener);
  }, []);
}

/** Whether the shared stream is live. */
export function useStreamState(): StreamState {
  const [value, setValue] = useState(state);
  useEffect(() => {
    start();
    setValue(state);
    stateListeners.add(setValue);
    return () => void stateListeners.delete(setValue);
  }, []);
  return value;
}
