import { createContext, type ComponentChildren, type JSX } from "preact";
import { useCallback, useContext, useMemo, useState } from "preact/hooks";

interface Notice {
  readonly id: number;
  readonly kind: "ok" | "error";
  readonly text: string;
}

type Notify = (kind: Notice["kind"], text: string) => void;

const NoticeContext = createContext<Notify>(() => {});

const SHOWN_MS = 8000;

/**
 * Outcomes of actions, announced to screen readers: successes politely (role status), failures at once (role alert),
 * each with the server's own words (the problem JSON's detail).
 */
export function NoticeProvider(props: { children: ComponentChildren }): JSX.Element {
  const [notices, setNotices] = useState<readonly Notice[]>([]);
  const dismiss = useCallback((id: number) => setNotices((list) => list.filter((notice) => notice.id !== id)), []);
  const notify = useMemo<Notify>(() => {
    let next = 0;
    return (kind, text) => {
      const id = ++next;
      setNotices((list) => [...list.slice(-4), { id, kind, text }]);
      if (kind === "ok") setTimeout(() => dismiss(id), SHOWN_MS);
    };
  }, [dismiss]);
  return (
    <NoticeContext.Provider value={notify}>
      {props.children}
      <div class="notices">
        <div role="status" aria-live="polite">
          {notices.filter((notice) => notice.kind === "ok").map((notice) => (
            <p key={notice.id} class="notice notice-ok">{notice.text}</p>
          ))}
        </div>
        <div role="alert">
          {notices.filter((notice) => notice.kind === "error").map((notice) => (
            <p key={notice.id} class="notice notice-error">
              <span>{notice.text}</span>
              <button type="button" class="link-button" onClick={() => dismiss(notice.id)}>Dismiss</button>
            </p>
          ))}
        </div>
      </div>
    </NoticeContext.Provider>
  );
}

export function useNotify(): Notify {
  return useContext(NoticeContext);
}
