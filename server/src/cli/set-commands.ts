// `portcullis sets …`: IP sets as `ipset` users know them, over the API.
import { readFileSync } from "node:fs";
import { Option, type Command } from "commander";
import type { CreateOptions } from "@portcullis/sdk";
import { clientCommand, EXIT, withClient, type ClientFlags } from "./connect.js";
import { printJson, printTable, progress } from "./output.js";
import { positive, seconds } from "./parse-flags.js";

/** Entries per BatchAddEntries call of an import: big enough to be fast, small enough to show progress. */
const IMPORT_CHUNK = 10_000;

export function registerSetCommands(program: Command): void {
  const sets = program.command("sets").description("IP sets: list, show, create, delete, add, del, test, import, export");

  clientCommand(sets, "list", "every set with its type and entry count", ["portcullis sets list", "portcullis sets list --json | jq -r '.[].name'"])
    .action((flags: ClientFlags) =>
      withClient(flags, async (client, token) => {
        const all = await client.ipsets.list(token);
        if (flags.json) return printJson(all);
        printTable(["NAME", "TYPE", "FAMILY", "ENTRIES", "MANAGED"], all.map((set) => [set.name, set.type, set.family ?? "", String(set.entryCount), set.managed ? "yes" : "no"]));
      }));

  clientCommand(sets, "show", "a set and its entries", ["portcullis sets show spam_ips"])
    .argument("<set>")
    .action((set: string, flags: ClientFlags) =>
      withClient(flags, async (client, token) => {
        const [info, entries] = await Promise.all([client.ipsets.get(set, token), client.ipsets.entries(set, token)]);
        if (flags.json) return printJson({ ...info, entries });
        process.stdout.write(`Name: ${info.name}\nType: ${info.type}\nFamily: ${info.family ?? ""}\nEntries: ${info.entryCount}\nManaged: ${info.managed ? "yes" : "no"}\n${info.feed === undefined ? "" : `Filled by feed: ${info.feed}\n`}`);
        if (entries.length > 0) {
          process.stdout.write("\n");
          printTable(["ELEMENT", "TIMEOUT", "COMMENT"], entries.map((entry) => [entry.element, entry.timeout === undefined ? "" : `${entry.timeout}s`, entry.comment ?? ""]));
        }
      }));

  clientCommand(sets, "create", "create a managed set (kept across reboots)", ["portcullis sets create spam_ips --type hash:net --timeout 3600"])
    .argument("<set>", "name: 1–31 characters [A-Za-z0-9_.:-]")
    .addOption(new Option("--type <type>", "set type").choices(["hash:ip", "hash:net", "hash:ip,port", "hash:net,port"]).default("hash:ip"))
    .addOption(new Option("--family <family>", "address family").choices(["inet", "inet6"]).default("inet"))
    .option("--timeout <seconds>", "entries expire (default timeout in seconds; 0: only when given one)", seconds)
    .option("--comments", "entries can carry a comment")
    .option("--maxelem <n>", "entries the set holds before it grows (default 65536)", positive)
    .option("--no-auto-grow", "refuse a batch that would pass maxelem instead of growing the set")
    .option("--grow-limit <n>", "the largest maxelem growth may reach (default 16777216)", positive)
    .action((set: string, flags: ClientFlags & { type: NonNullable<CreateOptions["type"]>; family: "inet" | "inet6"; timeout?: number; comments?: boolean; maxelem?: number; autoGrow: boolean; growLimit?: number }) =>
      withClient(flags, async (client, token) => {
        const info = await client.ipsets.create(set, {
          type: flags.type,
          family: flags.family,
          ...(flags.timeout === undefined ? {} : { timeout: flags.timeout }),
          comments: flags.comments ?? false,
          ...(flags.maxelem === undefined ? {} : { maxelem: flags.maxelem }),
          autoGrow: flags.autoGrow,
          ...(flags.growLimit === undefined ? {} : { growLimit: flags.growLimit }),
        }, token);
        if (flags.json) return printJson(info);
        process.stdout.write(`created set ${info.name} (${info.type}, ${info.family ?? ""})\n`);
      }));

  clientCommand(sets, "delete", "destroy a set (refused while a rule uses it)", ["portcullis sets delete spam_ips"])
    .argument("<set>")
    .action((set: string, flags: ClientFlags) =>
      withClient(flags, async (client, token) => {
        await client.ipsets.delete(set, token);
        if (flags.json) return printJson({ deleted: set });
        process.stdout.write(`deleted set ${set}\n`);
      }));

  clientCommand(sets, "add", "add entries (applied together)", ["portcullis sets add spam_ips 192.0.2.1 203.0.113.0/24 --timeout 600"])
    .argument("<set>")
    .argument("<entry...>", "addresses or networks")
    .option("--timeout <seconds>", "seconds until the entries expire", seconds)
    .option("--comment <text>", "comment (sets created with --comments)")
    .action((set: string, entries: string[], flags: ClientFlags & { timeout?: number; comment?: string }) =>
      withClient(flags, async (client, token) => {
        const added = await client.ipsets.add(set, entries, { ...(flags.timeout === undefined ? {} : { timeout: flags.timeout }), ...(flags.comment === undefined ? {} : { comment: flags.comment }) }, token);
        if (flags.json) return printJson({ set, added });
        process.stdout.write(`${added} added to ${set}\n`);
      }));

  clientCommand(sets, "del", "remove entries", ["portcullis sets del spam_ips 192.0.2.1"])
    .argument("<set>")
    .argument("<entry...>")
    .action((set: string, entries: string[], flags: ClientFlags) =>
      withClient(flags, async (client, token) => {
        for (const entry of entries) await client.ipsets.remove(set, entry, {}, token);
        if (flags.json) return printJson({ set, removed: entries.length });
        process.stdout.write(`${entries.length} removed from ${set}\n`);
      }));

  clientCommand(sets, "test", "whether a set matches an address (exit 0: yes, 1: no)", ["portcullis sets test spam_ips 203.0.113.7 && echo blocked"])
    .argument("<set>")
    .argument("<address>")
    .action((set: string, address: string, flags: ClientFlags) =>
      withClient(flags, async (client, token) => {
        const matched = await client.ipsets.test(set, address, token);
        if (flags.json) printJson({ set, address, matched });
        else process.stdout.write(`${address} is ${matched ? "" : "NOT "}in set ${set}\n`);
        return matched ? EXIT.ok : EXIT.no;
      }));

  clientCommand(sets, "import", "add every address of a file (one per line; # comments) to a set", ["portcullis sets import blocklist bad-ips.txt --timeout 86400", "curl -s https://example.org/blocklist.txt | portcullis sets import blocklist -"])
    .argument("<set>")
    .argument("<file>", "file to read, or - for stdin")
    .option("--timeout <seconds>", "seconds until the entries expire", seconds)
    .option("--chunk <n>", "entries per call", positive, IMPORT_CHUNK)
    .action((set: string, file: string, flags: ClientFlags & { timeout?: number; chunk: number }) =>
      withClient(flags, async (client, token) => {
        const entries = readFileSync(file === "-" ? 0 : file, "utf8").split("\n").map((line) => line.replace(/#.*/, "").trim()).filter((line) => line !== "");
        const shown = progress(`importing into ${set}`, entries.length);
        let added = 0;
        try {
          for (let from = 0; from < entries.length; from += flags.chunk) {
            added += await client.ipsets.add(set, entries.slice(from, from + flags.chunk), flags.timeout === undefined ? {} : { timeout: flags.timeout }, token);
            shown.update(Math.min(entries.length, from + flags.chunk));
          }
        } finally {
          shown.end();
          // Each chunk is applied whole or not at all, so what was added before a refusal is exact.
          if (added < entries.length && added > 0) process.stderr.write(`${added} of ${entries.length} entries were added to ${set} before the import stopped\n`);
        }
        if (flags.json) return printJson({ set, read: entries.length, added });
        process.stdout.write(`${entries.length} read, ${added} added to ${set}\n`);
      }));

  clientCommand(sets, "export", "sets in the `ipset save` format (every set, or the ones named)", ["portcullis sets export spam_ips > spam_ips.save"])
    .argument("[set...]")
    .action((names: string[], flags: ClientFlags) =>
      withClient(flags, async (client, token) => {
        const content = await client.ipsets.export(names, token);
        if (flags.json) return printJson({ content });
        process.stdout.write(content.endsWith("\n") || content === "" ? content : `${content}\n`);
      }));
}
