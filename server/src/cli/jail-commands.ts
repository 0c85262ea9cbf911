// `portcullis status`, `ban` and `unban`: the fail2ban-client commands sysadmins know, over the API.
import type { Command } from "commander";
import type { JailStatus } from "@portcullis/sdk";
import { clientCommand, UsageError, withClient, type ClientFlags } from "./connect.js";
import { printJson } from "./output.js";
import { duration, seconds } from "./parse-flags.js";

interface TargetFlags extends ClientFlags {
  readonly jail?: string;
  readonly set?: string;
  readonly timeout?: number;
  readonly fleet?: boolean;
  readonly duration?: number;
  readonly reason?: string;
}

export function registerJailCommands(program: Command): void {
  clientCommand(program, "status", "jails and their bans, laid out as `fail2ban-client status [jail]` does", ["portcullis status", "portcullis status dovecot", "portcullis status dovecot --json | jq '.banned'"])
    .argument("[jail]", "one jail: its counters, log files and banned addresses")
    .action((jail: string | undefined, flags: ClientFlags) =>
      withClient(flags, async (client, token) => {
        if (jail === undefined) {
          const jails = await client.jails.list(token);
          if (flags.json) return printJson(jails);
          process.stdout.write(`Status\n|- Number of jail:\t${jails.length}\n\`- Jail list:\t${jails.map((j) => j.name).join(", ")}\n`);
          return;
        }
        const status = await client.jails.status(jail, token);
        if (flags.json) return printJson(status);
        process.stdout.write(jailStatusText(status));
      }));

  clientCommand(program, "ban", "ban addresses in a jail (for its bantime) or add them to an IP set", ["portcullis ban 192.0.2.100 --jail dovecot", "portcullis ban 192.0.2.100 --jail sshd --duration 1h --reason \"password spraying\"", "portcullis ban 192.0.2.1 203.0.113.0/24 --set spam_ips --timeout 600", "portcullis ban 192.0.2.100 --jail sshd --fleet"])
    .argument("<address...>", "IPv4/IPv6 addresses (networks too with --set on a hash:net set)")
    .option("--jail <jail>", "ban in this fail2ban jail (`-` for every jail)")
    .option("--set <set>", "add to this IP set instead")
    .option("--timeout <seconds>", "with --set: seconds until the entry expires", seconds)
    .option("--duration <time>", "with --jail: how long the ban lasts (3600, 90s, 10m, 1h, 7d; at most the jail's bantime); default: the jail's bantime", duration)
    .option("--reason <text>", "with --jail: why, recorded in the BAN event")
    .option("--fleet", "also on every host of the fleet the server belongs to (its `cluster` config)")
    .action((addresses: string[], flags: TargetFlags) =>
      withClient(flags, async (client, token) => {
        const where = target(flags, true);
        const scope = { fleet: flags.fleet === true };
        if (where.kind === "set") {
          if (flags.duration !== undefined || flags.reason !== undefined) throw new UsageError("--duration and --reason go with --jail; with --set use --timeout");
          const added = await client.ipsets.add(where.name, addresses, { ...scope, ...(flags.timeout === undefined ? {} : { timeout: flags.timeout }) }, token);
          return say(flags, { set: where.name, addresses, added }, `${addresses.join(", ")} added to set ${where.name}`);
        }
        if (flags.timeout !== undefined) throw new UsageError("--timeout goes with --set: a jail's ban lasts --duration, or the jail's bantime");
        const terms = { ...scope, ...(flags.duration === undefined ? {} : { duration: flags.duration }), ...(flags.reason === undefined ? {} : { reason: flags.reason }) };
        if (addresses.length > 1 && where.name !== "-") {
          const banned = await client.jails.banMany(where.name, addresses, terms, token);
          return say(flags, { jail: where.name, addresses, banned }, `${addresses.length} addresses banned in ${where.name} (${banned} new)`);
        }
        const results: { address: string; jails: readonly string[] }[] = [];
        for (const address of addresses) results.push({ address, jails: await client.jails.ban(where.name, address, terms, token) });
        return say(flags, results, results.map((r) => `${r.address} banned in ${r.jails.join(", ")}`).join("\n"));
      }));

  clientCommand(program, "unban", "lift bans (in one jail, every jail, or an IP set)", ["portcullis unban 192.0.2.100", "portcullis unban 192.0.2.100 --jail dovecot", "portcullis unban 192.0.2.1 --set spam_ips", "portcullis unban 192.0.2.100 --jail sshd --fleet"])
    .argument("<address...>", "addresses to unban")
    .option("--jail <jail>", "only in this jail (default: every jail)")
    .option("--set <set>", "remove from this IP set instead")
    .option("--fleet", "also on every host of the fleet the server belongs to")
    .action((addresses: string[], flags: TargetFlags) =>
      withClient(flags, async (client, token) => {
        const where = target(flags, false);
        const scope = { fleet: flags.fleet === true };
        if (where.kind === "set") {
          for (const address of addresses) await client.ipsets.remove(where.name, address, scope, token);
          return say(flags, { set: where.name, addresses }, `${addresses.join(", ")} removed from set ${where.name}`);
        }
        const results: { address: string; jails: readonly string[] }[] = [];
        for (const address of addresses) results.push({ address, jails: await client.jails.unban(where.name, address, scope, token) });
        return say(flags, results, results.map((r) => (r.jails.length === 0 ? `${r.address} was not banned` : `${r.address} unbanned in ${r.jails.join(", ")}`)).join("\n"));
      }));
}

/** Where a ban or unban goes: one of --jail and --set; an unban without either lifts bans in every jail. */
function target(flags: TargetFlags, required: boolean): { kind: "jail" | "set"; name: string } {
  if (flags.jail !== undefined && flags.set !== undefined) throw new UsageError("give --jail or --set, not both");
  if (flags.set !== undefined) return { kind: "set", name: flags.set };
  if (flags.jail !== undefined) return { kind: "jail", name: flags.jail };
  if (required) throw new UsageError("say where: --jail JAIL (or - for every jail), or --set SET");
  return { kind: "jail", name: "-" };
}

function say(flags: ClientFlags, json: unknown, text: string): void {
  if (flags.json) printJson(json);
  else process.stdout.write(`${text}\n`);
}

/** The layout of `fail2ban-client status <jail>` (fail2ban 1.x: tabs before the values). */
export function jailStatusText(status: JailStatus): string {
  return [
    `Status for the jail: ${status.name}`,
    "|- Filter",
    `|  |- Currently failed:\t${status.currentlyFailed}`,
    `|  |- Total failed:\t${status.totalFailed}`,
    `|  \`- File list:\t${status.files.join(" ")}`,
    "`- Actions",
    `   |- Currently banned:\t${status.currentlyBanned}`,
    `   |- Total banned:\t${status.totalBanned}`,
    `   \`- Banned IP list:\t${status.banned.join(" ")}`,
    "",
  ].join("\n");
}
