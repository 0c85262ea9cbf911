import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, idOf, toNumber, unwrap, type ActivityWindow, type Event, type Offender } from "../api/client";
import { Problem } from "../components/problem";
import { TimelineChart } from "../components/timeline-chart";
import { formatAgo, formatCount, formatTime } from "../format";
import { useLoad, useNow, useThrottled } from "../hooks";
import { newestSequence, useHostEvents } from "../live/host-events";
import { Link } from "../router";

const WINDOWS: ReadonlyArray<readonly [ActivityWindow, string, string]> = [
  ["ACTIVITY_WINDOW_HOUR", "1 h", "in the last hour"],
  ["ACTIVITY_WINDOW_DAY", "24 h", "in the last 24 hours"],
  ["ACTIVITY_WINDOW_WEEK", "7 d", "in the last 7 days"],
  ["ACTIVITY_WINDOW_MONTH", "30 d", "in the last 30 days"],
];
/** Events that change what the overview counts. */
const COUNTED = new Set(["EVENT_TYPE_BAN", "EVENT_TYPE_UNBAN", "EVENT_TYPE_IPSET_CREATED", "EVENT_TYPE_IPSET_DELETED", "EVENT_TYPE_ENTRIES_ADDED", "EVENT_TYPE_ENTRIES_DELETED", "EVENT_TYPE_RULE_CREATED", "EVENT_TYPE_RULE_DELETED", "EVENT_TYPE_RULESET_APPLIED", "EVENT_TYPE_RULESET_ROLLED_BACK", "EVENT_TYPE_FAIL2BAN_UP", "EVENT_TYPE_FAIL2BAN_DOWN", "EVENT_TYPE_JAILS_RELOADED", "EVENT_TYPE_JAIL_STARTED", "EVENT_TYPE_JAIL_STOPPED"]);
const LATEST = 8;

/** The newest BAN events (from the last thousand events), newest first. */
async function latestBans(): Promise<Event[]> {
  const newest = await newestSequence();
  const page = await unwrap(api.GET("/v1/events:list", { params: { query: { afterSequence: Math.max(0, newest - 1000), pageSize: 1000, types: ["EVENT_TYPE_BAN"] } } }));
  return (page.events ?? []).slice(-LATEST).reverse();
}

/**
 * The host at a glance, all counted by the server: bans, jails, sets, rules, fail2ban and the fleet; the ban timeline
 * over a window; the most banned addresses and networks; bans and failures per jail. New bans show at once (from the
 * event stream); the counts follow within a second.
 */
