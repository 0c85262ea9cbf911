// `portcullis rules …`: the filter table's rules, with iptables' flag names, safe mode and whole-table or managed apply.
import { readFileSync } from "node:fs";
import { Option, type Command } from "commander";
import type { ChainInfo, FirewallRule, PortcullisClient, RulesetDiff, RulesetInput, RuleTarget, CancellationToken } from "@portcullis/sdk";
import { clientCommand, UsageError, withClient, type ClientFlags } from "./connect.js";
import { printJson, printTable } from "./output.js";
import { ports, positive, ruleOf, type RuleFlags } from "./parse-flags.js";

interface FamilyFlags extends ClientFlags {
  readonly family: "ipv4" | "ipv6";
}

interface SafeFlags extends FamilyFlags {
  readonly confirmWithin?: number;
  readonly allowLockout?: boolean;
}

const familyOption = (): Option => new Option("--family <family>", "ipv4 (iptables) or ipv6 (ip6tables)").choices(["ipv4", "ipv6"]).default("ipv4");

/** The safe-mode flags of every change. */
function withSafeMode(command: Command): Command {
  return command
    .option("--confirm-within <seconds>", "safe mode: undone after this many seconds unless `portcullis rules confirm`", positive)
    .option("--allow-lockout", "allow a change that cuts this client off the API (only with --confirm-within)");
}

