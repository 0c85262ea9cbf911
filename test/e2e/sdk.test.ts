import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient, CancellationTokenSource, PortcullisError, type BanEvent, type HostEvent, type PortcullisClient } from "@portcullis/sdk";
import { VictimAttacker } from "../harness/netns.js";
import { canConnect, freePort } from "../harness/tcp.js";
import { startJailHosts, type JailHosts } from "../harness/jail-hosts.js";
import { waitFor } from "../harness/wait.js";

const { victimV4, attackerV4 } = VictimAttacker;


let setup: JailHosts;
let client: PortcullisClient;
before(async () => {
  const port = await freePort();
  setup = await startJailHosts(["maxretry = 5", "findtime = 600", "bantime = 600"], (socket) => `portcullis.py[socket="${socket}"]`, ["--grpc-address", `127.0.0.1:${port}`]);
  client = createClient({ address: setup.f.server.address, bundle: join(setup.f.server.dataDir, "pki/clients/admin") });
});
after(async () => {
  client?.dispose();
  await setup?.close();
});

it("SDK: jails.ban/unban with onDidBan/onDidUnban, proven by TCP connects; typed errors; cancellation", async () => {
  const { hosts } = setup;
  const bans: BanEvent[] = [];
  const unbans: BanEvent[] = [];
  // No wait for the stream to open: the client's writes wait until it knows where it starts.
  const subscriptions = [client.jails.onDidBan((event) => bans.push(event)), client.jails.onDidUnban((event) => unbans.push(event))];
  assert.deepEqual(await client.jails.ban("dovecot", attackerV4), ["dovecot"]);
  assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false, "banned: the connect must fail");
  assert.deepEqual((await client.jails.status("dovecot")).banned, [attackerV4]);
  assert.deepEqual(await client.jails.unban("dovecot", attackerV4), ["dovecot"]);
  assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true, "unbanned: the connect must succeed");
  await waitFor("the UNBAN event", () => unbans.length > 0, { every: 20 });
  assert.deepEqual(bans.map((event) => [event.jail, event.address, event.event.principal]), [["dovecot", attackerV4, "admin"]]);
  assert.deepEqual(unbans.map((event) => [event.jail, event.address]), [["dovecot", attackerV4]]);
  assert.ok(Object.isFrozen(bans[0]) && Object.isFrozen(bans[0]!.event));

  const error = await client.jails.status("nojail").then(() => undefined, (caught: unknown) => caught);
  assert.ok(error instanceof PortcullisError);
  assert.deepEqual([error.code, error.reason], ["NotFound", "JAIL_NOT_FOUND"]);
  const source = new CancellationTokenSource();
  source.cancel();
  const cancelled = await client.jails.list(source.token).then(() => undefined, (caught: unknown) => caught);
  assert.ok(cancelled instanceof PortcullisError && cancelled.code === "Cancelled");
  for (const subscription of subscriptions) subscription.dispose();
});

it("SDK: banMany, the allowlist (which lifts the bans it covers), reportFailure", async () => {
  const { hosts } = setup;
  assert.equal(await client.jails.banMany("dovecot", [attackerV4, "203.0.113.5", "203.0.113.6"]), 3);
  assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false, "banned: the connect must fail");
  const { entry, lifted } = await client.jails.allowlist.add("192.0.2.0/24", { comment: "office", timeout: 600 });
  assert.deepEqual([entry.network, entry.comment, entry.createdBy, entry.expireTime !== undefined], ["192.0.2.0/24", "office", "admin", true]);
  assert.deepEqual(lifted, [{ jail: "dovecot", address: attackerV4 }]);
  assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true, "allowlisted: the connect must succeed");
  assert.deepEqual((await client.jails.allowlist.list()).map((item) => item.network), ["192.0.2.0/24"]);
  const refused = await client.jails.ban("dovecot", attackerV4).then(() => undefined, (caught: unknown) => caught);
  assert.ok(refused instanceof PortcullisError && refused.code === "FailedPrecondition" && refused.reason === "ADDRESS_ALLOWLISTED");
  await client.jails.allowlist.remove("192.0.2.0/24");
  assert.deepEqual(await client.jails.allowlist.list(), []);
  for (let i = 0; i < 5; i++) await client.jails.reportFailure("dovecot", attackerV4, "imap auth failed (sdk)");
  await waitFor("fail2ban's ban", async () => (await client.jails.status("dovecot")).banned.includes(attackerV4), { every: 100 });
  assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false, "five reported failures ban");
  await client.jails.unban("-", attackerV4);
  for (const address of ["203.0.113.5", "203.0.113.6"]) await client.jails.unban("dovecot", address);

  // A ban with its own duration and a reason: the BAN event carries both, the server lifts it when it ends.
  const timed = await client.jails.ban("dovecot", attackerV4, { duration: 2, reason: "sdk test" });
  assert.deepEqual(timed, ["dovecot"]);
  assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false, "banned for 2 s: the connect must fail");
  const [ban] = (await client.events.list({ types: ["BAN"], address: attackerV4, newestFirst: true, limit: 1 })).events;
  assert.deepEqual([ban?.attributes.reason, ban?.attributes.duration], ["sdk test", "2"]);
  await waitFor("the 2 s ban lifted by the server", async () => canConnect(hosts.attacker.name, victimV4, 143), { within: 10_000, every: 100 });
  const tooLong = await client.jails.ban("dovecot", attackerV4, { duration: 601 }).then(() => undefined, (caught: unknown) => caught);
  assert.ok(tooLong instanceof PortcullisError && tooLong.reason === "BAN_DURATION_EXCEEDS_BANTIME");
});