export function OverviewView(): JSX.Element {
  const [span, setSpan] = useState<ActivityWindow>("ACTIVITY_WINDOW_DAY");
  const overview = useLoad(() => unwrap(api.GET("/v1/overview")), []);
  const timeline = useLoad(() => unwrap(api.GET("/v1/events:banTimeline", { params: { query: { window: span } } })), [span]);
  const offenders = useLoad(() => unwrap(api.GET("/v1/events:topOffenders", { params: { query: { window: span, limit: 10 } } })), [span]);
  const activity = useLoad(() => unwrap(api.GET("/v1/jails:activity", { params: { query: { window: span } } })), [span]);
  const latest = useLoad(latestBans, []);
  const [bans, setBans] = useState<readonly Event[]>([]);
  useEffect(() => {
    if (latest.data !== undefined) setBans(latest.data);
  }, [latest.data]);
  const reloadSoon = useThrottled(() => {
    overview.reload();
    timeline.reload();
    offenders.reload();
    activity.reload();
  }, 1000);
  useHostEvents((event) => {
    if (event.type === "EVENT_TYPE_BAN") setBans((list) => [event, ...list].slice(0, LATEST));
    if (event.type !== undefined && COUNTED.has(event.type)) reloadSoon();
  });
  const now = useNow(5000);
  const host = overview.data;
  const label = WINDOWS.find(([value]) => value === span)?.[2] ?? "";
  return (
    <section aria-labelledby="overview-title">
      <h1 id="overview-title" tabIndex={-1}>Overview</h1>
      <Problem error={overview.error} what="The overview could not be read" />
      {host === undefined ? null : (
        <div class="cards" id="overview-cards">
          <Card label="Active bans" value={formatCount(host.activeBans)} />
          <Card label="Bans in 24 h" value={formatCount(host.bansLastDay)} />
          <Card label="Jails" value={formatCount(host.jailCount)} note={host.fail2banUp === true ? "fail2ban is up" : "fail2ban is down"} bad={host.fail2banUp !== true} />
          <Card label="Sets" value={formatCount(host.ipsetCount)} note={`${formatCount(host.managedIpsetCount)} managed, ${formatCount(host.entryCount)} entries`} />
          <Card label="Managed rules" value={formatCount(host.managedRuleCount)} />
          <Card label="Fleet" value={host.fleet === true ? `${formatCount(host.fleetNodesOnline)} / ${formatCount(host.fleetNodeCount)}` : "—"} note={host.fleet === true ? "hosts online" : "not in a fleet"} bad={host.fleet === true && toNumber(host.fleetNodesOnline) < toNumber(host.fleetNodeCount)} />
        </div>
      )}
      <div class="grid-2">
        <section aria-labelledby="latest-title" class="panel">
          <h2 id="latest-title">Latest bans</h2>
          <table id="latest-bans">
            <caption class="visually-hidden">The newest bans, newest first</caption>
            <thead><tr><th scope="col">Address</th><th scope="col">Jail</th><th scope="col">When</th><th scope="col">By</th></tr></thead>
            <tbody>
              {bans.map((event) => (
                <tr key={String(event.sequence)} data-address={event.attributes?.address}>
                  <th scope="row"><Link to={{ view: "address", address: event.attributes?.address ?? "" }}>{event.attributes?.address}</Link></th>
                  <td><Link to={{ view: "jail", jail: event.attributes?.jail ?? "" }}>{event.attributes?.jail}</Link></td>
                  <td><time dateTime={event.time} title={formatTime(event.time)}>{formatAgo(event.time, now)}</time></td>
                  <td>{event.principal}</td>
                </tr>
              ))}
              {bans.length === 0 && !latest.loading ? <tr><td colSpan={4}>No bans yet.</td></tr> : null}
            </tbody>
          </table>
        </section>
        <section aria-labelledby="timeline-title" class="panel">
          <div class="page-head">
            <h2 id="timeline-title">Bans and unbans {label}</h2>
            <div class="segmented" role="group" aria-label="Window">
              {WINDOWS.map(([value, text]) => (
                <button key={value} type="button" aria-pressed={value === span} onClick={() => setSpan(value)}>{text}</button>
              ))}
            </div>
          </div>
          <Problem error={timeline.error} what="The timeline could not be read" />
          {timeline.data === undefined ? null : <TimelineChart timeline={timeline.data} label={label} />}
        </section>
      </div>
      <div class="grid-2">
        <OffenderTable title={`Most banned addresses ${label}`} id="top-addresses" offenders={offenders.data?.addresses ?? []} network={false} />
        <OffenderTable title={`Most banned networks ${label}`} id="top-networks" offenders={offenders.data?.networks ?? []} network />
      </div>
      <section aria-labelledby="activity-title" class="panel">
        <h2 id="activity-title">Jails {label}</h2>
        <Problem error={activity.error} what="Jail activity could not be read" />
        <table id="jail-activity">
          <caption class="visually-hidden">Bans and failures per jail</caption>
          <thead>
            <tr>
              <th scope="col">Jail</th>
              <th scope="col" class="number">Bans</th>
              <th scope="col" class="number">Unbans</th>
              <th scope="col" class="number">Banned now</th>
              <th scope="col" class="number">Failing now</th>
              <th scope="col" class="number">Failures (total)</th>
              <th scope="col" class="number">Bans (total)</th>
            </tr>
          </thead>
          <tbody>
            {(activity.data?.jails ?? []).map((jail) => {
              const id = idOf(jail.jail, "jails");
              return (
                <tr key={id}>
                  <th scope="row"><Link to={{ view: "jail", jail: id }}>{id}</Link></th>
                  <td class="number">{formatCount(jail.bans)}</td>
                  <td class="number">{formatCount(jail.unbans)}</td>
                  <td class="number">{formatCount(jail.currentlyBanned)}</td>
                  <td class="number">{formatCount(jail.currentlyFailed)}</td>
                  <td class="number">{formatCount(jail.totalFailed)}</td>
                  <td class="number">{formatCount(jail.totalBanned)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </section>
    </section>
  );
}

function Card(props: { label: string; value: string; note?: string; bad?: boolean }): JSX.Element {
  return (
    <div class={props.bad === true ? "card card-bad" : "card"}>
      <span class="card-label">{props.label}</span>
      <span class="card-value">{props.value}</span>
      {props.note === undefined ? null : <span class="card-note">{props.note}</span>}
    </div>
  );
}

function OffenderTable(props: { title: string; id: string; offenders: readonly Offender[]; network: boolean }): JSX.Element {
  return (
    <section aria-labelledby={`${props.id}-title`} class="panel">
      <h2 id={`${props.id}-title`}>{props.title}</h2>
      <table id={props.id}>
        <caption class="visually-hidden">{props.title}</caption>
        <thead>
          <tr>
            <th scope="col">{props.network ? "Network" : "Address"}</th>
            <th scope="col" class="number">Bans</th>
            {props.network ? <th scope="col" class="number">Addresses</th> : null}
            <th scope="col">Last ban</th>
            <th scope="col">Jails</th>
          </tr>
        </thead>
        <tbody>
          {props.offenders.map((offender) => (
            <tr key={offender.address}>
              <th scope="row">{props.network ? offender.address : <Link to={{ view: "address", address: offender.address ?? "" }}>{offender.address}</Link>}</th>
              <td class="number">{formatCount(offender.banCount)}</td>
              {props.network ? <td class="number">{formatCount(offender.addressCount)}</td> : null}
              <td>{formatTime(offender.lastBanTime)}</td>
              <td>{(offender.jails ?? []).map((jail) => idOf(jail, "jails")).join(", ")}</td>
            </tr>
          ))}
          {props.offenders.length === 0 ? <tr><td colSpan={props.network ? 5 : 4}>None.</td></tr> : null}
        </tbody>
      </table>
    </section>
  );
}
