import type { JSX } from "preact";
import { useState } from "preact/hooks";
import { api, idOf, messageOf, ProblemError, unwrap, type RuleMatchKind, type SearchBansResponse } from "../api/client";
import { labelOf } from "../api/event-types";
import { useCan } from "../caller";
import { ActionButton } from "../components/action-button";
import { useNotify } from "../components/notices";
import { Problem } from "../components/problem";
import { formatDuration, formatTime, secondsUntil } from "../format";
import { useLoad, useNow, useThrottled } from "../hooks";
import { useHostEvents } from "../live/host-events";
import { Link } from "../router";
import { allowAddress, EXPIRIES } from "./allowlist";
import { matchText, targetText } from "./rule-text";

const MATCHES: Readonly<Record<RuleMatchKind, string>> = {
  RULE_MATCH_KIND_UNSPECIFIED: "",
  RULE_MATCH_KIND_SOURCE: "source",
  RULE_MATCH_KIND_DESTINATION: "destination",
  RULE_MATCH_KIND_SET: "set",
};

/** Which hosts of the fleet block the address; undefined outside a fleet (FAILED_PRECONDITION). */
async function searchFleet(address: string): Promise<SearchBansResponse | undefined> {
  try {
    return await unwrap(api.GET("/v1/nodes/-/bans:search", { params: { query: { address } } }));
  } catch (error) {
    if (error instanceof ProblemError && error.reason === "FLEET_NOT_CONFIGURED") return undefined;
    throw error;
  }
}

/**
 * Everything about one address now, as the server finds it: the jails that ban it, the set entries that hold it, the
 * managed rules that match it, what protects it (allowlist, ignoreip), the fleet's bans of it and its newest events.
 * Operators ban, unban and allowlist it from here.
 */
