import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, credentials as grpcCredentials, status } from "@grpc/grpc-js";
import { AddressFamily } from "../../server/src/gen/portcullis/v1/common.js";
import { IpsetType } from "../../server/src/gen/portcullis/v1/ipset.js";
import { issueClientCertificate } from "../../server/src/auth/cert-authority.js";
import { EventTestClient, IpsetTestClient, rejectsWith } from "../harness/grpc-clients.js";
import { rest } from "../harness/rest.js";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";
import { waitFor } from "../harness/wait.js";

const list = { pageSize: 0, pageToken: "" };

describe("mutual TLS and roles", () => {
  let f: ServerFixture;
  let otherPki: string;
  const clients: IpsetTestClient[] = [];
  const connect = (ca: Buffer, key?: Buffer, cert?: Buffer): IpsetTestClient => {
    const client = new IpsetTestClient(f.server.address, key === undefined ? grpcCredentials.createSsl(ca) : grpcCredentials.createSsl(ca, key, cert!));
    clients.push(client);
    return client;
  };

  before(async () => {
    f = await startServerFixture();
    otherPki = mkdtempSync(join(tmpdir(), "pc-otherca-"));
    await f.client.call("createIpset", {
      ipsetId: "blocklist",
      ipset: { name: "", type: IpsetType.IPSET_TYPE_HASH_IP, typeName: "", family: AddressFamily.ADDRESS_FAMILY_INET, hashsize: 0, maxelem: 0, comments: false, range: "", memoryBytes: 0, references: 0, entryCount: 0, managed: false },
      requestId: "",
    });
  });
  after(async () => {
    for (const client of clients) client.close();
    await f?.close();
    rmSync(otherPki, { recursive: true, force: true });
  });

  it("refuses a client without a certificate, saying one is required", async () => {
    const error = await rejectsWith(connect(f.server.bundle().ca).call("listIpsets", list), status.UNAUTHENTICATED, "CERTIFICATE_REQUIRED");
    assert.match(error.details, /no client certificate was presented \(certificate required\)/);
  });

  it("refuses a certificate from another CA over gRPC and REST, saying why to the client and logging what it presented", async () => {
    // Another CA with its own names, as a client that took the wrong bundle would have.
    const ssl = (...args: string[]): void => void execFileSync("openssl", args, { cwd: otherPki, stdio: ["ignore", "ignore", "pipe"] });
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    ssl("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=Elsewhere Root CA", "-days", "2");
    ssl("req", ...ec, "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=mallory/O=admin");
    ssl("x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "client.crt", "-days", "2");
    const key = readFileSync(join(otherPki, "client.key"));
    const cert = readFileSync(join(otherPki, "client.crt"));
    const cause = /the client certificate "CN=mallory, O=admin" \(issuer "CN=Elsewhere Root CA"\) is not signed by this server's CA \(unknown ca\)/;

    // gRPC (plain @grpc/grpc-js): UNAUTHENTICATED with the reason, not UNAVAILABLE "failed to connect to all addresses".
    const error = await rejectsWith(connect(f.server.bundle().ca, key, cert).call("listIpsets", list), status.UNAUTHENTICATED, "CERTIFICATE_INVALID");
    assert.match(error.details, cause);
    // The health service too sits behind the refusal: a refused connection reaches no service at all.
    const bytes = (value: Buffer): Buffer => value;
    const health = new Client(f.server.address, grpcCredentials.createSsl(f.server.bundle().ca, key, cert), { "grpc.ssl_target_name_override": "localhost" });
    try {
      const checked = new Promise((resolve, reject) => health.makeUnaryRequest("/grpc.health.v1.Health/Check", bytes, bytes, Buffer.alloc(0), (failure, reply) => (failure === null ? resolve(reply) : reject(failure))));
      await rejectsWith(checked, status.UNAUTHENTICATED, "CERTIFICATE_INVALID");
    } finally {
      health.close();
    }

    // REST: 401 problem JSON with the same reason and words.
    const refused = await rest(f.server, "GET", "/v1/ipsets", undefined, { as: { cert, key } });
    assert.deepEqual([refused.status, refused.headers["content-type"], refused.json.code, refused.json.reason], [401, "application/problem+json; charset=utf-8", "UNAUTHENTICATED", "CERTIFICATE_INVALID"]);
    assert.match(refused.json.detail, cause);

    // The server logs each refused connection once, with what was presented. Its log comes through a pipe, which may
    // lag behind the answers on the sockets.
    const logged = (): Array<Record<string, string>> => f.server.output.split("\n").filter((line) => line.includes('"msg":"client certificate refused"')).map((line) => JSON.parse(line) as Record<string, string>);
    await waitFor("both refusals logged", () => ["grpc", "rest"].every((transport) => logged().some((line) => line.transport === transport && line.subject === "CN=mallory, O=admin")));
    const refusals = logged();
    for (const transport of ["grpc", "rest"]) {
      const line = refusals.find((candidate) => candidate.transport === transport && candidate.subject === "CN=mallory, O=admin");
      assert.ok(line !== undefined, `a ${transport} refusal is logged: ${JSON.stringify(refusals)}`);
      assert.deepEqual([line.issuer, line.reason, line.verification, line.remote], ["CN=Elsewhere Root CA", "CERTIFICATE_INVALID", "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "127.0.0.1"]);
      assert.match(line.fingerprint!, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    }
    // The refused calls are audited as unauthenticated.
    const events = new EventTestClient(f.server.address, f.server.credentials());
    try {
      const { records } = await events.call("listAuditRecords", { pageSize: 1000, pageToken: "", principal: "", method: "", resourcePrefix: "" });
      assert.ok(records.some((record) => record.principal === "unauthenticated" && record.method === "portcullis.v1.IpsetService/ListIpsets" && record.reason === "CERTIFICATE_INVALID"));
    } finally {
      events.close();
    }
  });

  it("refuses an expired certificate, saying it expired", async () => {
    const pki = join(f.server.dataDir, "pki");
    const expired = await issueClientCertificate(pki, { name: "old", role: "admin", notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
    const error = await rejectsWith(connect(f.server.bundle().ca, readFileSync(expired.keyPath), readFileSync(expired.certPath)).call("listIpsets", list), status.UNAUTHENTICATED, "CERTIFICATE_INVALID");
    assert.match(error.details, /"O=admin, CN=old" .* expired on .* \(certificate expired\)/);
  });

  it("lets a viewer read but not add entries, naming the role needed", async () => {
    await f.server.cli(["certs", "issue", "--name", "vera", "--role", "viewer"]);
    const viewer = f.clientAs("vera");
    assert.ok((await viewer.call("listIpsets", list)).ipsets.some((set) => set.name === "ipsets/blocklist"));
    const error = await rejectsWith(viewer.call("addEntry", { parent: "ipsets/blocklist", entry: { name: "", element: "192.0.2.1", comment: "" } }), status.PERMISSION_DENIED, "ROLE_REQUIRED");
    assert.match(error.details, /needs the operator role; certificate "vera" has role viewer/);
    // Permission is checked before existence: a viewer learns nothing about unknown sets from writes.
    await rejectsWith(viewer.call("addEntry", { parent: "ipsets/nope", entry: { name: "", element: "192.0.2.1", comment: "" } }), status.PERMISSION_DENIED);
    assert.equal(f.netns.exec("ipset", ["list", "-terse", "blocklist"]).includes("Number of entries: 0"), true);
  });

  it("lets an operator change entries but not sets", async () => {
    await f.server.cli(["certs", "issue", "--name", "otto", "--role", "operator"]);
    const operator = f.clientAs("otto");
    await operator.call("addEntry", { parent: "ipsets/blocklist", entry: { name: "", element: "192.0.2.1", comment: "" } });
    const error = await rejectsWith(operator.call("deleteIpset", { name: "ipsets/blocklist" }), status.PERMISSION_DENIED, "ROLE_REQUIRED");
    assert.match(error.details, /needs the admin role/);
  });

  it("refuses a revoked certificate without a restart, on new and existing connections", async () => {
    await f.server.cli(["certs", "issue", "--name", "carol", "--role", "operator"]);
    const existing = f.clientAs("carol");
    await existing.call("listIpsets", list);
    await f.server.cli(["certs", "revoke", "carol"]);
    await waitFor("the revoked certificate refused, without a restart", async () => {
      try {
        await f.clientAs("carol").call("listIpsets", list);
        return false;
      } catch (error) {
        // A connection opened just before the reload passes the handshake and is refused per call instead.
        assert.equal((error as { code: number }).code, status.UNAUTHENTICATED);
        return true;
      }
    }, { every: 200 });
    await rejectsWith(f.clientAs("carol").call("listIpsets", list), status.UNAUTHENTICATED, "CERTIFICATE_REVOKED"); // refused at the handshake's verification
    await rejectsWith(existing.call("listIpsets", list), status.UNAUTHENTICATED, "CERTIFICATE_REVOKED");
    // Others are unaffected.
    await f.client.call("listIpsets", list);
    // The refused call is audited under the revoked certificate's name.
    const events = new EventTestClient(f.server.address, f.server.credentials());
    try {
      const { records } = await events.call("listAuditRecords", { pageSize: 1000, pageToken: "", principal: "", method: "", resourcePrefix: "" });
      const refused = records.filter((record) => record.principal === "carol" && record.code === "UNAUTHENTICATED");
      assert.ok(refused.length >= 1, "a refused call of carol's is in the audit log");
      assert.deepEqual([refused[0]!.method, refused[0]!.reason, refused[0]!.role], ["portcullis.v1.IpsetService/ListIpsets", "CERTIFICATE_REVOKED", ""]);
    } finally {
      events.close();
    }
  });
});
