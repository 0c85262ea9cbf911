import type { ComponentChildren, JSX } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { messageOf } from "../api/client";

/**
 * A modal confirmation (the browser's <dialog>: focus stays inside, Escape cancels). With `typed`, the confirm button
 * stays disabled until the user types that word. A failure keeps the dialog open with the server's detail.
 */
export function ConfirmDialog(props: {
  title: string;
  children: ComponentChildren;
  confirmLabel: string;
  typed?: string;
  danger?: boolean;
  onConfirm: () => Promise<unknown>;
  onClose: () => void;
}): JSX.Element {
  const dialog = useRef<HTMLDialogElement>(null);
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  useEffect(() => {
    const element = dialog.current;
    if (element !== null && !element.open) element.showModal();
  }, []);
  const ready = props.typed === undefined || text === props.typed;
  const confirm = (event: SubmitEvent): void => {
    event.preventDefault();
    if (!ready || busy) return;
    setBusy(true);
    setError(undefined);
    props.onConfirm().then(
      () => props.onClose(),
      (failure: unknown) => {
        setError(messageOf(failure));
        setBusy(false);
      },
    );
  };
  return (
    <dialog ref={dialog} class="dialog" aria-labelledby="dialog-title" onClose={props.onClose}>
      <form method="dialog" onSubmit={confirm}>
        <h2 id="dialog-title">{props.title}</h2>
        <div class="dialog-body">{props.children}</div>
        {props.typed === undefined ? null : (
          <p>
            <label>
              Type <strong>{props.typed}</strong> to confirm
              <input type="text" value={text} autocomplete="off" onInput={(event) => setText(event.currentTarget.value)} />
            </label>
          </p>
        )}
        {error === undefined ? null : <p class="problem" role="alert">{error}</p>}
        <div class="dialog-buttons">
          <button type="button" onClick={() => dialog.current?.close()}>Cancel</button>
          <button type="submit" class={props.danger === true ? "button-danger" : "button-primary"} disabled={!ready || busy}>{props.confirmLabel}</button>
        </div>
      </form>
    </dialog>
  );
}
