import type { JSX } from "preact";
import { useState } from "preact/hooks";
import { api, idOf, unwrap } from "../api/client";
import { useCan } from "../caller";
import { ActionButton } from "../components/action-button";
import { ConfirmDialog } from "../components/confirm-dialog";
import { useNotify } from "../components/notices";
import { Problem } from "../components/problem";
import { formatCount, formatDuration } from "../format";
import { useLoad, useThrottled } from "../hooks";
import { useHostEvents } from "../live/host-events";
import { Link } from "../router";
import { AllowlistSection } from "./allowlist";

const JAIL_EVENTS = new Set(["EVENT_TYPE_BAN", "EVENT_TYPE_UNBAN", "EVENT_TYPE_JAIL_UPDATED", "EVENT_TYPE_JAIL_STARTED", "EVENT_TYPE_JAIL_STOPPED", "EVENT_TYPE_JAILS_RELOADED", "EVENT_TYPE_FAIL2BAN_UP", "EVENT_TYPE_FAIL2BAN_DOWN"]);

/** Every jail with fail2ban's counters, fail2ban's own state, and the host allowlist. */
export function JailsView(): JSX.Element {
  const jails = useLoad(() => unwrap(api.GET("/v1/jails")), []);
  const fail2ban = useLoad(() => unwrap(api.GET("/v1/fail2ban")), []);
  const reloadSoon = useThrottled(() => {
    jails.reload();
    fail2ban.reload();
  }, 250);
  useHostEvents((event) => {
    if (event.type !== undefined && JAIL_EVENTS.has(event.type)) reloadSoon();
  });
  const canOperate = useCan("operator");
  const canAdmin = useCan("admin");
  const [confirming, setConfirming] = useState(false);
  const notify = useNotify();
  const status = fail2ban.data;
  const list = jails.data?.jails ?? [];
  const banned = list.reduce((sum, jail) => sum + (jail.currentlyBanned ?? 0), 0);
  return (
    <section aria-labelledby="jails-title">
      <div class="page-head">
        <h1 id="jails-title" tabIndex={-1}>Jails</h1>
        {canOperate ? (
          <div class="actions">
            {canAdmin ? (
              <ActionButton done="Every jail reloaded from fail2ban's configuration." run={async () => {
                await unwrap(api.POST("/v1/jails/{jail}:reload", { params: { path: { jail: "-" } }, body: {} }));
                jails.reload();
              }}>Reload all jails</ActionButton>
            ) : null}
            <button type="button" class="button-danger" disabled={banned === 0} onClick={() => setConfirming(true)}>Unban all…</button>
          </div>
        ) : null}
      </div>
      <p class="summary">
        {status === undefined ? "fail2ban: …" : status.up === true ? `fail2ban ${status.version ?? ""} is up with ${formatCount(status.jailCount)} jails.` : "fail2ban is not answering on its socket."}
      </p>
      <Problem error={jails.error} what="Jails could not be read" />
      <table>
        <caption class="visually-hidden">Jails and their counters</caption>
        <thead>
          <tr>
            <th scope="col">Jail</th>
            <th scope="col" class="number">Currently failed</th>
            <th scope="col" class="number">Total failed</th>
            <th scope="col" class="number">Currently banned</th>
            <th scope="col" class="number">Total banned</th>
            <th scope="col" class="number">Max retry</th>
            <th scope="col">Find time</th>
            <th scope="col">Ban time</th>
          </tr>
        </thead>
        <tbody>
          {list.map((jail) => {
            const id = idOf(jail.name, "jails");
            return (
              <tr key={id}>
                <th scope="row"><Link to={{ view: "jail", jail: id }}>{id}</Link></th>
                <td class="number">{formatCount(jail.currentlyFailed)}</td>
                <td class="number">{formatCount(jail.totalFailed)}</td>
                <td class="number">{formatCount(jail.currentlyBanned)}</td>
                <td class="number">{formatCount(jail.totalBanned)}</td>
                <td class="number">{formatCount(jail.maxRetry)}</td>
                <td>{formatDuration(jail.findTime)}</td>
                <td>{formatDuration(jail.banTime)}</td>
              </tr>
            );
          })}
          {list.length === 0 && !jails.loading ? (
            <tr><td colSpan={8}>No jails.</td></tr>
          ) : null}
        </tbody>
      </table>
      <AllowlistSection />
      {confirming ? (
        <ConfirmDialog
          title="Unban every address?"
          confirmLabel="Unban all"
          danger
          onClose={() => setConfirming(false)}
          onConfirm={async () => {
            const lifted = await unwrap(api.POST("/v1/jails:unbanAll", { body: {} }));
            notify("ok", `Lifted ${formatCount(lifted.bans?.length ?? 0)} bans.`);
            jails.reload();
          }}
        >
          <p>This lifts all {formatCount(banned)} bans of every jail. fail2ban bans the addresses again if they keep failing.</p>
        </ConfirmDialog>
      ) : null}
    </section>
  );
}
