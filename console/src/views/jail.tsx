import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, messageOf, unwrap, type Jail, type JailBan } from "../api/client";
import { useCan } from "../caller";
import { ActionButton } from "../components/action-button";
import { useNotify } from "../components/notices";
import { Problem } from "../components/problem";
import { formatCount, formatDuration, formatTime, secondsUntil } from "../format";
import { useLoad, useNow, useThrottled } from "../hooks";
import { useHostEvents } from "../live/host-events";
import { Link } from "../router";
import { JailSettings } from "./jail-settings";

const JAIL_EVENTS = new Set(["EVENT_TYPE_BAN", "EVENT_TYPE_UNBAN", "EVENT_TYPE_JAIL_UPDATED", "EVENT_TYPE_JAIL_STARTED", "EVENT_TYPE_JAIL_STOPPED", "EVENT_TYPE_JAILS_RELOADED"]);

function readJail(jail: string): Promise<Jail> {
  return unwrap(api.GET("/v1/jails/{jail}", { params: { path: { jail }, query: { view: "JAIL_VIEW_FULL" } } }));
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
    if (jail.data !== undefined) setBans(jail.data.bans ?? []);
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
  return (
    <section aria-labelledby="jail-title">
      <p class="breadcrumb"><Link to={{ view: "jails" }}>Jails</Link> /</p>
      <h1 id="jail-title" tabIndex={-1}>Jail {name}</h1>
      <Problem error={jail.error} what="The jail could not be read" />
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
          <BansSection jail={name} bans={bans} onChange={jail.reload} />
          <IgnoreSection jail={name} entries={data.ignoreIp ?? []} onChange={jail.reload} />
          <JailSettings jail={name} data={data} onSaved={jail.reload} />
        </>
      )}
    </section>
  );
}

function BansSection(props: { jail: string; bans: readonly JailBan[]; onChange: () => void }): JSX.Element {
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
      {canOperate ? <BanForm jail={jail} onBanned={props.onChange} /> : null}
    </section>
  );
}

function BanForm(props: { jail: string; onBanned: () => void }): JSX.Element {
  const notify = useNotify();
  const [address, setAddress] = useState("");
  const [fleet, setFleet] = useState(false);
  const [busy, setBusy] = useState(false);
  const submit = (event: SubmitEvent): void => {
    event.preventDefault();
    setBusy(true);
    const target = address.trim();
    unwrap(api.POST("/v1/jails/{jail}:ban", { params: { path: { jail: props.jail } }, body: { address: target, ...(fleet ? { fleet: true } : {}) } })).then(
      () => {
        notify("ok", `${target} banned in ${props.jail}.`);
        setAddress("");
        props.onBanned();
      },
      (error: unknown) => notify("error", messageOf(error)),
    ).finally(() => setBusy(false));
  };
  return (
    <form class="inline-form" onSubmit={submit} aria-label="Ban an address">
      <label>Address to ban<input type="text" required value={address} onInput={(event) => setAddress(event.currentTarget.value)} /></label>
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
