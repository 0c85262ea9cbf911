// `portcullis fleet …`: the hosts that share bans with this server, and which of them block an address.
import type { Command } from "commander";
import { clientCommand, withClient, type ClientFlags } from "./connect.js";
import { printJson, printTable } from "./output.js";

export function registerFleetCommands(program: Command): void {
  const fleet = program.command("fleet").description("the fleet this server shares bans with: nodes, search");

  clientCommand(fleet, "nodes", "every host of the fleet: version, last heartbeat, lag behind the stream, bans applied", ["portcullis fleet nodes", "portcullis fleet nodes --json | jq '.[] | select(.lag > 0) | .name'"])
    .action((flags: ClientFlags) =>
      withClient(flags, async (client, token) => {
        const nodes = await client.fleet.nodes(token);
        if (flags.json) return printJson(nodes);
        const ago = (time: Date): string => `${Math.max(0, Math.round((Date.now() - time.getTime()) / 1000))}s ago`;
        printTable(["NODE", "VERSION", "HEARTBEAT", "LAG", "APPLIED", "REFUSED", "STATE"], nodes.map((node) => [
          node.name, node.version, ago(node.heartbeatTime), String(node.lag), String(node.bansApplied), String(node.bansRefused), node.online ? "online" : "offline",
        ]));
      }));

  clientCommand(fleet, "search", "which hosts block an address, and since when", ["portcullis fleet search 192.0.2.100"])
    .argument("<address>")
    .action((address: string, flags: ClientFlags) =>
      withClient(flags, async (client, token) => {
        const found = await client.fleet.searchBans(address, {}, token);
        if (flags.json) return printJson(found);
        printTable(["NODE", "BLOCKED BY", "SINCE", "UNTIL", "FROM"], found.bans.map((ban) => [
          ban.node, ban.resource, ban.banTime.toISOString(), ban.expireTime?.toISOString() ?? "", ban.originNode ?? "",
        ]));
        if (found.unanswered.length > 0) process.stdout.write(`no answer from: ${found.unanswered.join(", ")}\n`);
      }));
}
