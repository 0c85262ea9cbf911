// Blocks an address for ten minutes through Portcullis and prints the set's entries, with the TypeScript SDK.
// Run from the repository root: node --import tsx examples/block-address.ts [address]
import { createClient, PortcullisError } from "@portcullis/sdk";

// The admin bundle the first `serve` made; PORTCULLIS_ADDRESS / PORTCULLIS_BUNDLE point elsewhere.
const client = createClient({ address: process.env.PORTCULLIS_ADDRESS ?? "localhost:50051", bundle: process.env.PORTCULLIS_BUNDLE ?? "var/pki/clients/admin" });
const address = process.argv[2] ?? "192.0.2.100";
try {
  await client.ipsets.create("blocklist", { type: "hash:ip", timeout: 0, comments: true });
} catch (error) {
  if (!(error instanceof PortcullisError && error.code === "AlreadyExists")) throw error;
}
await client.ipsets.add("blocklist", [address], { timeout: 600, comment: "example" });
console.log(`${address} blocked: ${await client.ipsets.test("blocklist", address)}`);
for (const entry of await client.ipsets.entries("blocklist")) console.log(`${entry.element}\t${entry.timeout ?? "permanent"}s\t${entry.comment ?? ""}`);
client.dispose();
