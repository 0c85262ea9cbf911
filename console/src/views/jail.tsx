import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, messageOf, ProblemError, unwrap, type Jail, type JailBan } from "../api/client";
import { useCan } from "../caller";
import { ActionButton } from "../components/action-button";
import { ConfirmDialog } from "../components/confirm-dialog";
import { useNotify } from "../components/notices";
import { Problem } from "../components/problem";
import { formatCount, formatDuration, formatTime, secondsUntil } from "../format";
import { useLoad, useNow, useThrottled } from "../hooks";
import { useHostEvents } from "../live/host-events";
import { Link } from "../router";
import { JailSettings } from "./jail-settings";

const JAIL_EVENTS = new Set(["EVENT_TYPE_BAN", "EVENT_TYPE_UNBAN", "EVENT_TYPE_JAIL_UPDATED", "EVENT_TYPE_JAIL_STARTED", "EVENT_TYPE_JAIL_STOPPED", "EVENT_TYPE_JAILS_RELOADED"]);

/** A jail fail2ban runs, or `undefined` when it runs none of that name (stopped, or not in its configuration). */
async function readJail(jail: string): Promise<Jail | undefined> {
  try {
    return await unwrap(api.GET("/v1/jails/{jail}", { params: { path: { jail }, query: { view: "JAIL_VIEW_FULL" } } }));
  } catch (error) {
    if (error instanceof ProblemError && error.reason === "JAIL_NOT_FOUND") return undefined;
    throw error;
  }
}

/**
 * One jail as `fail2ban-client status <jail>` shows it, its bans with the time each has left, and its settings. A ban
 * fail2ban makes shows at once (from the event stream), then the jail is read again for the ban's times.
 */
