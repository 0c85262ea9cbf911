// Which console paths get index.html (the console's routes, deep links with dots included) and which are missing
// assets (404 problem JSON): serveConsole in an express app through supertest, on a stand-in build.
import { after, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import express from "express";
import request from "supertest";
import { CONSOLE_PATH, serveConsole } from "../../server/src/rest/console-files.js";
import { problemOf } from "../../server/src/rest/problem.js";

const scratch = mkdtempSync(join(tmpdir(), "pc-console-files-"));
const dist = join(scratch, "dist");
const INDEX = "<!doctype html><title>Portcullis</title>\n";
mkdirSync(join(dist, "assets"), { recursive: true });
writeFileSync(join(dist, "index.html"), INDEX);
writeFileSync(join(dist, "app-3F2A9C1B.js"), "export {};\n");
writeFileSync(join(dist, "assets", "logo.svg"), "<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n");
writeFileSync(join(scratch, "outside.txt"), "not for clients\n");
after(() => rmSync(scratch, { recursive: true, force: true }));

const app = express();
app.use(CONSOLE_PATH.slice(0, -1), serveConsole(dist, (res, error) => {
  const problem = problemOf(error);
  res.status(problem.status).type("application/problem+json").send(JSON.stringify(problem));
}));

/** What Chromium sends for a navigation (a link, the address bar, a reload). */
const NAVIGATION = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

it("a navigation to any console path that is not a file of the build gets index.html, dots in the last segment included", async () => {
  for (const path of ["/console/sets/blocklist.v4", "/console/jails/my.jail", "/console/jails/sshd", "/console/address/2001:db8::1", "/console/address/192.0.2.1", "/console/sets/feed.netset", "/console/missing.js"]) {
    const reply = await request(app).get(path).set("Accept", NAVIGATION);
    assert.deepEqual([reply.status, reply.text, reply.headers["cache-control"]], [200, INDEX, "no-cache"], path);
  }
  // Without Accept (curl, scripts), a route without an extension-like suffix is a page too.
  assert.equal((await request(app).get("/console/jails/sshd")).text, INDEX);
  // Files of the build are files, navigation or not.
  assert.equal((await request(app).get("/console/app-3F2A9C1B.js").set("Accept", NAVIGATION)).text, "export {};\n");
});

it("a missing asset is 404 problem JSON: an extension-like path asked for by a script, style or image load, or anything under a folder of the build", async () => {
  const cases: Array<[string, string | undefined]> = [
    ["/console/missing-3F2A9C1B.js", "*/*"],
    ["/console/app-XXXXXXXX.css", "text/css,*/*;q=0.1"],
    ["/console/sets/blocklist.v4", undefined],
    ["/console/assets/nothing.png", NAVIGATION],
    ["/console/assets/deeper/nothing", NAVIGATION],
  ];
  for (const [path, accept] of cases) {
    const pending = request(app).get(path);
    const reply = await (accept === undefined ? pending : pending.set("Accept", accept));
    assert.equal(reply.status, 404, `${path}: ${reply.text}`);
    assert.equal(reply.headers["content-type"], "application/problem+json; charset=utf-8", path);
    assert.equal(JSON.parse(reply.text).reason, "ROUTE_NOT_FOUND", path);
  }
});

it("dot files, `..` and encoded separators never reach a file: an asset load is 404, a navigation gets the page; bad encoding is a 400", async () => {
  writeFileSync(join(dist, ".env"), "SECRET=1\n");
  const paths = ["/console/.env", "/console/%2e%2e/outside.txt", "/console/..%2foutside.txt", "/console/..%5coutside.txt", "/console/assets%2flogo.svg", "/console/sets/a%2fb.v4"];
  for (const path of paths) {
    const reply = await request(app).get(path).set("Accept", "*/*");
    assert.equal(reply.status, 404, path);
    assert.equal(JSON.parse(reply.text).reason, "ROUTE_NOT_FOUND", path);
  }
  // A route may hold an encoded slash (an id with one): the page, never the file.
  for (const path of [...paths, "/console/jails/%22%3E%3Cscript%3Ealert(2)%3C%2Fscript%3E", "/console/%2e%2e/%2e%2e/etc/passwd"]) {
    const reply = await request(app).get(path).set("Accept", NAVIGATION);
    assert.deepEqual([reply.status, reply.text], [200, INDEX], path);
  }
  for (const accept of ["*/*", NAVIGATION]) {
    const bad = await request(app).get("/console/sets/%E0%A4%A.v4").set("Accept", accept);
    assert.deepEqual([bad.status, JSON.parse(bad.text).reason], [400, "MALFORMED_REQUEST"], accept);
  }
});
