import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, messageOf, unwrap } from "../api/client";
import { useNotify } from "../components/notices";
import { formatTime, secondsUntil } from "../format";
import { useNow } from "../hooks";
import { useHostEvents } from "../live/host-events";
import type { Family } from "../router";

/**
 * A safe-mode change waiting for confirmation, per table. Kept in sessionStorage, so that a reload of the page during
 * the countdown still offers the Confirm button.
 */
export interface PendingChange {
  /** When the server puts the previous table back unless confirmed (ISO time). */
  readonly rollbackTime: string;
  readonly what: string;
}

const key = (family: Family, table: string): string => `portcullis:safe-mode:${family}/${table}`;
const CHANGED = "portcullis:safe-mode";

export function rememberPending(family: Family, table: string, change: PendingChange): void {
  sessionStorage.setItem(key(family, table), JSON.stringify(change));
  dispatchEvent(new Event(CHANGED));
}

function forget(family: Family, table: string): void {
  sessionStorage.removeItem(key(family, table));
  dispatchEvent(new Event(CHANGED));
}

function readPending(family: Family, table: string): PendingChange | undefined {
  const text = sessionStorage.getItem(key(family, table));
  if (text === null) return undefined;
  try {
    return JSON.parse(text) as PendingChange;
  } catch {
    return undefined;
  }
}

type Outcome = { readonly kind: "confirmed" | "rolled-back"; readonly time: string; readonly what: string };

/**
 * The countdown of a safe-mode change with its Confirm button; when the deadline passes unconfirmed, the server's
 * RULESET_ROLLED_BACK event says the previous table is back, and that is shown (and `onSettled` reloads the table).
 */
export function SafeModeBanner(props: { family: Family; table: string; onSettled: () => void }): JSX.Element | null {
  const { family, table } = props;
  const notify = useNotify();
  const now = useNow(250);
  const [pending, setPending] = useState(() => readPending(family, table));
  const [outcome, setOutcome] = useState<Outcome | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    const update = (): void => setPending(readPending(family, table));
    addEventListener(CHANGED, update);
    return () => removeEventListener(CHANGED, update);
  }, [family, table]);
  useEffect(() => {
    if (pending !== undefined) setOutcome(undefined);
  }, [pending]);
  const resource = `firewall/${family}/tables/${table}`;
  useHostEvents((event) => {
    if (event.resource !== resource) return;
    if (event.type === "EVENT_TYPE_RULESET_ROLLED_BACK" || event.type === "EVENT_TYPE_RULESET_CONFIRMED") {
      const current = readPending(family, table);
      setOutcome({ kind: event.type === "EVENT_TYPE_RULESET_CONFIRMED" ? "confirmed" : "rolled-back", time: event.time ?? new Date().toISOString(), what: current?.what ?? "the change" });
      forget(family, table);
      props.onSettled();
    }
  });
  const confirm = (): void => {
    setBusy(true);
    unwrap(api.POST("/v1/firewall/{family}/tables/{table}:confirm", { params: { path: { family, table } }, body: {} })).then(
      () => notify("ok", "Confirmed: the change stays."),
      (error: unknown) => notify("error", messageOf(error)),
    ).finally(() => setBusy(false));
  };
  if (pending !== undefined) {
    const left = secondsUntil(pending.rollbackTime, now);
    return (
      <div class="safe-mode" role="region" aria-labelledby="safe-mode-title">
        <h2 id="safe-mode-title">Safe mode: confirm {pending.what}</h2>
        <p>
          {left > 0 ? <>The previous table comes back in <strong class="countdown" role="timer" aria-live="off">{left} s</strong> unless you confirm.</> : "The deadline has passed: the previous table is being restored…"}
        </p>
        <button type="button" class="button-primary" disabled={busy || left === 0} onClick={confirm}>Confirm</button>
      </div>
    );
  }
  if (outcome === undefined) return null;
  return outcome.kind === "rolled-back" ? (
    <div class="rolled-back" role="alert">
      <h2>Rolled back</h2>
      <p>{outcome.what} was not confirmed in time: at {formatTime(outcome.time)} the server put the previous table back.</p>
      <button type="button" onClick={() => setOutcome(undefined)}>Dismiss</button>
    </div>
  ) : (
    <div class="confirmed" role="status">
      <p>Confirmed at {formatTime(outcome.time)}: {outcome.what} stays.</p>
      <button type="button" onClick={() => setOutcome(undefined)}>Dismiss</button>
    </div>
  );
}
