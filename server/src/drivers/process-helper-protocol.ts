// The messages between HelperStarter (process-starter.ts) and its helper (process-helper.ts), over the IPC channel.

/** Server → helper. */
export type HelperRequest =
  | { readonly op: "start"; readonly id: number; readonly file: string; readonly args: readonly string[] }
  | { readonly op: "kill"; readonly id: number; readonly signal?: NodeJS.Signals };

/** Helper → server. */
export type HelperReply =
  | { readonly op: "stale" | "started"; readonly id: number }
  | { readonly op: "ended"; readonly id: number; readonly exitCode?: number; readonly signal?: string; readonly notStarted?: boolean; readonly message?: string };
