// `portcullis whoami`, `overview`, `inspect`, `offenders` and `events export`: the host as a whole, one address, and
// the event log as a file.
import { Option, type Command } from "commander";
import type { ActivityWindow } from "@portcullis/sdk";
import { clientCommand, withClient, type ClientFlags } from "./connect.js";
import { printJson, printTable } from "./output.js";
import { isoTime, positive } from "./parse-flags.js";

const WINDOWS: readonly ActivityWindow[] = ["hour", "day", "week", "month"];

interface WindowFlags extends ClientFlags {
  readonly window?: ActivityWindow;
  readonly jail?: string;
  readonly limit?: number;
}

interface ExportFlags extends ClientFlags {
  readonly format?: "csv" | "jsonl";
  readonly type?: string[];
  readonly jail?: string;
  readonly principal?: string;
  readonly ip?: string;
  readonly since?: Date;
  readonly until?: Date;
}

export function registerHostCommands(program: Command): void {
  clientCommand(program, "whoami", "the certificate name and role the server sees, and the address it sees the connection come from", ["portcullis whoami", "portcullis whoami --json | jq -r .address"])
    .action((flags: ClientFlags) =>
      withClient(flags, async (client, token) => {
        const caller = await client.host.caller(token);
        if (flags.json) return printJson(caller);
        process.stdout.write(`principal: ${caller.principal}\nrole:      ${caller.role}\naddress:   ${caller.address ?? "(unknown)"}\n`);
      }));

  clientCommand(program, "overview", "the host at a glance: bans, jails, sets, rules, fail2ban and the fleet, and each jail's last 24 hours", ["portcullis overview", "portcullis overview --json | jq .activeBans"])
    .action((flags: ClientFlags) =>
      withClient(flags, async (client, token) => {
        const [overview, jails] = await Promise.all([client.host.overview(token), client.host.jailActivity("day", token)]);
        if (flags.json) return printJson({ ...overview, jails });
        printTable(["", ""], [
          ["active bans", String(overview.activeBans)],
          ["bans in the last 24 h", String(overview.bansLastDay)],
          ["jails", `${overview.jailCount} (fail2ban ${overview.fail2banUp ? "up" : "down"})`],
          ["sets", `${overview.ipsetCount} (${overview.managedIpsetCount} managed), ${overview.entryCount} entries`],
          ["managed rules", String(overview.managedRuleCount)],
          ["fleet", overview.fleet ? `${overview.fleetNodesOnline} of ${overview.fleetNodeCount} nodes online` : "not in a fleet"],
        ]);
        if (jails.length === 0) return;
        process.stdout.write("\n");
        printTable(["JAIL", "BANS 24H", "UNBANS 24H", "BANNED", "TOTAL BANNED", "FAILED", "TOTAL FAILED"], jails.map((jail) => [
          jail.jail, String(jail.bans), String(jail.unbans), String(jail.currentlyBanned), String(jail.totalBanned), String(jail.currentlyFailed), String(jail.totalFailed),
        ]));
      }));

  clientCommand(program, "inspect", "everything about one address: the jails, sets and rules that hold it, what protects it, its events", ["portcullis inspect 192.0.2.100", "portcullis inspect 2001:db8::1 --json"])
    .argument("<address>", "an IPv4 or IPv6 address")
    .action((address: string, flags: ClientFlags) =>
      withClient(flags, async (client, token) => {
        const report = await client.host.inspect(address, {}, token);
        if (flags.json) return printJson(report);
        const lines = [`address: ${report.address}`];
        const section = (title: string, items: readonly string[]): void => void lines.push(`${title}:${items.length === 0 ? " none" : ""}`, ...items.map((item) => `  ${item}`));
        section("banned in", report.jailBans.map((ban) => `${ban.jail} since ${ban.banTime.toISOString()}, ${ban.forever ? "for ever" : ban.expireTime === undefined ? "end unknown" : `until ${ban.expireTime.toISOString()}`}`));
        section("in sets", report.entries.map((found) => `${found.set}: ${found.entry.element}${found.entry.comment === undefined ? "" : ` (${found.entry.comment})`}`));
        section("matched by rules", report.rules.map((found) => `${found.family} ${found.rule.chain} #${found.rule.position} [${found.matches.join(", ")}] ${found.rule.text}`));
        section("allowlisted by", report.allowlist.map((entry) => `${entry.network}${entry.comment === "" ? "" : ` (${entry.comment})`}`));
        section("ignored by", report.ignoreIp.map((entry) => `${entry.jail}: ${entry.entry}`));
        section("events", report.events.map((event) => `#${event.sequence} ${event.time.toISOString()} ${event.type} ${event.resource} by ${event.principal}`));
        process.stdout.write(`${lines.join("\n")}\n`);
      }));

  clientCommand(program, "offenders", "the most banned addresses and networks (/24, /64) of the last hour, day, week or month", ["portcullis offenders", "portcullis offenders --window week --jail sshd --limit 20"])
    .addOption(new Option("--window <window>", "how far back").choices(WINDOWS).default("day"))
    .option("--jail <jail>", "only bans in this jail")
    .option("--limit <n>", "how many of each (at most 100)", positive)
    .action((flags: WindowFlags) =>
      withClient(flags, async (client, token) => {
        const top = await client.events.topOffenders({ window: flags.window ?? "day", ...(flags.jail === undefined ? {} : { jail: flags.jail }), ...(flags.limit === undefined ? {} : { limit: flags.limit }) }, token);
        if (flags.json) return printJson(top);
        const rows = (offenders: typeof top.addresses) => offenders.map((o) => [o.address, String(o.banCount), String(o.addressCount), o.lastBanTime.toISOString(), o.jails.join(",")]);
        printTable(["ADDRESS", "BANS", "ADDRESSES", "LAST BAN", "JAILS"], [...rows(top.addresses), ...rows(top.networks)]);
      }));

  const events = program.commands.find((command) => command.name() === "events") ?? program.command("events").description("the host's event log: export");
  clientCommand(events, "export", "write stored events to stdout as CSV (safe to open in a spreadsheet) or JSON lines", ["portcullis events export --jail sshd --since 2026-01-01 > sshd.csv", "portcullis events export --format jsonl --type BAN UNBAN > bans.jsonl"])
    .addOption(new Option("--format <format>", "file format").choices(["csv", "jsonl"]).default("csv"))
    .option("--type <type...>", "only these event types, e.g. BAN UNBAN")
    .option("--jail <jail>", "only events about this jail")
    .option("--principal <name>", "only events caused by this principal")
    .option("--ip <address>", "only events about this address or network")
    .option("--since <time>", "only events at or after this time (ISO 8601)", isoTime)
    .option("--until <time>", "only events before this time (ISO 8601)", isoTime)
    .action((flags: ExportFlags) =>
      withClient(flags, async (client, token) => {
        const pieces = client.events.export({
          format: flags.format ?? "csv",
          ...(flags.type === undefined ? {} : { types: flags.type.map((type) => type.toUpperCase()) }),
          ...(flags.jail === undefined ? {} : { jail: flags.jail }),
          ...(flags.principal === undefined ? {} : { principal: flags.principal }),
          ...(flags.ip === undefined ? {} : { address: flags.ip }),
          ...(flags.since === undefined ? {} : { since: flags.since }),
          ...(flags.until === undefined ? {} : { until: flags.until }),
        }, token);
        for await (const piece of pieces) if (!process.stdout.write(piece)) await new Promise((resolve) => process.stdout.once("drain", resolve));
      }));
}
