import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ServerError } from "../../server/src/errors.js";
import { listReader } from "../../server/src/feeds/feed-formats.js";
import { compareKeys, ListBuilder, NO_KEYS, type ReadList } from "../../server/src/feeds/feed-list.js";
import { ProtectedNetworks } from "../../server/src/feeds/protected-networks.js";
import { newDefinition, updatedDefinition } from "../../server/src/feeds/feed-definition.js";
import { dueAtStart, nextDueAt } from "../../server/src/feeds/feed-schedule.js";
import type { FeedFormat } from "../../server/src/feeds/feed-model.js";

const reason = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (error) {
    return error instanceof ServerError ? error.reason : "not a ServerError";
  }
  return undefined;
};

/** Reads a list given in pieces (split anywhere, even inside a line) with a builder and its restore lines. */
function read(format: FeedFormat, pieces: readonly string[], protectedNetworks: readonly string[] = []): { list: ReadList; restore: string } {
  const builder = new ListBuilder(new ProtectedNetworks(protectedNetworks), { ipv4: "t4", ipv6: "t6", createLine: (family) => `create ${family === "ipv4" ? "t4" : "t6"}` });
  const reader = listReader(format, builder.add);
  let restore = "";
  for (const piece of pieces) {
    reader.push(piece);
    restore += builder.takeRestore();
  }
  reader.end();
  restore += builder.takeRestore(true);
  return { list: builder.finish(), restore };
}

const tokens = (format: FeedFormat, text: string): string[] => {
  const seen: string[] = [];
  const reader = listReader(format, (token) => seen.push(token));
  reader.push(text);
  reader.end();
  return seen;
};

describe("feed formats", () => {
  it("plain: one address or network per line, # and ; comments (whole or trailing), words after the first ignored, CRLF", () => {
    assert.deepEqual(tokens("plain", "# head\n192.0.2.1\r\n  198.51.100.0/24  # office\n; note\n\n203.0.113.5 2026-01-01\n2001:db8::1;x\n"), ["192.0.2.1", "198.51.100.0/24", "203.0.113.5", "2001:db8::1"]);
  });
  it("spamhaus: CIDR ; SBLnnn", () => {
    assert.deepEqual(tokens("spamhaus", "; Spamhaus DROP List\n1.10.16.0/20 ; SBL256894\n1.19.0.0/16 ; SBL434604\n"), ["1.10.16.0/20", "1.19.0.0/16"]);
  });
  it("netset: # comments", () => {
    assert.deepEqual(tokens("netset", "#\n# firehol_level1\n#\n0.0.0.0/8\n1.10.16.0/20"), ["0.0.0.0/8", "1.10.16.0/20"]);
  });
  it("ipset save: the element of add lines only", () => {
    assert.deepEqual(tokens("ipset-save", 'create x hash:net family inet\nadd x 192.0.2.0/24 comment "a b"\nadd x 2001:db8::/32 timeout 5\nCOMMIT\n'), ["192.0.2.0/24", "2001:db8::/32"]);
  });
  it("json: an array of strings; other items count as not an address; anything else is FEED_INVALID", () => {
    assert.deepEqual(tokens("json", '[" 192.0.2.1 ", 7, "2001:db8::/48"]'), ["192.0.2.1", "", "2001:db8::/48"]);
    assert.equal(reason(() => tokens("json", '{"a": 1}')), "FEED_INVALID");
    assert.equal(reason(() => tokens("json", "[1,")), "FEED_INVALID");
  });
  it("a line split between pieces is read whole", () => {
    assert.deepEqual(read("plain", ["192.0.", "2.1\n198.51", ".100.7"]).list.keys.ipv4.length, 2);
  });
});

describe("feed lists", () => {
  it("normalizes as ipset save prints (host bits cleared, /32 and /128 dropped, IPv6 compressed), counts repeats once", () => {
    const { list, restore } = read("plain", ["192.0.2.1\n192.0.2.1/32\n203.0.113.9/24\n198.51.100.0/25\n2001:DB8:0::1\n2001:db8::1/128\n2001:db8:1:2::/48\n"]);
    assert.equal(list.keys.ipv4.length, 3);
    assert.deepEqual(read("plain", ["10.1.2.3/08\n"]).restore, "create t4\nadd t4 10.0.0.0/8\n", "a prefix with a leading zero is read as decimal, and written without it");
    assert.deepEqual(list.keys.ipv6, ["2001:db8:1::/48", "2001:db8::1"]);
    assert.deepEqual(restore.split("\n").filter((line) => line !== ""), [
      "create t4", "add t4 192.0.2.1", "add t4 192.0.2.1", "add t4 203.0.113.0/24", "add t4 198.51.100.0/25",
      "create t6", "add t6 2001:db8::1", "add t6 2001:db8::1", "add t6 2001:db8:1::/48",
    ]);
    assert.equal(list.text, "192.0.2.1\n192.0.2.1\n203.0.113.0/24\n198.51.100.0/25\n2001:db8::1\n2001:db8::1\n2001:db8:1::/48\n");
    assert.deepEqual([list.valid, list.invalid, list.skipped], [7, 0, 0]);
  });
  it("refuses what inet_pton would not read, /0 (the kernel does not store it) and prefixes that are not numbers", () => {
    const bad = ["010.1.1.1", "1.2.3", "1.2.3.4.5", "256.1.1.1", "192.0.2.0/0", "::/0", "192.0.2.0/33", "192.0.2.0/x", "192.0.2.0/", "host.example", "192.0.2.1-192.0.2.9", "fe80::1%eth0"];
    const { list, restore } = read("plain", [`${bad.join("\n")}\n192.0.2.7\n`]);
    assert.deepEqual([list.invalid, list.valid, list.firstInvalidLine], [bad.length, 1, 1]);
    assert.equal(restore, "create t4\nadd t4 192.0.2.7\n");
  });
  it("leaves out entries that overlap a protected network, either way, and keeps them in the stored text", () => {
    const { list, restore } = read("plain", ["10.0.0.0/8\n10.9.9.9\n10.200.0.1\n127.0.0.1\n192.0.2.1\n2001:db8::/32\n2001:db9::1\n"], ["10.9.0.0/16", "127.0.0.1/32", "2001:db8:5::/48"]);
    assert.equal(restore, "create t4\nadd t4 10.200.0.1\nadd t4 192.0.2.1\ncreate t6\nadd t6 2001:db9::1\n");
    assert.equal(list.skipped, 4);
    assert.equal(list.text.split("\n").length - 1, 7);
  });
  it("compares two lists by entry", () => {
    const before = read("plain", ["192.0.2.1\n192.0.2.0/24\n2001:db8::1\n"]).list.keys;
    const after = read("plain", ["192.0.2.0/24\n192.0.2.9\n2001:db8::1\n2001:db8::2\n"]).list.keys;
    assert.deepEqual(compareKeys(before, after), { added: 2, removed: 1, kept: 2 });
    assert.deepEqual(compareKeys(NO_KEYS, after), { added: 4, removed: 0, kept: 0 });
  });
  it("the protected networks' fingerprint depends on the networks, not their order or spelling", () => {
    assert.equal(new ProtectedNetworks(["127.0.0.1/32", "::1"]).fingerprint, new ProtectedNetworks(["::1/128", "127.0.0.1"]).fingerprint);
    assert.notEqual(new ProtectedNetworks(["127.0.0.1"]).fingerprint, new ProtectedNetworks(["127.0.0.2"]).fingerprint);
  });
});