export function JailView(props: { jail: string }): JSX.Element {
  const name = props.jail;
  const jail = useLoad(() => readJail(name), [name]);
  const [bans, setBans] = useState<readonly JailBan[]>([]);
  useEffect(() => {
    if (jail.data !== undefined) setBans(jail.data?.bans ?? []);
  }, [jail.data]);
  const reloadSoon = useThrottled(jail.reload, 200);
  useHostEvents((event) => {
    if (event.type === undefined || !JAIL_EVENTS.has(event.type)) return;
    const attributes = event.attributes ?? {};
    if (event.type === "EVENT_TYPE_JAILS_RELOADED" || attributes.jail === name || event.resource === `jails/${name}`) {
      const address = attributes.address;
      if (attributes.jail === name && address !== undefined) {
        if (event.type === "EVENT_TYPE_BAN") setBans((list) => (list.some((ban) => ban.address === address) ? list : [...list, { address, banTime: event.time }]));
        if (event.type === "EVENT_TYPE_UNBAN") setBans((list) => list.filter((ban) => ban.address !== address));
      }
      reloadSoon();
    }
  });
  const data = jail.data;
  const stopped = !jail.loading && jail.error === undefined && data === undefined;
  return (
    <section aria-labelledby="jail-title">
      <p class="breadcrumb"><Link to={{ view: "jails" }}>Jails</Link> /</p>
      <div class="page-head">
        <h1 id="jail-title" tabIndex={-1}>Jail {name}</h1>
        <JailControls jail={name} running={data !== undefined} stopped={stopped} onChange={jail.reload} />
      </div>
      <Problem error={jail.error} what="The jail could not be read" />
      {stopped ? <p class="summary" id="jail-state">Jail {name} is not running: it is stopped, or fail2ban's configuration has no such jail.</p> : null}
      {data === undefined ? null : (
        <>
          <div class="cards">
            <div class="card"><span class="card-label">Currently failed</span><span class="card-value">{formatCount(data.currentlyFailed)}</span></div>
            <div class="card"><span class="card-label">Total failed</span><span class="card-value">{formatCount(data.totalFailed)}</span></div>
            <div class="card"><span class="card-label">Currently banned</span><span class="card-value">{formatCount(bans.length)}</span></div>
            <div class="card"><span class="card-label">Total banned</span><span class="card-value">{formatCount(data.totalBanned)}</span></div>
          </div>
          <dl class="facts">
            <dt>Log files</dt>
            <dd>{(data.files ?? []).length === 0 ? "none" : (data.files ?? []).join(", ")}</dd>
            <dt>Actions</dt>
            <dd>{(data.actions ?? []).join(", ") || "none"}</dd>
          </dl>
          <BansSection jail={name} bans={bans} banTime={Number(data.banTime ?? -1)} onChange={jail.reload} />
          <IgnoreSection jail={name} entries={data.ignoreIp ?? []} onChange={jail.reload} />
          <JailSettings jail={name} data={data} onSaved={jail.reload} />
        </>
      )}
    </section>
  );
}

/** An admin's Reload, Stop (confirmed: its actions lift the jail's bans) and, for a jail that is not running, Start. */
function JailControls(props: { jail: string; running: boolean; stopped: boolean; onChange: () => void }): JSX.Element | null {
  const canAdmin = useCan("admin");
  const notify = useNotify();
  const [confirming, setConfirming] = useState(false);
  const { jail } = props;
  if (!canAdmin || (!props.running && !props.stopped)) return null;
  return (
    <div class="actions">
      {props.stopped ? (
        <ActionButton kind="primary" label={`Start jail ${jail}`} done={`Jail ${jail} started.`} run={async () => {
          await unwrap(api.POST("/v1/jails/{jail}:start", { params: { path: { jail } }, body: {} }));
          props.onChange();
        }}>Start</ActionButton>
      ) : (
        <>
          <ActionButton label={`Reload jail ${jail}`} done={`Jail ${jail} reloaded from fail2ban's configuration.`} run={async () => {
            await unwrap(api.POST("/v1/jails/{jail}:reload", { params: { path: { jail } }, body: {} }));
            props.onChange();
          }}>Reload</ActionButton>
          <button type="button" class="button-danger" onClick={() => setConfirming(true)}>Stop jail…</button>
        </>
      )}
      {confirming ? (
        <ConfirmDialog
          title={`Stop jail ${jail}?`}
          confirmLabel="Stop jail"
          danger
          onClose={() => setConfirming(false)}
          onConfirm={async () => {
            await unwrap(api.POST("/v1/jails/{jail}:stop", { params: { path: { jail } }, body: {} }));
            notify("ok", `Jail ${jail} stopped.`);
            props.onChange();
          }}
        >
          <p>The jail stops watching its logs and its actions lift its bans. Start it again from this page; a fail2ban restart or reload starts it too.</p>
        </ConfirmDialog>
      ) : null}
    </div>
  );
}

function BansSection(props: { jail: string; bans: readonly JailBan[]; banTime: number; onChange: () => void }): JSX.Element {
  const canOperate = useCan("operator");
  const now = useNow();
  const { jail, bans } = props;
  return (
    <section aria-labelledby="bans-title" class="panel">
      <h2 id="bans-title">Banned addresses</h2>
      <table id="bans">
        <caption class="visually-hidden">Addresses banned in {jail}</caption>
        <thead>
          <tr>
            <th scope="col">Address</th>
            <th scope="col">Banned at</th>
            <th scope="col">Duration</th>
            <th scope="col">Ends</th>
            <th scope="col">Time left</th>
            {canOperate ? <th scope="col"><span class="visually-hidden">Actions</span></th> : null}
          </tr>
        </thead>
        <tbody>
          {bans.map((ban) => {
            const forever = Number(ban.duration ?? 0) < 0;
            return (
              <tr key={ban.address} data-address={ban.address}>
                <th scope="row"><Link to={{ view: "address", address: ban.address ?? "" }}>{ban.address}</Link></th>
                <td>{formatTime(ban.banTime)}</td>
                <td>{ban.duration === undefined ? "" : formatDuration(ban.duration)}</td>
                <td>{forever ? "never" : formatTime(ban.expireTime)}</td>
                <td>{forever ? "forever" : ban.expireTime === undefined ? "" : formatDuration(secondsUntil(ban.expireTime, now))}</td>
                {canOperate ? (
                  <td>
                    <ActionButton label={`Unban ${ban.address ?? ""}`} done={`${ban.address ?? ""} unbanned in ${jail}.`} run={async () => {
                      await unwrap(api.POST("/v1/jails/{jail}:unban", { params: { path: { jail } }, body: { address: ban.address ?? "" } }));
                      props.onChange();
                    }}>Unban</ActionButton>
                  </td>
                ) : null}
              </tr>
            );
          })}
          {bans.length === 0 ? <tr><td colSpan={canOperate ? 6 : 5}>No address is banned.</td></tr> : null}
        </tbody>
      </table>
      {canOperate ? <BanForm jail={jail} banTime={props.banTime} onBanned={props.onChange} /> : null}
    </section>
  );
}

/** Durations a ban can be given, in seconds; those longer than the jail's bantime are not offered (the server refuses them). */
const BAN_DURATIONS: ReadonlyArray<readonly [string, number]> = [["10 minutes", 600], ["1 hour", 3600], ["1 day", 86400], ["7 days", 604800], ["30 days", 2592000]];

function BanForm(props: { jail: string; banTime: number; onBanned: () => void }): JSX.Element {
  const notify = useNotify();
  const [address, setAddress] = useState("");
  const [duration, setDuration] = useState(0);
  const [reason, setReason] = useState("");
  const [fleet, setFleet] = useState(false);
  const [busy, setBusy] = useState(false);
  const durations = BAN_DURATIONS.filter(([, seconds]) => props.banTime < 0 || seconds < props.banTime);
  const submit = (event: SubmitEvent): void => {
    event.preventDefault();
    setBusy(true);
    const target = address.trim();
    const body = { address: target, ...(duration > 0 ? { duration } : {}), ...(reason.trim() === "" ? {} : { reason: reason.trim() }), ...(fleet ? { fleet: true } : {}) };
    unwrap(api.POST("/v1/jails/{jail}:ban", { params: { path: { jail: props.jail } }, body })).then(
      () => {
        notify("ok", `${target} banned in ${props.jail}${duration > 0 ? ` for ${formatDuration(duration)}` : ""}.`);
        setAddress("");
        setReason("");
        props.onBanned();
      },
      (error: unknown) => notify("error", messageOf(error)),
    ).finally(() => setBusy(false));
  };
  return (
    <form class="inline-form" onSubmit={submit} aria-label="Ban an address">
      <label>Address to ban<input type="text" required value={address} onInput={(event) => setAddress(event.currentTarget.value)} /></label>
      <label>Duration
        <select value={duration} onChange={(event) => setDuration(Number(event.currentTarget.value))}>
          <option value={0}>The jail's bantime{props.banTime < 0 ? " (forever)" : ` (${formatDuration(props.banTime)})`}</option>
          {durations.map(([label, seconds]) => <option key={seconds} value={seconds}>{label}</option>)}
        </select>
      </label>
      <label>Reason<input type="text" maxLength={200} value={reason} onInput={(event) => setReason(event.currentTarget.value)} /></label>
      <label class="check"><input type="checkbox" checked={fleet} onChange={(event) => setFleet(event.currentTarget.checked)} />On every fleet host</label>
      <button type="submit" class="button-danger" disabled={busy}>Ban</button>
    </form>
  );
}

function IgnoreSection(props: { jail: string; entries: readonly string[]; onChange: () => void }): JSX.Element {
  const canOperate = useCan("operator");
  const notify = useNotify();
  const [entry, setEntry] = useState("");
  const { jail } = props;
  const add = (event: SubmitEvent): void => {
    event.preventDefault();
    unwrap(api.POST("/v1/jails/{jail}:addIgnoreIp", { params: { path: { jail } }, body: { entry: entry.trim() } })).then(
      () => {
        notify("ok", `${entry.trim()} added to ${jail}'s ignore list.`);
        setEntry("");
        props.onChange();
      },
      (error: unknown) => notify("error", messageOf(error)),
    );
  };
  return (
    <section aria-labelledby="ignore-title" class="panel">
      <h2 id="ignore-title">Ignore list</h2>
      <p class="hint">Addresses and networks this jail never bans (fail2ban's ignoreip).</p>
      {props.entries.length === 0 ? <p>Empty.</p> : (
        <ul class="chips">
          {props.entries.map((item) => (
            <li key={item}>
              <span>{item}</span>
              {canOperate ? (
                <ActionButton label={`Remove ${item} from the ignore list`} done={`${item} removed from ${jail}'s ignore list.`} run={async () => {
                  await unwrap(api.POST("/v1/jails/{jail}:removeIgnoreIp", { params: { path: { jail } }, body: { entry: item } }));
                  props.onChange();
                }}>Remove</ActionButton>
              ) : null}
            </li>
          ))}
        </ul>
      )}
      {canOperate ? (
        <form class="inline-form" onSubmit={add} aria-label="Add to the ignore list">
          <label>Address or network<input type="text" required value={entry} onInput={(event) => setEntry(event.currentTarget.value)} /></label>
          <button type="submit">Add</button>
        </form>
      ) : null}
    </section>
  );
}
