import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, messageOf, toNumber, unwrap, type BanTimeIncrement, type Jail } from "../api/client";
import { useCan } from "../caller";
import { useNotify } from "../components/notices";
import { formatDuration } from "../format";

interface Draft {
  maxRetry: string;
  findTime: string;
  banTime: string;
  enabled: boolean;
  factor: string;
  maxTime: string;
  randomTime: string;
  multipliers: string;
  overallJails: boolean;
}

function draftOf(jail: Jail): Draft {
  const increment = jail.banTimeIncrement ?? {};
  return {
    maxRetry: String(jail.maxRetry ?? 0),
    findTime: String(toNumber(jail.findTime)),
    banTime: String(toNumber(jail.banTime)),
    enabled: increment.enabled === true,
    factor: increment.factor === undefined || increment.factor === 0 ? "" : String(increment.factor),
    maxTime: toNumber(increment.maxTime) === 0 ? "" : String(toNumber(increment.maxTime)),
    randomTime: toNumber(increment.randomTime) === 0 ? "" : String(toNumber(increment.randomTime)),
    multipliers: (increment.multipliers ?? []).join(" "),
    overallJails: increment.overallJails === true,
  };
}

function incrementOf(draft: Draft): BanTimeIncrement {
  return {
    enabled: draft.enabled,
    factor: draft.factor === "" ? 0 : Number(draft.factor),
    maxTime: draft.maxTime === "" ? 0 : Number(draft.maxTime),
    randomTime: draft.randomTime === "" ? 0 : Number(draft.randomTime),
    multipliers: draft.multipliers.split(/[\s,]+/).filter((item) => item !== "").map(Number),
    overallJails: draft.overallJails,
  };
}

/** The jail's settings; admins change them (UpdateJail: at once in fail2ban, and in a drop-in that survives a reload). */
export function JailSettings(props: { jail: string; data: Jail; onSaved: () => void }): JSX.Element {
  const canAdmin = useCan("admin");
  const notify = useNotify();
  const [draft, setDraft] = useState(() => draftOf(props.data));
  const [busy, setBusy] = useState(false);
  useEffect(() => setDraft(draftOf(props.data)), [props.data]);
  const increment = props.data.banTimeIncrement ?? {};
  if (!canAdmin) {
    return (
      <section aria-labelledby="settings-title" class="panel">
        <h2 id="settings-title">Settings</h2>
        <dl class="facts">
          <dt>Max retry</dt><dd>{props.data.maxRetry}</dd>
          <dt>Find time</dt><dd>{formatDuration(props.data.findTime)}</dd>
          <dt>Ban time</dt><dd>{formatDuration(props.data.banTime)}</dd>
          <dt>Ban time increment</dt>
          <dd>{increment.enabled === true ? `on (factor ${increment.factor || 1}, max ${toNumber(increment.maxTime) === 0 ? "no limit" : formatDuration(increment.maxTime)}${increment.overallJails === true ? ", over all jails" : ""})` : "off"}</dd>
          {increment.formula === undefined || increment.formula === "" ? null : <><dt>Formula</dt><dd><code>{increment.formula}</code></dd></>}
        </dl>
      </section>
    );
  }
  const set = <K extends keyof Draft>(key: K, value: Draft[K]): void => setDraft((previous) => ({ ...previous, [key]: value }));
  const save = (event: SubmitEvent): void => {
    event.preventDefault();
    const before = draftOf(props.data);
    const body: { maxRetry?: number; findTime?: number; banTime?: number; banTimeIncrement?: BanTimeIncrement } = {};
    if (draft.maxRetry !== before.maxRetry) body.maxRetry = Number(draft.maxRetry);
    if (draft.findTime !== before.findTime) body.findTime = Number(draft.findTime);
    if (draft.banTime !== before.banTime) body.banTime = Number(draft.banTime);
    const incrementKeys: ReadonlyArray<keyof Draft> = ["enabled", "factor", "maxTime", "randomTime", "multipliers", "overallJails"];
    if (incrementKeys.some((key) => draft[key] !== before[key])) body.banTimeIncrement = incrementOf(draft);
    if (Object.keys(body).length === 0) {
      notify("ok", "Nothing changed.");
      return;
    }
    setBusy(true);
    unwrap(api.PATCH("/v1/jails/{jail}", { params: { path: { jail: props.jail } }, body })).then(
      () => {
        notify("ok", `Settings of ${props.jail} saved.`);
        props.onSaved();
      },
      (error: unknown) => notify("error", messageOf(error)),
    ).finally(() => setBusy(false));
  };
  const number = (key: "maxRetry" | "findTime" | "banTime" | "factor" | "maxTime" | "randomTime", label: string, hint: string, attributes: { min?: number; step?: string } = {}): JSX.Element => (
    <label>
      {label}
      <input type="number" value={draft[key]} min={attributes.min} step={attributes.step} aria-describedby={`hint-${key}`} onInput={(event) => set(key, event.currentTarget.value)} />
      <span class="hint" id={`hint-${key}`}>{hint}</span>
    </label>
  );
  return (
    <section aria-labelledby="settings-title" class="panel">
      <h2 id="settings-title">Settings</h2>
      <form class="settings-form" onSubmit={save}>
        <fieldset>
          <legend>Banning</legend>
          {number("maxRetry", "Max retry", "failures within the find time that ban", { min: 1 })}
          {number("findTime", "Find time (seconds)", "window in which failures count", { min: 1 })}
          {number("banTime", "Ban time (seconds)", "-1 bans for ever", { min: -1 })}
        </fieldset>
        <fieldset>
          <legend>Ban time increment (repeat offenders)</legend>
          <label class="check"><input type="checkbox" checked={draft.enabled} onChange={(event) => set("enabled", event.currentTarget.checked)} />Ban times grow</label>
          {number("factor", "Factor", "empty: 1", { step: "any" })}
          {number("maxTime", "Longest ban (seconds)", "empty: no limit", { min: 0 })}
          {number("randomTime", "Random extra (seconds)", "empty: none", { min: 0 })}
          <label>
            Multipliers
            <input type="text" value={draft.multipliers} aria-describedby="hint-multipliers" onInput={(event) => set("multipliers", event.currentTarget.value)} />
            <span class="hint" id="hint-multipliers">e.g. 1 2 4 8 16; empty: powers of two</span>
          </label>
          <label class="check"><input type="checkbox" checked={draft.overallJails} onChange={(event) => set("overallJails", event.currentTarget.checked)} />Count bans in every jail</label>
          {increment.formula === undefined || increment.formula === "" ? null : <p class="hint">fail2ban's formula: <code>{increment.formula}</code></p>}
        </fieldset>
        <button type="submit" class="button-primary" disabled={busy}>Save settings</button>
      </form>
    </section>
  );
}
