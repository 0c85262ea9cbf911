// `portcullis watch`: the host's events as they happen (or from a sequence on), as lines or JSON lines.
import type { Command } from "commander";
import type { Event, HostEvent } from "@portcullis/sdk";
import { clientCommand, EXIT, withClient, type ClientFlags } from "./connect.js";
import { positive, seconds } from "./parse-flags.js";

interface WatchFlags extends ClientFlags {
  readonly since?: number;
  readonly type?: string[];
  readonly count?: number;
}

export function registerWatchCommand(program: Command): void {
  clientCommand(program, "watch", "print events as they happen (bans, unbans, rule and set changes, …) until Ctrl-C", ["portcullis watch --type BAN UNBAN", "portcullis watch --json --since 1200 >> events.jsonl"])
    .option("--since <sequence>", "first every event after this sequence (0: the oldest kept), then live", seconds)
    .option("--type <type...>", "only these event types, e.g. BAN UNBAN")
    .option("--count <n>", "stop after this many events", positive)
    .action((flags: WatchFlags) =>
      withClient(flags, async (client, token) => {
        const types = flags.type === undefined ? undefined : new Set(flags.type.map((type) => type.toUpperCase()));
        const source: Event<HostEvent> = flags.since === undefined ? client.events.onDidChange : client.events.since(flags.since);
        await client.events.list({ limit: 1 }, token); // a wrong address or certificate fails here, not in silent retries
        let printed = 0;
        await new Promise<void>((resolve) => {
          const subscription = source((event) => {
            if (types !== undefined && !types.has(event.type)) return;
            process.stdout.write(`${flags.json ? JSON.stringify(event) : eventLine(event)}\n`);
            if (++printed === flags.count) finish();
          });
          const cancelled = token.onCancellationRequested(() => finish());
          function finish(): void {
            subscription.dispose();
            cancelled.dispose();
            resolve();
          }
        });
        return EXIT.ok; // Ctrl-C is how a watch ends
      }));
}

function eventLine(event: HostEvent): string {
  const attributes = Object.entries(event.attributes).map(([key, value]) => `${key}=${/[\s"]/.test(value) ? JSON.stringify(value) : value}`);
  return [`#${event.sequence}`, event.time.toISOString(), event.type, event.resource, `by ${event.principal || "-"} (${event.origin})`, ...attributes].join(" ");
}
