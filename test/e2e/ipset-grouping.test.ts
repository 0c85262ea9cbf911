import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { status, type ServiceError } from "@grpc/grpc-js";
import { AddressFamily } from "../../server/src/gen/portcullis/v1/common.js";
import { IpsetType } from "../../server/src/gen/portcullis/v1/ipset.js";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";
import { reasonOf } from "../harness/grpc-clients.js";

// Single adds and deletes of one set that arrive together are recorded in one transaction and written to the ipset
// session together (GroupedWrites); these tests send them at once and check that each call still gets exactly its own
// answer, and that the kernel and the store agree afterwards.

function ipset(extra: { maxelem?: number; autoGrow?: boolean; comments?: boolean } = {}) {
  return { name: "", type: IpsetType.IPSET_TYPE_HASH_IP, typeName: "", family: AddressFamily.ADDRESS_FAMILY_INET, hashsize: 0, maxelem: extra.maxelem ?? 0, comments: extra.comments ?? false, range: "", memoryBytes: 0, references: 0, entryCount: 0, managed: false, ...(extra.autoGrow === undefined ? {} : { autoGrow: extra.autoGrow }) };
}

/** "OK", "OK true"/"OK false" for tests, or "<gRPC code> <reason>". */
async function outcome(call: Promise<unknown>): Promise<string> {
  try {
    const response = await call;
    const matched = (response as { matched?: boolean }).matched;
    return matched === undefined ? "OK" : `OK ${matched}`;
  } catch (error) {
    return `${status[(error as ServiceError).code]} ${reasonOf(error) ?? ""}`;
  }
}

describe("single-entry calls that arrive together are grouped, each answered exactly", () => {
  let f: ServerFixture;
  before(async () => (f = await startServerFixture()));
  after(async () => f?.close());

  /** The kernel's elements of a set, sorted. */
  const kernelElements = (set: string): string[] => f.netns.exec("ipset", ["save", set]).split("\n").filter((line) => line.startsWith("add ")).map((line) => line.split(" ")[2]!).sort();
  /** The store's elements of a set (ListEntries), sorted. */
  const storedElements = async (set: string): Promise<string[]> => (await f.client.call("listEntries", { parent: `ipsets/${set}`, pageSize: 1000, pageToken: "", filter: "" })).entries.map((entry) => entry.element).sort();

  it("valid, invalid and refused adds, deletes and tests of one set at once", async () => {
    await f.client.call("createIpset", { ipsetId: "mixed", ipset: ipset({ comments: true }), requestId: "" });
    for (let i = 1; i <= 5; i++) await f.client.call("addEntry", { parent: "ipsets/mixed", entry: { name: "", element: `192.0.2.${i}`, comment: "" } });

    const add = (element: string, comment = ""): Promise<unknown> => f.client.call("addEntry", { parent: "ipsets/mixed", entry: { name: "", element, comment } });
    const del = (element: string): Promise<unknown> => f.client.call("deleteEntry", { name: `ipsets/mixed/entries/${element}` });
    const test = (element: string): Promise<unknown> => f.client.call("testEntry", { parent: "ipsets/mixed", element });
    const calls: Array<[string, Promise<unknown>, string]> = [];
    for (let i = 1; i <= 40; i++) calls.push([`add 198.51.100.${i}`, add(`198.51.100.${i}`, i % 2 === 0 ? "even" : ""), "OK"]);
    calls.push(["add 198.51.100.300", add("198.51.100.300"), "INVALID_ARGUMENT INVALID_ELEMENT"]);
    calls.push(["add with comment -q", add("198.51.100.77", "-q"), "INVALID_ARGUMENT INVALID_COMMENT"]);
    calls.push(["add 2001:db8::1 to an inet set", add("2001:db8::1"), "INVALID_ARGUMENT FAMILY_MISMATCH"]);
    for (let i = 1; i <= 3; i++) calls.push([`delete 192.0.2.${i}`, del(`192.0.2.${i}`), "OK"]);
    calls.push(["delete 192.0.2.99", del("192.0.2.99"), "NOT_FOUND ENTRY_NOT_FOUND"]);
    calls.push(["test 192.0.2.4", test("192.0.2.4"), "OK true"]);
    calls.push(["test 203.0.113.9", test("203.0.113.9"), "OK false"]);
    // The same element twice in one burst: the second waits for the next group, so both apply, in order.
    calls.push(["add 198.51.100.200", add("198.51.100.200", "first"), "OK"]);
    calls.push(["add 198.51.100.200 again", add("198.51.100.200", "second"), "OK"]);
    const results = await Promise.all(calls.map(async ([label, call, expected]) => [label, await outcome(call), expected] as const));
    for (const [label, got, expected] of results) assert.equal(got, expected, label);

    const expected = ["192.0.2.4", "192.0.2.5", "198.51.100.200", ...Array.from({ length: 40 }, (_, i) => `198.51.100.${i + 1}`)].sort();
    assert.deepEqual(await storedElements("mixed"), expected);
    assert.deepEqual(kernelElements("mixed"), expected);
    assert.match(f.netns.exec("ipset", ["save", "mixed"]), /^add mixed 198\.51\.100\.200 comment "second"$/m);
    const page = await f.client.call("listEntries", { parent: "ipsets/mixed", pageSize: 1000, pageToken: "", filter: "" });
    assert.equal(page.entries.find((entry) => entry.element === "198.51.100.200")?.comment, "second");
    assert.equal(page.entries.find((entry) => entry.element === "198.51.100.2")?.comment, "even");
    // The session still answers normally after the refusals.
    assert.equal(await outcome(test("198.51.100.40")), "OK true");
  });

  it("adds the kernel refuses (a full set that does not grow) fail alone; the others stand, kernel equals store", async () => {
    await f.client.call("createIpset", { ipsetId: "small", ipset: ipset({ maxelem: 8, autoGrow: false }), requestId: "" });
    const elements = Array.from({ length: 20 }, (_, i) => `203.0.113.${i + 1}`);
    const results = await Promise.all(elements.map((element) => outcome(f.client.call("addEntry", { parent: "ipsets/small", entry: { name: "", element, comment: "" } }))));
    const added = elements.filter((_, i) => results[i] === "OK").sort();
    assert.equal(added.length, 8, results.join(", "));
    assert.ok(results.every((result) => result === "OK" || result === "RESOURCE_EXHAUSTED IPSET_FULL"), results.join(", "));
    assert.deepEqual(await storedElements("small"), added);
    assert.deepEqual(kernelElements("small"), added);
  });

  it("single adds to a set that grows find it full together: it grows once, and every add lands", async () => {
    await f.client.call("createIpset", { ipsetId: "growing", ipset: ipset({ maxelem: 16 }), requestId: "" });
    const elements = Array.from({ length: 60 }, (_, i) => `198.51.100.${i + 101}`);
    const results = await Promise.all(elements.map((element) => outcome(f.client.call("addEntry", { parent: "ipsets/growing", entry: { name: "", element, comment: "" } }))));
    assert.deepEqual(results, elements.map(() => "OK"));
    assert.deepEqual(await storedElements("growing"), [...elements].sort());
    assert.deepEqual(kernelElements("growing"), [...elements].sort());
    assert.ok((await f.client.call("getIpset", { name: "ipsets/growing" })).maxelem >= 64);
  });
});
