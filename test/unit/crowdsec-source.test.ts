import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ServerError } from "../../server/src/errors.js";
import { parseGoDuration, parseStream } from "../../server/src/feeds/crowdsec-source.js";
import { newDefinition, settingsAttributes, updatedDefinition } from "../../server/src/feeds/feed-definition.js";

const reason = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (error) {
    return error instanceof ServerError ? error.reason : "not a ServerError";
  }
};

describe("crowdsec decision stream", () => {
  it("reads Go durations as the Local API writes them", () => {
    assert.equal(parseGoDuration("3h59m58.5s"), (3 * 3600 + 59 * 60 + 58.5) * 1000);
    assert.equal(parseGoDuration("29m58.748340302s"), (29 * 60 + 58.748340302) * 1000);
    assert.equal(parseGoDuration("-18.245413ms"), -18.245413);
    assert.equal(parseGoDuration("0s"), 0);
    assert.equal(parseGoDuration("0"), 0);
    assert.equal(parseGoDuration("1h0m0s"), 3_600_000);
    for (const bad of ["", "3 hours", "h", "1d", "5"]) assert.equal(reason(() => parseGoDuration(bad)), "FEED_INVALID", bad);
  });

  it("reads the stream's new and deleted arrays (null: none); anything else is FEED_INVALID", () => {
    const delta = parseStream('{"deleted":null,"new":[{"duration":"1h","id":3,"origin":"cscli","scenario":"x","scope":"Ip","type":"ban","value":"2001:db8::5"}]}');
    assert.deepEqual(delta, { added: [{ id: 3, type: "ban", scope: "Ip", value: "2001:db8::5", durationMs: 3_600_000 }], deleted: [] });
    assert.deepEqual(parseStream('{"new":null,"deleted":null}'), { added: [], deleted: [] });
    assert.equal(reason(() => parseStream("<html>")), "FEED_INVALID");
    assert.equal(reason(() => parseStream('{"new":{}}')), "FEED_INVALID");
    assert.equal(reason(() => parseStream('{"new":[{"value":"192.0.2.1"}]}')), "FEED_INVALID");
  });
});

describe("crowdsec feed settings", () => {
  const base = { source: "http://127.0.0.1:8080", format: "crowdsec" as const };

  it("needs credentials, an http(s) source and a poll interval in range; other formats take none of its settings", () => {
    assert.equal(newDefinition("cs", "cs", { ...base, apiKey: "k3y" }).apiKey, "k3y");
    assert.equal(reason(() => newDefinition("cs", "cs", base)), "INVALID_SETTING");
    assert.equal(reason(() => newDefinition("cs", "cs", { ...base, apiKey: "has space" })), "INVALID_SETTING");
    assert.equal(reason(() => newDefinition("cs", "cs", { ...base, apiKey: "k", apiKeyFile: "/k" })), "INVALID_SETTING");
    assert.equal(reason(() => newDefinition("cs", "cs", { ...base, apiKeyFile: "relative/k" })), "INVALID_SETTING");
    assert.equal(reason(() => newDefinition("cs", "cs", { ...base, source: "file:///k", apiKey: "k" })), "INVALID_FEED_SOURCE");
    assert.equal(reason(() => newDefinition("cs", "cs", { ...base, apiKey: "k", pollIntervalMs: 99 })), "INVALID_SETTING");
    assert.equal(reason(() => newDefinition("cs", "cs", { ...base, apiKey: "k", pollIntervalMs: 60_001 })), "INVALID_SETTING");
    assert.equal(reason(() => newDefinition("cs", "cs", { ...base, clientCertificate: "x" })), "INVALID_SETTING");
    assert.equal(reason(() => newDefinition("list", "list", { source: "http://x/l", format: "plain", apiKey: "k" })), "INVALID_SETTING");
  });

  it("an update keeps, replaces or removes credentials, never changes the format across kinds, and never logs a key", () => {
    const current = newDefinition("cs", "cs", { ...base, apiKey: "old" });
    assert.equal(updatedDefinition(current, { apiKey: "new" }).apiKey, "new");
    assert.equal(updatedDefinition(current, { pollIntervalMs: 500 }).apiKey, "old");
    const byFile = updatedDefinition(current, { apiKey: "", apiKeyFile: "/etc/portcullis/crowdsec.key" });
    assert.equal(byFile.apiKey, undefined);
    assert.equal(byFile.apiKeyFile, "/etc/portcullis/crowdsec.key");
    assert.equal(reason(() => updatedDefinition(current, { format: "plain" })), "INVALID_SETTING");
    assert.deepEqual(settingsAttributes({ apiKey: "secret", pollIntervalMs: 500 }), { api_key: "set", poll_interval_ms: "500" });
  });
});
