import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, it } from "node:test";

/**
 * Imports inside server/src run one way (ARCHITECTURE.md): adapters → api → domain → drivers and store. Files named
 * `*-model.ts` are the model modules below all of them (types and pure values that drivers and the store share with
 * the domain); the top-level files (errors, logger, names, addresses, config…) are the base every layer may use;
 * main.ts and the CLI compose everything. gen/ (the contract's generated code) is for api/ and the transports.
 */
const ROOT = resolve(import.meta.dirname, "../../server/src");

type Layer = "base" | "model" | "drivers" | "store" | "domain" | "api" | "grpc" | "rest" | "root" | "gen";

const DOMAIN = new Set(["ipsets", "firewall", "jails", "events", "auth", "fleet", "sinks", "metrics", "doctor", "host", "feeds", "bouncers"]);
const ALLOWED: Readonly<Record<Layer, readonly Layer[]>> = {
  base: ["base"],
  model: ["base", "model"],
  drivers: ["base", "model", "drivers"],
  store: ["base", "model", "store"],
  domain: ["base", "model", "drivers", "store", "domain"],
  api: ["base", "model", "drivers", "store", "domain", "api", "gen"],
  // The two transports are siblings: what both need lives in api/.
  grpc: ["base", "model", "domain", "api", "grpc", "gen"],
  rest: ["base", "model", "domain", "api", "rest", "gen"],
  root: ["base", "model", "drivers", "store", "domain", "api", "grpc", "rest", "root", "gen"],
  // The contract's generated code (gen/): the wire types, for api/ and the transports only.
  gen: ["gen"],
};

function layerOf(file: string): Layer {
  const path = relative(ROOT, file);
  if (path.endsWith("-model.ts")) return "model";
  const top = path.split("/")[0]!;
  if (!path.includes("/")) return path === "main.ts" || path === "cli.ts" ? "root" : "base";
  if (top === "cli") return "root";
  if (top === "gen") return "gen";
  if (top === "drivers" || top === "store" || top === "api" || top === "grpc" || top === "rest") return top;
  if (DOMAIN.has(top)) return "domain";
  throw new Error(`${path}: folder ${top} has no layer; add it to test/contract/dependency-rule.test.ts`);
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "gen" ? [] : sources(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** Every import (and re-export) of one source file against the other, as "file (layer) imports target (layer)". */
function violations(files: ReadonlyArray<{ readonly path: string; readonly text: string }>): string[] {
  const wrong: string[] = [];
  for (const { path, text } of files) {
    const from = layerOf(path);
    for (const match of text.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+"(\.{1,2}\/[^"]+)"/gm)) {
      const target = resolve(dirname(path), match[1]!).replace(/\.js$/, ".ts");
      const to = layerOf(target);
      if (!ALLOWED[from].includes(to)) wrong.push(`${relative(ROOT, path)} (${from}) imports ${relative(ROOT, target)} (${to})`);
    }
  }
  return wrong;
}

describe("dependency rule", () => {
  it("server/src imports only along the layers", () => {
    const files = sources(ROOT);
    assert.ok(files.length > 50, "the sources were found");
    assert.deepEqual(violations(files.map((path) => ({ path, text: readFileSync(path, "utf8") }))), []);
  });

  it("the check sees imports that run upward or sideways", () => {
    const file = (path: string, text: string) => ({ path: join(ROOT, path), text });
    assert.deepEqual(violations([
      file("drivers/exec.ts", 'import type { Metrics } from "../metrics/metrics.js";\nimport { ServerError } from "../errors.js";'),
      file("store/event-store.ts", 'import type { HostEvent } from "../events/event-model.js";'),
      file("firewall/rule-model.ts", 'import { FirewallService } from "./firewall-service.js";'),
      file("rest/rest-server.ts", 'import {\n  startGrpcServer,\n} from "../grpc/grpc-server.js";'),
      file("auth/peer-identity.ts", 'export { operation } from "../api/operation.js";'),
    ]), [
      "drivers/exec.ts (drivers) imports metrics/metrics.ts (domain)",
      "firewall/rule-model.ts (model) imports firewall/firewall-service.ts (domain)",
      "rest/rest-server.ts (rest) imports grpc/grpc-server.ts (grpc)",
      "auth/peer-identity.ts (domain) imports api/operation.ts (api)",
    ]);
  });
});
