// `portcullis feeds …`: published blocklists that fill sets, over the API.
import { readFileSync } from "node:fs";
import { InvalidArgumentError, Option, type Command } from "commander";
import type { FeedFormat, FeedInfo, FeedSettings } from "@portcullis/sdk";
import { clientCommand, withClient, type ClientFlags } from "./connect.js";
import { printJson, printTable } from "./output.js";
import { positive, seconds } from "./parse-flags.js";

const FORMATS: readonly FeedFormat[] = ["plain", "spamhaus", "netset", "ipset-save", "json", "crowdsec"];

export function registerFeedCommands(program: Command): void {
  const feeds = program.command("feeds").description("feeds: published blocklists (Spamhaus DROP, FireHOL, your own) that fill a pair of sets");

  withSettings(clientCommand(feeds, "add", "create a feed and its two sets (IPv4: <set>, IPv6: <set>-v6); its first refresh starts at once", [
    "portcullis feeds add spamhaus-drop --source https://www.spamhaus.org/drop/drop.txt --format spamhaus --ipset drop",
    "portcullis feeds add own --source file:///etc/portcullis/feeds/blocklist.txt --ipset own_block --interval 300",
    "portcullis feeds add crowdsec --source http://127.0.0.1:8080 --format crowdsec --ipset crowdsec_ban --api-key-file /etc/portcullis/feeds/crowdsec.key",
  ])
    .argument("<feed>", "name: 1–63 characters [A-Za-z0-9_.-]")
    .requiredOption("--source <url>", "https://, http:// or file:/// URL of the list (a file in a feeds.fileRoots folder, /etc/portcullis/feeds by default)")
    .requiredOption("--ipset <set>", "set of the IPv4 part (at most 28 characters); the IPv6 part goes to <set>-v6")
    .addOption(new Option("--format <format>", "how the list is written").choices(FORMATS).default("plain")), "the system's CAs")
    .action((feed: string, flags: SettingFlags & { source: string; ipset: string; format: FeedFormat }) =>
      withClient(flags, async (client, token) => {
        const info = await client.feeds.create(feed, { ...settingsOf(flags), source: flags.source, format: flags.format, ipset: flags.ipset }, token);
        if (flags.json) return printJson(info);
        process.stdout.write(info.format === "crowdsec"
          ? `created feed ${info.name}: sets ${info.ipset} and ${info.ipsetV6}, following ${info.source}'s decisions every ${info.pollIntervalMs ?? 1000} ms\n`
          : `created feed ${info.name}: sets ${info.ipset} and ${info.ipsetV6}, refreshed every ${info.intervalSeconds}s\n`);
      }));

  withSettings(clientCommand(feeds, "update", "change a feed's settings; a new source, format or CA refreshes it at once", [
    "portcullis feeds update spamhaus-drop --interval 7200",
    "portcullis feeds update own --source file:///etc/portcullis/feeds/blocklist-v2.txt --max-shrink 0.9",
    "portcullis feeds update own --ca ''",
  ])
    .argument("<feed>")
    .option("--source <url>", "https://, http:// or file:/// URL of the list")
    .addOption(new Option("--format <format>", "how the list is written").choices(FORMATS)), "'' goes back to the system's CAs")
    .action((feed: string, flags: SettingFlags & { source?: string; format?: FeedFormat }) =>
      withClient(flags, async (client, token) => {
        const settings: FeedSettings = { ...settingsOf(flags), ...(flags.source === undefined ? {} : { source: flags.source }), ...(flags.format === undefined ? {} : { format: flags.format }) };
        const info = await client.feeds.update(feed, settings, token);
        if (flags.json) return printJson(info);
        process.stdout.write(`updated feed ${info.name}: ${info.source} (${info.format}), refreshed every ${info.intervalSeconds}s (+ up to ${info.jitterSeconds}s)\n`);
      }));

  clientCommand(feeds, "list", "every feed with its sets, entries and last refresh", ["portcullis feeds list", "portcullis feeds list --json | jq -r '.[] | select(.status.consecutiveFailures > 0) | .name'"])
    .action((flags: ClientFlags) =>
      withClient(flags, async (client, token) => {
        const all = await client.feeds.list(token);
        if (flags.json) return printJson(all);
        printTable(["NAME", "SETS", "ENTRIES", "SKIPPED", "LAST SUCCESS", "NEXT", "STATE"], all.map((feed) => [
          feed.name, `${feed.ipset}, ${feed.ipsetV6}`, String(feed.status.entryCount), String(feed.status.skippedCount),
          feed.status.lastSuccessTime?.toISOString() ?? "never", feed.status.nextRefreshTime.toISOString(), stateOf(feed),
        ]));
      }));

  clientCommand(feeds, "show", "a feed's settings and last refresh", ["portcullis feeds show spamhaus-drop"])
    .argument("<feed>")
    .action((feed: string, flags: ClientFlags) =>
      withClient(flags, async (client, token) => {
        const info = await client.feeds.get(feed, token);
        if (flags.json) return printJson(info);
        const status = info.status;
        process.stdout.write([
          `Name: ${info.name}`, `Source: ${info.source}`, `Format: ${info.format}`, `Sets: ${info.ipset} (IPv4), ${info.ipsetV6} (IPv6)`,
          info.format === "crowdsec"
            ? `Poll: every ${info.pollIntervalMs ?? 1000} ms; credentials ${info.credentialsSet ? "stored" : info.apiKeyFile === undefined ? "none" : `from ${info.apiKeyFile}`}${info.clientCertificate === undefined ? "" : ", client certificate given"}`
            : `Interval: ${info.intervalSeconds}s (+ up to ${info.jitterSeconds}s)`, `Timeout: ${info.timeoutSeconds}s, ${info.retries} retries`,
          `Guards: at most ${info.maxBytes} bytes, shrink by at most ${info.maxShrink}`, `CA: ${info.ca === undefined ? "the system's" : "given"}`,
          `Entries: ${status.entryCount} (${status.skippedCount} left out for the allowlist or management addresses, ${status.invalidCount} lines invalid)`,
          `Last success: ${status.lastSuccessTime?.toISOString() ?? "never"}`, `Last attempt: ${status.lastAttemptTime?.toISOString() ?? "never"}`,
          `Next refresh: ${status.nextRefreshTime.toISOString()}`, `State: ${stateOf(info)}`,
          ...(status.etag === undefined ? [] : [`ETag: ${status.etag}`]), ...(status.lastModified === undefined ? [] : [`Last-Modified: ${status.lastModified}`]),
        ].join("\n") + "\n");
      }));

  clientCommand(feeds, "refresh", "refresh a feed now (the list is read only if the source says it changed, unless --force)", ["portcullis feeds refresh spamhaus-drop", "portcullis feeds refresh own --force"])
    .argument("<feed>")
    .option("--force", "read and apply the list even if the source says it did not change")
    .action((feed: string, flags: ClientFlags & { force?: boolean }) =>
      withClient(flags, async (client, token) => {
        const result = await client.feeds.refresh(feed, { force: flags.force ?? false }, token);
        if (flags.json) return printJson(result);
        process.stdout.write(result.changed
          ? `refreshed ${feed}: ${result.added} added, ${result.removed} removed, ${result.kept} kept, ${result.skipped} left out, ${result.invalid} invalid lines; ${result.feed.status.entryCount} entries\n`
          : `${feed} is unchanged at the source; nothing to do (${result.feed.status.entryCount} entries)\n`);
      }));

  clientCommand(feeds, "delete", "delete a feed and destroy its sets (refused while a rule uses them)", ["portcullis feeds delete spamhaus-drop"])
    .argument("<feed>")
    .action((feed: string, flags: ClientFlags) =>
      withClient(flags, async (client, token) => {
        await client.feeds.delete(feed, token);
        if (flags.json) return printJson({ deleted: feed });
        process.stdout.write(`deleted feed ${feed} and its sets\n`);
      }));
}

