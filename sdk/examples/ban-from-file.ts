// Bans the addresses listed in a file (one per line; blank lines and # comments skipped) in a jail, in one call.
// Usage: node --import tsx sdk/examples/ban-from-file.ts <jail> <file>
// Connects with PORTCULLIS_ADDRESS and PORTCULLIS_BUNDLE (or ~/.config/portcullis/config.json).
import { readFileSync } from "node:fs";
import { createClient, PortcullisError } from "@portcullis/sdk";

const [jail, file] = process.argv.slice(2);
if (jail === undefined || file === undefined) {
  console.error("usage: ban-from-file.ts <jail> <file>");
  process.exit(2);
}
const addresses = readFileSync(file, "utf8").split("\n").map((line) => line.replace(/#.*/, "").trim()).filter((line) => line !== "");
const client = createClient();
try {
  const banned = await client.jails.banMany(jail, addresses);
  console.log(`banned ${banned} new of ${addresses.length} addresses in jail ${jail}`);
} catch (error) {
  // The server's message says what to change, e.g. which address is invalid or protected.
  console.error(error instanceof PortcullisError ? `${error.code} (${error.reason}): ${error.message}` : error);
  process.exitCode = 1;
} finally {
  client.dispose();
}
