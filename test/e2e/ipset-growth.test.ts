// Managed hash sets grow instead of overflowing: a batch that would pass maxelem makes Portcullis swap in a larger
// copy (rules match by name, so a listed attacker is dropped throughout), and where growth is off or its limit is
// reached, the whole batch is refused before anything is applied.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { status } from "@grpc/grpc-js";
import { AddressFamily } from "../../server/src/gen/portcullis/v1/common.js";
import { EventType } from "../../server/src/gen/portcullis/v1/events.js";
import { IpsetType } from "../../server/src/gen/portcullis/v1/ipset.js";
import { VictimAttacker } from "../harness/netns.js";
import { canConnect, listen } from "../harness/tcp.js";
import { EventTestClient, rejectsWith } from "../harness/grpc-clients.js";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";

const BIN = resolve(import.meta.dirname, "../../server/bin/portcullis");

function ipset(extra: { maxelem?: number; autoGrow?: boolean; growLimit?: number; defaultTimeout?: number; comments?: boolean } = {}) {
  return { name: "", type: IpsetType.IPSET_TYPE_HASH_IP, typeName: "", family: AddressFamily.ADDRESS_FAMILY_INET, hashsize: 0, maxelem: extra.maxelem ?? 0, comments: extra.comments ?? false, range: "", memoryBytes: 0, references: 0, entryCount: 0, managed: false, ...(extra.defaultTimeout === undefined ? {} : { defaultTimeout: extra.defaultTimeout }), ...(extra.autoGrow === undefined ? {} : { autoGrow: extra.autoGrow }), ...(extra.growLimit === undefined ? {} : { growLimit: extra.growLimit }) };
}

/** `count` distinct addresses of 10.0.0.0/8 from `from` on. */
const addresses = (from: number, count: number): string[] => Array.from({ length: count }, (_, i) => `10.${((from + i) >> 16) & 255}.${((from + i) >> 8) & 255}.${(from + i) & 255}`);

