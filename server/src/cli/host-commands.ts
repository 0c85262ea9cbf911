// `portcullis whoami`: the host as a whole, and who the server takes the caller to be.
import type { Command } from "commander";
import { clientCommand, withClient, type ClientFlags } from "./connect.js";
import { printJson } from "./output.js";

export function registerHostCommands(program: Command): void {
  clientCommand(program, "whoami", "the certificate name and role the server sees, and the address it sees the connection come from", ["portcullis whoami", "portcullis whoami --json | jq -r .address"])
    .action((flags: ClientFlags) =>
      withClient(flags, async (client, token) => {
        const caller = await client.host.caller(token);
        if (flags.json) return printJson(caller);
        process.stdout.write(`principal: ${caller.principal}\nrole:      ${caller.role}\naddress:   ${caller.address ?? "(unknown)"}\n`);
      }));
}
