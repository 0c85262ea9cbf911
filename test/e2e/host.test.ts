// HostService: who the server takes the caller to be, over gRPC, REST, the SDK and the CLI.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join, resolve } from "node:path";
import { createClient } from "@portcullis/sdk";
import { HostTestClient } from "../harness/grpc-clients.js";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";
import { rest } from "../harness/rest.js";

const BIN = resolve(import.meta.dirname, "../../server/bin/portcullis");
const ROLES = ["viewer", "operator", "admin"] as const;

describe("GetCallerIdentity", () => {
  let f: ServerFixture;
  before(async () => {
    f = await startServerFixture();
    await f.server.cli(["certs", "issue", "--name", "alice", "--role", "viewer"]);
    await f.server.cli(["certs", "issue", "--name", "bob", "--role", "operator"]);
  });
  after(async () => {
    await f?.close();
  });
  const nameOf = { viewer: "alice", operator: "bob", admin: "admin" } as const;

  it("over gRPC: each certificate's name and role, and the loopback address the connection comes from", async () => {
    for (const role of ROLES) {
      const client = new HostTestClient(f.server.address, f.server.credentials(nameOf[role]));
      try {
        assert.deepEqual(await client.call("getCallerIdentity", {}), { principal: nameOf[role], role, address: "127.0.0.1" });
      } finally {
        client.close();
      }
    }
  });

  it("over REST at GET /v1/caller, for every role", async () => {
    for (const role of ROLES) {
      const reply = await rest(f.server, "GET", "/v1/caller", undefined, { as: nameOf[role] });
      assert.equal(reply.status, 200, reply.text);
      assert.deepEqual(reply.json, { principal: nameOf[role], role, address: "127.0.0.1" });
    }
    const refused = await rest(f.server, "GET", "/v1/caller", undefined, { as: null });
    assert.equal(refused.status, 401);
    assert.equal(refused.json.reason, "CERTIFICATE_REQUIRED");
  });

  it("through the SDK (client.host.caller) and the CLI (portcullis whoami)", async () => {
    const client = createClient({ address: f.server.address, bundle: join(f.server.dataDir, "pki/clients/alice") });
    try {
      const caller = await client.host.caller();
      assert.deepEqual(caller, { principal: "alice", role: "viewer", address: "127.0.0.1" });
      assert.ok(Object.isFrozen(caller));
    } finally {
      client.dispose();
    }
    const stdout = await new Promise<string>((resolvePromise, reject) =>
      execFile(BIN, ["whoami", "--json"], { env: { ...process.env, PORTCULLIS_ADDRESS: f.server.address, PORTCULLIS_BUNDLE: join(f.server.dataDir, "pki/clients/bob") }, encoding: "utf8" }, (error, out) => (error === null ? resolvePromise(out) : reject(error))));
    assert.deepEqual(JSON.parse(stdout), { principal: "bob", role: "operator", address: "127.0.0.1" });
  });
});
