// Prints a jail's status the way `fail2ban-client status <jail>` does. Usage: node --import tsx sdk/examples/jail-status.ts <jail>
import { createClient } from "@portcullis/sdk";

const jail = process.argv[2] ?? "sshd";
const client = createClient();
try {
  const status = await client.jails.status(jail);
  console.log([
    `Status for the jail: ${status.name}`,
    "|- Filter",
    `|  |- Currently failed:\t${status.currentlyFailed}`,
    `|  |- Total failed:\t${status.totalFailed}`,
    `|  \`- File list:\t${status.files.join(" ")}`,
    "`- Actions",
    `   |- Currently banned:\t${status.currentlyBanned}`,
    `   |- Total banned:\t${status.totalBanned}`,
    `   \`- Banned IP list:\t${status.banned.join(" ")}`,
  ].join("\n"));
} finally {
  client.dispose();
}
