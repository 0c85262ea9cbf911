import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../../server/src/config.js";
import { decodeMessage, encodeMessage, type FleetOperation } from "../../server/src/fleet/fleet-model.js";
import { openDatabase } from "../../server/src/store/database.js";
import { FleetStore } from "../../server/src/store/fleet-store.js";
import { FleetNodes } from "../../server/src/fleet/fleet-nodes.js";
import { FleetPublisher } from "../../server/src/fleet/fleet-publisher.js";
import { uuidV7 } from "../../server/src/fleet/fleet.js";
import type { JetStreamLink } from "../../server/src/fleet/jetstream-link.js";
import type { JailBanStore } from "../../server/src/store/jail-ban-store.js";
import { createLogger } from "../../server/src/logger.js";

const operation = (overrides: Partial<FleetOperation> = {}): FleetOperation => ({
  id: "0b8f5d0e-1c2a-4b1e-9d51-5a3a2f7c9e01",
  op: "ban",
  kind: "jail",
  target: "dovecot",
  address: "192.0.2.100",
  expiresAt: Date.now() + 600_000,
  node: "alpha",
  principal: "admin",
  role: "operator",
  method: "portcullis.v1.JailService/BanIp",
  time: Date.now(),
  ...overrides,
});

describe("fleet: configuration, the wire format, and what a node remembers", () => {
  const dir = mkdtempSync(join(tmpdir(), "pc-fleet-unit-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const config = (cluster: unknown) => {
    const path = join(dir, `${Math.random()}.json`);
    writeFileSync(path, JSON.stringify({ cluster }));
    return loadConfig({ config: path }, {});
  };

  it("no cluster section: no fleet; a cluster section takes defaults", () => {
    assert.equal(loadConfig({}, {}).cluster, undefined);
    const cluster = config({ servers: ["nats://127.0.0.1:4222"], node: "web-1" }).cluster!;
    assert.deepEqual([cluster.stream, cluster.subject, cluster.bucket, cluster.heartbeatSeconds, cluster.share], ["PORTCULLIS_BANS", "portcullis.fleet", "portcullis-fleet-nodes", 5, { jails: [], sets: [] }]);
  });

  it("NATS off this host needs mTLS or credentials; node names cannot carry subject tokens", () => {
    assert.throws(() => config({ servers: ["nats://nats.example:4222"], node: "web-1" }), (error: unknown) => error instanceof ConfigError && /tls \(mTLS\) or credentials/.test(error.message));
    assert.equal(config({ servers: ["tls://nats.example:4222"], node: "web-1", credentials: "/etc/portcullis/web-1.creds" }).cluster!.credentials, "/etc/portcullis/web-1.creds");
    assert.equal(config({ servers: ["tls://nats.example:4222"], node: "web-1", tls: { ca: "ca.crt", cert: "c.crt", key: "c.key" } }).cluster!.tls!.cert, "c.crt");
    assert.throws(() => config({ servers: ["tls://nats.example:4222"], node: "web-1", tls: { ca: "ca.crt", cert: "c.crt" } }), /tls.cert and tls.key go together/);
    assert.throws(() => config({ servers: ["nats://127.0.0.1:4222"], node: "web.1" }), /cluster.node/);
    assert.throws(() => config({ servers: ["nats://127.0.0.1:4222"], node: "web-1", extra: 1 }), /unknown key cluster.extra/);
  });

  it("stream messages round-trip; anything else is refused with a reason, never applied", () => {
    const ops = [operation(), operation({ id: "x-2", op: "unban", kind: "set", target: "blocklist", address: "203.0.113.0/24", expiresAt: undefined })];
    assert.deepEqual(decodeMessage(encodeMessage(ops)), ops.map(({ expiresAt, ...rest }) => (expiresAt === undefined ? rest : { ...rest, expiresAt })));
    for (const bad of ["not json", "{}", JSON.stringify({ v: 2, operations: ops }), JSON.stringify({ v: 1, operations: [{ ...ops[0], address: "$(reboot)" }] }), JSON.stringify({ v: 1, operations: [{ ...ops[0], target: "../etc" }] })]) {
      assert.ok("problem" in (decodeMessage(new TextEncoder().encode(bad)) as object), bad);
    }
  });

  it("the store: an operation is seen once; the outbox drains in order; an unban ends earlier bans; expiry is found", () => {
    const store = new FleetStore(openDatabase(join(dir, "fleet.db")));
    const made = operation({ id: "made-here" });
    store.enqueue([made, operation({ id: "made-2", address: "192.0.2.101" })]);
    assert.equal(store.seen("made-here"), true);
    const first = store.pending(1);
    assert.deepEqual(first.operations.map((op) => op.id), ["made-here"]);
    store.sent(first.lastSeq);
    assert.deepEqual(store.pending(10).operations.map((op) => op.id), ["made-2"]);
    assert.equal(store.outboxSize(), 1);

    const received = operation({ id: "received", address: "198.51.100.1", expiresAt: Date.now() - 1 });
    store.record(received, "applied");
    store.record(received, "refused"); // a redelivery changes nothing
    assert.equal(store.count("applied"), 1);
    assert.equal(store.count("refused"), 0);
    assert.deepEqual(store.due().map((ban) => ban.id), ["received"]);
    store.record(operation({ id: "unban", op: "unban", address: "198.51.100.1", expiresAt: undefined }), "applied");
    assert.deepEqual(store.due(), []);
    assert.deepEqual(store.activeFor("192.0.2.100").map((ban) => [ban.id, ban.originNode]), [["made-here", "alpha"]]);
  });
  it("the store: counts per outcome kept in step (a rolled-back batch uncounted); which of many ids were seen, in one query", () => {
    const db = openDatabase(join(dir, "fleet-counts.db"));
    const store = new FleetStore(db);
    store.record(operation({ id: "before-count" }), "applied");
    assert.equal(store.count("applied"), 1, "counted from the table once");
    store.transaction(() => {
      store.record(operation({ id: "in-batch-1" }), "applied");
      store.record(operation({ id: "in-batch-2" }), "refused");
      store.record(operation({ id: "in-batch-1" }), "applied"); // already there: not counted again
    });
    assert.deepEqual([store.count("applied"), store.count("refused")], [2, 1]);
    assert.throws(() => store.transaction(() => {
      store.record(operation({ id: "rolled-back" }), "applied");
      throw new Error("the kernel refused the batch");
    }), /kernel refused/);
    assert.equal(store.seen("rolled-back"), false, "one transaction: the record went with the batch");
    assert.equal(store.count("applied"), 2, "and so did its count");
    assert.deepEqual([...store.seenOf(["in-batch-2", "never", "before-count", "rolled-back"])].sort(), ["before-count", "in-batch-2"]);
    db.close();
  });

  it("operation ids are UUIDv7: time first, so a host records them in order", () => {
    const ids = [uuidV7(1_700_000_000_000), uuidV7(1_700_000_000_001), uuidV7(1_800_000_000_000)];
    for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.deepEqual([...ids].sort(), ids);
    assert.equal(ids[0]!.replace(/-/g, "").slice(0, 12), (1_700_000_000_000).toString(16).padStart(12, "0"));
    assert.notEqual(uuidV7(5), uuidV7(5), "random after the time");
  });

  it("ListNodes names each host of the bucket once, in order, from the subjects of the bucket's stream", async () => {
    const beat = (heartbeatAt: number) => ({ version: "1.0.0", heartbeatAt, startedAt: heartbeatAt, lag: 0, bansApplied: 0, bansRefused: 0 });
    const values = new Map([["bravo", beat(Date.now())], ["alpha", beat(Date.now())], ["stale", beat(Date.now() - 60_000)]]);
    const kv = { get: async (key: string) => ({ operation: "PUT", json: () => values.get(key) }) };
    const asked: unknown[] = [];
    const jsm = {
      streams: {
        info: async (stream: string, options: unknown) => {
          asked.push([stream, options]);
          return { state: { subjects: { "$KV.nodes.bravo": 1, "$KV.nodes.alpha": 1, "$KV.nodes.stale": 1 } } };
        },
      },
    };
    const link = { require: () => ({ kv, jsm, kvStream: "KV_nodes", kvPrefix: "$KV.nodes." }) } as unknown as JetStreamLink;
    const nodes = new FleetNodes({ link, node: "alpha", version: "1.0.0", heartbeatSeconds: 1, store: {} as FleetStore, jailBans: {} as JailBanStore, log: createLogger("silent") });
    assert.deepEqual((await nodes.list()).map((node) => [node.name, node.online]), [["alpha", true], ["bravo", true], ["stale", false]]);
    assert.deepEqual(asked, [["KV_nodes", { subjects_filter: "$KV.nodes.>" }]]);
  });
  it("the publisher keeps one message in flight: a batch refused is published again before anything after it", async () => {
    const store = new FleetStore(openDatabase(":memory:"));
    store.enqueue(Array.from({ length: 600 }, (_, i) => operation({ id: `op-${i}`, address: `192.0.2.${i % 250}` })));
    const published: Array<{ msgID: string; count: number; settle: (error?: Error) => void }> = [];
    let inFlight = 0;
    let mostInFlight = 0;
    const js = {
      publish: (_subject: string, payload: Uint8Array, options: { msgID: string }) => {
        inFlight++;
        mostInFlight = Math.max(mostInFlight, inFlight);
        return new Promise((resolve, reject) => {
          published.push({ msgID: options.msgID, count: (decodeMessage(payload) as FleetOperation[]).length, settle: (error) => { inFlight--; if (error) reject(error); else resolve({}); } });
        });
      },
    };
    const link = { linked: { js }, subjects: { bans: "portcullis.fleet.bans" }, onLinked: () => () => undefined } as unknown as JetStreamLink;
    const publisher = new FleetPublisher({ link, store, node: "alpha", log: createLogger("silent") });
    const settled = async (n: number): Promise<void> => {
      for (let i = 0; i < 50 && published.length < n; i++) await new Promise((resolve) => setImmediate(resolve));
    };
    publisher.kick();
    await settled(1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(published.length, 1, "the second batch waits for the first's acknowledgement");
    published[0]!.settle(new Error("503 no responders (a leader election)"));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(store.outboxSize(), 600, "nothing is dropped");
    publisher.kick();
    await settled(2);
    published[1]!.settle();
    await settled(3);
    published[2]!.settle();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(published.map((entry) => [entry.msgID, entry.count]), [["alpha/op-0/500", 500], ["alpha/op-0/500", 500], ["alpha/op-500/100", 100]]);
    assert.equal(mostInFlight, 1);
    assert.equal(store.outboxSize(), 0);
    publisher.close();
  });
});
