// SIEM sink formats and their configuration.
import { it } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { syslogMessage } from "../../server/src/sinks/syslog-sink.js";
import { eventJson } from "../../server/src/sinks/sink.js";
import { ConfigError, loadConfig } from "../../server/src/config.js";
import type { HostEvent } from "../../server/src/events/event-model.js";

const ban: HostEvent = { sequence: 42, time: Date.UTC(2026, 10, 25, 12, 0, 0), type: "BAN", resource: "jails/dovecot/bans/192.0.2.100", principal: 'ops "night" [1]\\', origin: "api", attributes: { jail: "dovecot" } };

it("syslog: RFC 5424 with PRI from facility and severity, MSGID = type, SD values escaped, the JSON event as MSG", () => {
  const message = syslogMessage(ban, { facility: 4, appName: "portcullis", hostname: "fw1" });
  assert.equal(message, `<37>1 2026-11-25T12:00:00.000Z fw1 portcullis ${process.pid} BAN [portcullis@32473 sequence="42" resource="jails/dovecot/bans/192.0.2.100" principal="ops \\"night\\" [1\\]\\\\" origin="api"] ${eventJson(ban)}`);
  assert.match(syslogMessage({ ...ban, type: "ENTRY_ADDED" }, { facility: 16, appName: "p", hostname: "h" }), /^<134>1 /, "informational for the rest");
  assert.deepEqual(JSON.parse(eventJson(ban)), { sequence: 42, time: "2026-11-25T12:00:00.000Z", type: "BAN", resource: "jails/dovecot/bans/192.0.2.100", principal: 'ops "night" [1]\\', origin: "api", attributes: { jail: "dovecot" } });
});

it("sink configuration: defaults, unique names, and specific errors", () => {
  const env = { PORTCULLIS_CONFIG: undefined };
  const withSinks = (sinks: unknown) => {
    const file = `/tmp/pc-sinks-config-${process.pid}.json`;
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
