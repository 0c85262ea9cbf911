// What Portcullis says and what the kernel holds never drift apart: user text stays data in the long-lived ipset
// session and in restore input, a batch or import the kernel refuses leaves nothing behind, a store poisoned on
// purpose (or cut short by kill -9 mid-batch) does not keep the server from starting, and networks in sets of single
// addresses are recorded as the addresses the kernel holds.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import { status } from "@grpc/grpc-js";
import { AddressFamily } from "../../server/src/gen/portcullis/v1/common.js";
import { EventType } from "../../server/src/gen/portcullis/v1/events.js";
import { IpsetType } from "../../server/src/gen/portcullis/v1/ipset.js";
import { parseIpsetSave } from "../../server/src/drivers/parse/ipset-save.js";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";
import { EventTestClient, rejectsWith, type IpsetTestClient } from "../harness/grpc-clients.js";

const BIN = resolve(import.meta.dirname, "../../server/bin/portcullis");
const { IPSET_TYPE_HASH_IP: HASH_IP, IPSET_TYPE_HASH_NET: HASH_NET } = IpsetType;
const { ADDRESS_FAMILY_INET: INET, ADDRESS_FAMILY_INET6: INET6 } = AddressFamily;

function ipset(type: IpsetType, family: AddressFamily, extra: { defaultTimeout?: number; comments?: boolean; maxelem?: number; autoGrow?: boolean } = {}) {
  return { name: "", type, typeName: "", family, hashsize: 0, maxelem: extra.maxelem ?? 0, comments: extra.comments ?? false, range: "", memoryBytes: 0, references: 0, entryCount: 0, managed: false, ...(extra.defaultTimeout === undefined ? {} : { defaultTimeout: extra.defaultTimeout }), ...(extra.autoGrow === undefined ? {} : { autoGrow: extra.autoGrow }) };
}

/** Every word ipset takes out of a line as one of its own options, wherever it stands. */
const OPTION_LIKE = ["-q", "-quiet", "--quiet", "--q", "-exist", "--exist", "-!", "-t", "-terse", "-f", "-file", "-o", "-output", "-s", "-r", "-n", "-name"];

