import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";
import { rest, type RestReply } from "../harness/rest.js";

/**
 * A browser presents the user's client certificate to the gateway whatever page asks, so a page on another site must
 * not be able to change anything: state-changing requests that a browser marks as cross-site (Origin,
 * Sec-Fetch-Site), and form bodies, are refused before they run, and audited; reads, same-origin requests and
 * clients that are not browsers go on working.
 */
describe("REST gateway: cross-site requests from browsers are refused, nothing changes", () => {
  let f: ServerFixture;
  let own: string;
  const SET = "/v1/ipsets/bans";
  const ENTRY = `${SET}/entries`;
  const inKernel = (element: string): boolean => new RegExp(`^add bans ${element.replaceAll(".", "\\.")}\\b`, "m").test(f.netns.exec("ipset", ["save", "bans"]));
  const refusedAsCrossSite = (reply: RestReply, field: string): void => {
    assert.equal(reply.status, 403, reply.text);
    assert.equal(reply.headers["content-type"], "application/problem+json; charset=utf-8");
    assert.deepEqual([reply.json.code, reply.json.reason, reply.json.metadata.field], ["PERMISSION_DENIED", "CROSS_SITE_REQUEST", field]);
    assert.match(reply.json.detail, /console this server serves \(\/console\/\), or from a client that is not a browser/);
  };

  before(async () => {
    f = await startServerFixture();
    await f.server.cli(["certs", "issue", "--name", "alice", "--role", "operator"]);
    // The harness asks for the listening address itself (Host: 127.0.0.1:PORT), as a browser would the address typed.
    own = `https://${f.server.restAddress}`;
    const created = await rest(f.server, "POST", "/v1/ipsets", { ipsetId: "bans", ipset: { type: "IPSET_TYPE_HASH_IP", family: "ADDRESS_FAMILY_INET" } });
    assert.equal(created.status, 200, created.text);
    assert.equal((await rest(f.server, "POST", ENTRY, { entry: { element: "192.0.2.50" } })).status, 200);
  });
  after(async () => f?.close());

  it("a cross-site HTML form post is refused, whatever it sends", async () => {
    // What a <form method=post action=https://gateway/v1/ipsets/bans/entries> on another site makes a browser send.
    const form = await rest(f.server, "POST", ENTRY, "entry.element=192.0.2.66", {
      as: "alice",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: "https://evil.example", "sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate" },
    });
    refusedAsCrossSite(form, "Sec-Fetch-Site");
    // An older browser sends no Sec-Fetch-Site (but an Origin), a very old one neither: the form body alone is refused.
    const older = await rest(f.server, "POST", ENTRY, "entry.element=192.0.2.66", { as: "alice", headers: { "content-type": "application/x-www-form-urlencoded", origin: "https://evil.example" } });
    refusedAsCrossSite(older, "Origin");
    for (const type of ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain;charset=UTF-8"]) {
      const bare = await rest(f.server, "POST", ENTRY, JSON.stringify({ entry: { element: "192.0.2.66" } }), { as: "alice", headers: { "content-type": type } });
      assert.equal(bare.status, 400, `${type}: ${bare.text}`);
      assert.deepEqual([bare.json.reason, bare.json.metadata.field], ["INVALID_REQUEST", "Content-Type"], type);
      assert.match(bare.json.detail, /send Content-Type: application\/json/);
    }
    // Even without a body: a form post to a method without one.
    const empty = await rest(f.server, "DELETE", `${ENTRY}/192.0.2.50`, undefined, { as: "alice", headers: { "content-type": "text/plain", "content-length": "0" } });
    assert.deepEqual([empty.status, empty.json.reason], [400, "INVALID_REQUEST"]);
    assert.equal(inKernel("192.0.2.66"), false, "the form added nothing");
    assert.equal(inKernel("192.0.2.50"), true, "the form deleted nothing");
  });

  it("a JSON request with another site's Origin, or Sec-Fetch-Site cross-site or same-site, is refused; nothing changes", async () => {
    const json = { entry: { element: "192.0.2.67" } };
    refusedAsCrossSite(await rest(f.server, "POST", ENTRY, json, { as: "alice", headers: { origin: "https://evil.example" } }), "Origin");
    refusedAsCrossSite(await rest(f.server, "DELETE", `${ENTRY}/192.0.2.50`, undefined, { as: "alice", headers: { origin: "https://evil.example" } }), "Origin");
    // A sandboxed frame or a redirect sends Origin: null.
    refusedAsCrossSite(await rest(f.server, "POST", ENTRY, json, { as: "alice", headers: { origin: "null" } }), "Origin");
    // The same host over plain http, or another port, is another origin.
    refusedAsCrossSite(await rest(f.server, "POST", ENTRY, json, { as: "alice", headers: { origin: own.replace("https:", "http:") } }), "Origin");
    refusedAsCrossSite(await rest(f.server, "POST", ENTRY, json, { as: "alice", headers: { origin: "https://localhost:1" } }), "Origin");
    refusedAsCrossSite(await rest(f.server, "POST", ENTRY, json, { as: "alice", headers: { "sec-fetch-site": "cross-site" } }), "Sec-Fetch-Site");
    // A sibling subdomain is same-site but not same-origin: refused as well.
    refusedAsCrossSite(await rest(f.server, "DELETE", `${ENTRY}/192.0.2.50`, undefined, { as: "alice", headers: { "sec-fetch-site": "same-site" } }), "Sec-Fetch-Site");
    // Both headers must agree: a same-origin Sec-Fetch-Site does not excuse a foreign Origin.
    refusedAsCrossSite(await rest(f.server, "POST", ENTRY, json, { as: "alice", headers: { origin: "https://evil.example", "sec-fetch-site": "same-origin" } }), "Origin");
    assert.equal(inKernel("192.0.2.67"), false, "no refused add reached the kernel");
    assert.equal(inKernel("192.0.2.50"), true, "no refused delete reached the kernel");
    const test = await rest(f.server, "GET", `${ENTRY}:test?element=192.0.2.67`);
    assert.equal(test.json.matched ?? false, false, "nor the store");
  });

  it("the refusals are audited under the caller's name and role", async () => {
    const audit = await rest(f.server, "GET", "/v1/auditRecords?pageSize=20");
    const refused = audit.json.records.filter((record: { reason?: string }) => record.reason === "CROSS_SITE_REQUEST");
    assert.ok(refused.length >= 9, audit.text);
    assert.deepEqual([refused[0].principal, refused[0].role, refused[0].code], ["alice", "operator", "PERMISSION_DENIED"]);
    assert.ok(refused.some((record: { method: string }) => record.method === `DELETE ${ENTRY}/192.0.2.50`), audit.text);
  });

  it("the console's own requests (same origin), requests with no browser headers, and reads from anywhere work", async () => {
    const same = await rest(f.server, "POST", ENTRY, { entry: { element: "192.0.2.68" } }, { as: "alice", headers: { origin: own, "sec-fetch-site": "same-origin", "sec-fetch-mode": "cors" } });
    assert.equal(same.status, 200, same.text);
    assert.equal(inKernel("192.0.2.68"), true);
    // The default port is left out of an origin.
    const onDefaultPort = await rest(f.server, "DELETE", `${ENTRY}/192.0.2.68`, undefined, { as: "alice", headers: { host: "gateway.example:443", origin: "https://gateway.example" } });
    assert.equal(onDefaultPort.status, 200, onDefaultPort.text);
    assert.equal(inKernel("192.0.2.68"), false);
    // A typed address or bookmark (Sec-Fetch-Site: none) is the user's own doing.
    assert.equal((await rest(f.server, "POST", ENTRY, { entry: { element: "192.0.2.69" } }, { as: "alice", headers: { "sec-fetch-site": "none" } })).status, 200);
    // curl, scripts and the SDK send neither header.
    const plain = await rest(f.server, "POST", ENTRY, { entry: { element: "192.0.2.70" } }, { as: "alice" });
    assert.equal(plain.status, 200, plain.text);
    assert.equal(inKernel("192.0.2.69") && inKernel("192.0.2.70"), true);
    // Reads change nothing, and the same-origin policy keeps another site from reading the answer.
    const read = await rest(f.server, "GET", `${ENTRY}?pageSize=10`, undefined, { as: "alice", headers: { origin: "https://evil.example", "sec-fetch-site": "cross-site" } });
    assert.equal(read.status, 200, read.text);
    assert.ok(read.json.entries.some((entry: { element: string }) => entry.element === "192.0.2.50"));
  });

  it("identity comes first: a cross-site request without a certificate is answered 401, not 403", async () => {
    const anonymous = await rest(f.server, "POST", ENTRY, { entry: { element: "192.0.2.71" } }, { as: null, headers: { origin: "https://evil.example" } });
    assert.deepEqual([anonymous.status, anonymous.json.reason], [401, "CERTIFICATE_REQUIRED"]);
  });
});
