import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { AddressFamily } from "../../server/src/gen/portcullis/v1/common.js";
import { IpsetType, type Entry } from "../../server/src/gen/portcullis/v1/ipset.js";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";
import { waitFor } from "../harness/wait.js";

const { IPSET_TYPE_HASH_IP: HASH_IP, IPSET_TYPE_HASH_NET: HASH_NET } = IpsetType;
const { ADDRESS_FAMILY_INET: INET, ADDRESS_FAMILY_INET6: INET6 } = AddressFamily;

function ipset(type: IpsetType, family: AddressFamily, extra: { defaultTimeout?: number; comments?: boolean } = {}) {
  return { name: "", type, typeName: "", family, hashsize: 0, maxelem: 0, comments: extra.comments ?? false, range: "", memoryBytes: 0, references: 0, entryCount: 0, managed: false, ...(extra.defaultTimeout === undefined ? {} : { defaultTimeout: extra.defaultTimeout }) };
}

describe("ipset sets and entries over gRPC with mTLS, applied to the kernel", () => {
  let f: ServerFixture;
  before(async () => (f = await startServerFixture()));
  after(async () => f?.close());

  const kernelSave = (set: string): string => f.netns.exec("ipset", ["save", set]);

  it("creates hash:ip and hash:net sets of both families, visible in the kernel", async () => {
    const created = await f.client.call("createIpset", { ipsetId: "v4ip", ipset: ipset(HASH_IP, INET, { defaultTimeout: 0, comments: true }), requestId: "" });
    assert.equal(created.name, "ipsets/v4ip");
    assert.equal(created.typeName, "hash:ip");
    assert.equal(created.managed, true);
    assert.equal(created.defaultTimeout, 0);
    await f.client.call("createIpset", { ipsetId: "v6net", ipset: ipset(HASH_NET, INET6), requestId: "" });
    assert.match(kernelSave("v4ip"), /^create v4ip hash:ip family inet hashsize 1024 maxelem 65536 timeout 0 comment/m);
    assert.match(kernelSave("v6net"), /^create v6net hash:net family inet6/m);
    const got = await f.client.call("getIpset", { name: "ipsets/v6net" });
    assert.equal(got.family, INET6);
    assert.equal(got.type, HASH_NET);
    const listed = await f.client.call("listIpsets", { pageSize: 0, pageToken: "" });
    assert.deepEqual(listed.ipsets.map((s) => s.name).filter((n) => ["ipsets/v4ip", "ipsets/v6net"].includes(n)), ["ipsets/v4ip", "ipsets/v6net"]);
  });

  it("adds, tests, lists and deletes entries, CIDR matching included", async () => {
    const added = await f.client.call("addEntry", { parent: "ipsets/v4ip", entry: { name: "", element: "192.0.2.7", comment: "brute force", timeout: 600 } });
    assert.equal(added.name, "ipsets/v4ip/entries/192.0.2.7");
    assert.ok(added.timeout! > 595 && added.timeout! <= 600);
    assert.match(kernelSave("v4ip"), /^add v4ip 192\.0\.2\.7 timeout \d+ comment "brute force"$/m);
    // Idempotent add refreshes the timeout and comment.
    const again = await f.client.call("addEntry", { parent: "ipsets/v4ip", entry: { name: "", element: "192.0.2.7", comment: "still bad", timeout: 1200 } });
    assert.ok(again.timeout! > 1195);
    assert.match(kernelSave("v4ip"), /^add v4ip 192\.0\.2\.7 timeout (1[12]\d\d) comment "still bad"$/m);

    await f.client.call("addEntry", { parent: "ipsets/v6net", entry: { name: "", element: "2001:db8:ab::/48", comment: "" } });
    assert.equal((await f.client.call("testEntry", { parent: "ipsets/v6net", element: "2001:db8:ab::1234" })).matched, true);
    assert.equal((await f.client.call("testEntry", { parent: "ipsets/v6net", element: "2001:db8:ac::1" })).matched, false);
    assert.equal((await f.client.call("testEntry", { parent: "ipsets/v4ip", element: "192.0.2.7" })).matched, true);

    const page = await f.client.call("listEntries", { parent: "ipsets/v4ip", pageSize: 0, pageToken: "", filter: "" });
    assert.deepEqual(page.entries.map((e) => [e.element, e.comment]), [["192.0.2.7", "still bad"]]);
    assert.equal(page.totalSize, 1);

    await f.client.call("deleteEntry", { name: "ipsets/v6net/entries/2001:db8:ab::/48" });
    assert.equal((await f.client.call("testEntry", { parent: "ipsets/v6net", element: "2001:db8:ab::1234" })).matched, false);
    assert.doesNotMatch(kernelSave("v6net"), /^add /m);
  });

  it("pages through 10,000 entries with page tokens, each entry exactly once", async () => {
    await f.client.call("createIpset", { ipsetId: "big", ipset: ipset(HASH_IP, INET), requestId: "" });
    const entries = Array.from({ length: 10_000 }, (_, i) => ({ name: "", element: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, comment: "" }));
    const batch = await f.client.call("batchAddEntries", { elements: [], comment: "", parent: "ipsets/big", entries });
    assert.equal(batch.addedCount, 10_000);
    assert.match(f.netns.exec("ipset", ["list", "-terse", "big"]), /Number of entries: 10000/);
    const seen = new Set<string>();
    let token = "";
    let pages = 0;
    do {
      const page = await f.client.call("listEntries", { parent: "ipsets/big", pageSize: 1000, pageToken: token, filter: "" });
      assert.equal(page.totalSize, 10_000);
      for (const entry of page.entries) {
        assert.ok(!seen.has(entry.element), `duplicate ${entry.element}`);
        seen.add(entry.element);
      }
      token = page.nextPageToken;
      pages++;
    } while (token !== "");
    assert.equal(seen.size, 10_000);
    assert.equal(pages, 10);
    const deleted = await f.client.call("batchDeleteEntries", { parent: "ipsets/big", elements: entries.slice(0, 4000).map((e) => e.element) });
    assert.equal(deleted.deletedCount, 4000);
    assert.match(f.netns.exec("ipset", ["list", "-terse", "big"]), /Number of entries: 6000/);
  });

  it("lets per-entry timeouts expire in the kernel and from listings", async () => {
    await f.client.call("createIpset", { ipsetId: "short", ipset: ipset(HASH_IP, INET, { defaultTimeout: 300 }), requestId: "" });
    const matched = async (element: string): Promise<boolean> => (await f.client.call("testEntry", { parent: "ipsets/short", element })).matched;
    const listed = async (): Promise<Entry[]> => (await f.client.call("listEntries", { parent: "ipsets/short", pageSize: 0, pageToken: "", filter: "" })).entries;
    const added = Date.now();
    await f.client.call("addEntry", { parent: "ipsets/short", entry: { name: "", element: "198.51.100.10", comment: "" } });
    await f.client.call("addEntry", { parent: "ipsets/short", entry: { name: "", element: "198.51.100.9", comment: "", timeout: 3 } });
    assert.equal(await matched("198.51.100.9"), true);
    await waitFor("the 3 s entry's expiry in the kernel", async () => !(await matched("198.51.100.9")));
    await waitFor("the 3 s entry's expiry from the listing", async () => (await listed()).length === 1);
    const [kept] = await listed();
    assert.equal(kept!.element, "198.51.100.10");
    // The set's default of 300 s, less the (whole) seconds since it was added.
    const since = Math.ceil((Date.now() - added) / 1000);
    assert.ok(kept!.timeout! >= 300 - since - 1 && kept!.timeout! <= 300, `default timeout applied: ${kept!.timeout} s left after ${since} s`);
  });

  it("exports in the ipset save format and imports it back (the seed's /etc/ipset.rules)", async () => {
    const seed = ["create spam_ips hash:ip", "create fail2ban-exim hash:ip", "create fail2ban-dovecot hash:ip", "add spam_ips 192.0.2.50", "add spam_ips 203.0.113.100", ""].join("\n");
    const imported = await f.client.call("importIpsets", { content: seed });
    assert.deepEqual(imported.ipsets.map((s) => s.name), ["ipsets/spam_ips", "ipsets/fail2ban-exim", "ipsets/fail2ban-dovecot"]);
    assert.equal(imported.addedCount, 2);
    assert.equal((await f.client.call("testEntry", { parent: "ipsets/spam_ips", element: "203.0.113.100" })).matched, true);

    const exported = await f.client.call("exportIpsets", { names: ["ipsets/spam_ips", "ipsets/v4ip"] });
    assert.match(exported.content, /^create spam_ips hash:ip family inet/m);
    assert.match(exported.content, /^add spam_ips 192\.0\.2\.50$/m);
    assert.match(exported.content, /^add v4ip 192\.0\.2\.7 timeout \d+ comment "still bad"$/m);

    // Round trip: wipe the sets, import the export, get the same entries back.
    f.netns.exec("ipset", ["destroy", "spam_ips"]);
    await f.client.call("deleteIpset", { name: "ipsets/spam_ips" });
    await f.client.call("deleteIpset", { name: "ipsets/v4ip" });
    const again = await f.client.call("importIpsets", { content: exported.content });
    assert.equal(again.addedCount, 3);
    assert.match(kernelSave("spam_ips"), /^add spam_ips 203\.0\.113\.100$/m);
    const v4 = await f.client.call("listEntries", { parent: "ipsets/v4ip", pageSize: 0, pageToken: "", filter: "" });
    assert.deepEqual(v4.entries.map((e) => [e.element, e.comment]), [["192.0.2.7", "still bad"]]);
    assert.ok(v4.entries[0]!.timeout! > 1000, "remaining timeout carried over");
  });

  it("swaps two sets atomically and renames a set", async () => {
    await f.client.call("createIpset", { ipsetId: "live", ipset: ipset(HASH_IP, INET), requestId: "" });
    await f.client.call("createIpset", { ipsetId: "staging", ipset: ipset(HASH_IP, INET), requestId: "" });
    await f.client.call("addEntry", { parent: "ipsets/live", entry: { name: "", element: "192.0.2.1", comment: "" } });
    await f.client.call("batchAddEntries", { elements: [], comment: "", parent: "ipsets/staging", entries: ["192.0.2.2", "192.0.2.3"].map((element) => ({ name: "", element, comment: "" })) });
    const swapped = await f.client.call("swapIpsets", { name: "ipsets/live", other: "ipsets/staging" });
    assert.equal(swapped.ipset!.entryCount, 2);
    assert.equal(swapped.other!.entryCount, 1);
    assert.match(kernelSave("live"), /^add live 192\.0\.2\.3$/m);
    const live = await f.client.call("listEntries", { parent: "ipsets/live", pageSize: 0, pageToken: "", filter: "" });
    assert.deepEqual(live.entries.map((e) => e.element), ["192.0.2.2", "192.0.2.3"]);

    const renamed = await f.client.call("renameIpset", { name: "ipsets/staging", newIpsetId: "previous" });
    assert.equal(renamed.name, "ipsets/previous");
    assert.match(kernelSave("previous"), /^add previous 192\.0\.2\.1$/m);
    const previous = await f.client.call("listEntries", { parent: "ipsets/previous", pageSize: 0, pageToken: "", filter: "" });
    assert.deepEqual(previous.entries.map((e) => e.element), ["192.0.2.1"]);

    const flushed = await f.client.call("flushIpset", { name: "ipsets/previous" });
    assert.equal(flushed.entryCount, 0);
    assert.equal((await f.client.call("listEntries", { parent: "ipsets/previous", pageSize: 0, pageToken: "", filter: "" })).totalSize, 0);
  });

  it("shows sets made by other tools read-only until adopted", async () => {
    f.netns.exec("ipset", ["create", "f2b-sshd", "hash:ip", "timeout", "0"]);
    f.netns.exec("ipset", ["add", "f2b-sshd", "203.0.113.5", "timeout", "600"]);
    const foreign = await f.client.call("getIpset", { name: "ipsets/f2b-sshd" });
    assert.equal(foreign.managed, false);
    assert.equal(foreign.entryCount, 1);
    const entries = await f.client.call("listEntries", { parent: "ipsets/f2b-sshd", pageSize: 0, pageToken: "", filter: "" });
    assert.equal(entries.entries[0]!.element, "203.0.113.5");
    await assert.rejects(f.client.call("addEntry", { parent: "ipsets/f2b-sshd", entry: { name: "", element: "203.0.113.6", comment: "" } }), /adopt it first/);
    const adopted = await f.client.call("adoptIpset", { name: "ipsets/f2b-sshd" });
    assert.equal(adopted.managed, true);
    await f.client.call("addEntry", { parent: "ipsets/f2b-sshd", entry: { name: "", element: "203.0.113.6", comment: "", timeout: 60 } });
    const after = await f.client.call("listEntries", { parent: "ipsets/f2b-sshd", pageSize: 0, pageToken: "", filter: "" });
    assert.deepEqual(after.entries.map((e) => e.element), ["203.0.113.5", "203.0.113.6"]);
  });

  it("returns the first result for a retried create with the same request_id", async () => {
    const request = { ipsetId: "retry", ipset: ipset(HASH_NET, INET), requestId: "6b1f3c2e-1b7a-4a53-9a58-8f8f0d1e2a01" };
    const first = await f.client.call("createIpset", request);
    const second = await f.client.call("createIpset", request);
    assert.deepEqual(second, first);
  });
});