export function registerRuleCommands(program: Command): void {
  const rules = program.command("rules").description("filter-table rules: list, add, delete, apply, export, confirm");

  clientCommand(rules, "list", "rules with their ids, positions and counters", ["portcullis rules list", "portcullis rules list INPUT --family ipv6 --json"])
    .argument("[chain]", "one chain (default: every chain)")
    .addOption(familyOption())
    .action((chain: string | undefined, flags: FamilyFlags) =>
      withClient(flags, async (client, token) => {
        const chains = chain === undefined ? await client.firewall.chains(flags.family, token) : [];
        const listed = chain === undefined ? await allRules(client, flags.family, chains, token) : await client.firewall.rules({ family: flags.family, chain }, token);
        if (flags.json) return printJson(listed);
        for (const c of chains) process.stdout.write(`# chain ${c.name}${c.policy === undefined ? "" : ` (policy ${c.policy})`}: ${c.ruleCount} rules\n`);
        printTable(["CHAIN", "POS", "ID", "PACKETS", "BYTES", "MANAGED", "RULE"], listed.map((rule) => [
          rule.chain, String(rule.position), rule.id, String(rule.packets), String(rule.bytes), rule.managed ? "yes" : "no", rule.text.replace(/^-A \S+ /, ""),
        ]));
      }));

  withSafeMode(clientCommand(rules, "add", "append (or insert) a rule; flags as in iptables", ["portcullis rules add INPUT -p tcp --dport 25,587,465 -j ACCEPT", "portcullis rules add INPUT --match-set spam_ips -j DROP --position 1", "portcullis rules add INPUT -p tcp --dport 22 -s '!198.51.100.0/24' -j DROP --confirm-within 60"])
    .argument("<chain>", "INPUT, FORWARD, OUTPUT or a user chain")
    .addOption(familyOption())
    .option("--position <n>", "insert at this 1-based position (default: append)", positive)
    .option("-p, --protocol <protocol>", "tcp, udp, icmp, … (! negates)")
    .option("-s, --source <address>", "source address or network (! negates)")
    .option("-d, --destination <address>", "destination address or network (! negates)")
    .option("-i, --in-interface <name>", "incoming interface (! negates)")
    .option("-o, --out-interface <name>", "outgoing interface (! negates)")
    .option("--sport <ports>", "source ports: 25, 1000:2000 or 25,587,465", ports)
    .option("--dport <ports>", "destination ports: 25, 1000:2000 or 25,587,465", ports)
    .option("--match-set <set>", "match an IP set (!set negates)")
    .addOption(new Option("--set-direction <direction>", "which address is matched against --match-set").choices(["src", "dst"]).default("src"))
    .option("--ctstate <states>", "conntrack states, e.g. ESTABLISHED,RELATED")
    .option("--comment <text>", "comment kept with the rule")
    .option("-j, --jump <target>", "ACCEPT, DROP, REJECT, RETURN, LOG or a user chain")
    .option("-g, --goto <chain>", "go to a user chain")
    .option("--reject-with <type>", "with -j REJECT, e.g. tcp-reset")
    .option("--log-prefix <prefix>", "with -j LOG"))
    .action((chain: string, flags: SafeFlags & RuleFlags & { position?: number }) =>
      withClient(flags, async (client, token) => {
        const rule = await client.firewall.add({ family: flags.family, chain }, ruleOf(flags), { ...(flags.position === undefined ? {} : { position: flags.position }), ...safeMode(flags) }, token);
        if (flags.json) return printJson(rule);
        process.stdout.write(`added rule ${rule.id}: ${rule.text}${flags.confirmWithin === undefined ? "" : ` (undone in ${flags.confirmWithin} s unless confirmed)`}\n`);
      }));

  withSafeMode(clientCommand(rules, "delete", "delete rules by id (see `rules list`)", ["portcullis rules delete INPUT 5bfbb408a895"])
    .argument("<chain>")
    .argument("<id...>")
    .addOption(familyOption()))
    .action((chain: string, ids: string[], flags: SafeFlags) =>
      withClient(flags, async (client, token) => {
        for (const id of ids) await client.firewall.delete({ family: flags.family, chain }, id, safeMode(flags), token);
        if (flags.json) return printJson({ chain, deleted: ids });
        process.stdout.write(`deleted ${ids.length} rule${ids.length === 1 ? "" : "s"} from ${chain}\n`);
      }));

  withSafeMode(clientCommand(rules, "apply", "replace the filter table (or with --managed only Portcullis's rules) with a ruleset file (JSON, as `rules export --json` writes)", [
    "portcullis rules apply ruleset.json --dry-run",
    "portcullis rules apply ruleset.json --managed --confirm-within 60 && portcullis rules confirm",
    "portcullis rules export --json > ruleset.json   # a file to start from",
  ])
    .argument("<file>", "ruleset file, or - for stdin")
    .addOption(familyOption())
    .option("--managed", "replace only the rules and chains Portcullis manages; rules of other tools (Docker, fail2ban) stay as and where they are")
    .option("--replace-foreign", "replacing the whole table, remove or change rules and chains of other tools too (refused otherwise)")
    .option("--dry-run", "print what the apply would change (rules added, removed, changed; other tools' rules kept or removed) without applying"))
    .addHelpText("after", `
The file: {"chains": [{"name": "INPUT", "policy": "DROP"}],
           "rules": [{"chain": "INPUT", "protocol": "tcp", "destinationPorts": [22], "target": "ACCEPT"}]}`)
    .action((file: string, flags: SafeFlags & { managed?: boolean; replaceForeign?: boolean; dryRun?: boolean }) =>
      withClient(flags, async (client, token) => {
        const ruleset = readRuleset(file);
        const result = await client.firewall.apply(ruleset, {
          family: flags.family,
          ...safeMode(flags),
          ...(flags.managed === true ? { scope: "managed" as const } : {}),
          ...(flags.replaceForeign === true ? { replaceForeign: true } : {}),
          ...(flags.dryRun === true ? { dryRun: true } : {}),
        }, token);
        if (flags.json) return printJson(result);
        if (result.diff !== undefined) return printDiff(result.diff, flags.managed !== true && flags.replaceForeign !== true);
        const rollback = result.rollbackAt === undefined ? "" : `; rolled back at ${result.rollbackAt.toISOString()} unless \`portcullis rules confirm\``;
        process.stdout.write(`applied ${result.ruleCount} rules${rollback}\n`);
      }));

  clientCommand(rules, "confirm", "keep the changes made with --confirm-within (cancels their rollback)", ["portcullis rules confirm --family ipv6"])
    .addOption(familyOption())
    .action((flags: FamilyFlags) =>
      withClient(flags, async (client, token) => {
        await client.firewall.confirm(flags.family, token);
        if (flags.json) return printJson({ confirmed: true });
        process.stdout.write("confirmed: the changes are kept\n");
      }));

  clientCommand(rules, "export", "the filter table: iptables-save text, or with --json a ruleset file for `rules apply`", ["portcullis rules export > filter.rules", "portcullis rules export --json > ruleset.json", "portcullis rules export --json --managed > managed.json   # for rules apply --managed"])
    .addOption(familyOption())
    .option("--managed", "with --json: only the managed rules (and the user chains they use), for `rules apply --managed`")
    .action((flags: FamilyFlags & { managed?: boolean }) =>
      withClient(flags, async (client, token) => {
        const table = await client.firewall.export(flags.family, token);
        if (!flags.json) return void process.stdout.write(table.text);
        const exported = flags.managed === true ? table.rules.filter((rule) => rule.managed) : table.rules;
        const inexpressible = exported.filter((rule) => rule.spec === undefined);
        if (inexpressible.length > 0) process.stderr.write(`portcullis: ${inexpressible.length} rules use matches a ruleset file cannot express and are left out, e.g. ${inexpressible[0]!.text}\n`);
        // Managed rules only: the user chains they are in or jump to (other user chains belong to other tools).
        const used = new Set(exported.flatMap((rule) => [rule.chain, ...userChainOf(rule.spec?.target)]));
        const ruleset: RulesetInput = {
          chains: table.chains
            .filter((chain) => flags.managed !== true || chain.builtin || used.has(chain.name))
            .map((chain) => ({ name: chain.name, ...(chain.policy === undefined ? {} : { policy: chain.policy }) })),
          rules: exported.flatMap((rule) => (rule.spec === undefined ? [] : [{ chain: rule.chain, ...rule.spec }])),
        };
        printJson(ruleset);
      }));
}