describe("managed sets grow instead of overflowing", () => {
  let hosts: VictimAttacker;
  let f: ServerFixture;
  let listener: { stop(): void };
  const header = (set: string): string => /Header: (.*)/.exec(hosts.victim.exec("ipset", ["list", "-terse", set]))![1]!;

  before(async () => {
    hosts = new VictimAttacker();
    // Reconcile every second: it must leave the copy a growing set is being built in alone.
    f = await startServerFixture(hosts.victim, { PORTCULLIS_RECONCILE_INTERVAL_SECONDS: "1" });
    listener = await listen(hosts.victim.name, 143);
  });
  after(async () => {
    listener?.stop();
    await f?.close();
    hosts?.destroy();
  });

  it("takes 70,000 entries into a default set (maxelem 65536) in 10,000-entry chunks, and a listed attacker never gets through while it grows", async () => {
    await f.client.call("createIpset", { ipsetId: "big", ipset: ipset({ defaultTimeout: 0, comments: true }), requestId: "" });
    assert.match(header("big"), /maxelem 65536/);
    await f.client.call("addEntry", { parent: "ipsets/big", entry: { name: "", element: VictimAttacker.attackerV4, comment: "dovecot", timeout: 3600 } });
    hosts.victim.exec("iptables", ["-I", "INPUT", "-m", "set", "--match-set", "big", "src", "-j", "DROP"]);
    assert.equal(await canConnect(hosts.attacker.name, VictimAttacker.victimV4, 143), false);

    let importing = true;
    const probes: boolean[] = [];
    const probing = (async () => {
      while (importing) probes.push(await canConnect(hosts.attacker.name, VictimAttacker.victimV4, 143, 300));
    })();
    try {
      const all = addresses(0, 70_000);
      for (let from = 0; from < all.length; from += 10_000) {
        const batch = await f.client.call("batchAddEntries", { parent: "ipsets/big", entries: [], elements: all.slice(from, from + 10_000), comment: "blocklist", timeout: 7200 });
        assert.equal(batch.addedCount, 10_000);
      }
    } finally {
      importing = false;
      await probing;
    }
    assert.ok(probes.length > 0 && probes.every((through) => !through), `every probe during the growth is dropped (${probes.filter(Boolean).length} of ${probes.length} got through)`);
    assert.equal(hosts.victim.setEntries("big"), 70_001);
    assert.match(header("big"), /maxelem 131072/);
    const set = await f.client.call("getIpset", { name: "ipsets/big" });
    assert.equal(set.maxelem, 131_072);
    assert.equal(set.entryCount, 70_001);
    assert.equal(set.autoGrow, true);
    // Comments and remaining timeouts came along into the grown set.
    const saved = hosts.victim.exec("ipset", ["save", "big"]);
    const attacker = new RegExp(`^add big ${VictimAttacker.attackerV4.replace(/\./g, "\\.")} timeout (\\d+) comment "dovecot"$`, "m").exec(saved);
    assert.ok(attacker !== null && Number(attacker[1]) > 3500 && Number(attacker[1]) <= 3600, "the attacker's entry keeps its comment and remaining timeout");
    assert.match(saved, /^add big 10\.0\.0\.7 timeout \d+ comment "blocklist"$/m);
    const events = new EventTestClient(f.server.address, f.server.credentials());
    try {
      const grown = (await events.call("listEvents", { afterSequence: 0, pageSize: 100, types: [EventType.EVENT_TYPE_IPSET_GROWN], resourcePrefix: "ipsets/big", principal: "", jail: "", address: "" })).events;
      assert.deepEqual(grown.map((event) => [event.attributes["from_maxelem"], event.attributes["to_maxelem"]]), [["65536", "131072"]]);
    } finally {
      events.close();
    }
    assert.equal(await canConnect(hosts.attacker.name, VictimAttacker.victimV4, 143), false);
    hosts.victim.exec("iptables", ["-D", "INPUT", "-m", "set", "--match-set", "big", "src", "-j", "DROP"]);
  });

  it("grows a set in one batch of 200,000, doubling maxelem as often as needed", async () => {
    await f.client.call("createIpset", { ipsetId: "onebatch", ipset: ipset({ maxelem: 1000 }), requestId: "" });
    await f.client.call("batchAddEntries", { parent: "ipsets/onebatch", entries: [], elements: addresses(0, 200_000), comment: "" });
    assert.equal(hosts.victim.setEntries("onebatch"), 200_000);
    assert.match(header("onebatch"), /maxelem 256000\b/);
  });

  it("grows a set a single add finds full", async () => {
    await f.client.call("createIpset", { ipsetId: "small", ipset: ipset({ maxelem: 4 }), requestId: "" });
    for (const element of addresses(0, 6)) await f.client.call("addEntry", { parent: "ipsets/small", entry: { name: "", element, comment: "" } });
    assert.equal(hosts.victim.setEntries("small"), 6);
    assert.match(header("small"), /maxelem 8\b/);
  });

  it("with growth off, refuses a batch that does not fit whole, saying how many fit; entries already there count once", async () => {
    await f.client.call("createIpset", { ipsetId: "capped", ipset: ipset({ maxelem: 1000, autoGrow: false }), requestId: "" });
    assert.equal((await f.client.call("getIpset", { name: "ipsets/capped" })).autoGrow, false);
    await f.client.call("batchAddEntries", { parent: "ipsets/capped", entries: [], elements: addresses(0, 900), comment: "" });
    const refused = await rejectsWith(f.client.call("batchAddEntries", { parent: "ipsets/capped", entries: [], elements: addresses(850, 250), comment: "" }), status.RESOURCE_EXHAUSTED, "IPSET_FULL");
    assert.match(refused.details, /900 entries and the batch adds 200 new ones, of which 100 fit/);
    assert.equal(hosts.victim.setEntries("capped"), 900, "nothing of the refused batch was applied");
    assert.equal((await f.client.call("listEntries", { parent: "ipsets/capped", pageSize: 1, pageToken: "", filter: "" })).totalSize, 900);
    // 150 elements of which 50 are there already: exactly full, and accepted.
    await f.client.call("batchAddEntries", { parent: "ipsets/capped", entries: [], elements: addresses(850, 150), comment: "" });
    assert.equal(hosts.victim.setEntries("capped"), 1000);
    assert.match(header("capped"), /maxelem 1000\b/);
    await rejectsWith(f.client.call("addEntry", { parent: "ipsets/capped", entry: { name: "", element: "192.0.2.1", comment: "" } }), status.RESOURCE_EXHAUSTED, "IPSET_FULL");
    assert.equal((await f.client.call("listEntries", { parent: "ipsets/capped", pageSize: 1, pageToken: "", filter: "" })).totalSize, 1000);
  });

  it("grows up to grow_limit and refuses past it", async () => {
    await f.client.call("createIpset", { ipsetId: "limited", ipset: ipset({ maxelem: 1000, growLimit: 3000 }), requestId: "" });
    await f.client.call("batchAddEntries", { parent: "ipsets/limited", entries: [], elements: addresses(0, 2500), comment: "" });
    assert.match(header("limited"), /maxelem 3000\b/);
    const refused = await rejectsWith(f.client.call("batchAddEntries", { parent: "ipsets/limited", entries: [], elements: addresses(2500, 600), comment: "" }), status.RESOURCE_EXHAUSTED, "IPSET_FULL");
    assert.match(refused.details, /500 fit: it cannot grow past its grow_limit of 3000/);
    assert.equal(hosts.victim.setEntries("limited"), 2500);
    await rejectsWith(f.client.call("createIpset", { ipsetId: "badlimit", ipset: ipset({ maxelem: 1000, growLimit: 10 }), requestId: "" }), status.INVALID_ARGUMENT, "INVALID_IPSET_OPTION");
  });

  it("an import grows an existing set that needs it, and refuses whole one that cannot grow, before applying anything", async () => {
    await f.client.call("createIpset", { ipsetId: "impgrow", ipset: ipset({ maxelem: 100 }), requestId: "" });
    const lines = (set: string, from: number, count: number): string => addresses(from, count).map((element) => `add ${set} ${element}`).join("\n");
    await f.client.call("importIpsets", { content: `${lines("impgrow", 0, 150)}\n` });
    assert.equal(hosts.victim.setEntries("impgrow"), 150);
    assert.match(header("impgrow"), /maxelem 200\b/);
    // "capped" is full with growth off: the import also adds to "impgrow", and neither set changes.
    const refused = await rejectsWith(f.client.call("importIpsets", { content: `${lines("impgrow", 150, 10)}\n${lines("capped", 5000, 3)}\n` }), status.RESOURCE_EXHAUSTED, "IPSET_FULL");
    assert.match(refused.details, /set "capped" has 1000 entries and the batch adds 3 new ones, of which 0 fit/);
    assert.equal(hosts.victim.setEntries("impgrow"), 150);
    assert.equal(hosts.victim.setEntries("capped"), 1000);
  });

  it("the CLI's import exits 8 when the set is full and says exactly how many entries it added", async () => {
    const scratch = mkdtempSync(join(tmpdir(), "pc-grow-"));
    try {
      const env = { ...process.env, PORTCULLIS_ADDRESS: f.server.address, PORTCULLIS_BUNDLE: join(f.server.dataDir, "pki/clients/admin") };
      const run = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
        new Promise((done) => execFile(BIN, args, { env, encoding: "utf8", timeout: 60_000 }, (error, stdout, stderr) => done({ code: error === null ? 0 : typeof error.code === "number" ? error.code : -1, stdout, stderr })));
      const created = await run(["sets", "create", "clicap", "--maxelem", "100", "--no-auto-grow"]);
      assert.equal(created.code, 0, created.stderr);
      const file = join(scratch, "list.txt");
      writeFileSync(file, `${addresses(0, 250).join("\n")}\n`);
      const imported = await run(["sets", "import", "clicap", file, "--chunk", "60"]);
      assert.equal(imported.code, 8, imported.stderr);
      assert.match(imported.stderr, /60 of 250 entries were added to clicap/);
      assert.match(imported.stderr, /60 entries and the batch adds 60 new ones, of which 40 fit/);
      assert.equal(hosts.victim.setEntries("clicap"), 60);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});
