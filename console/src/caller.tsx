import { createContext, type ComponentChildren, type JSX } from "preact";
import { useContext, useEffect, useState } from "preact/hooks";
import { messageOf } from "./api/client";
import { fetchCaller, type Caller } from "./api/caller";

export type Role = "viewer" | "operator" | "admin";

const RANK: Readonly<Record<Role, number>> = { viewer: 1, operator: 2, admin: 3 };

export interface CallerState {
  readonly caller: Caller | undefined;
  /** Why the identity could not be read (then no action is offered). */
  readonly error: string | undefined;
}

const CallerContext = createContext<CallerState>({ caller: undefined, error: undefined });

/** Reads who the client certificate says we are, once, for every view below. */
export function CallerProvider(props: { children: ComponentChildren }): JSX.Element {
  const [state, setState] = useState<CallerState>({ caller: undefined, error: undefined });
  useEffect(() => {
    fetchCaller().then(
      (caller) => setState({ caller, error: undefined }),
      (error: unknown) => setState({ caller: undefined, error: messageOf(error) }),
    );
  }, []);
  return <CallerContext.Provider value={state}>{props.children}</CallerContext.Provider>;
}

export function useCaller(): CallerState {
  return useContext(CallerContext);
}

/**
 * Whether the caller's role allows what needs `role`. The server checks every call anyway; the console only leaves
 * out the controls a role cannot use. Unknown identity: no actions.
 */
export function useCan(role: Role): boolean {
  const { caller } = useCaller();
  const have = caller?.role;
  return have !== undefined && have in RANK && RANK[have as Role] >= RANK[role];
}
