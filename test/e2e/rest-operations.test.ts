import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import { contract } from "../../server/src/rest/http-rules.js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { startJailHosts, type JailHosts } from "../harness/jail-hosts.js";
import { NatsCluster } from "../harness/nats.js";
import { operationOfRequest, responseOf, routeOfRequest } from "../harness/openapi-spec.js";
import { rest } from "../harness/rest.js";
import { waitFor } from "../harness/wait.js";
import type { components } from "../../server/src/rest/gen/openapi.js";

// Request bodies typed from the spec (openapi-typescript): a contract change that breaks them fails to compile.
type Schemas = components["schemas"];

const ACCEPT_SMTP: Schemas["portcullis.v1.Rule"] = { protocol: "tcp", destinationPort: { ports: [{ first: 25, last: 25 }] }, target: { kind: "TARGET_KIND_ACCEPT" } };
const CREATE_SET: Schemas["portcullis.v1.CreateIpsetRequest"] = { ipsetId: "ops", ipset: { type: "IPSET_TYPE_HASH_NET", family: "ADDRESS_FAMILY_INET", defaultTimeout: 0, comments: true } };
const BAN: Schemas["portcullis.v1.BanIpRequest.Body"] = { address: "203.0.113.7" };
const ALLOW: Schemas["portcullis.v1.AddAllowlistEntryRequest"] = { network: "198.51.100.7", comment: "monitoring", timeout: 60 };
const FILTER = "/v1/firewall/ipv4/tables/filter";

let setup: JailHosts;
let nats: NatsCluster | undefined;
let scratch: string | undefined;
before(async () => {
  // A one-server NATS, so that the fleet operations have a fleet (of one) to answer about.
  nats = await NatsCluster.start(1);
  scratch = mkdtempSync(join(tmpdir(), "pc-rest-ops-"));
  const config = join(scratch, "config.json");
  writeFileSync(config, JSON.stringify({ cluster: { servers: nats.urls, node: "rest-ops", heartbeatSeconds: 1 } }));
  setup = await startJailHosts(["maxretry = 5", "findtime = 600", "bantime = 600"], (socket) => `portcullis.py[socket="${socket}"]`, ["--config", config]);
});
after(async () => {
  await setup?.close();
  await nats?.stop();
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
});

