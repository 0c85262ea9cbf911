// Feeds: published blocklists that fill a pair of sets — every format, conditional requests, the guards, atomic swaps
// under a continuous probe, and what a restart keeps. Feed servers run on loopback; files in the test's directory.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { status } from "@grpc/grpc-js";
import { createClient, type PortcullisError } from "@portcullis/sdk";
import { FeedFormat, type Feed, type RefreshFeedResponse } from "../../server/src/gen/portcullis/v1/feed.js";
import { EventType, type Event } from "../../server/src/gen/portcullis/v1/events.js";
import { VictimAttacker } from "../harness/netns.js";
import { canConnect, listen } from "../harness/tcp.js";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";
import { EventTestClient, FeedTestClient, IpsetTestClient, rejectsWith } from "../harness/grpc-clients.js";
import { FeedServer } from "../harness/feed-server.js";
import { rest } from "../harness/rest.js";

const IMAP = 143;
const BIN = resolve(import.meta.dirname, "../../server/bin/portcullis");
/** The host allowlist protects this network (see "before"); the management addresses protect 127.0.0.1 and ::1. */
const ALLOWED = "10.9.0.0/16";

/** The list of the format tests, in two versions: what it says, and what the sets must hold after a refresh. */
const VERSIONS = [
  {
    tokens: ["198.51.100.7", "198.51.100.0/28", "203.0.113.9/24", "198.51.100.7", "2001:db8:1::/48", "2001:DB8:2::1", "127.0.0.0/8", "10.9.9.9", "not-an-address"],
    ipv4: ["198.51.100.0/28", "198.51.100.7", "203.0.113.0/24"],
    ipv6: ["2001:db8:1::/48", "2001:db8:2::1"],
  },
  {
    tokens: ["198.51.100.0/28", "203.0.113.0/24", "198.51.100.64/26", "2001:db8:1::/48", "2001:db8:3::/64", "::1", "not-an-address"],
    ipv4: ["198.51.100.0/28", "198.51.100.64/26", "203.0.113.0/24"],
    ipv6: ["2001:db8:1::/48", "2001:db8:3::/64"],
  },
] as const;

/** The list's tokens written in a format, with comments where the format has them. */
function render(format: FeedFormat, tokens: readonly string[]): string {
  switch (format) {
    case FeedFormat.FEED_FORMAT_PLAIN:
      return `# a plain list\n\n${tokens.map((token, i) => (i % 2 === 0 ? `${token}\n` : `  ${token}   # line ${i}\r\n`)).join("")}; the end\n`;
    case FeedFormat.FEED_FORMAT_SPAMHAUS:
      return `; Spamhaus DROP List 2026/12/06\n; Last-Modified: Sun, 06 Dec 2026 12:00:00 GMT\n${tokens.map((token, i) => `${token} ; SBL${100000 + i}\n`).join("")}`;
    case FeedFormat.FEED_FORMAT_NETSET:
      return `#\n# firehol_level1\n#\n${tokens.join("\n")}`;
    case FeedFormat.FEED_FORMAT_IPSET_SAVE:
      return `create bl hash:net family inet hashsize 1024 maxelem 65536\n${tokens.map((token) => `add bl ${token} comment "x"\n`).join("")}COMMIT\n`;
    case FeedFormat.FEED_FORMAT_JSON:
      return JSON.stringify(tokens.map((token) => (token === "not-an-address" ? 42 : token)));
    default:
      throw new Error(`no rendering for ${format}`);
  }
}

