import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../../server/src/config.js";

describe("config: file, PORTCULLIS_* variables and flags, validated", () => {
  const dir = mkdtempSync(join(tmpdir(), "pc-config-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it("has safe defaults: loopback gRPC, ./var", () => {
    const config = loadConfig({}, {});
    assert.equal(config.grpc.address, "127.0.0.1:50051");
    assert.equal(config.dataDir, join(process.cwd(), "var"));
    assert.equal(config.netns, undefined);
    assert.equal(config.reconcile.intervalSeconds, 60);
  });

  it("reads YAML and JSON; variables override the file and flags override variables", () => {
    const yaml = file("a.yaml", "grpc:\n  address: 127.0.0.1:6000\nnetns: pc-file\nlog:\n  level: debug\n");
    assert.equal(loadConfig({ config: yaml }, {}).grpc.address, "127.0.0.1:6000");
    assert.equal(loadConfig({ config: yaml }, { PORTCULLIS_GRPC_ADDRESS: "127.0.0.1:7000" }).grpc.address, "127.0.0.1:7000");
    const both = loadConfig({ config: yaml, grpcAddress: "127.0.0.1:8000", netns: "pc-flag" }, { PORTCULLIS_GRPC_ADDRESS: "127.0.0.1:7000", PORTCULLIS_NETNS: "pc-env" });
    assert.equal(both.grpc.address, "127.0.0.1:8000");
    assert.equal(both.netns, "pc-flag");
    assert.equal(both.log.level, "debug");
    const json = file("b.json", JSON.stringify({ reconcile: { intervalSeconds: 5 } }));
    assert.equal(loadConfig({ config: json }, {}).reconcile.intervalSeconds, 5);
    assert.equal(loadConfig({}, { PORTCULLIS_CONFIG: json, PORTCULLIS_RECONCILE_INTERVAL_SECONDS: "7" }).reconcile.intervalSeconds, 7);
    // The console's folder: the repository's console/dist unless set.
    assert.equal(loadConfig({}, {}).console.dir, undefined);
    assert.equal(loadConfig({ config: file("console.yaml", "console: { dir: /srv/console }\n") }, {}).console.dir, "/srv/console");
    assert.equal(loadConfig({}, { PORTCULLIS_CONSOLE_DIR: "/opt/console" }).console.dir, "/opt/console");
  });

  it("errors name the bad key", () => {
    assert.throws(() => loadConfig({ config: file("c.yaml", "grpc:\n  adress: x\n") }, {}), (error: Error) => error instanceof ConfigError && /unknown key grpc\.adress/.test(error.message));
    assert.throws(() => loadConfig({ config: file("d.yaml", "grpc:\n  address: nonsense\n") }, {}), /grpc\.address: must be host:port/);
    assert.throws(() => loadConfig({}, { PORTCULLIS_RECONCILE_INTERVAL_SECONDS: "soon" }), /reconcile\.intervalSeconds/);
    assert.throws(() => loadConfig({ netns: "bad name;rm" }, {}), /netns: must be a network namespace name/);
    assert.throws(() => loadConfig({ config: file("e.yaml", "- a\n- b\n") }, {}), /must hold a mapping/);
    assert.throws(() => loadConfig({ config: join(dir, "missing.yaml") }, {}), /cannot read config file/);
  });
});