describe("feed definitions", () => {
  const base = { source: "https://lists.example/drop.txt", format: "spamhaus" as const };
  it("fills in defaults: hourly, a tenth of it as jitter (at most 300 s), 30 s timeout, 2 retries, 64 MiB, half", () => {
    const definition = newDefinition("drop", "drop", base);
    assert.deepEqual([definition.intervalSeconds, definition.jitterSeconds, definition.timeoutSeconds, definition.retries, definition.maxBytes, definition.maxShrink], [3600, 300, 30, 2, 67108864, 0.5]);
    assert.equal(newDefinition("drop", "drop", { ...base, intervalSeconds: 600 }).jitterSeconds, 60);
  });
  it("refuses what it cannot use, naming the field", () => {
    assert.equal(reason(() => newDefinition("-x", "drop", base)), "INVALID_FEED_NAME");
    assert.equal(reason(() => newDefinition("x", "a".repeat(29), base)), "INVALID_IPSET_NAME");
    for (const source of ["", "ftp://x/y", "https://u:p@x/y", "file://other/etc/list", "file:///x?y", "not a url", `https://x/${"a".repeat(2100)}`]) {
      assert.equal(reason(() => newDefinition("x", "drop", { ...base, source })), "INVALID_FEED_SOURCE", source.slice(0, 40));
    }
    assert.equal(reason(() => newDefinition("x", "drop", { source: base.source })), "INVALID_SETTING");
    for (const settings of [{ intervalSeconds: 5 }, { timeoutSeconds: 0 }, { retries: 11 }, { maxBytes: 2 ** 31 }, { maxShrink: 1.5 }, { maxShrink: Number.NaN }, { jitterSeconds: 4000 }]) {
      assert.equal(reason(() => newDefinition("x", "drop", { ...base, ...settings })), "INVALID_SETTING", JSON.stringify(settings));
    }
    assert.equal(reason(() => newDefinition("x", "drop", { ...base, ca: "not a certificate" })), "INVALID_FEED_SOURCE");
  });
  it("an update changes what it gives, shrinks a jitter that no longer fits, and clears the CA with an empty one", () => {
    const current = newDefinition("drop", "drop", base);
    const updated = updatedDefinition(current, { intervalSeconds: 100 });
    assert.deepEqual([updated.intervalSeconds, updated.jitterSeconds, updated.source], [100, 100, base.source]);
    assert.equal(updatedDefinition({ ...current, ca: "x" }, { ca: "" }).ca, undefined);
    assert.equal(reason(() => updatedDefinition(current, {})), "NOTHING_TO_UPDATE");
  });
});

describe("feed schedule", () => {
  const definition = { intervalSeconds: 3600, jitterSeconds: 300 };
  it("the next refresh is an interval plus jitter away; after failures, a minute doubling up to the interval", () => {
    assert.equal(nextDueAt(definition, 0, 0, () => 0.5), 3_750_000);
    assert.equal(nextDueAt(definition, 0, 1, () => 0), 60_000);
    assert.equal(nextDueAt(definition, 0, 3, () => 0), 240_000);
    assert.equal(nextDueAt(definition, 0, 30, () => 0), 3_600_000);
    assert.equal(nextDueAt(definition, 0, 1, () => 0.5), 90_000, "the jitter of a retry is at most its wait");
  });
  it("a restart keeps a due time in the future and spreads overdue feeds over their jitter, at most a minute", () => {
    assert.equal(dueAtStart(definition, { nextDueAt: 5000 }, 1000), 5000);
    assert.equal(dueAtStart(definition, { nextDueAt: 0 }, 1000, () => 0.5), 31_000);
    assert.equal(dueAtStart({ jitterSeconds: 0 }, { nextDueAt: 0 }, 1000, () => 0.5), 1000);
  });
});