it("SDK: ipsets add/test/entries/remove with plain strings", async () => {
  const created = await client.ipsets.create("sdk", { type: "hash:net", timeout: 0, comments: true });
  assert.deepEqual([created.name, created.type, created.family, created.managed], ["sdk", "hash:net", "inet", true]);
  const again = await client.ipsets.create("sdk", { type: "hash:net" }).then(() => undefined, (caught: unknown) => caught);
  assert.ok(again instanceof PortcullisError && again.code === "AlreadyExists");
  assert.equal(await client.ipsets.add("sdk", ["192.0.2.1", "203.0.113.0/24"], { timeout: 600, comment: "sdk" }), 2);
  assert.equal(await client.ipsets.test("sdk", "203.0.113.77"), true);
  assert.deepEqual((await client.ipsets.entries("sdk")).map((entry) => [entry.element, entry.comment]), [["192.0.2.1", "sdk"], ["203.0.113.0/24", "sdk"]]);
  await client.ipsets.remove("sdk", "203.0.113.0/24");
  assert.equal(await client.ipsets.test("sdk", "203.0.113.77"), false);
  assert.equal((await client.ipsets.get("sdk")).entryCount, 1);
  // In a set of single addresses a network is an entry per address, and the count says so.
  await client.ipsets.create("sdk_ip", { type: "hash:ip" });
  assert.equal(await client.ipsets.add("sdk_ip", ["192.0.2.0/30"]), 4);
  assert.equal(await client.ipsets.add("sdk_ip", ["198.51.100.7"]), 1);
  assert.equal((await client.ipsets.get("sdk_ip")).entryCount, 5);
});

it("SDK: firewall rules in plain words — the seed's set DROP rule drops the attacker; delete by id lets it through", async () => {
  const { hosts } = setup;
  await client.ipsets.create("fw_sdk", { type: "hash:ip" });
  await client.ipsets.add("fw_sdk", [attackerV4]);
  const rule = await client.firewall.add({ chain: "INPUT" }, { matchSet: { set: "fw_sdk" }, target: "DROP", comment: "sdk" }, { position: 1 });
  assert.equal(rule.text, "-A INPUT -m set --match-set fw_sdk src -m comment --comment sdk -j DROP");
  assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false, "dropped: the connect must fail");
  const listed = await client.firewall.rules({ chain: "INPUT" });
  assert.equal(listed.find((candidate) => candidate.id === rule.id)?.position, 1);
  const web = await client.firewall.add({ chain: "INPUT" }, { protocol: "tcp", source: "!198.51.100.0/24", destinationPorts: [80, [8000, 8080]], states: ["NEW"], target: "ACCEPT" });
  assert.match(web.text, /^-A INPUT ! -s 198\.51\.100\.0\/24 -p tcp .*--dports 80,8000:8080 .*-j ACCEPT$/);
  await client.firewall.delete({ chain: "INPUT" }, rule.id);
  await client.firewall.delete({ chain: "INPUT" }, web.id);
  assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true, "rule deleted: the connect must succeed");
  const missing = await client.firewall.delete({ chain: "INPUT" }, rule.id).then(() => undefined, (caught: unknown) => caught);
  assert.ok(missing instanceof PortcullisError && missing.code === "NotFound");
});