describe("feeds", () => {
  let hosts: VictimAttacker;
  let f: ServerFixture;
  let feeds: FeedTestClient;
  let events: EventTestClient;
  let ipsets: IpsetTestClient;
  /** The HTTP server of each feed served over HTTP, by feed. */
  const sources = new Map<string, FeedServer>();
  let dir: string;
  let listener: { stop(): void };
  const servers: FeedServer[] = [];

  const connect = (): void => {
    feeds = new FeedTestClient(f.server.address, f.server.credentials());
    events = new EventTestClient(f.server.address, f.server.credentials());
    ipsets = new IpsetTestClient(f.server.address, f.server.credentials());
  };
  const disconnect = (): void => {
    for (const client of [feeds, events, ipsets]) client?.close();
  };
  /** Waits for the refresh a new feed starts by itself to end, so that the test's own refreshes come after it. */
  const settled = (feed: string): Promise<Feed> => waitFor(async () => {
    const current = await feeds.call("getFeed", { name: `feeds/${feed}` });
    return current.status?.lastAttemptTime === undefined ? undefined : current;
  });
  const create = (feedId: string, feed: Partial<Feed> & Pick<Feed, "source" | "format" | "ipset">): Promise<Feed> =>
    feeds.call("createFeed", { feedId, feed: { name: "", ipsetV6: "", intervalSeconds: 3600, timeoutSeconds: 5, maxBytes: 0, ca: "", retries: 0, apiKey: "", apiKeyFile: "", clientCertificate: "", clientKey: "", pollIntervalMs: 0, credentialsSet: false, ...feed }, requestId: "" });
  const refresh = (feed: string, force = false): Promise<RefreshFeedResponse> => feeds.call("refreshFeed", { name: `feeds/${feed}`, force });
  /** A set's elements as `ipset save` in the namespace prints them, sorted. */
  const kernel = (set: string): string[] => hosts.victim.exec("ipset", ["save", set]).split("\n").filter((line) => line.startsWith("add ")).map((line) => line.split(" ")[2]!).sort();
  /** The same through the API (ListEntries reads a feed's set from the kernel). */
  const listed = async (set: string): Promise<string[]> => (await ipsets.call("listEntries", { parent: `ipsets/${set}`, pageSize: 0, pageToken: "", filter: "" })).entries.map((entry) => entry.element).sort();
  /** The initval ipset gives each set it makes: it changes when a set is swapped in. */
  const identity = (set: string): string => /initval (0x[0-9a-f]+)/.exec(hosts.victim.exec("ipset", ["list", "-terse", set]))![1]!;
  const lastSequence = async (): Promise<number> => (await events.call("listEvents", { afterSequence: 0, pageSize: 1, types: [], resourcePrefix: "", principal: "", jail: "", address: "" })).lastSequence;
  const eventsAfter = async (sequence: number, prefix: string): Promise<Event[]> => (await events.call("listEvents", { afterSequence: sequence, pageSize: 1000, types: [], resourcePrefix: prefix, principal: "", jail: "", address: "" })).events;
  const served = async (text: string): Promise<FeedServer> => {
    const server = await FeedServer.start(text);
    servers.push(server);
    return server;
  };

  before(async () => {
    hosts = new VictimAttacker();
    dir = mkdtempSync(join(tmpdir(), "pc-feeds-"));
    f = await startServerFixture(hosts.victim);
    connect();
    listener = await listen(hosts.victim.name, IMAP);
    const allowed = await rest(f.server, "POST", "/v1/allowlist", { network: ALLOWED, comment: "monitoring" });
    assert.equal(allowed.status, 200, allowed.text);
  });

  after(async () => {
    listener?.stop();
    disconnect();
    await f?.close();
    hosts?.destroy();
    for (const server of servers) await server.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  const formats = [
    ["plain", FeedFormat.FEED_FORMAT_PLAIN, "http"],
    ["spamhaus", FeedFormat.FEED_FORMAT_SPAMHAUS, "http"],
    ["netset", FeedFormat.FEED_FORMAT_NETSET, "file"],
    ["ipset-save", FeedFormat.FEED_FORMAT_IPSET_SAVE, "file"],
    ["json", FeedFormat.FEED_FORMAT_JSON, "http"],
  ] as const;
  for (const [label, format, transport] of formats) {
    it(`${label} (${transport}): after the list changes, a refresh makes both sets equal to it, less what is protected`, async () => {
      const id = `fmt-${label}`;
      const set = `f-${label}`;
      const file = join(dir, `${label}.list`);
      let server: FeedServer | undefined;
      const publish = async (text: string): Promise<string> => {
        if (transport === "file") {
          writeFileSync(file, text);
          return pathToFileURL(file).href;
        }
        if (server === undefined) sources.set(id, (server = await served(text)));
        else server.setText(text);
        return server.url;
      };
      const source = await publish(render(format, VERSIONS[0].tokens));
      const created = await create(id, { source, format, ipset: `ipsets/${set}` });
      assert.equal(created.ipsetV6, `ipsets/${set}-v6`);
      // The first refresh starts at once by itself.
      await settled(id);
      for (const [version, expected] of VERSIONS.entries()) {
        if (version > 0) {
          await publish(render(format, expected.tokens));
          const answer = await refresh(id);
          assert.equal(answer.changed, true);
          assert.deepEqual([answer.addedCount, answer.removedCount, answer.keptCount, answer.skippedCount, answer.invalidCount], [2, 2, 3, 1, 1]);
        }
        assert.deepEqual(kernel(set), [...expected.ipv4].sort(), "the IPv4 set in the kernel");
        assert.deepEqual(kernel(`${set}-v6`), [...expected.ipv6].sort(), "the IPv6 set in the kernel");
        assert.deepEqual(await listed(set), [...expected.ipv4].sort(), "the IPv4 set through the API");
        assert.deepEqual(await listed(`${set}-v6`), [...expected.ipv6].sort(), "the IPv6 set through the API");
      }
      const feed = await feeds.call("getFeed", { name: `feeds/${id}` });
      assert.equal(feed.status?.entryCount, 5);
      assert.equal(feed.status?.skippedCount, 1, "::1, a management address");
      assert.equal(feed.status?.invalidCount, 1);
      assert.equal(feed.status?.consecutiveFailures, 0);
      assert.ok(feed.status?.lastSuccessTime !== undefined);
      assert.notEqual(feed.status?.etag, "", "the validator kept for the next conditional read");
      const ipset = await ipsets.call("getIpset", { name: `ipsets/${set}` });
      assert.equal(ipset.feed, `feeds/${id}`);
      assert.equal(ipset.managed, false);
    });
  }

  it("a feed's sets are read-only through IpsetService, and their names are taken", async () => {
    const error = await rejectsWith(ipsets.call("addEntry", { parent: "ipsets/f-plain", entry: { name: "", element: "192.0.2.77", comment: "" } }), status.FAILED_PRECONDITION, "IPSET_OWNED_BY_FEED");
    assert.match(error.details, /feeds\/fmt-plain/);
    await rejectsWith(ipsets.call("adoptIpset", { name: "ipsets/f-plain-v6" }), status.FAILED_PRECONDITION, "IPSET_OWNED_BY_FEED");
    await rejectsWith(create("again", { source: "https://127.0.0.1:1/x", format: FeedFormat.FEED_FORMAT_PLAIN, ipset: "ipsets/f-plain" }), status.ALREADY_EXISTS, "IPSET_ALREADY_EXISTS");
    await rejectsWith(create("fmt-plain", { source: "https://127.0.0.1:1/x", format: FeedFormat.FEED_FORMAT_PLAIN, ipset: "ipsets/fresh" }), status.ALREADY_EXISTS, "FEED_ALREADY_EXISTS");
    await rejectsWith(create("bad", { source: "ftp://127.0.0.1/x", format: FeedFormat.FEED_FORMAT_PLAIN, ipset: "ipsets/fresh" }), status.INVALID_ARGUMENT, "INVALID_FEED_SOURCE");
    await rejectsWith(create("bad", { source: "https://user:secret@127.0.0.1/x", format: FeedFormat.FEED_FORMAT_PLAIN, ipset: "ipsets/fresh" }), status.INVALID_ARGUMENT, "INVALID_FEED_SOURCE");
    await rejectsWith(create("bad", { source: "https://127.0.0.1/x", format: FeedFormat.FEED_FORMAT_PLAIN, ipset: "ipsets/abcdefghijklmnopqrstuvwxyz123" }), status.INVALID_ARGUMENT, "INVALID_IPSET_NAME");
    // Files only from the folders the config names (the harness: the temporary folder), `..` resolved first.
    const outside = await rejectsWith(create("bad", { source: "file:///etc/passwd", format: FeedFormat.FEED_FORMAT_PLAIN, ipset: "ipsets/fresh" }), status.INVALID_ARGUMENT, "INVALID_FEED_SOURCE");
    assert.match(outside.details, /outside the folders feeds may read/);
    await rejectsWith(create("bad", { source: pathToFileURL(tmpdir()).href + "/../etc/passwd", format: FeedFormat.FEED_FORMAT_PLAIN, ipset: "ipsets/fresh" }), status.INVALID_ARGUMENT, "INVALID_FEED_SOURCE");
    await rejectsWith(create("bad", { source: "http://127.0.0.1:9", format: FeedFormat.FEED_FORMAT_CROWDSEC, ipset: "ipsets/fresh", apiKeyFile: "/etc/hostname" }), status.INVALID_ARGUMENT, "INVALID_SETTING");
    await rejectsWith(feeds.call("updateFeed", { name: "feeds/fmt-plain", source: "file:///etc/shadow" }), status.INVALID_ARGUMENT, "INVALID_FEED_SOURCE");
  });

  it("304: a list the source says is unchanged costs no parse, no swap and no event", async () => {
    const server = await served(render(FeedFormat.FEED_FORMAT_PLAIN, VERSIONS[0].tokens));
    await create("cond", { source: server.url, format: FeedFormat.FEED_FORMAT_PLAIN, ipset: "ipsets/cond" });
    await settled("cond");
    const [v4, v6] = [identity("cond"), identity("cond-v6")];
    const sequence = await lastSequence();
    const asked = server.requests.length;
    const answer = await refresh("cond");
    assert.equal(answer.changed, false);
    assert.deepEqual(server.requests.slice(asked), [{ conditional: true, status: 304 }]);
    assert.deepEqual([identity("cond"), identity("cond-v6")], [v4, v6], "the sets were not swapped");
    assert.deepEqual(await eventsAfter(sequence, "feeds/cond"), [], "no event");
    // With force the list is read and applied again, even unchanged.
    assert.equal((await refresh("cond", true)).changed, true);
    assert.notEqual(identity("cond"), v4);
  });

  it("a source that is down leaves the sets as they were, with FEED_FAILED", async () => {
    const server = await served(render(FeedFormat.FEED_FORMAT_PLAIN, VERSIONS[0].tokens));
    await create("down", { source: server.url, format: FeedFormat.FEED_FORMAT_PLAIN, ipset: "ipsets/down" });
    await settled("down");
    const sequence = await lastSequence();
    await server.close();
    servers.splice(servers.indexOf(server), 1);
    const refused = await rejectsWith(refresh("down", true), status.UNAVAILABLE, "FEED_UNAVAILABLE");
    assert.match(refused.details, /connection was refused/);
    assert.deepEqual(kernel("down"), [...VERSIONS[0].ipv4].sort());
    const failed = (await eventsAfter(sequence, "feeds/down")).filter((event) => event.type === EventType.EVENT_TYPE_FEED_FAILED);
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.attributes.reason, "FEED_UNAVAILABLE");
    assert.match(failed[0]!.attributes.detail!, /refused/);
    const feed = await feeds.call("getFeed", { name: "feeds/down" });
    assert.equal(feed.status?.consecutiveFailures, 1);
    assert.ok(feed.status!.nextRefreshTime!.getTime() - Date.now() <= 120_000, "after a failure the next try comes after a minute (plus at most as much jitter), not an hour");
    assert.equal(feed.status?.lastErrorReason, "FEED_UNAVAILABLE");
    assert.equal(feed.status?.entryCount, 5, "the sets as they were");
  });

  it("an empty list is refused by the shrink guard; a too large one and one not in the format are refused", async () => {
    const file = join(dir, "guarded.list");
    writeFileSync(file, render(FeedFormat.FEED_FORMAT_PLAIN, VERSIONS[0].tokens));
    await create("guarded", { source: pathToFileURL(file).href, format: FeedFormat.FEED_FORMAT_PLAIN, ipset: "ipsets/guarded", maxBytes: 4096 });
    await settled("guarded");
    const before = [identity("guarded"), kernel("guarded"), kernel("guarded-v6")];
    const sequence = await lastSequence();

    writeFileSync(file, "");
    const shrank = await rejectsWith(refresh("guarded"), status.FAILED_PRECONDITION, "FEED_SHRANK");
    assert.match(shrank.details, /from 5 to 0 entries.*max_shrink of 0\.5/);
    writeFileSync(file, `${"203.0.113.1\n".repeat(400)}`);
    await rejectsWith(refresh("guarded"), status.FAILED_PRECONDITION, "FEED_TOO_LARGE");
    writeFileSync(file, "<html><body>\n<h1>Service unavailable</h1>\n</body></html>\n");
    await rejectsWith(refresh("guarded"), status.FAILED_PRECONDITION, "FEED_INVALID");

    assert.deepEqual([identity("guarded"), kernel("guarded"), kernel("guarded-v6")], before, "the sets stayed as they were");
    const failed = (await eventsAfter(sequence, "feeds/guarded")).filter((event) => event.type === EventType.EVENT_TYPE_FEED_FAILED);
    assert.deepEqual(failed.map((event) => event.attributes.reason), ["FEED_SHRANK", "FEED_TOO_LARGE", "FEED_INVALID"]);
    assert.match(failed[0]!.attributes.detail!, /shrink the sets from 5 to 0/);
    // A list that shrank by half or less is taken.
    writeFileSync(file, "198.51.100.7\n198.51.100.0/28\n203.0.113.0/24\n");
    assert.equal((await refresh("guarded")).removedCount, 2);
  });

  it("a source that stalls is given up after the feed's timeout, the sets left as they were", async () => {
    const server = sources.get("fmt-plain")!;
    server.stall = true;
    try {
      await feeds.call("updateFeed", { name: "feeds/fmt-plain", timeoutSeconds: 1 });
      const started = Date.now();
      const refused = await rejectsWith(refresh("fmt-plain", true), status.UNAVAILABLE, "FEED_UNAVAILABLE");
      assert.match(refused.details, /within the feed's timeout of 1 s/);
      assert.ok(Date.now() - started < 5000);
      assert.deepEqual(kernel("f-plain"), [...VERSIONS[1].ipv4].sort());
    } finally {
      server.stall = false;
      await feeds.call("updateFeed", { name: "feeds/fmt-plain", timeoutSeconds: 5 });
    }
  });

  it("a scheduled refresh tries an unavailable source again, 1 then 2 seconds later", async () => {
    const server = await served(render(FeedFormat.FEED_FORMAT_PLAIN, VERSIONS[0].tokens));
    server.failNext = 2;
    const started = Date.now();
    await create("retried", { source: server.url, format: FeedFormat.FEED_FORMAT_PLAIN, ipset: "ipsets/retried", retries: 2 });
    const feed = await settled("retried");
    assert.ok(Date.now() - started >= 3000, "backoff of 1 s, then 2 s");
    assert.deepEqual(server.requests.map((request) => request.status), [503, 503, 200]);
    assert.equal(feed.status?.consecutiveFailures, 0);
    assert.deepEqual(kernel("retried"), [...VERSIONS[0].ipv4].sort());
    await feeds.call("deleteFeed", { name: "feeds/retried" });
  });

  it("an https source is read with the feed's CA, and refused without it", async () => {
    const pki = join(f.server.dataDir, "pki");
    const server = await FeedServer.start(render(FeedFormat.FEED_FORMAT_PLAIN, VERSIONS[0].tokens), { cert: readFileSync(join(pki, "server.crt")), key: readFileSync(join(pki, "server.key")) });
    servers.push(server);
    await create("tls", { source: server.url, format: FeedFormat.FEED_FORMAT_PLAIN, ipset: "ipsets/tls", ca: readFileSync(join(pki, "ca.crt"), "utf8") });
    assert.equal((await settled("tls")).status?.entryCount, 5);
    await feeds.call("updateFeed", { name: "feeds/tls", ca: "" });
    const refused = await rejectsWith(refresh("tls", true), status.UNAVAILABLE, "FEED_UNAVAILABLE");
    assert.match(refused.details, /certificate is not trusted/);
    await feeds.call("deleteFeed", { name: "feeds/tls" });
  });

  it("metrics: each feed's last success, entries and failures; events of changes to feeds", async () => {
    const metrics = (await rest(f.server, "GET", "/metrics")).text;
    assert.match(metrics, /^portcullis_feed_entries\{feed="fmt-plain"\} 5$/m);
    assert.match(metrics, /^portcullis_feed_skipped_entries\{feed="fmt-plain"\} 1$/m);
    assert.match(metrics, /^portcullis_feed_last_success_timestamp_seconds\{feed="fmt-plain"\} 1\d{9}(\.\d+)?$/m);
    assert.match(metrics, /^portcullis_feed_failures_total\{feed="down",reason="FEED_UNAVAILABLE"\} 1$/m);
    assert.match(metrics, /^portcullis_feed_failures_total\{feed="guarded",reason="FEED_SHRANK"\} 1$/m);
    assert.match(metrics, /^portcullis_feed_refreshes_total\{feed="fmt-plain"\} 2$/m);
    const types = (await eventsAfter(0, "feeds/retried")).map((event) => EventType[event.type]);
    assert.deepEqual(types, ["EVENT_TYPE_FEED_CREATED", "EVENT_TYPE_FEED_REFRESHED", "EVENT_TYPE_FEED_DELETED"]);
    const updated = (await eventsAfter(0, "feeds/tls")).find((event) => event.type === EventType.EVENT_TYPE_FEED_UPDATED);
    assert.deepEqual(updated?.attributes, { ca: "none" });
  });

  it("an allowlist entry added later takes the listed network holding it out of the sets; removed, it comes back", async () => {
    const sequence = await lastSequence();
    assert.equal((await rest(f.server, "POST", "/v1/allowlist", { network: "198.51.100.7", comment: "partner" })).status, 200);
    const refiltered = await waitFor(async () => (await eventsAfter(sequence, "feeds/fmt-plain")).find((event) => event.type === EventType.EVENT_TYPE_FEED_REFRESHED));
    assert.equal(refiltered.attributes.cause, "allowlist");
    assert.equal(refiltered.attributes.removed, "1");
    assert.equal(refiltered.principal, "system");
    assert.deepEqual(kernel("f-plain"), ["198.51.100.64/26", "203.0.113.0/24"], "198.51.100.0/28 holds the allowlisted address");
    const later = await lastSequence();
    assert.equal((await rest(f.server, "POST", "/v1/allowlist:remove", { network: "198.51.100.7" })).status, 200);
    await waitFor(async () => (await eventsAfter(later, "feeds/fmt-plain")).find((event) => event.type === EventType.EVENT_TYPE_FEED_REFRESHED));
    assert.deepEqual(kernel("f-plain"), [...VERSIONS[1].ipv4].sort());
  });

  describe("packet level", () => {
    let server: FeedServer;
    const listing = (attacker: boolean, extra: readonly string[] = []): string =>
      [...(attacker ? [VictimAttacker.attackerV4, VictimAttacker.attackerV6] : []), "203.0.113.0/24", "2001:db8:f00::/48", ...extra].join("\n");

    before(async () => {
      server = await served(listing(true));
      await create("attackers", { source: server.url, format: FeedFormat.FEED_FORMAT_PLAIN, ipset: "ipsets/attackers", maxShrink: 1 });
      await settled("attackers");
      hosts.victim.exec("iptables", ["-I", "INPUT", "-m", "set", "--match-set", "attackers", "src", "-j", "DROP"]);
      hosts.victim.exec("ip6tables", ["-I", "INPUT", "-m", "set", "--match-set", "attackers-v6", "src", "-j", "DROP"]);
    });

    it("a listed attacker is dropped; taken off the list, it connects after the next refresh", async () => {
      assert.equal(await canConnect(hosts.attacker.name, VictimAttacker.victimV4, IMAP), false);
      assert.equal(await canConnect(hosts.attacker.name, VictimAttacker.victimV6, IMAP), false);
      server.setText(listing(false));
      await refresh("attackers");
      assert.equal(await canConnect(hosts.attacker.name, VictimAttacker.victimV4, IMAP), true);
      assert.equal(await canConnect(hosts.attacker.name, VictimAttacker.victimV6, IMAP), true);
      server.setText(listing(true));
      await refresh("attackers");
      assert.equal(await canConnect(hosts.attacker.name, VictimAttacker.victimV4, IMAP), false);
    });

    it("a continuous probe from a listed address never gets through during 20 refreshes that swap", async () => {
      const probe = startProbe(hosts.attacker.name, VictimAttacker.victimV4, IMAP);
      const swapped: string[] = [];
      try {
        await new Promise((resolve) => setTimeout(resolve, 200));
        for (let i = 0; i < 20; i++) {
          // Each list differs from the last (other entries come and go), so each refresh builds and swaps in a new set.
          server.setText(listing(true, Array.from({ length: 50 }, (_, k) => `198.51.${i}.${k}`)));
          const answer = await refresh("attackers");
          assert.equal(answer.changed, true);
          swapped.push(identity("attackers"));
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      } finally {
        const result = await probe.stop();
        assert.equal(new Set(swapped).size, 20, "every refresh swapped a new set in");
        assert.ok(result.attempts >= 100, `the probe made ${result.attempts} connects`);
        assert.equal(result.connected, 0, `${result.connected} of ${result.attempts} connects got through`);
      }
    });

    after(() => {
      hosts.victim.exec("iptables", ["-D", "INPUT", "-m", "set", "--match-set", "attackers", "src", "-j", "DROP"]);
      hosts.victim.exec("ip6tables", ["-D", "INPUT", "-m", "set", "--match-set", "attackers-v6", "src", "-j", "DROP"]);
    });
  });

  it("a rule that uses a feed's set keeps the feed from being deleted; without it, the feed and its sets go", async () => {
    hosts.victim.exec("iptables", ["-I", "INPUT", "-m", "set", "--match-set", "cond", "src", "-j", "DROP"]);
    await rejectsWith(feeds.call("deleteFeed", { name: "feeds/cond" }), status.FAILED_PRECONDITION, "IPSET_IN_USE");
    assert.deepEqual(kernel("cond"), [...VERSIONS[0].ipv4].sort());
    hosts.victim.exec("iptables", ["-D", "INPUT", "-m", "set", "--match-set", "cond", "src", "-j", "DROP"]);
    await feeds.call("deleteFeed", { name: "feeds/cond" });
    assert.throws(() => hosts.victim.exec("ipset", ["list", "-terse", "cond"]), /does not exist/);
    assert.throws(() => hosts.victim.exec("ipset", ["list", "-terse", "cond-v6"]), /does not exist/);
    await rejectsWith(feeds.call("getFeed", { name: "feeds/cond" }), status.NOT_FOUND, "FEED_NOT_FOUND");
  });

  it("through the SDK (client.feeds) and the CLI (portcullis feeds add|list|show|update|refresh|delete)", async () => {
    const file = join(dir, "sdk.list");
    writeFileSync(file, "198.51.100.1\n2001:db8:5::/64\n");
    const client = createClient({ address: f.server.address, bundle: join(f.server.dataDir, "pki/clients/admin") });
    try {
      const refreshed: string[] = [];
      const subscription = client.feeds.onDidRefresh((event) => refreshed.push(`${event.resource} ${event.attributes.added}`));
      const created = await client.feeds.create("sdk", { source: pathToFileURL(file).href, format: "netset", ipset: "sdk", intervalSeconds: 600, maxShrink: 0.25 });
      assert.deepEqual([created.name, created.ipset, created.ipsetV6, created.format, created.intervalSeconds, created.jitterSeconds, created.maxShrink], ["sdk", "sdk", "sdk-v6", "netset", 600, 60, 0.25]);
      assert.ok(Object.isFrozen(created) && Object.isFrozen(created.status));
      await waitFor(async () => ((await client.feeds.get("sdk")).status.lastSuccessTime === undefined ? undefined : true));
      writeFileSync(file, "198.51.100.1\n198.51.100.2\n2001:db8:5::/64\n");
      const result = await client.feeds.refresh("sdk");
      assert.deepEqual([result.changed, result.added, result.removed, result.kept, result.feed.status.entryCount], [true, 1, 0, 2, 3]);
      assert.deepEqual((await client.ipsets.get("sdk")).feed, "sdk");
      const updated = await client.feeds.update("sdk", { intervalSeconds: 1200, format: "plain" });
      assert.deepEqual([updated.intervalSeconds, updated.format, updated.jitterSeconds], [1200, "plain", 60]);
      assert.deepEqual((await client.feeds.list()).map((feed) => feed.name).filter((name) => name === "sdk"), ["sdk"]);
      await waitFor(async () => (refreshed.length >= 2 ? true : undefined));
      assert.deepEqual(refreshed.slice(0, 2), ["feeds/sdk 2", "feeds/sdk 1"]);
      subscription.dispose();
      await client.feeds.delete("sdk");
      await assert.rejects(client.feeds.get("sdk"), (error: PortcullisError) => error.code === "NotFound" && error.reason === "FEED_NOT_FOUND");
    } finally {
      client.dispose();
    }

    const env = { ...process.env, PORTCULLIS_ADDRESS: f.server.address, PORTCULLIS_BUNDLE: join(f.server.dataDir, "pki/clients/admin") };
    const cli = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => new Promise((resolvePromise) =>
      execFile(BIN, args, { env, encoding: "utf8" }, (error, stdout, stderr) => resolvePromise({ code: error === null ? 0 : Number(error.code), stdout, stderr })));
    const added = await cli("feeds", "add", "cli", "--source", pathToFileURL(file).href, "--ipset", "cliset", "--format", "netset", "--interval", "900", "--json");
    assert.equal(added.code, 0, added.stderr);
    assert.equal(JSON.parse(added.stdout).ipsetV6, "cliset-v6");
    await waitFor(async () => (JSON.parse((await cli("feeds", "show", "cli", "--json")).stdout).status.lastSuccessTime === undefined ? undefined : true));
    assert.match((await cli("feeds", "list")).stdout, /^cli\s+cliset, cliset-v6\s+3\s+0\s+\S+\s+\S+\s+ok$/m);
    assert.match((await cli("feeds", "show", "cli")).stdout, /Sets: cliset \(IPv4\), cliset-v6 \(IPv6\)/);
    assert.match((await cli("feeds", "refresh", "cli")).stdout, /cli is unchanged at the source/);
    assert.match((await cli("feeds", "refresh", "cli", "--force")).stdout, /refreshed cli: 0 added, 0 removed, 3 kept/);
    writeFileSync(file, "");
    const refused = await cli("feeds", "refresh", "cli");
    assert.equal(refused.code, 4, "FAILED_PRECONDITION: exit 4");
    assert.match(refused.stderr, /FEED_SHRANK/);
    const nothing = await cli("feeds", "update", "cli");
    assert.notEqual(nothing.code, 0);
    assert.match(nothing.stderr, /NOTHING_TO_UPDATE/);
    const updated = await cli("feeds", "update", "cli", "--max-shrink", "1", "--interval", "1200", "--json");
    assert.equal(updated.code, 0, updated.stderr);
    assert.deepEqual([JSON.parse(updated.stdout).maxShrink, JSON.parse(updated.stdout).intervalSeconds], [1, 1200]);
    assert.match((await cli("feeds", "refresh", "cli")).stdout, /refreshed cli: 0 added, 3 removed, 0 kept/);
    assert.equal((await cli("feeds", "delete", "cli")).code, 0);
    assert.equal((await cli("feeds", "show", "cli")).code, 3);
  });

  it("a restart keeps the feeds' state (no refetch at start, a conditional read then gets 304) and rebuilds sets the kernel lost", async () => {
    const id = "fmt-plain";
    const set = "f-plain";
    const server = sources.get(id)!;
    const feed = await feeds.call("getFeed", { name: `feeds/${id}` });
    const before = { v4: kernel(set), v6: kernel(`${set}-v6`) };
    disconnect();
    await f.server.kill("SIGTERM");
    // The kernel loses state while the server is down: one set emptied, one destroyed.
    hosts.victim.exec("ipset", ["flush", set]);
    hosts.victim.exec("ipset", ["destroy", "f-netset-v6"]);
    const asked = server.requests.length;
    await f.server.restart();
    connect();
    assert.deepEqual(kernel(set), before.v4, "rebuilt from the stored list");
    assert.deepEqual(kernel(`${set}-v6`), before.v6);
    assert.deepEqual(kernel("f-netset-v6"), VERSIONS[1].ipv6.slice().sort(), "recreated from the stored list");
    const repaired = (await eventsAfter(0, "feeds/")).filter((event) => event.type === EventType.EVENT_TYPE_STATE_REPAIRED).map((event) => event.resource);
    assert.ok(repaired.includes(feed.name) && repaired.includes("feeds/fmt-netset"), repaired.join(", "));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(server.requests.length, asked, "nothing was fetched at start");
    const after = await feeds.call("getFeed", { name: feed.name });
    assert.equal(after.status?.etag, feed.status?.etag);
    assert.deepEqual(after.status?.lastSuccessTime, feed.status?.lastSuccessTime);
    assert.deepEqual(after.status?.nextRefreshTime, feed.status?.nextRefreshTime);
    assert.equal((await refresh(id)).changed, false);
    assert.deepEqual(server.requests.slice(asked), [{ conditional: true, status: 304 }]);
  });
});

async function waitFor<T>(probe: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  for (const deadline = Date.now() + ms; ;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** New TCP connects every few milliseconds from a namespace, each given 300 ms; counts those that get through. */
const PROBE = `
const net = require("node:net");
let attempts = 0, connected = 0, open = 0, stopping = false;
const timer = setInterval(() => {
  attempts++; open++;
  const socket = net.connect({ host: process.argv[1], port: Number(process.argv[2]) });
  socket.setTimeout(300);
  const done = () => { open--; socket.destroy(); };
  socket.on("connect", () => { connected++; done(); });
  socket.on("timeout", done);
  socket.on("error", done);
}, 4);
process.on("SIGTERM", () => {
  clearInterval(timer);
  const finish = () => (open === 0 ? (console.log(JSON.stringify({ attempts, connected })), process.exit(0)) : setTimeout(finish, 20));
  finish();
});
console.log("ready");
`;

function startProbe(netns: string, host: string, port: number): { stop(): Promise<{ attempts: number; connected: number }> } {
  const child = spawn("ip", ["netns", "exec", netns, process.execPath, "-e", PROBE, host, String(port)], { stdio: ["ignore", "pipe", "inherit"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  return {
    stop: async () => {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      await exited;
      const line = output.split("\n").find((candidate) => candidate.startsWith("{"));
      return line === undefined ? { attempts: 0, connected: -1 } : (JSON.parse(line) as { attempts: number; connected: number });
    },
  };
}