describe("ipset integrity: the store and the kernel agree whatever the input", () => {
  let f: ServerFixture;
  let client: IpsetTestClient;
  before(async () => {
    f = await startServerFixture();
    client = f.client;
  });
  after(async () => f?.close());

  /** The kernel's entries of a set: element → comment ("" when none). */
  const kernelEntries = (set: string): Map<string, string> =>
    new Map(parseIpsetSave(f.netns.exec("ipset", ["save", set])).adds.map((add) => [add.entry.element, add.entry.comment ?? ""]));
  /** ListEntries, every page: element → comment. */
  const listed = async (set: string): Promise<{ entries: Map<string, string>; totalSize: number }> => {
    const entries = new Map<string, string>();
    let token = "";
    let totalSize = 0;
    do {
      const page = await client.call("listEntries", { parent: `ipsets/${set}`, pageSize: 1000, pageToken: token, filter: "" });
      for (const entry of page.entries) entries.set(entry.element, entry.comment);
      totalSize = page.totalSize;
      token = page.nextPageToken;
    } while (token !== "");
    return { entries, totalSize };
  };
  const assertAgree = async (set: string, context: string): Promise<void> => {
    const kernel = kernelEntries(set);
    const store = await listed(set);
    assert.deepEqual([...store.entries].sort(), [...kernel].sort(), `${context}: ListEntries equals the kernel`);
    assert.equal(store.totalSize, kernel.size, `${context}: total_size`);
    assert.equal((await client.call("getIpset", { name: `ipsets/${set}` })).entryCount, f.netns.setEntries(set), `${context}: entry_count`);
    assert.equal(f.netns.setEntries(set), kernel.size, `${context}: Number of entries`);
  };

  it("refuses comments ipset would read as its own options, on every path, and the session serves on", async () => {
    await client.call("createIpset", { ipsetId: "inj", ipset: ipset(HASH_IP, INET, { comments: true, defaultTimeout: 0 }), requestId: "" });
    await client.call("addEntry", { parent: "ipsets/inj", entry: { name: "", element: "192.0.2.1", comment: "before" } });
    for (const comment of OPTION_LIKE) {
      const single = await rejectsWith(client.call("addEntry", { parent: "ipsets/inj", entry: { name: "", element: "192.0.2.6", comment } }), status.INVALID_ARGUMENT, "INVALID_COMMENT");
      assert.match(single.details, /would be read by ipset as its option/);
      await rejectsWith(client.call("batchAddEntries", { parent: "ipsets/inj", entries: [], elements: ["198.51.100.92", "198.51.100.93"], comment }), status.INVALID_ARGUMENT, "INVALID_COMMENT");
      await rejectsWith(client.call("batchAddEntries", { parent: "ipsets/inj", entries: [{ name: "", element: "198.51.100.94", comment: "fine" }, { name: "", element: "198.51.100.95", comment }], elements: [], comment: "" }), status.INVALID_ARGUMENT, "INVALID_COMMENT");
      await rejectsWith(client.call("importIpsets", { content: `add inj 198.51.100.96 comment "${comment}"\n` }), status.INVALID_ARGUMENT, "INVALID_COMMENT");
      // The session still answers tests and adds exactly (a -q would have silenced it for good).
      assert.equal((await client.call("testEntry", { parent: "ipsets/inj", element: "192.0.2.1" })).matched, true, comment);
      assert.equal((await client.call("testEntry", { parent: "ipsets/inj", element: "192.0.2.6" })).matched, false, comment);
    }
    await client.call("addEntry", { parent: "ipsets/inj", entry: { name: "", element: "192.0.2.2", comment: "after" } });
    assert.deepEqual([...kernelEntries("inj")].sort(), [["192.0.2.1", "before"], ["192.0.2.2", "after"]]);
    await assertAgree("inj", "after the option-like comments");
  });

  it("keeps comments that only look odd byte for byte, in the kernel and in the store", async () => {
    const comments = ["--", "---q", "-", "-5 points", " -q", "-q ", "a\\b", "\\-q", "it's", "x  y", "ünïcødé ✓", "#not a comment", "; semi", "add inj 192.0.2.99", "timeout 5", "comment", "-exist please"];
    for (const [i, comment] of comments.entries()) {
      await client.call("addEntry", { parent: "ipsets/inj", entry: { name: "", element: `203.0.113.${i + 1}`, comment } });
    }
    await client.call("batchAddEntries", { parent: "ipsets/inj", entries: comments.map((comment, i) => ({ name: "", element: `203.0.113.${100 + i}`, comment })), elements: [], comment: "" });
    const kernel = kernelEntries("inj");
    for (const [i, comment] of comments.entries()) {
      assert.equal(kernel.get(`203.0.113.${i + 1}`), comment, `single add, comment ${JSON.stringify(comment)}`);
      assert.equal(kernel.get(`203.0.113.${100 + i}`), comment, `batch add, comment ${JSON.stringify(comment)}`);
    }
    await assertAgree("inj", "odd comments");
  });

  it("refuses quotes, line breaks, NUL and other control characters in comments", async () => {
    for (const comment of ['a"b', '"', "a\nb", "a\rb", "a\0b", "a\tb", "\u007f"]) {
      await rejectsWith(client.call("addEntry", { parent: "ipsets/inj", entry: { name: "", element: "192.0.2.7", comment } }), status.INVALID_ARGUMENT, "INVALID_COMMENT");
      await rejectsWith(client.call("batchAddEntries", { parent: "ipsets/inj", entries: [], elements: ["192.0.2.8"], comment }), status.INVALID_ARGUMENT, "INVALID_COMMENT");
    }
    await assertAgree("inj", "control characters");
  });

  it("takes a batch the kernel refuses back out whole: nothing recorded, nothing applied", async () => {
    await client.call("createIpset", { ipsetId: "tiny", ipset: ipset(HASH_IP, INET, { maxelem: 5, autoGrow: false }), requestId: "" });
    await client.call("batchAddEntries", { parent: "ipsets/tiny", entries: [], elements: ["192.0.2.1", "192.0.2.2", "192.0.2.3"], comment: "" });
    // An entry added by hand takes the room the store counts on: the kernel takes the batch's first line and refuses
    // its second, and what it took is taken back out.
    f.netns.exec("ipset", ["add", "tiny", "203.0.113.250"]);
    await rejectsWith(client.call("batchAddEntries", { parent: "ipsets/tiny", entries: [], elements: ["192.0.2.1", "198.51.100.1", "198.51.100.2"], comment: "" }), status.RESOURCE_EXHAUSTED, "IPSET_FULL");
    assert.deepEqual([...kernelEntries("tiny").keys()].sort(), ["192.0.2.1", "192.0.2.2", "192.0.2.3", "203.0.113.250"]);
    f.netns.exec("ipset", ["del", "tiny", "203.0.113.250"]);
    await assertAgree("tiny", "after the refused batch");
  });

  it("takes back a refused list:set batch past the member the kernel cannot hold, without an error", async () => {
    await client.call("createIpset", { ipsetId: "members", ipset: ipset(HASH_IP, INET), requestId: "" });
    await client.call("createIpset", { ipsetId: "lists", ipset: ipset(IpsetType.IPSET_TYPE_LIST_SET, AddressFamily.ADDRESS_FAMILY_UNSPECIFIED), requestId: "" });
    await client.call("createIpset", { ipsetId: "lists2", ipset: ipset(IpsetType.IPSET_TYPE_LIST_SET, AddressFamily.ADDRESS_FAMILY_UNSPECIFIED), requestId: "" });
    // The kernel takes `members`, refuses `lists2` (a list:set cannot hold a list:set): `members` is taken back out,
    // and the delete of `lists2`, refused in its turn, does not stop the rollback.
    await rejectsWith(client.call("batchAddEntries", { parent: "ipsets/lists", entries: [], elements: ["members", "lists2"], comment: "" }), status.INVALID_ARGUMENT, "INVALID_ELEMENT");
    assert.deepEqual([...kernelEntries("lists").keys()], []);
    await assertAgree("lists", "after the refused list:set batch");
    assert.doesNotMatch(f.server.output, /cannot take a refused batch back out/);
    for (const name of ["lists", "lists2", "members"]) await client.call("deleteIpset", { name: `ipsets/${name}` });
  });

  it("undoes an import the kernel refuses: no set created, no entry recorded", async () => {
    await rejectsWith(client.call("importIpsets", { content: "create h2probe list:set\nadd h2probe h2probe\n" }), status.INVALID_ARGUMENT, "INVALID_ELEMENT");
    await rejectsWith(client.call("getIpset", { name: "ipsets/h2probe" }), status.NOT_FOUND, "IPSET_NOT_FOUND");
    assert.doesNotMatch(f.netns.exec("ipset", ["list", "-n"]), /^h2probe$/m);
    // The refusal comes after a set was created and filled: both are undone, and an existing set keeps what it had.
    const content = "create imp1 hash:ip\nadd imp1 192.0.2.1\nadd tiny 192.0.2.4\ncreate imp2 list:set\nadd imp2 imp2\n";
    await rejectsWith(client.call("importIpsets", { content }), status.INVALID_ARGUMENT, "INVALID_ELEMENT");
    await rejectsWith(client.call("getIpset", { name: "ipsets/imp1" }), status.NOT_FOUND, "IPSET_NOT_FOUND");
    assert.doesNotMatch(f.netns.exec("ipset", ["list", "-n"]), /^imp[12]$/m);
    assert.deepEqual([...kernelEntries("tiny").keys()].sort(), ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
    await assertAgree("tiny", "after the refused import");
  });

  it("starts on a poisoned store: refused records are reported and forgotten, an interrupted batch rolled back, hand-made entries removed", async () => {
    await f.server.kill("SIGKILL");
    const db = new Database(join(f.server.dataDir, "portcullis.db"));
    try {
      const put = db.prepare("INSERT INTO ipset_entries (ipset, element, expires_at, comment, batch) VALUES (?, ?, NULL, ?, ?)");
      put.run("inj", "192.0.2.200", "-exist", null); // what an older version let through
      put.run("inj", "192.0.2.201", "-q", null);
      put.run("inj", "0.0.0.0", null, null); // the kernel refuses the all-zero address
      put.run("inj", "2001:db8::1", null, null); // the wrong family
      put.run("inj", "192.0.2.202", "fine", null); // a good record the kernel lost
      // A batch cut short by the kill: recorded, partly in the kernel, never acknowledged.
      const batch = Number(db.prepare("INSERT INTO ipset_batches (ipset, started_at) VALUES (?, ?)").run("tiny", Date.now()).lastInsertRowid);
      put.run("tiny", "198.51.100.50", null, batch);
      // A set definition the kernel refuses to create.
      db.prepare("INSERT INTO ipsets (name, definition, created_at) VALUES (?, ?, ?)").run("bogus", JSON.stringify({ typeName: "hash:bogus", comments: false }), Date.now());
    } finally {
      db.close();
    }
    f.netns.exec("ipset", ["add", "tiny", "198.51.100.50"]);
    f.netns.exec("ipset", ["add", "inj", "198.51.100.77"]); // by hand, unknown to the store
    await f.server.restart();
    client = f.clientAs("admin");
    const events = new EventTestClient(f.server.address, f.server.credentials());
    try {
      const kernel = kernelEntries("inj");
      assert.equal(kernel.get("192.0.2.202"), "fine", "the good record is restored");
      for (const element of ["192.0.2.200", "192.0.2.201", "0.0.0.0", "2001:db8::1", "198.51.100.77"]) assert.equal(kernel.has(element), false, element);
      await assertAgree("inj", "after the poisoned start");
      assert.deepEqual([...kernelEntries("tiny").keys()].sort(), ["192.0.2.1", "192.0.2.2", "192.0.2.3"], "the interrupted batch is rolled back");
      await assertAgree("tiny", "after the poisoned start");
      const refused = (await events.call("listEvents", { afterSequence: 0, pageSize: 10_000, types: [EventType.EVENT_TYPE_STATE_REFUSED], resourcePrefix: "", principal: "", jail: "", address: "" })).events;
      const refusedElements = refused.filter((event) => event.resource === "ipsets/inj").map((event) => event.attributes["element"]).sort();
      assert.deepEqual(refusedElements, ["0.0.0.0", "192.0.2.200", "192.0.2.201", "2001:db8::1"]);
      assert.ok(refused.some((event) => event.resource === "ipsets/tiny" && event.attributes["rolled_back"] === "true" && event.attributes["count"] === "1"), "the rolled back batch is reported");
      assert.ok(refused.some((event) => event.resource === "ipsets/bogus"), "the set the kernel would not create is reported");
      // `portcullis doctor` names what was left out.
      const doctor = await new Promise<string>((done) => execFile(process.execPath, [BIN, "doctor", "--json", "--data-dir", f.server.dataDir, "--netns", f.netns.name], { encoding: "utf8" }, (_error, stdout) => done(stdout)));
      const refusedCheck = (JSON.parse(doctor) as Array<{ name: string; status: string; detail: string }>).find((check) => check.name === "refused state");
      assert.equal(refusedCheck?.status, "warn", doctor);
      assert.match(refusedCheck.detail, /ipsets\/inj 192\.0\.2\.200 INVALID_COMMENT/);
      assert.match(refusedCheck.detail, /ipsets\/tiny 1 entries of an interrupted batch rolled back/);
      const repaired = (await events.call("listEvents", { afterSequence: 0, pageSize: 10_000, types: [EventType.EVENT_TYPE_STATE_REPAIRED], resourcePrefix: "ipsets/inj", principal: "", jail: "", address: "" })).events;
      assert.ok(repaired.some((event) => event.attributes["removed"] === "1"), "the entry added by hand is reported removed");
      // And it starts cleanly again, with nothing left to refuse.
      await f.server.kill("SIGTERM");
      await f.server.restart();
      client = f.clientAs("admin");
      await assertAgree("inj", "after a second start");
    } finally {
      events.close();
    }
  });

  it("records networks in sets of single addresses as the addresses the kernel holds (seeded random adds and deletes)", async () => {
    const seed = Number(process.env.PORTCULLIS_TEST_SEED ?? 1717);
    let state = seed;
    const random = (n: number): number => {
      state = (state * 1103515245 + 12345) % 2147483648;
      return Math.floor((state / 2147483648) * n);
    };
    const sets = [
      { name: "rip4", type: HASH_IP, family: INET, address: () => `198.51.100.${random(64)}`, network: () => `198.51.100.${random(64)}/${28 + random(5)}` },
      { name: "rnet4", type: HASH_NET, family: INET, address: () => `198.51.100.${random(64)}`, network: () => `198.51.100.${random(64)}/${24 + random(9)}` },
      { name: "rip6", type: HASH_IP, family: INET6, address: () => `2001:db8::${random(48).toString(16)}`, network: () => `2001:db8::${random(48).toString(16)}/${124 + random(5)}` },
      { name: "rnet6", type: HASH_NET, family: INET6, address: () => `2001:db8::${random(48).toString(16)}`, network: () => `2001:db8::${random(48).toString(16)}/${120 + random(9)}` },
    ];
    for (const set of sets) await client.call("createIpset", { ipsetId: set.name, ipset: ipset(set.type, set.family), requestId: "" });
    for (let step = 0; step < 160; step++) {
      const set = sets[random(sets.length)]!;
      const parent = `ipsets/${set.name}`;
      const element = random(2) === 0 ? set.address() : set.network();
      const op = random(4);
      try {
        if (op === 0) await client.call("addEntry", { parent, entry: { name: "", element, comment: "" } });
        else if (op === 1) await client.call("batchAddEntries", { parent, entries: [], elements: [element, set.address(), set.network()], comment: "" });
        else if (op === 2) await client.call("deleteEntry", { name: `${parent}/entries/${element}` });
        else await client.call("batchDeleteEntries", { parent, elements: [element, set.address()] });
      } catch (error) {
        const reason = (error as { details?: string }).details ?? "";
        const code = (error as { code?: number }).code;
        // IPv6 networks in hash:ip and absent entries are refused whole; nothing else may fail.
        assert.ok(code === status.INVALID_ARGUMENT || code === status.NOT_FOUND, `step ${step} (seed ${seed}): op ${op} ${element} on ${set.name}: ${reason}`);
      }
      await assertAgree(set.name, `step ${step} (seed ${seed}): op ${op} ${element} on ${set.name}`);
    }
    // Each kind of set ended up holding something, so the comparison was not of empty sets.
    for (const set of sets) assert.ok(f.netns.setEntries(set.name) > 0, set.name);
  });
});