export function AddressView(props: { address: string }): JSX.Element {
  const inspected = useLoad(() => unwrap(api.GET("/v1/addresses:inspect", { params: { query: { address: props.address } } })), [props.address]);
  const fleet = useLoad(() => searchFleet(props.address), [props.address]);
  const address = inspected.data?.address ?? props.address;
  const reloadSoon = useThrottled(() => {
    inspected.reload();
    fleet.reload();
  }, 300);
  useHostEvents((event) => {
    const attributes = event.attributes ?? {};
    if (attributes.address === address || attributes.element === address || attributes.network !== undefined || event.type?.startsWith("EVENT_TYPE_RULE") === true) reloadSoon();
  });
  const canOperate = useCan("operator");
  const now = useNow();
  const data = inspected.data;
  const bans = data?.jailBans ?? [];
  const protectedBy = (data?.allowlistEntries ?? []).length + (data?.ignoreIpEntries ?? []).length;
  return (
    <section aria-labelledby="address-title">
      <h1 id="address-title" tabIndex={-1}>Address {address}</h1>
      <Problem error={inspected.error} what="The address could not be inspected" />
      {data === undefined ? null : (
        <>
          <p class="summary" id="address-summary">
            {bans.length > 0 ? `Banned in ${bans.length} jail${bans.length === 1 ? "" : "s"}. ` : "Not banned by any jail. "}
            {(data.entries ?? []).length > 0 ? `In ${(data.entries ?? []).length} set entr${(data.entries ?? []).length === 1 ? "y" : "ies"}. ` : ""}
            {protectedBy > 0 ? "Protected from bans (allowlist or ignoreip)." : ""}
          </p>
          <section aria-labelledby="address-bans-title" class="panel">
            <h2 id="address-bans-title">Jail bans</h2>
            <table id="address-bans">
              <caption class="visually-hidden">Jails that ban {address}</caption>
              <thead><tr><th scope="col">Jail</th><th scope="col">Banned at</th><th scope="col">Ends</th><th scope="col">Time left</th>{canOperate ? <th scope="col"><span class="visually-hidden">Actions</span></th> : null}</tr></thead>
              <tbody>
                {bans.map((ban) => {
                  const jail = idOf(ban.jail, "jails");
                  return (
                    <tr key={jail}>
                      <th scope="row"><Link to={{ view: "jail", jail }}>{jail}</Link></th>
                      <td>{formatTime(ban.banTime)}</td>
                      <td>{ban.forever === true ? "never" : formatTime(ban.expireTime)}</td>
                      <td>{ban.forever === true ? "forever" : ban.expireTime === undefined ? "" : formatDuration(secondsUntil(ban.expireTime, now))}</td>
                      {canOperate ? (
                        <td>
                          <ActionButton label={`Unban ${address} in ${jail}`} done={`${address} unbanned in ${jail}.`} run={async () => {
                            await unwrap(api.POST("/v1/jails/{jail}:unban", { params: { path: { jail } }, body: { address } }));
                            inspected.reload();
                          }}>Unban</ActionButton>
                        </td>
                      ) : null}
                    </tr>
                  );
                })}
                {bans.length === 0 ? <tr><td colSpan={canOperate ? 5 : 4}>No jail bans it.</td></tr> : null}
              </tbody>
            </table>
            {canOperate ? <BanForm address={address} onBanned={inspected.reload} /> : null}
          </section>
          <section aria-labelledby="address-entries-title" class="panel">
            <h2 id="address-entries-title">Set entries</h2>
            <table id="address-entries">
              <caption class="visually-hidden">Entries of managed sets that hold {address}</caption>
              <thead><tr><th scope="col">Set</th><th scope="col">Entry</th><th scope="col">Time left</th><th scope="col">Comment</th></tr></thead>
              <tbody>
                {(data.entries ?? []).map((entry) => {
                  const set = idOf(entry.name, "ipsets").split("/entries/")[0] ?? "";
                  return (
                    <tr key={entry.name}>
                      <th scope="row"><Link to={{ view: "set", set }}>{set}</Link></th>
                      <td>{entry.element}</td>
                      <td>{entry.timeout === undefined ? "permanent" : formatDuration(entry.timeout)}</td>
                      <td>{entry.comment}</td>
                    </tr>
                  );
                })}
                {(data.entries ?? []).length === 0 ? <tr><td colSpan={4}>No managed set holds it.</td></tr> : null}
              </tbody>
            </table>
          </section>
          <section aria-labelledby="address-rules-title" class="panel">
            <h2 id="address-rules-title">Rules that match it</h2>
            <table id="address-rules">
              <caption class="visually-hidden">Managed rules that match {address}</caption>
              <thead><tr><th scope="col">Chain</th><th scope="col">Target</th><th scope="col">Matches</th><th scope="col">Comment</th><th scope="col">Matched by</th></tr></thead>
              <tbody>
                {(data.rules ?? []).map((item) => {
                  const rule = item.rule ?? {};
                  const family = rule.name?.split("/")[1] === "ipv6" ? "ipv6" : "ipv4";
                  const table = rule.name?.split("/")[3] ?? "filter";
                  return (
                    <tr key={rule.name}>
                      <th scope="row"><Link to={{ view: "rules", family, table, chain: rule.chain ?? "INPUT" }}>{family} {table} {rule.chain}</Link></th>
                      <td>{targetText(rule)}</td>
                      <td>{matchText(rule)}</td>
                      <td>{rule.comment}</td>
                      <td>{(item.matches ?? []).map((kind) => MATCHES[kind]).join(", ")}</td>
                    </tr>
                  );
                })}
                {(data.rules ?? []).length === 0 ? <tr><td colSpan={5}>No managed rule matches it.</td></tr> : null}
              </tbody>
            </table>
          </section>
          <section aria-labelledby="address-protection-title" class="panel">
            <h2 id="address-protection-title">Protection</h2>
            <ul>
              {(data.allowlistEntries ?? []).map((entry) => (
                <li key={entry.network}>Allowlist entry {entry.network}{entry.comment === undefined || entry.comment === "" ? "" : ` (${entry.comment})`}{entry.expireTime === undefined ? "" : `, until ${formatTime(entry.expireTime)}`}</li>
              ))}
              {(data.ignoreIpEntries ?? []).map((entry) => (
                <li key={`${entry.jail ?? ""} ${entry.entry ?? ""}`}>ignoreip {entry.entry} of jail <Link to={{ view: "jail", jail: idOf(entry.jail, "jails") }}>{idOf(entry.jail, "jails")}</Link></li>
              ))}
              {protectedBy === 0 ? <li>Nothing protects it from bans.</li> : null}
            </ul>
            {canOperate ? <AllowForm address={address} onAllowed={inspected.reload} /> : null}
          </section>
        </>
      )}
      <section aria-labelledby="address-fleet-title" class="panel">
        <h2 id="address-fleet-title">Across the fleet</h2>
        <Problem error={fleet.error} what="The fleet could not be asked" />
        {fleet.loading && fleet.data === undefined ? <p>Asking the fleet…</p> : fleet.data === undefined ? <p>This host is not in a fleet.</p> : (
          <>
            <table id="address-fleet">
              <caption class="visually-hidden">Hosts of the fleet that block {address}</caption>
              <thead><tr><th scope="col">Host</th><th scope="col">Blocked by</th><th scope="col">Since</th><th scope="col">Ends</th><th scope="col">Made on</th></tr></thead>
              <tbody>
                {(fleet.data.bans ?? []).map((ban) => (
                  <tr key={`${ban.node ?? ""} ${ban.resource ?? ""}`}>
                    <th scope="row">{idOf(ban.node, "nodes")}</th>
                    <td>{ban.resource}</td>
                    <td>{formatTime(ban.banTime)}</td>
                    <td>{ban.expireTime === undefined ? "" : formatTime(ban.expireTime)}</td>
                    <td>{idOf(ban.originNode, "nodes")}</td>
                  </tr>
                ))}
                {(fleet.data.bans ?? []).length === 0 ? <tr><td colSpan={5}>No host blocks it.</td></tr> : null}
              </tbody>
            </table>
            {(fleet.data.unansweredNodes ?? []).length === 0 ? null : <p class="hint">No answer in time from {(fleet.data.unansweredNodes ?? []).map((node) => idOf(node, "nodes")).join(", ")}.</p>}
          </>
        )}
      </section>
      {data === undefined ? null : (
        <section aria-labelledby="address-events-title" class="panel">
          <h2 id="address-events-title">History</h2>
          <table id="address-events">
            <caption class="visually-hidden">Newest events about {address}</caption>
            <thead><tr><th scope="col">Time</th><th scope="col">Event</th><th scope="col">Resource</th><th scope="col">By</th></tr></thead>
            <tbody>
              {(data.events ?? []).map((event) => (
                <tr key={String(event.sequence)}>
                  <td>{formatTime(event.time)}</td>
                  <td>{labelOf(event.type)}</td>
                  <td class="wrap">{event.resource}</td>
                  <td>{event.principal}</td>
                </tr>
              ))}
              {(data.events ?? []).length === 0 ? <tr><td colSpan={4}>No events.</td></tr> : null}
            </tbody>
          </table>
        </section>
      )}
    </section>
  );
}