it("every operation answers over REST with a body the spec describes (one happy call each, in a working order)", async () => {
  const server = setup.f.server;
  const called = new Set<string>();
  /** Calls, expects 200, validates the body against the operation's 200 schema, returns the JSON. */
  const call = async (method: string, path: string, body?: unknown): Promise<any> => {
    const reply = await rest(server, method, path, body);
    assert.equal(reply.status, 200, `${method} ${path}: ${reply.text}`);
    const route = routeOfRequest(method, path);
    assert.ok(route !== undefined, `${method} ${path} is a route`);
    const { validate } = responseOf(operationOfRequest(method, path)!, 200)!;
    assert.ok(validate(reply.json), `${route.method}: ${JSON.stringify(validate.errors)} in ${reply.text.slice(0, 300)}`);
    called.add(route.method);
    return reply.json;
  };

  // Ipsets.
  await call("POST", "/v1/ipsets", CREATE_SET);
  await call("GET", "/v1/ipsets");
  await call("GET", "/v1/ipsets/ops");
  await call("POST", "/v1/ipsets/ops/entries", { entry: { element: "203.0.113.0/24", timeout: 60, comment: "ops" } });
  await call("GET", "/v1/ipsets/ops/entries?pageSize=10");
  assert.equal((await call("GET", "/v1/ipsets/ops/entries:test?element=203.0.113.5")).matched, true);
  await call("DELETE", "/v1/ipsets/ops/entries/203.0.113.0%2F24");
  await call("POST", "/v1/ipsets/ops/entries:batchAdd", { elements: ["203.0.113.1", "203.0.113.2"], timeout: 60 });
  await call("POST", "/v1/ipsets/ops/entries:batchDelete", { elements: ["203.0.113.1"] });
  assert.match((await call("GET", "/v1/ipsets:export?names=ipsets%2Fops")).content, /add ops 203\.0\.113\.2/);
  await call("POST", "/v1/ipsets:import", { content: "create imp hash:net family inet\nadd imp 198.51.100.0/24\n" });
  await call("POST", "/v1/ipsets/imp:rename", { newIpsetId: "imp2" });
  await call("POST", "/v1/ipsets/ops:swap", { other: "ipsets/imp2" });
  await call("POST", "/v1/ipsets/ops:flush", {});
  setup.hosts.victim.exec("ipset", ["create", "foreign", "hash:ip"]);
  await call("POST", "/v1/ipsets/foreign:adopt", {});
  for (const name of ["imp2", "foreign"]) await call("DELETE", `/v1/ipsets/${name}`);

  // Feeds (a file source in the test's scratch directory).
  const list = join(scratch!, "feed.list");
  writeFileSync(list, "198.51.100.0/24\n2001:db8:9::/48\n");
  const feed: Schemas["portcullis.v1.CreateFeedRequest"] = { feedId: "ops", feed: { source: pathToFileURL(list).href, format: "FEED_FORMAT_NETSET", ipset: "ipsets/opsfeed" } };
  assert.equal((await call("POST", "/v1/feeds", feed)).ipsetV6, "ipsets/opsfeed-v6");
  await call("GET", "/v1/feeds");
  await call("GET", "/v1/feeds/ops");
  await call("PATCH", "/v1/feeds/ops", { intervalSeconds: 600 });
  const refreshed = await call("POST", "/v1/feeds/ops:refresh", { force: true });
  assert.deepEqual([refreshed.changed, refreshed.feed.status.entryCount], [true, 2]);
  assert.equal((await call("GET", "/v1/ipsets/opsfeed")).feed, "feeds/ops");
  await call("DELETE", "/v1/feeds/ops");

  // Bouncers: the key comes once, in the create's answer.
  const bouncer: Schemas["portcullis.v1.CreateBouncerRequest"] = { bouncerId: "ops" };
  assert.match((await call("POST", "/v1/bouncers", bouncer)).apiKey, /^[0-9a-f]{64}$/);
  assert.equal((await call("GET", "/v1/bouncers")).bouncers[0].apiKey, undefined);
  await call("DELETE", "/v1/bouncers/ops");

  // Firewall.
  await call("GET", `${FILTER}/chains`);
  await call("POST", `${FILTER}/chains`, { chainId: "OPS" });
  await call("GET", `${FILTER}/chains/OPS`);
  const created = await call("POST", `${FILTER}/chains/OPS/rules`, { rule: ACCEPT_SMTP });
  await call("GET", `${FILTER}/chains/OPS/rules`);
  await call("GET", `${FILTER}/chains/OPS/rules/${created.id}`);
  const replaced = await call("PUT", `${FILTER}/chains/OPS/rules/${created.id}`, { rule: { ...ACCEPT_SMTP, destinationPort: { ports: [{ first: 587, last: 587 }] } } });
  await call("DELETE", `${FILTER}/chains/OPS/rules/${replaced.id}`);
  await call("DELETE", `${FILTER}/chains/OPS`);
  await call("POST", `${FILTER}/chains/INPUT:setPolicy`, { policy: "CHAIN_POLICY_ACCEPT" });
  await call("GET", "/v1/firewall/services");
  await call("POST", `${FILTER}/chains/INPUT:allowService`, { services: ["ssh"] });
  const exported = await call("GET", `${FILTER}:export`);
  assert.match(exported.text, /--dport 22 .*-j ACCEPT/);
  await call("POST", `${FILTER}:apply`, { rules: [{ chain: "INPUT", ...ACCEPT_SMTP }], confirmWithin: 60 });
  await call("POST", `${FILTER}:confirm`, {});
  await call("POST", "/v1/firewall/panic:enable", {});
  assert.equal((await call("GET", "/v1/firewall/panic")).enabled, true);
  await call("POST", "/v1/firewall/panic:disable", {});
  assert.notEqual((await call("GET", "/v1/firewall/panic")).enabled, true); // proto3 JSON leaves a false out

  // Jails and the allowlist.
  await call("GET", "/v1/jails");
  await call("GET", "/v1/jails/dovecot?view=JAIL_VIEW_FULL");
  await call("GET", "/v1/fail2ban");
  await call("POST", "/v1/jails/dovecot:ban", BAN);
  await call("POST", "/v1/jails/dovecot:batchBan", { addresses: ["203.0.113.8", "2001:db8:5::1"] });
  await call("POST", "/v1/jails/dovecot:unban", { address: "203.0.113.7" });
  await call("POST", "/v1/jails:unbanAll", {});
  await call("POST", "/v1/jails/dovecot:reportFailure", { address: "203.0.113.9", message: "imap auth failed" });
  await call("POST", "/v1/jails/dovecot:addIgnoreIp", { entry: "198.51.100.0/24" });
  await call("POST", "/v1/jails/dovecot:removeIgnoreIp", { entry: "198.51.100.0/24" });
  await call("PATCH", "/v1/jails/dovecot", { banTime: 700 });
  await call("POST", "/v1/allowlist", ALLOW);
  await call("GET", "/v1/allowlist");
  await call("POST", "/v1/allowlist:remove", { network: "198.51.100.7" });
  await call("POST", "/v1/jails/dovecot:stop", {});
  await call("POST", "/v1/jails/dovecot:start", {});
  await call("POST", "/v1/jails/-:reload", {});

  // Fleet (of one): the node's heartbeat, and where an address is banned.
  await call("POST", "/v1/jails/dovecot:ban", { address: "203.0.113.9", fleet: true });
  await waitFor("the node's heartbeat", async () => (await call("GET", "/v1/nodes")).nodes.length > 0, { every: 100 });
  assert.deepEqual((await call("GET", "/v1/nodes")).nodes.map((node: { name: string }) => node.name), ["nodes/rest-ops"]);
  const found = await call("GET", "/v1/nodes/-/bans:search?address=203.0.113.9&timeoutMs=10000"); // room for a slow host to answer
  assert.deepEqual(found.bans.map((ban: { node: string; resource: string }) => [ban.node, ban.resource]), [["nodes/rest-ops", "jails/dovecot/bans/203.0.113.9"]]);

  // Events and audit.
  await call("GET", "/v1/events:list?afterSequence=0&pageSize=100&types=EVENT_TYPE_BAN&types=EVENT_TYPE_UNBAN");
  await call("GET", "/v1/auditRecords?pageSize=10");

  // The host, and the aggregates of the event log.
  assert.equal((await call("GET", "/v1/caller")).principal, "admin");
  assert.equal((await call("GET", "/v1/overview")).fleet, true);
  assert.deepEqual((await call("GET", "/v1/jails:activity?window=ACTIVITY_WINDOW_HOUR")).jails.map((jail: { jail: string }) => jail.jail), ["jails/dovecot"]);
  assert.equal((await call("GET", "/v1/addresses:inspect?address=203.0.113.9")).jailBans[0].jail, "jails/dovecot");
  assert.equal((await call("GET", "/v1/events:banTimeline?window=ACTIVITY_WINDOW_HOUR")).buckets.length, 60);
  assert.ok((await call("GET", "/v1/events:topOffenders?window=ACTIVITY_WINDOW_HOUR")).addresses.some((offender: { address: string }) => offender.address === "203.0.113.9"));

  // WatchEvents and ExportEvents are streams (tested on their own); every other RPC was called above.
  const unary = contract().routes.filter((route) => !route.streaming).map((route) => route.method);
  assert.deepEqual(unary.filter((method) => !called.has(method)), []);
});