describe("more set types, big batches, and a dying ipset session", () => {
  let f: ServerFixture;
  before(async () => (f = await startServerFixture()));
  after(async () => f?.close());

  it("hash:net,port and list:set work end to end", async () => {
    await f.client.call("createIpset", { ipsetId: "mailnets", ipset: ipset(IpsetType.IPSET_TYPE_HASH_NET_PORT, INET), requestId: "" });
    const added = await f.client.call("addEntry", { parent: "ipsets/mailnets", entry: { name: "", element: "198.51.100.77/24,tcp:993", comment: "" } });
    assert.equal(added.element, "198.51.100.0/24,tcp:993");
    assert.equal((await f.client.call("testEntry", { parent: "ipsets/mailnets", element: "198.51.100.5,tcp:993" })).matched, true);
    assert.equal((await f.client.call("testEntry", { parent: "ipsets/mailnets", element: "198.51.100.5,tcp:25" })).matched, false);

    await f.client.call("createIpset", { ipsetId: "banned6", ipset: ipset(HASH_IP, INET6), requestId: "" });
    await f.client.call("createIpset", { ipsetId: "all-bans", ipset: { ...ipset(IpsetType.IPSET_TYPE_LIST_SET, AddressFamily.ADDRESS_FAMILY_UNSPECIFIED), maxelem: 4 }, requestId: "" });
    await f.client.call("addEntry", { parent: "ipsets/all-bans", entry: { name: "", element: "mailnets", comment: "" } });
    await f.client.call("addEntry", { parent: "ipsets/all-bans", entry: { name: "", element: "banned6", comment: "" } });
    assert.match(f.netns.exec("ipset", ["save", "all-bans"]), /^create all-bans list:set size 4/m);
    const members = await f.client.call("listEntries", { parent: "ipsets/all-bans", pageSize: 0, pageToken: "", filter: "" });
    assert.deepEqual(members.entries.map((e) => e.element), ["banned6", "mailnets"]);
    // A set that a list:set holds is in use by the kernel; the refusal says so.
    await assert.rejects(f.client.call("deleteIpset", { name: "ipsets/banned6" }), /cannot be deleted: it is referenced/);
  });

  it("takes 100,000 entries in one request, in the compact form with a shared timeout and comment", async () => {
    await f.client.call("createIpset", { ipsetId: "huge", ipset: { ...ipset(HASH_IP, INET, { defaultTimeout: 0, comments: true }), maxelem: 200_000 }, requestId: "" });
    const elements = Array.from({ length: 100_000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    const extra = [{ name: "", element: "203.0.113.1", comment: "own" }];
    const reply = await f.client.call("batchAddEntries", { parent: "ipsets/huge", entries: extra, elements, timeout: 3600, comment: "feed" });
    assert.equal(reply.addedCount, 100_001);
    assert.match(f.netns.exec("ipset", ["list", "-terse", "huge"]), /Number of entries: 100001/);
    const saved = f.netns.exec("ipset", ["save", "huge"]);
    assert.match(saved, /^add huge 10\.1\.134\.159 timeout 3[56]\d\d comment "feed"$/m);
    assert.match(saved, /^add huge 203\.0\.113\.1 timeout 0 comment "own"$/m);
    assert.equal((await f.client.call("getIpset", { name: "ipsets/huge" })).entryCount, 100_001);
    // One bad element among them names its index in the compact list.
    await assert.rejects(f.client.call("batchAddEntries", { parent: "ipsets/huge", entries: [], elements: ["10.9.9.9", "nope"], comment: "" }), /elements\[1\]/);
  });

  it("recovers when the long-lived ipset session dies: the next add still reaches the kernel", async () => {
    await f.client.call("createIpset", { ipsetId: "resilient", ipset: ipset(HASH_IP, INET), requestId: "" });
    await f.client.call("addEntry", { parent: "ipsets/resilient", entry: { name: "", element: "192.0.2.10", comment: "" } });
    const session = descendantPids(f.server.pid!).find((pid) => readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "ipset");
    assert.ok(session !== undefined, "the server keeps an ipset session process");
    process.kill(session, "SIGKILL");
    await f.client.call("addEntry", { parent: "ipsets/resilient", entry: { name: "", element: "192.0.2.11", comment: "" } });
    assert.match(f.netns.exec("ipset", ["save", "resilient"]), /^add resilient 192\.0\.2\.11$/m);
    const next = descendantPids(f.server.pid!).find((pid) => readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "ipset");
    assert.ok(next !== undefined && next !== session, "a new session replaced the dead one");
  });
});

/** The server's descendants: it starts programs through a helper process of its own (process-starter.ts). */
function descendantPids(pid: number): number[] {
  let children: number[];
  try {
    children = readdirSync(`/proc/${pid}/task`).flatMap((task) =>
      readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number),
    );
  } catch {
    return []; // it has ended meanwhile
  }
  return children.flatMap((child) => [child, ...descendantPids(child)]);
}