function BanForm(props: { address: string; onBanned: () => void }): JSX.Element {
  const notify = useNotify();
  const jails = useLoad(() => unwrap(api.GET("/v1/jails")), []);
  const [jail, setJail] = useState("-");
  const [busy, setBusy] = useState(false);
  const submit = (event: SubmitEvent): void => {
    event.preventDefault();
    setBusy(true);
    unwrap(api.POST("/v1/jails/{jail}:ban", { params: { path: { jail } }, body: { address: props.address } })).then(
      (answer) => {
        notify("ok", `${props.address} banned in ${(answer.jails ?? []).map((name) => idOf(name, "jails")).join(", ")}.`);
        props.onBanned();
      },
      (error: unknown) => notify("error", messageOf(error)),
    ).finally(() => setBusy(false));
  };
  return (
    <form class="inline-form" onSubmit={submit} aria-label={`Ban ${props.address}`}>
      <label>Jail
        <select value={jail} onChange={(event) => setJail(event.currentTarget.value)}>
          <option value="-">Every jail</option>
          {(jails.data?.jails ?? []).map((item) => {
            const id = idOf(item.name, "jails");
            return <option key={id} value={id}>{id}</option>;
          })}
        </select>
      </label>
      <button type="submit" class="button-danger" disabled={busy}>Ban {props.address}</button>
    </form>
  );
}

function AllowForm(props: { address: string; onAllowed: () => void }): JSX.Element {
  const notify = useNotify();
  const [comment, setComment] = useState("");
  const [timeout, setExpiry] = useState(86400);
  const [busy, setBusy] = useState(false);
  const submit = (event: SubmitEvent): void => {
    event.preventDefault();
    setBusy(true);
    allowAddress(props.address, comment, timeout).then(
      (text) => {
        notify("ok", text);
        props.onAllowed();
      },
      (error: unknown) => notify("error", messageOf(error)),
    ).finally(() => setBusy(false));
  };
  return (
    <form class="inline-form" onSubmit={submit} aria-label={`Allowlist ${props.address}`}>
      <label>Comment<input type="text" maxLength={200} value={comment} onInput={(event) => setComment(event.currentTarget.value)} /></label>
      <label>Expires
        <select value={timeout} onChange={(event) => setExpiry(Number(event.currentTarget.value))}>
          {EXPIRIES.map(([label, seconds]) => <option key={seconds} value={seconds}>{label}</option>)}
        </select>
      </label>
      <button type="submit" disabled={busy}>Allowlist {props.address}</button>
    </form>
  );
}
