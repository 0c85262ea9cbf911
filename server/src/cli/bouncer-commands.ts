// `portcullis bouncers …`: the API keys of CrowdSec bouncers that read this server's bans, over the API.
import type { Command } from "commander";
import { clientCommand, withClient, type ClientFlags } from "./connect.js";
import { printJson, printTable } from "./output.js";

export function registerBouncerCommands(program: Command): void {
  const bouncers = program.command("bouncers").description("CrowdSec bouncers: API keys for the bouncer listener (config bouncer.address), where they read every jail's bans as decisions");

  clientCommand(bouncers, "add", "register a bouncer and print its API key (shown only now: the server keeps its SHA-256)", [
    "portcullis bouncers add edge-nginx",
    "portcullis bouncers add fw --json | jq -r .apiKey",
  ])
    .argument("<bouncer>", "name: 1–63 characters [A-Za-z0-9_.-]")
    .action((bouncer: string, flags: ClientFlags) =>
      withClient(flags, async (client, token) => {
        const created = await client.bouncers.create(bouncer, token);
        if (flags.json) return printJson(created);
        process.stdout.write(`API key for bouncer ${created.bouncer.name} (shown only now; put it in the bouncer's api_key):\n\n  ${created.apiKey}\n\n`);
      }));

  clientCommand(bouncers, "list", "every bouncer with its last pull and version", ["portcullis bouncers list"])
    .action((flags: ClientFlags) =>
      withClient(flags, async (client, token) => {
        const all = await client.bouncers.list(token);
        if (flags.json) return printJson(all);
        printTable(["NAME", "CREATED", "LAST PULL", "VERSION"], all.map((info) => [
          info.name, info.createTime.toISOString(), info.lastPullTime?.toISOString() ?? "never", info.version ?? "",
        ]));
      }));

  clientCommand(bouncers, "delete", "delete a bouncer: its key stops working at once", ["portcullis bouncers delete edge-nginx"])
    .argument("<bouncer>")
    .action((bouncer: string, flags: ClientFlags) =>
      withClient(flags, async (client, token) => {
        await client.bouncers.delete(bouncer, token);
        if (flags.json) return printJson({ deleted: bouncer });
        process.stdout.write(`deleted bouncer ${bouncer}\n`);
      }));
}
