// Certificate rotation without downtime: new files, then SIGHUP; the same process serves the new certificate and CA to
// new connections (gRPC and REST), refuses the old CA's clients, and connections opened before go on.
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createClient, PortcullisError, type PortcullisClient } from "@portcullis/sdk";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";
import { rest } from "../harness/rest.js";
import { waitFor } from "../harness/wait.js";

let f: ServerFixture;
const clients: PortcullisClient[] = [];
before(async () => {
  f = await startServerFixture();
});
after(async () => {
  for (const client of clients) client.dispose();
  await f?.close();
});

const clientOf = (pem: { ca: string; cert: string; key: string }): PortcullisClient => {
  const client = createClient({ address: f.server.address, ...pem });
  clients.push(client);
  return client;
};

it("SIGHUP reloads a rotated CA and server certificate: new clients get them, old-CA clients are refused, open connections go on", async () => {
  const admin = join(f.server.dataDir, "pki/clients/admin");
  const oldPem = { ca: readFileSync(join(admin, "ca.crt"), "utf8"), cert: readFileSync(join(admin, "client.crt"), "utf8"), key: readFileSync(join(admin, "client.key"), "utf8") };
  const connected = clientOf(oldPem);
  await connected.ipsets.create("before_rotation");
  const pid = f.server.pid;

  await f.server.cli(["certs", "init", "--force"]); // a new CA, server certificate and admin bundle
  process.kill(pid!, "SIGHUP");
  await waitFor("the reload's log line", () => f.server.output.includes("TLS certificate, key and CA reloaded"));
  assert.equal(f.server.pid, pid, "the same process: no restart");

  const renewed = clientOf({ ca: readFileSync(join(admin, "ca.crt"), "utf8"), cert: readFileSync(join(admin, "client.crt"), "utf8"), key: readFileSync(join(admin, "client.key"), "utf8") });
  assert.ok((await renewed.ipsets.list()).some((set) => set.name === "before_rotation"), "a client of the new CA is served (gRPC)");
  const overRest = await rest(f.server, "GET", "/v1/ipsets/before_rotation");
  assert.equal(overRest.status, 200, "and over REST");

  const stale = clientOf(oldPem);
  const refused = await stale.ipsets.list().then(() => undefined, (error: unknown) => error);
  assert.ok(refused instanceof PortcullisError && refused.code === "Unavailable", `a new connection with the old CA's certificate is refused: ${String(refused)}`);

  assert.equal((await connected.ipsets.get("before_rotation")).name, "before_rotation", "the connection opened before the reload goes on");
});