it("SDK: events.list pages through the log with filters; audit.records lists write attempts newest first", async () => {
  const bans = await client.events.list({ types: ["BAN"], resourcePrefix: "jails/dovecot/" });
  assert.ok(bans.events.length >= 1 && bans.events.every((event) => event.type === "BAN" && event.resource.startsWith("jails/dovecot/")));
  assert.ok(bans.lastSequence >= bans.events[bans.events.length - 1]!.sequence);
  const after = await client.events.list({ after: bans.lastSequence });
  assert.deepEqual(after.events, [], "nothing after the newest");
  // Newest first, and the page before a sequence.
  const all = await client.events.list({});
  const newest = await client.events.list({ newestFirst: true, limit: 2 });
  assert.deepEqual(newest.events.map((event) => event.sequence), all.events.slice(-2).reverse().map((event) => event.sequence));
  const older = await client.events.list({ newestFirst: true, limit: 1, before: newest.events[1]!.sequence });
  assert.deepEqual(older.events.map((event) => event.sequence), [all.events[all.events.length - 3]!.sequence]);
  const bad = await client.events.list({ types: ["NOT_A_TYPE"] }).then(() => undefined, (caught: unknown) => caught);
  assert.ok(bad instanceof PortcullisError && bad.code === "InvalidArgument");
  const records = await client.audit.records();
  assert.ok(records.length > 0);
  assert.ok(records.some((record) => record.method === "portcullis.v1.JailService/BanIp" && record.principal === "admin" && record.code === "OK"));
  const times = records.map((record) => record.time.getTime());
  assert.deepEqual(times, [...times].sort((a, b) => b - a), "newest first");
});

it("SDK: events.onDidChange misses nothing across a server restart (one stream, resumed from the last sequence)", async () => {
  const seen: HostEvent[] = [];
  const subscription = client.events.onDidChange((event) => seen.push(event));
  await client.ipsets.add("sdk", ["192.0.2.2"]);
  await waitFor("the first event", () => seen.length > 0, { every: 20 });
  await setup.f.server.kill("SIGTERM");
  await setup.f.server.restart();
  // While the client reconnects: changes it must still get, in order, once.
  const other = createClient({ address: setup.f.server.address, bundle: join(setup.f.server.dataDir, "pki/clients/admin") });
  try {
    await other.ipsets.add("sdk", ["192.0.2.3"]);
    await other.ipsets.add("sdk", ["192.0.2.4"]);
  } finally {
    other.dispose();
  }
  // The client retries every 2 s at most.
  await waitFor("the events made while it reconnected", () => seen.filter((event) => event.type === "ENTRY_ADDED").length >= 3, { every: 25 });
  subscription.dispose();
  const added = seen.filter((event) => event.type === "ENTRY_ADDED").map((event) => event.resource);
  assert.deepEqual(added, ["ipsets/sdk/entries/192.0.2.2", "ipsets/sdk/entries/192.0.2.3", "ipsets/sdk/entries/192.0.2.4"]);
  const sequences = seen.map((event) => event.sequence);
  assert.deepEqual(sequences, [...sequences].sort((a, b) => a - b), "in order");
  assert.equal(new Set(sequences).size, sequences.length, "no repeats");
});

it("SDK: ipsets.list/export/delete; firewall.chains/export/apply (safe mode, confirm) with specs that round-trip", async () => {
  const { hosts } = setup;
  await client.ipsets.create("sdk_ls", { type: "hash:ip" });
  await client.ipsets.add("sdk_ls", ["192.0.2.9"]);
  assert.ok((await client.ipsets.list()).some((set) => set.name === "sdk_ls" && set.entryCount === 1 && set.managed));
  assert.match(await client.ipsets.export(["sdk_ls"]), /^create sdk_ls hash:ip family inet [^\n]*\nadd sdk_ls 192\.0\.2\.9\n$/);

  const chains = await client.firewall.chains();
  assert.deepEqual(chains.filter((chain) => chain.builtin).map((chain) => [chain.name, chain.policy]), [["INPUT", "ACCEPT"], ["FORWARD", "ACCEPT"], ["OUTPUT", "ACCEPT"]]);
  const previous = await client.firewall.export();
  const texts = (ruleset: { rules: readonly { text: string }[] }): string[] => ruleset.rules.map((rule) => rule.text);
  const table = {
    chains: [{ name: "INPUT", policy: "ACCEPT" as const }, { name: "mail_in" }],
    rules: [
      { chain: "INPUT", protocol: "tcp", destinationPorts: [143], target: { jump: "mail_in" } },
      { chain: "mail_in", matchSet: { set: "sdk_ls" }, target: { reject: "icmp-port-unreachable" } },
      { chain: "mail_in", source: `${attackerV4}/32`, protocol: "!udp", target: "DROP" as const },
    ],
  };
  // Not confirmed: checked with the server paused, so its rollback cannot come first however slow the machine.
  const asked = Date.now();
  const applied = await client.firewall.apply(table, { confirmWithin: 3 });
  assert.equal(applied.ruleCount, 3);
  assert.ok(applied.rollbackAt !== undefined && applied.rollbackAt.getTime() >= asked + 3000);
  await setup.f.server.whilePaused(async () => assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false, "the applied table drops the attacker"));
  await waitFor("not confirmed: the previous table back", async () => (await canConnect(hosts.attacker.name, victimV4, 143)) && texts(await client.firewall.export()).join("\n") === texts(previous).join("\n"));

  // Confirmed at once (one call, seconds before the deadline): it stays after the deadline.
  const kept = await client.firewall.apply(table, { confirmWithin: 8 });
  await client.firewall.confirm();
  const now = await client.firewall.export();
  assert.deepEqual(now.rules.map((rule) => [rule.chain, rule.spec]), [
    ["INPUT", { protocol: "tcp", destinationPorts: [143], target: { jump: "mail_in" } }],
    ["mail_in", { matchSet: { set: "sdk_ls", direction: "src" }, target: { reject: "icmp-port-unreachable" } }],
    ["mail_in", { protocol: "!udp", source: `${attackerV4}/32`, target: "DROP" }],
  ]);
  const inUse = await client.ipsets.delete("sdk_ls").then(() => undefined, (caught: unknown) => caught);
  assert.ok(inUse instanceof PortcullisError && inUse.code === "FailedPrecondition" && inUse.reason === "IPSET_IN_USE");
  await sleep(kept.rollbackAt!.getTime() - Date.now() + 1000); // past the deadline: a rollback would be due
  assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false, "confirmed: the table stays");

  // The exported specs applied again: the same table.
  await client.firewall.apply({ chains: now.chains, rules: now.rules.map((rule) => ({ chain: rule.chain, ...rule.spec! })) });
  assert.deepEqual(texts(await client.firewall.export()), texts(now));
  await client.firewall.apply({ chains: [], rules: previous.rules.map((rule) => ({ chain: rule.chain, ...rule.spec! })) });
  await client.ipsets.delete("sdk_ls");
  assert.ok(!(await client.ipsets.list()).some((set) => set.name === "sdk_ls"));
  assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true);
});