type SettingFlags = ClientFlags & {
  interval?: number; jitter?: number; timeout?: number; retries?: number; maxBytes?: number; maxShrink?: number; ca?: string;
  apiKey?: string; apiKeyFile?: string; clientCert?: string; clientKey?: string; pollInterval?: number;
};

/** The settings add and update share; `noCa` says what --ca '' (or no --ca) means for the command. */
function withSettings(command: Command, noCa: string): Command {
  return command
    .option("--interval <seconds>", "seconds between refreshes (default 3600)", positive)
    .option("--jitter <seconds>", "up to this many random seconds added to each interval (default a tenth of it, at most 300)", seconds)
    .option("--timeout <seconds>", "seconds one read may take (default 30)", positive)
    .option("--retries <n>", "attempts after a failed read (default 2)", seconds)
    .option("--max-bytes <n>", "refuse a larger list (default 67108864)", positive)
    .option("--max-shrink <share>", "refuse a list that takes away more than this share of the sets' entries, 0 to 1 (default 0.5)", share)
    .option("--ca <file>", `PEM file of the CA that signs the https source's certificate (${noCa})`)
    .option("--api-key <key>", "crowdsec: the bouncer API key `cscli bouncers add <name>` prints (stored, never shown again)")
    .option("--api-key-file <path>", "crowdsec: absolute path on the server's host of a file holding the API key (in a feeds.fileRoots folder)")
    .option("--client-cert <file>", "crowdsec: PEM client certificate for a Local API that authenticates bouncers by TLS")
    .option("--client-key <file>", "crowdsec: PEM private key of --client-cert")
    .option("--poll-interval <ms>", "crowdsec: milliseconds between reads of the decision stream, 100 to 60000 (default 1000)", positive);
}

/** The settings given as flags; --ca names a file, read here ('' stays '': the system's CAs). */
function settingsOf(flags: SettingFlags): FeedSettings {
  return {
    ...(flags.interval === undefined ? {} : { intervalSeconds: flags.interval }),
    ...(flags.jitter === undefined ? {} : { jitterSeconds: flags.jitter }),
    ...(flags.timeout === undefined ? {} : { timeoutSeconds: flags.timeout }),
    ...(flags.retries === undefined ? {} : { retries: flags.retries }),
    ...(flags.maxBytes === undefined ? {} : { maxBytes: flags.maxBytes }),
    ...(flags.maxShrink === undefined ? {} : { maxShrink: flags.maxShrink }),
    ...(flags.ca === undefined ? {} : { ca: flags.ca === "" ? "" : readFileSync(flags.ca, "utf8") }),
    ...(flags.apiKey === undefined ? {} : { apiKey: flags.apiKey }),
    ...(flags.apiKeyFile === undefined ? {} : { apiKeyFile: flags.apiKeyFile }),
    ...(flags.clientCert === undefined ? {} : { clientCertificate: readFileSync(flags.clientCert, "utf8") }),
    ...(flags.clientKey === undefined ? {} : { clientKey: readFileSync(flags.clientKey, "utf8") }),
    ...(flags.pollInterval === undefined ? {} : { pollIntervalMs: flags.pollInterval }),
  };
}

function stateOf(feed: FeedInfo): string {
  const status = feed.status;
  if (status.consecutiveFailures > 0) return `failing (${status.consecutiveFailures}× ${status.lastErrorReason ?? ""})`;
  return status.lastSuccessTime === undefined ? "waiting for the first refresh" : "ok";
}

/** A share from 0 to 1. */
function share(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError(`"${value}" is not a number from 0 to 1`);
  return n;
}