/** A dry run's diff, one line per rule: + added, - removed, ~ changed (before, then after), ! a foreign rule removed. */
function printDiff(diff: RulesetDiff, refusesForeign: boolean): void {
  const lines = [
    ...diff.chainsCreated.map((chain) => `+ chain ${chain}`),
    ...diff.added.map((line) => `+ ${line}`),
    ...diff.removed.map((line) => `- ${line}`),
    ...diff.changed.flatMap((change) => [`~ ${change.before}`, `  ${change.after}`]),
    ...diff.foreignRemoved.map((line) => `! ${line}`),
    ...diff.chainsDeleted.map((chain) => `- chain ${chain}`),
  ];
  const summary = `dry run, nothing applied: ${diff.added.length} added, ${diff.removed.length} removed, ${diff.changed.length} changed, ${diff.unchanged} unchanged; rules of other tools: ${diff.foreignKept.length} kept, ${diff.foreignRemoved.length} removed`;
  const refusal = refusesForeign && diff.foreignRemoved.length > 0 ? "\nthe apply would be refused (FOREIGN_RULES): use --managed to keep the rules of other tools, or --replace-foreign to remove them" : "";
  process.stdout.write(`${lines.map((line) => `${line}\n`).join("")}${summary}${refusal}\n`);
}

/** The user chain a target jumps or goes to, if any. */
function userChainOf(target: RuleTarget | undefined): string[] {
  if (typeof target !== "object") return [];
  return "jump" in target ? [target.jump] : "goto" in target ? [target.goto] : [];
}

function safeMode(flags: SafeFlags): { confirmWithin?: number; allowLockout?: boolean } {
  return { ...(flags.confirmWithin === undefined ? {} : { confirmWithin: flags.confirmWithin }), ...(flags.allowLockout === true ? { allowLockout: true } : {}) };
}

async function allRules(client: PortcullisClient, family: "ipv4" | "ipv6", chains: readonly ChainInfo[], token: CancellationToken): Promise<FirewallRule[]> {
  const all: FirewallRule[] = [];
  for (const chain of chains) all.push(...(await client.firewall.rules({ family, chain: chain.name }, token)));
  return all;
}

/** A ruleset file: its shape is checked here, its rules by the server. */
function readRuleset(file: string): RulesetInput {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file === "-" ? 0 : file, "utf8"));
  } catch (error) {
    throw new UsageError(`${file}: not a JSON ruleset (${error instanceof Error ? error.message : String(error)})`);
  }
  const ruleset = parsed as Partial<RulesetInput> | null;
  if (ruleset === null || typeof ruleset !== "object" || !Array.isArray(ruleset.rules) || (ruleset.chains !== undefined && !Array.isArray(ruleset.chains))) {
    throw new UsageError(`${file}: a ruleset is {"chains": [...], "rules": [...]} (see portcullis rules apply --help)`);
  }
  return ruleset as RulesetInput;
}