it("SDK: events.since replays from a sequence, then follows live, each subscription on its own stream", async () => {
  const start = (await client.events.list({ after: Number.MAX_SAFE_INTEGER })).lastSequence;
  await client.ipsets.create("sdk_since", { type: "hash:ip" });
  const seen: HostEvent[] = [];
  const subscription = client.events.since(start)((event) => seen.push(event));
  await waitFor("the replayed event", () => seen.length > 0, { every: 20 });
  assert.deepEqual(seen.map((event) => [event.type, event.resource]), [["IPSET_CREATED", "ipsets/sdk_since"]], "replayed");
  await client.ipsets.add("sdk_since", ["192.0.2.44"]);
  await waitFor("the live event", () => seen.length >= 2, { every: 20 });
  subscription.dispose();
  assert.deepEqual(seen.map((event) => event.sequence), [start + 1, start + 2]);
  assert.equal(seen[1]!.resource, "ipsets/sdk_since/entries/192.0.2.44");
  assert.throws(() => client.events.since(-1), (caught: unknown) => caught instanceof PortcullisError && caught.code === "InvalidArgument");
  await client.ipsets.delete("sdk_since");
});

it("SDK: the other error codes arrive as PortcullisError too: PermissionDenied, Unauthenticated, Unavailable, DeadlineExceeded", async () => {
  const bundle = (name: string) => join(setup.f.server.dataDir, "pki/clients", name);
  const codeOf = (promise: Promise<unknown>) => promise.then(() => "resolved", (caught: unknown) => (caught instanceof PortcullisError ? caught.code : `not a PortcullisError: ${String(caught)}`));

  await setup.f.server.cli(["certs", "issue", "--name", "sdk-viewer", "--role", "viewer"]);
  const viewer = createClient({ address: setup.f.server.address, bundle: bundle("sdk-viewer") });
  try {
    assert.equal(await codeOf(viewer.ipsets.create("viewer_set")), "PermissionDenied");
    assert.ok((await viewer.ipsets.list()).some((set) => set.name === "sdk"), "viewers read");
    // A certificate revoked while its connection is open: the next call is refused as unauthenticated.
    await setup.f.server.cli(["certs", "revoke", "sdk-viewer"]);
    await waitFor("the revoked certificate refused", async () => (await codeOf(viewer.ipsets.create("viewer_set"))) === "Unauthenticated", { every: 100 });
  } finally {
    viewer.dispose();
  }

  const nowhere = createClient({ address: "127.0.0.1:1", bundle: bundle("admin") });
  try {
    assert.equal(await codeOf(nowhere.ipsets.create("unreachable")), "Unavailable", "writes are not retried: Unavailable at once");
  } finally {
    nowhere.dispose();
  }
  const hurried = createClient({ address: setup.f.server.address, bundle: bundle("admin"), deadlineMs: 1 });
  try {
    assert.equal(await codeOf(hurried.firewall.export()), "DeadlineExceeded");
  } finally {
    hurried.dispose();
  }
});
