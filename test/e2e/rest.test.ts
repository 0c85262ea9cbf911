import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:https";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initCertificates } from "../../server/src/auth/cert-authority.js";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";
import { rest } from "../harness/rest.js";
import { PATIENCE_MS, waitFor } from "../harness/wait.js";

describe("REST gateway: the same operations over HTTPS + mTLS, JSON in and out, problem JSON for errors", () => {
  let f: ServerFixture;
  before(async () => {
    f = await startServerFixture();
    await f.server.cli(["certs", "issue", "--name", "noc", "--role", "viewer"]);
  });
  after(async () => f?.close());

  it("creates a set, adds, lists, tests and deletes entries at the resource paths", async () => {
    const created = await rest(f.server, "POST", "/v1/ipsets", { ipsetId: "spam_ips", ipset: { type: "IPSET_TYPE_HASH_IP", family: "ADDRESS_FAMILY_INET", defaultTimeout: 0 } });
    assert.equal(created.status, 200, created.text);
    assert.equal(created.json.name, "ipsets/spam_ips");
    const added = await rest(f.server, "POST", "/v1/ipsets/spam_ips/entries", { entry: { element: "192.0.2.1", timeout: 600 } });
    assert.equal(added.status, 200, added.text);
    assert.equal(added.json.element, "192.0.2.1");
    const listed = await rest(f.server, "GET", "/v1/ipsets/spam_ips/entries?pageSize=10");
    assert.deepEqual(listed.json.entries.map((entry: { element: string }) => entry.element), ["192.0.2.1"]);
    assert.equal((await rest(f.server, "GET", "/v1/ipsets/spam_ips/entries:test?element=192.0.2.1")).json.matched, true);
    assert.equal((await rest(f.server, "DELETE", "/v1/ipsets/spam_ips/entries/192.0.2.1")).status, 200);
    assert.equal((await rest(f.server, "GET", "/v1/ipsets/spam_ips/entries:test?element=192.0.2.1")).json.matched ?? false, false);
    // The kernel has what the API said.
    assert.match(f.netns.exec("ipset", ["list", "spam_ips"]), /Name: spam_ips/);
  });

  it("refuses bad requests with problem JSON that names the problem; nothing changes", async () => {
    const unknown = await rest(f.server, "POST", "/v1/ipsets", { ipsetId: "other", ipset: { type: "IPSET_TYPE_HASH_IP" }, colour: "red" });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.headers["content-type"], "application/problem+json; charset=utf-8");
    assert.deepEqual([unknown.json.code, unknown.json.reason], ["INVALID_ARGUMENT", "INVALID_REQUEST"]);
    assert.match(unknown.json.detail, /colour/);
    const domain = await rest(f.server, "POST", "/v1/ipsets/spam_ips/entries", { entry: { element: "not-an-ip" } });
    assert.deepEqual([domain.status, domain.json.reason], [400, "INVALID_ELEMENT"]);
    const missing = await rest(f.server, "GET", "/v1/ipsets/nope");
    assert.deepEqual([missing.status, missing.json.code, missing.json.reason], [404, "NOT_FOUND", "IPSET_NOT_FOUND"]);
    const notJson = await rest(f.server, "POST", "/v1/ipsets", "{not json");
    assert.deepEqual([notJson.status, notJson.json.reason], [400, "INVALID_REQUEST"]);
    const noRoute = await rest(f.server, "GET", "/v1/nothing-here");
    assert.deepEqual([noRoute.status, noRoute.json.reason], [404, "ROUTE_NOT_FOUND"]);
    assert.equal((await rest(f.server, "GET", "/v1/ipsets/other")).status, 404, "the refused create made nothing");
    const unknownQuery = await rest(f.server, "GET", "/v1/ipsets/spam_ips/entries?pageSize=10&colour=red");
    assert.deepEqual([unknownQuery.status, unknownQuery.json.reason], [400, "INVALID_REQUEST"]);
    assert.match(unknownQuery.json.detail, /colour/);
    const badType = await rest(f.server, "GET", "/v1/ipsets/spam_ips/entries?pageSize=ten");
    assert.deepEqual([badType.status, badType.json.reason, badType.json.metadata.field], [400, "INVALID_REQUEST", "query.pageSize"]);
    // 1 MB for ordinary calls; batch calls take more.
    const huge = { entry: { element: "192.0.2.1", comment: "x".repeat(2 * 1024 * 1024) } };
    const tooLarge = await rest(f.server, "POST", "/v1/ipsets/spam_ips/entries", huge);
    assert.deepEqual([tooLarge.status, tooLarge.json.reason], [400, "REQUEST_TOO_LARGE"]);
    const batch = await rest(f.server, "POST", "/v1/ipsets/spam_ips/entries:batchAdd", { elements: Array.from({ length: 60_000 }, (_, i) => `198.${18 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`) });
    assert.equal(batch.status, 200, batch.text.slice(0, 300));
    assert.equal(batch.json.addedCount, 60_000);
  });

  it("mTLS: no certificate → 401, a viewer writing → 403, both problem JSON; viewers read", async () => {
    const anonymous = await rest(f.server, "GET", "/v1/ipsets", undefined, { as: null });
    assert.deepEqual([anonymous.status, anonymous.json.reason], [401, "CERTIFICATE_REQUIRED"]);
    const viewerWrite = await rest(f.server, "POST", "/v1/ipsets/spam_ips/entries", { entry: { element: "192.0.2.9" } }, { as: "noc" });
    assert.deepEqual([viewerWrite.status, viewerWrite.json.code, viewerWrite.json.reason], [403, "PERMISSION_DENIED", "ROLE_REQUIRED"]);
    assert.equal((await rest(f.server, "GET", "/v1/ipsets", undefined, { as: "noc" })).status, 200);
    const other = mkdtempSync(join(tmpdir(), "pc-other-pki-"));
    try {
      const admin = (await initCertificates(other)).admin!;
      const foreign = await rest(f.server, "GET", "/v1/ipsets", undefined, { as: { cert: readFileSync(admin.certPath), key: readFileSync(admin.keyPath) } });
      assert.deepEqual([foreign.status, foreign.json.reason], [401, "CERTIFICATE_INVALID"], "a certificate from another CA");
      assert.match(foreign.json.detail, /is not signed by this server's CA \(unknown ca\)/);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
    await f.server.cli(["certs", "issue", "--name", "gone", "--role", "admin"]);
    assert.equal((await rest(f.server, "GET", "/v1/ipsets", undefined, { as: "gone" })).status, 200);
    await f.server.cli(["certs", "revoke", "gone"]);
    const revoked = await waitFor("the revoked certificate refused", async () => {
      const reply = await rest(f.server, "GET", "/v1/ipsets", undefined, { as: "gone" });
      return reply.status !== 200 && reply;
    }, { every: 100 });
    assert.equal(revoked.status, 401, "a revoked certificate is refused, without a restart");
  });

  it("serves its spec, an API reference page, liveness and readiness", async () => {
    const spec = await rest(f.server, "GET", "/openapi.yaml");
    assert.match(spec.text, /^openapi: 3\.1\.0$/m);
    assert.match((await rest(f.server, "GET", "/docs")).text, /<redoc spec-url="\/openapi.yaml">/);
    assert.equal((await rest(f.server, "GET", "/docs/redoc.standalone.js")).status, 200);
    assert.equal((await rest(f.server, "GET", "/healthz")).text, "ok\n");
    const ready = await rest(f.server, "GET", "/readyz");
    // No fail2ban in this namespace: not ready, and it says why.
    assert.equal(ready.status, 503);
    assert.deepEqual([ready.json.checks.iptables, ready.json.checks.ipset], ["ok", "ok"]);
    assert.match(ready.json.checks.fail2ban, /does not answer/);
  });

  it("GET /v1/events is a Server-Sent Events stream that resumes after Last-Event-ID without loss or repeats", async () => {
    const read = (lastEventId: string | undefined, want: number): Promise<Array<{ id: string; type: string; resource: string }>> =>
      new Promise((resolve, reject) => {
        const bundle = f.server.bundle("admin");
        const [host, port] = f.server.restAddress.split(":");
        const events: Array<{ id: string; type: string; resource: string }> = [];
        const req = request({ host, port: Number(port), path: "/v1/events?resourcePrefix=ipsets%2Fsse", servername: "localhost", ca: bundle.ca, cert: bundle.cert, key: bundle.key, headers: lastEventId === undefined ? {} : { "last-event-id": lastEventId } }, (res) => {
          assert.match(String(res.headers["content-type"]), /^text\/event-stream/);
          let buffered = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            buffered += chunk;
            for (let end = buffered.indexOf("\n\n"); end >= 0; end = buffered.indexOf("\n\n")) {
              const block = buffered.slice(0, end);
              buffered = buffered.slice(end + 2);
              const id = /^id: (.*)$/m.exec(block)?.[1];
              const data = /^data: (.*)$/m.exec(block)?.[1];
              if (id !== undefined && data !== undefined) events.push({ id, type: JSON.parse(data).type, resource: JSON.parse(data).resource });
              if (events.length === want) {
                req.destroy();
                resolve(events);
              }
            }
          });
        });
        req.on("error", (error) => (events.length === want ? undefined : reject(error)));
        req.end();
        setTimeout(() => {
          req.destroy();
          resolve(events);
        }, PATIENCE_MS).unref();
      });
    await rest(f.server, "POST", "/v1/ipsets", { ipsetId: "sse", ipset: { type: "IPSET_TYPE_HASH_IP", family: "ADDRESS_FAMILY_INET" } });
    const first = await read(undefined, 1);
    assert.deepEqual(first.map((event) => [event.type, event.resource]), [["EVENT_TYPE_IPSET_CREATED", "ipsets/sse"]]);
    // Disconnected: three more changes, then resume from the last id seen.
    for (const element of ["192.0.2.11", "192.0.2.12", "192.0.2.13"]) await rest(f.server, "POST", "/v1/ipsets/sse/entries", { entry: { element } });
    const resumed = await read(first[0]!.id, 3);
    assert.deepEqual(resumed.map((event) => event.type), ["EVENT_TYPE_ENTRY_ADDED", "EVENT_TYPE_ENTRY_ADDED", "EVENT_TYPE_ENTRY_ADDED"]);
    assert.ok(resumed.every((event) => Number(event.id) > Number(first[0]!.id)), "nothing repeated");
  });
});
