// SIEM sink formats and their configuration.
import { it } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileSink } from "../../server/src/sinks/file-sink.js";
import { SinkRunner } from "../../server/src/sinks/sink-runner.js";
import { SinkStore } from "../../server/src/store/sink-store.js";
import { EventStore } from "../../server/src/store/event-store.js";
import { EventLog } from "../../server/src/events/event-log.js";
import { openDatabase } from "../../server/src/store/database.js";
import { createLogger } from "../../server/src/logger.js";
import { syslogMessage } from "../../server/src/sinks/syslog-sink.js";
import { eventJson } from "../../server/src/sinks/sink.js";
import { ConfigError, loadConfig } from "../../server/src/config.js";
import type { HostEvent } from "../../server/src/events/event-model.js";
import { waitFor } from "../harness/wait.js";

const ban: HostEvent = { sequence: 42, time: Date.UTC(2026, 10, 25, 12, 0, 0), type: "BAN", resource: "jails/dovecot/bans/192.0.2.100", principal: 'ops "night" [1]\\', origin: "api", attributes: { jail: "dovecot" } };

it("syslog: RFC 5424 with PRI from facility and severity, MSGID = type, SD values escaped, the JSON event as MSG", () => {
  const message = syslogMessage(ban, { facility: 4, appName: "portcullis", hostname: "fw1" });
  assert.equal(message, `<37>1 2026-11-25T12:00:00.000Z fw1 portcullis ${process.pid} BAN [portcullis@32473 sequence="42" resource="jails/dovecot/bans/192.0.2.100" principal="ops \\"night\\" [1\\]\\\\" origin="api"] ${eventJson(ban)}`);
  assert.match(syslogMessage({ ...ban, type: "ENTRY_ADDED" }, { facility: 16, appName: "p", hostname: "h" }), /^<134>1 /, "informational for the rest");
  assert.deepEqual(JSON.parse(eventJson(ban)), { sequence: 42, time: "2026-11-25T12:00:00.000Z", type: "BAN", resource: "jails/dovecot/bans/192.0.2.100", principal: 'ops "night" [1]\\', origin: "api", attributes: { jail: "dovecot" } });
});

