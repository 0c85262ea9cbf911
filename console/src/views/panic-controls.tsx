import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, unwrap } from "../api/client";
import { ConfirmDialog } from "../components/confirm-dialog";
import { useNotify } from "../components/notices";

/**
 * Panic mode: every packet but the API's from the management addresses is dropped, in both families. Switching it on
 * takes a typed confirmation; switching it off puts the saved rulesets back.
 */
export function PanicControls(): JSX.Element {
  const notify = useNotify();
  const [dialog, setDialog] = useState<"on" | "off" | undefined>(undefined);
  // Whether it is on, as the server says (undefined until it answered): only the matching control is offered.
  const [enabled, setEnabled] = useState<boolean | undefined>(undefined);
  useEffect(() => {
    void unwrap(api.GET("/v1/firewall/panic")).then((status) => setEnabled(status.enabled === true), () => setEnabled(undefined));
  }, []);
  return (
    <div class="actions">
      {enabled === true ? <strong role="status">Panic mode is on</strong> : null}
      {enabled !== true ? <button type="button" class="button-danger" onClick={() => setDialog("on")}>Panic mode…</button> : null}
      {enabled !== false ? <button type="button" onClick={() => setDialog("off")}>End panic mode…</button> : null}
      {dialog === "on" ? (
        <ConfirmDialog title="Switch panic mode on?" confirmLabel="Drop all traffic" typed="PANIC" danger onClose={() => setDialog(undefined)} onConfirm={async () => {
          const status = await unwrap(api.POST("/v1/firewall/panic:enable", { body: {} }));
          setEnabled(true);
          notify("ok", `Panic mode is on: only the API from ${(status.managementAddresses ?? []).join(", ") || "the management addresses"} gets through.`);
        }}>
          <p>Every packet to and from this host is dropped, in IPv4 and IPv6, except the API's own port from the management addresses. Services, SSH and fail2ban's bans stop mattering until panic mode ends.</p>
        </ConfirmDialog>
      ) : null}
      {dialog === "off" ? (
        <ConfirmDialog title="End panic mode?" confirmLabel="End panic mode" onClose={() => setDialog(undefined)} onConfirm={async () => {
          await unwrap(api.POST("/v1/firewall/panic:disable", { body: {} }));
          setEnabled(false);
          notify("ok", "Panic mode is off: the previous rulesets are back.");
        }}>
          <p>The rulesets saved when panic mode started come back.</p>
        </ConfirmDialog>
      ) : null}
    </div>
  );
}
