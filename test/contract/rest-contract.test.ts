import { it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { EventServiceService } from "../../server/src/gen/portcullis/v1/events.js";
import { FirewallServiceService } from "../../server/src/gen/portcullis/v1/firewall.js";
import { IpsetServiceService } from "../../server/src/gen/portcullis/v1/ipset.js";
import { JailServiceService } from "../../server/src/gen/portcullis/v1/jail.js";
import { FleetServiceService } from "../../server/src/gen/portcullis/v1/fleet.js";
import { HostServiceService } from "../../server/src/gen/portcullis/v1/host.js";
import { FeedServiceService } from "../../server/src/gen/portcullis/v1/feed.js";
import { BouncerServiceService } from "../../server/src/gen/portcullis/v1/bouncer.js";
import { contract, openApiPath } from "../../server/src/rest/http-rules.js";

const root = resolve(import.meta.dirname, "../..");
const spec = parseYaml(readFileSync(resolve(root, "openapi/portcullis.v1.yaml"), "utf8")) as { paths: Record<string, Record<string, { operationId: string }>> };

it("every RPC of the contract has a REST operation in the spec, and every operation of the spec is an RPC (or health/docs)", () => {
  const rpcs = [BouncerServiceService, EventServiceService, FeedServiceService, FirewallServiceService, FleetServiceService, HostServiceService, IpsetServiceService, JailServiceService].flatMap((service) => Object.values(service).map((method) => method.path.split("/").pop()!)).sort();
  const routes = contract().routes;
  assert.deepEqual(routes.map((route) => route.method).sort(), rpcs, "a google.api.http route per RPC");
  const operations = Object.entries(spec.paths).flatMap(([path, verbs]) => Object.entries(verbs).map(([verb, operation]) => ({ path, verb, id: operation.operationId })));
  for (const route of routes) {
    assert.ok(operations.some((operation) => operation.path === openApiPath(route) && operation.verb === route.verb && operation.id === route.method), `${route.method} at ${route.verb.toUpperCase()} ${openApiPath(route)}`);
  }
  assert.deepEqual(operations.filter((operation) => !rpcs.includes(operation.id)).map((operation) => operation.id).sort(), ["Healthz", "Readyz"]);
  // No two operations answer the same request.
  const keys = routes.map((route) => `${route.verb} ${openApiPath(route)}`);
  assert.equal(new Set(keys).size, keys.length);
});

it("the OpenAPI document lints clean with Redocly's linter", () => {
  const output = execFileSync(resolve(root, "node_modules/.bin/redocly"), ["lint", "openapi/portcullis.v1.yaml", "--format", "stylish"], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" } });
  assert.doesNotMatch(output, /warning|error/i, output);
});
