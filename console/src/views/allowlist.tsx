import type { JSX } from "preact";
import { useState } from "preact/hooks";
import { api, messageOf, unwrap } from "../api/client";
import { useCaller, useCan } from "../caller";
import { ActionButton } from "../components/action-button";
import { useNotify } from "../components/notices";
import { Problem } from "../components/problem";
import { formatTime } from "../format";
import { useLoad, useThrottled } from "../hooks";
import { useHostEvents } from "../live/host-events";

/** Expiry choices for an allowlist entry, in seconds (0: never). */
export const EXPIRIES: ReadonlyArray<readonly [string, number]> = [["Never", 0], ["1 hour", 3600], ["1 day", 86400], ["7 days", 604800], ["30 days", 2592000]];

/** Adds an address or network to the host allowlist: no jail bans it, and its current bans are lifted. */
export async function allowAddress(network: string, comment: string, timeout: number): Promise<string> {
  const added = await unwrap(api.POST("/v1/allowlist", { body: { network, comment, timeout } }));
  const lifted = added.liftedBans?.length ?? 0;
  return `${added.entry?.network ?? network} is allowlisted${lifted > 0 ? `; ${lifted} ban${lifted === 1 ? "" : "s"} lifted` : ""}.`;
}

/** The host allowlist: what no jail bans. Operators add (with an expiry) and remove entries. */
export function AllowlistSection(): JSX.Element {
  const allowlist = useLoad(() => unwrap(api.GET("/v1/allowlist")), []);
  const reloadSoon = useThrottled(allowlist.reload, 250);
  useHostEvents((event) => {
    if (event.type === "EVENT_TYPE_ALLOWLIST_ENTRY_ADDED" || event.type === "EVENT_TYPE_ALLOWLIST_ENTRY_REMOVED") reloadSoon();
  });
  const canOperate = useCan("operator");
  const entries = allowlist.data?.entries ?? [];
  return (
    <section aria-labelledby="allowlist-title" class="panel">
      <h2 id="allowlist-title">Allowlist</h2>
      <p class="hint">Addresses and networks no jail bans (every jail gets them in its ignoreip).</p>
      <Problem error={allowlist.error} what="The allowlist could not be read" />
      <table>
        <caption class="visually-hidden">Allowlist entries</caption>
        <thead>
          <tr>
            <th scope="col">Network</th>
            <th scope="col">Comment</th>
            <th scope="col">Added</th>
            <th scope="col">Expires</th>
            <th scope="col">By</th>
            {canOperate ? <th scope="col"><span class="visually-hidden">Actions</span></th> : null}
          </tr>
        </thead>
        <tbody>
          {entries.map((entry) => (
            <tr key={entry.network}>
              <th scope="row">{entry.network}</th>
              <td>{entry.comment}</td>
              <td>{formatTime(entry.createTime)}</td>
              <td>{entry.expireTime === undefined ? "never" : formatTime(entry.expireTime)}</td>
              <td>{entry.createdBy}</td>
              {canOperate ? (
                <td>
                  <ActionButton label={`Remove ${entry.network ?? ""} from the allowlist`} done={`${entry.network ?? ""} removed from the allowlist.`} run={async () => {
                    await unwrap(api.POST("/v1/allowlist:remove", { body: { network: entry.network ?? "" } }));
                    allowlist.reload();
                  }}>Remove</ActionButton>
                </td>
              ) : null}
            </tr>
          ))}
          {entries.length === 0 && !allowlist.loading ? <tr><td colSpan={canOperate ? 6 : 5}>The allowlist is empty.</td></tr> : null}
        </tbody>
      </table>
      {canOperate ? <AllowForm onAdded={allowlist.reload} /> : null}
    </section>
  );
}

function AllowForm(props: { onAdded: () => void }): JSX.Element {
  const { caller } = useCaller();
  const notify = useNotify();
  const [network, setNetwork] = useState("");
  const [comment, setComment] = useState("");
  const [timeout, setExpiry] = useState(0);
  const [busy, setBusy] = useState(false);
  const add = (address: string): void => {
    setBusy(true);
    allowAddress(address, comment, timeout).then(
      (text) => {
        notify("ok", text);
        setNetwork("");
        setComment("");
        props.onAdded();
      },
      (error: unknown) => notify("error", messageOf(error)),
    ).finally(() => setBusy(false));
  };
  return (
    <form class="inline-form" onSubmit={(event) => {
      event.preventDefault();
      add(network.trim());
    }}>
      <label>Address or network<input type="text" required value={network} onInput={(event) => setNetwork(event.currentTarget.value)} /></label>
      <label>Comment<input type="text" maxLength={200} value={comment} onInput={(event) => setComment(event.currentTarget.value)} /></label>
      <label>Expires
        <select value={timeout} onChange={(event) => setExpiry(Number(event.currentTarget.value))}>
          {EXPIRIES.map(([label, seconds]) => <option key={seconds} value={seconds}>{label}</option>)}
        </select>
      </label>
      <button type="submit" class="button-primary" disabled={busy}>Allow</button>
      {caller?.address === undefined || caller.address === "" ? null : (
        <button type="button" disabled={busy} onClick={() => add(caller.address)}>Allow my address ({caller.address})</button>
      )}
    </form>
  );
}
