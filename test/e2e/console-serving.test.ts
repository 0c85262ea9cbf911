import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";
import { rest, type RestReply } from "../harness/rest.js";

/**
 * The REST port serves the console's built files at /console/ over the same mTLS, with strict security headers, the
 * index page for the console's own routes, and nothing outside its folder. A stand-in build (console.dir through
 * PORTCULLIS_CONSOLE_DIR) keeps the test independent of the real console.
 */
describe("the console at /console/ on the REST port", () => {
  let f: ServerFixture;
  const scratch = mkdtempSync(join(tmpdir(), "pc-console-"));
  const dist = join(scratch, "dist");
  const INDEX = '<!doctype html><html><head><meta charset="utf-8"><title>Portcullis</title><link rel="stylesheet" href="app-QX7B2M4K.css"></head><body><script type="module" src="app-3F2A9C1B.js"></script></body></html>\n';
  const SCRIPT = 'document.title = "Portcullis";\n';
  const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";
  const get = (path: string, options: { as?: string | null; method?: string; accept?: string } = {}): Promise<RestReply> =>
    rest(f.server, options.method ?? "GET", path, undefined, { as: options.as === undefined ? "admin" : options.as, ...(options.accept === undefined ? {} : { headers: { accept: options.accept } }) });
  const assertStrictHeaders = (reply: RestReply, what: string): void => {
    assert.equal(reply.headers["content-security-policy"], CSP, what);
    assert.equal(reply.headers["x-content-type-options"], "nosniff", what);
    assert.equal(reply.headers["referrer-policy"], "no-referrer", what);
    assert.equal(reply.headers["x-frame-options"], "DENY", what);
  };
  const assertNotFound = (reply: RestReply, what: string): void => {
    assert.equal(reply.status, 404, `${what}: ${reply.text}`);
    assert.equal(reply.headers["content-type"], "application/problem+json; charset=utf-8", what);
    assert.equal(reply.json.reason, "ROUTE_NOT_FOUND", what);
    assertStrictHeaders(reply, what);
  };

  before(async () => {
    // Not built yet: the server must start all the same.
    f = await startServerFixture(undefined, { PORTCULLIS_CONSOLE_DIR: dist });
    await f.server.cli(["certs", "issue", "--name", "noc", "--role", "viewer"]);
  });
  after(async () => {
    await f?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it("before the console is built: the server runs, says so at start, and /console/ answers problem JSON saying to build it", async () => {
    assert.match(f.server.output, /"msg":"the console is not built \(npm run build\)/);
    for (const path of ["/console/", "/console/jails/sshd", "/console/app-3F2A9C1B.js"]) {
      const reply = await get(path);
      assert.equal(reply.status, 404, reply.text);
      assert.equal(reply.headers["content-type"], "application/problem+json; charset=utf-8");
      assert.deepEqual([reply.json.code, reply.json.reason], ["NOT_FOUND", "CONSOLE_NOT_BUILT"]);
      assert.match(reply.json.detail, /run `npm run build`/);
      assertStrictHeaders(reply, path);
    }
    // The API goes on working.
    assert.equal((await get("/v1/ipsets")).status, 200);
  });

  it("once built (no restart), serves index.html and the assets with strict headers, the right types and caching", async () => {
    mkdirSync(join(dist, "assets"), { recursive: true });
    writeFileSync(join(dist, "index.html"), INDEX);
    writeFileSync(join(dist, "app-3F2A9C1B.js"), SCRIPT);
    writeFileSync(join(dist, "app-QX7B2M4K.css"), "body { margin: 0; }\n");
    writeFileSync(join(dist, "assets", "logo.svg"), '<svg xmlns="http://www.w3.org/2000/svg"/>\n');
    writeFileSync(join(dist, "app-3F2A9C1B.js.map"), "{}\n");
    writeFileSync(join(dist, ".env"), "SECRET=1\n");

    const index = await get("/console/");
    assert.equal(index.status, 200, index.text);
    assert.equal(index.text, INDEX);
    assert.equal(index.headers["content-type"], "text/html; charset=utf-8");
    assert.equal(index.headers["cache-control"], "no-cache");
    assertStrictHeaders(index, "index.html");
    assert.equal((await get("/console/index.html")).headers["cache-control"], "no-cache");

    const script = await get("/console/app-3F2A9C1B.js");
    assert.equal(script.text, SCRIPT);
    assert.match(String(script.headers["content-type"]), /^(text|application)\/javascript; charset=utf-8$/);
    assert.equal(script.headers["cache-control"], "public, max-age=31536000, immutable");
    assertStrictHeaders(script, "script");
    const style = await get("/console/app-QX7B2M4K.css");
    assert.deepEqual([style.headers["content-type"], style.headers["cache-control"]], ["text/css; charset=utf-8", "public, max-age=31536000, immutable"]);
    // A name without a content hash may change under the same name: revalidated.
    const logo = await get("/console/assets/logo.svg");
    assert.deepEqual([logo.status, logo.headers["content-type"], logo.headers["cache-control"]], [200, "image/svg+xml", "no-cache"]);
    assert.equal((await get("/console/app-3F2A9C1B.js.map")).headers["content-type"], "application/json; charset=utf-8");

    const head = await get("/console/app-3F2A9C1B.js", { method: "HEAD" });
    assert.deepEqual([head.status, head.text, head.headers["content-length"]], [200, "", String(Buffer.byteLength(SCRIPT))]);
  });

  it("deep links of the console's own routes get index.html; / and /console lead to /console/", async () => {
    for (const path of ["/console/jails/sshd", "/console/address/192.0.2.1", "/console/address/2001:db8::1", "/console/sets/", "/console/assets", "/console/events?type=BAN"]) {
      const reply = await get(path);
      assert.deepEqual([reply.status, reply.text, reply.headers["cache-control"]], [200, INDEX, "no-cache"], path);
      assertStrictHeaders(reply, path);
    }
    // A reload of a page whose last segment has a dot (a set, a jail): the browser asks for HTML, and gets the page.
    for (const path of ["/console/sets/blocklist.v4", "/console/jails/my.jail"]) {
      const reply = await get(path, { accept: "text/html,application/xhtml+xml,*/*;q=0.8" });
      assert.deepEqual([reply.status, reply.text], [200, INDEX], path);
      assertNotFound(await get(path, { accept: "*/*" }), `${path} not asked for as a page`);
    }
    const root = await get("/");
    assert.deepEqual([root.status, root.headers.location], [302, "/console/"]);
    const bare = await get("/console?x=1");
    assert.deepEqual([bare.status, bare.headers.location], [301, "/console/?x=1"]);
  });

  it("unknown files, hidden files, directories and paths out of the folder are 404 problem JSON", async () => {
    assertNotFound(await get("/console/missing-3F2A9C1B.js"), "a missing file");
    assertNotFound(await get("/console/assets/nothing.png"), "a missing file in a folder");
    assertNotFound(await get("/console/.env"), "a dot file");
    assertNotFound(await get("/console/assets/.env"), "a dot file in a folder");
    // Out of the folder, raw and percent-encoded (the scratch folder holds a file beside dist/ to reach for).
    writeFileSync(join(scratch, "outside.txt"), "not for clients\n");
    for (const path of ["/console/../outside.txt", "/console/%2e%2e/outside.txt", "/console/%2E%2E%2Foutside.txt", "/console/..%2foutside.txt", "/console/..%5coutside.txt", "/console/assets/..%2f..%2foutside.txt", "/console/assets%2flogo.svg", "/console/%2fetc%2fhostname.txt", "/console/..%00/outside.txt"]) {
      const reply = await get(path);
      assert.doesNotMatch(reply.text, /not for clients/, path);
      assertNotFound(reply, path);
    }
    const badEncoding = await get("/console/%E0%A4%A.js");
    assert.deepEqual([badEncoding.status, badEncoding.json.reason], [400, "MALFORMED_REQUEST"]);
    // A path without an extension is a route of the console: index.html, never what the path might reach.
    for (const path of ["/console/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/console/..%2f..%2f..%2fetc%2fpasswd"]) assert.equal((await get(path, { accept: "text/html" })).text, INDEX, path);
  });

  it("only over mTLS: no certificate, no page; any role sees it; it only answers reads", async () => {
    const anonymous = await get("/console/", { as: null });
    assert.deepEqual([anonymous.status, anonymous.json.reason], [401, "CERTIFICATE_REQUIRED"]);
    assert.doesNotMatch(anonymous.text, /<html/);
    assert.equal((await get("/console/app-3F2A9C1B.js", { as: null })).status, 401);
    const viewer = await get("/console/", { as: "noc" });
    assert.deepEqual([viewer.status, viewer.text], [200, INDEX]);
    const post = await rest(f.server, "POST", "/console/index.html", {});
    assert.deepEqual([post.status, post.json.reason], [404, "ROUTE_NOT_FOUND"]);
  });
});