it("sink configuration: defaults, unique names, and specific errors", (t) => {
  const env = { PORTCULLIS_CONFIG: undefined };
  const dir = mkdtempSync(join(tmpdir(), "pc-sinks-config-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const withSinks = (sinks: unknown) => {
    const file = join(dir, "config.json");
    writeFileSync(file, JSON.stringify({ sinks }));
    return loadConfig({ config: file }, env);
  };
  const config = withSinks([{ type: "syslog", name: "siem", host: "siem.example" }, { type: "webhook", name: "hook", url: "https://hooks.example/p" }]);
  assert.deepEqual(config.sinks[0], { type: "syslog", name: "siem", host: "siem.example", transport: "udp", port: 514, facility: 16, appName: "portcullis", startAt: "now" });
  assert.throws(() => withSinks([{ type: "file", name: "a", path: "/x" }, { type: "file", name: "a", path: "/y" }]), (error: unknown) => error instanceof ConfigError && /sink names must be unique/.test(error.message));
  assert.throws(() => withSinks([{ type: "webhook", name: "h", url: "ftp://x/" }]), (error: unknown) => error instanceof ConfigError && /sinks\.0\.url/.test(error.message));
  assert.throws(() => withSinks([{ type: "webhook", name: "h", url: "https://x/", secret: "short" }]), /at least 16 characters/);
  assert.throws(() => withSinks([{ type: "kafka", name: "k" }]), /sinks\.0/);
  assert.throws(() => loadConfig({ metricsAddress: "0.0.0.0:9464" }, env), /metrics\.address: must be a loopback host:port/);
});

it("file sink: the file is its own record; a server killed after the append (position not stored) resumes after the file's last line, and a torn line is cut", async () => {
  const dir = mkdtempSync(join(tmpdir(), "pc-file-sink-"));
  try {
    const db = openDatabase(join(dir, "state.db"));
    const events = new EventLog(new EventStore(db));
    const store = new SinkStore(db);
    for (let i = 1; i <= 5; i++) events.append({ type: "ENTRY_ADDED", resource: `ipsets/s/entries/192.0.2.${i}` }, "admin", "api");
    const path = join(dir, "events.jsonl");
    const sink = new FileSink({ path, maxBytes: 1 << 20, keep: 1 });
    // What a kill -9 after the append leaves: the file holds 1..3 and half of 4, the stored position still says 1.
    await sink.deliver(events.list(0, 3, {}).events);
    appendFileSync(path, eventJson(events.list(3, 1, {}).events[0]!).slice(0, 20));
    store.setPosition("f", 1);
    assert.equal(await sink.lastDelivered(), 3);
    assert.ok(readFileSync(path, "utf8").endsWith("}\n"), "the torn line is gone");

    const runner = new SinkRunner("f", sink, { events, store, log: createLogger("silent") }, "oldest");
    runner.start();
    const sequences = async () => readFileSync(path, "utf8").trim().split("\n").map((line) => (JSON.parse(line) as { sequence: number }).sequence);
    await waitFor("the runner's position at 5", () => store.position("f") === 5, { every: 10 });
    await runner.close();
    assert.deepEqual(await sequences(), [1, 2, 3, 4, 5]);
    assert.equal(store.position("f"), 5);

    // A file from an older data dir (ahead of this log) does not make the runner skip events.
    const fresh = openDatabase(join(dir, "fresh.db"));
    const freshEvents = new EventLog(new EventStore(fresh));
    freshEvents.append({ type: "ENTRY_ADDED", resource: "ipsets/s/entries/192.0.2.9" }, "admin", "api");
    const freshStore = new SinkStore(fresh);
    const again = new SinkRunner("f", sink, { events: freshEvents, store: freshStore, log: createLogger("silent") }, "oldest");
    again.start();
    await waitFor("the fresh runner's position at 1", () => freshStore.position("f") === 1, { every: 10 });
    await again.close();
    assert.deepEqual(await sequences(), [1, 2, 3, 4, 5, 1]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it("sink runner: a batch not acknowledged goes again unchanged, after a failed answer and after a restart, before newer events", async () => {
  const dir = mkdtempSync(join(tmpdir(), "pc-sink-retry-"));
  try {
    const db = openDatabase(join(dir, "state.db"));
    const events = new EventLog(new EventStore(db));
    const store = new SinkStore(db);
    const add = (i: number): void => void events.append({ type: "ENTRY_ADDED", resource: `ipsets/s/entries/192.0.2.${i}` }, "admin", "api");
    for (let i = 1; i <= 3; i++) add(i);
    const batches: number[][] = [];
    let failNext = true;
    const sink = {
      deliver: async (delivered: readonly HostEvent[]): Promise<void> => {
        batches.push(delivered.map((event) => event.sequence));
        if (failNext) {
          failNext = false;
          add(4); // newer events arrive while the answer is awaited
          add(5);
          throw new Error("answer lost");
        }
      },
      close: async (): Promise<void> => {},
    };
    const runner = new SinkRunner("w", sink, { events, store, log: createLogger("silent") }, "oldest");
    runner.start();
    await waitFor("the runner's position at 5", () => store.position("w") === 5, { every: 10 });
    await runner.close();
    assert.deepEqual(batches, [[1, 2, 3], [1, 2, 3], [4, 5]]);
    assert.equal(store.inFlight("w"), undefined);

    // A server killed while a batch was in flight: the batch is recorded, and a new runner sends exactly it first.
    for (let i = 6; i <= 7; i++) add(i);
    store.setInFlight("w", 6);
    batches.length = 0;
    const again = new SinkRunner("w", { ...sink, deliver: async (delivered: readonly HostEvent[]) => void batches.push(delivered.map((event) => event.sequence)) }, { events, store, log: createLogger("silent") }, "oldest");
    again.start();
    await waitFor("the new runner's position at 7", () => store.position("w") === 7, { every: 10 });
    await again.close();
    assert.deepEqual(batches, [[6], [7]]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
