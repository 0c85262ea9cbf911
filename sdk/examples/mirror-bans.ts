// Mirrors every ban and unban to stdout as JSON lines, for a SIEM to ingest; survives server restarts without missing
// or repeating an event. Usage: node --import tsx sdk/examples/mirror-bans.ts [--count N]
import { createClient, type BanEvent } from "@portcullis/sdk";

const countFlag = process.argv.indexOf("--count");
let remaining = countFlag >= 0 ? Number(process.argv[countFlag + 1]) : Infinity;
const client = createClient();
const write = (kind: "ban" | "unban") => (ban: BanEvent): void => {
  const { event } = ban;
  process.stdout.write(`${JSON.stringify({ sequence: event.sequence, time: event.time.toISOString(), kind, jail: ban.jail, address: ban.address, principal: event.principal, origin: event.origin })}\n`);
  if (--remaining <= 0) client.dispose();
};
client.jails.onDidBan(write("ban"));
client.jails.onDidUnban(write("unban"));
process.on("SIGINT", () => client.dispose());
process.on("SIGTERM", () => client.dispose());
