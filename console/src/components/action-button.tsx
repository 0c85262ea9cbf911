import type { ComponentChildren, JSX } from "preact";
import { useState } from "preact/hooks";
import { messageOf } from "../api/client";
import { useNotify } from "./notices";

/**
 * A button that runs a server call: disabled while it runs; the outcome is announced (`done`, or the problem's
 * detail).
 */
export function ActionButton(props: {
  run: () => Promise<unknown>;
  done?: string;
  children: ComponentChildren;
  kind?: "danger" | "primary";
  label?: string;
  disabled?: boolean;
}): JSX.Element {
  const notify = useNotify();
  const [busy, setBusy] = useState(false);
  const onClick = (): void => {
    setBusy(true);
    props.run().then(
      () => props.done !== undefined && notify("ok", props.done),
      (error: unknown) => notify("error", messageOf(error)),
    ).finally(() => setBusy(false));
  };
  return (
    <button type="button" class={props.kind === undefined ? undefined : `button-${props.kind}`} aria-label={props.label} disabled={busy || props.disabled === true} onClick={onClick}>
      {props.children}
    </button>
  );
}
