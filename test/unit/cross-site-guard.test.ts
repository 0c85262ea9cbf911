import { it } from "node:test";
import assert from "node:assert/strict";
import { crossSiteRefusal } from "../../server/src/rest/cross-site-guard.js";

const verdict = (method: string, headers: Record<string, string>): string => {
  const refusal = crossSiteRefusal({ method, headers });
  return refusal === undefined ? "ok" : `${refusal.reason} ${refusal.metadata.field}`;
};

it("an Origin is this gateway's when it is https and the Host asked for, as browsers spell origins", () => {
  assert.equal(verdict("POST", { host: "fw.example:8443", origin: "https://fw.example:8443" }), "ok");
  assert.equal(verdict("POST", { host: "FW.Example:8443", origin: "https://fw.example:8443" }), "ok");
  assert.equal(verdict("POST", { host: "fw.example", origin: "https://fw.example" }), "ok");
  assert.equal(verdict("POST", { host: "fw.example:443", origin: "https://fw.example" }), "ok");
  assert.equal(verdict("POST", { host: "[2001:db8::1]:8443", origin: "https://[2001:db8::1]:8443" }), "ok");
  for (const origin of ["http://fw.example:8443", "https://fw.example:8444", "https://fw.example", "https://evil.example", "null", "https://fw.example:8443/", "https://fw.example:8443, https://evil.example"]) {
    assert.equal(verdict("PATCH", { host: "fw.example:8443", origin }), "CROSS_SITE_REQUEST Origin", origin);
  }
  // A Host that is no host:port names no origin: nothing matches it.
  assert.equal(verdict("POST", { host: "fw.example:8443/x", origin: "https://fw.example:8443" }), "CROSS_SITE_REQUEST Origin");
  assert.equal(verdict("POST", { origin: "https://fw.example:8443" }), "CROSS_SITE_REQUEST Origin");
});

it("Sec-Fetch-Site must be same-origin or none; reads and requests without browser headers pass", () => {
  assert.equal(verdict("POST", { "sec-fetch-site": "same-origin" }), "ok");
  assert.equal(verdict("POST", { "sec-fetch-site": "none" }), "ok");
  for (const site of ["cross-site", "same-site", "same-origin, cross-site"]) assert.equal(verdict("DELETE", { "sec-fetch-site": site }), "CROSS_SITE_REQUEST Sec-Fetch-Site", site);
  for (const method of ["GET", "HEAD", "OPTIONS"]) assert.equal(verdict(method, { origin: "https://evil.example", "sec-fetch-site": "cross-site", "content-type": "text/plain" }), "ok", method);
  assert.equal(verdict("POST", { "content-type": "application/json" }), "ok");
  assert.equal(verdict("POST", {}), "ok");
});

it("the body types a form can post are refused on every state-changing method", () => {
  for (const type of ["application/x-www-form-urlencoded", "Multipart/Form-Data; boundary=x", " text/plain ;charset=utf-8"]) {
    for (const method of ["POST", "PUT", "PATCH", "DELETE"]) assert.equal(verdict(method, { "content-type": type }), "INVALID_REQUEST Content-Type", `${method} ${type}`);
  }
});
