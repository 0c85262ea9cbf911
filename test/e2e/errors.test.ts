import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { AddressFamily } from "../../server/src/gen/portcullis/v1/common.js";
import { IpsetType, type Ipset } from "../../server/src/gen/portcullis/v1/ipset.js";
import { rejectsWith } from "../harness/grpc-clients.js";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";

function spec(type: IpsetType, extra: Partial<Ipset> = {}): Ipset {
  return { name: "", type, typeName: "", family: AddressFamily.ADDRESS_FAMILY_INET, hashsize: 0, maxelem: 0, comments: false, range: "", memoryBytes: 0, references: 0, entryCount: 0, managed: false, ...extra };
}
const entry = (element: string, extra: { timeout?: number; comment?: string } = {}) => ({ name: "", element, comment: extra.comment ?? "", ...(extra.timeout === undefined ? {} : { timeout: extra.timeout }) });

describe("bad input gets a precise error and changes nothing", () => {
  let f: ServerFixture;

  before(async () => {
    f = await startServerFixture();
    await f.client.call("createIpset", { ipsetId: "v4", ipset: spec(IpsetType.IPSET_TYPE_HASH_IP), requestId: "" });
    await f.client.call("createIpset", { ipsetId: "ports", ipset: spec(IpsetType.IPSET_TYPE_HASH_IP_PORT), requestId: "" });
  });
  after(async () => f?.close());

  it("set names must match [A-Za-z0-9][A-Za-z0-9_.:-]{0,30}", async () => {
    for (const bad of ["bad name", "-leading", "a".repeat(32), "semi;colon", "$(reboot)", ""]) {
      const error = await rejectsWith(f.client.call("createIpset", { ipsetId: bad, ipset: spec(IpsetType.IPSET_TYPE_HASH_IP), requestId: "" }), status.INVALID_ARGUMENT, "INVALID_IPSET_NAME");
      assert.match(error.details, /ipset_id/);
    }
    assert.doesNotMatch(f.netns.exec("ipset", ["list", "-name"]), /bad|leading|reboot/);
  });

  it("malformed resource names are refused", async () => {
    await rejectsWith(f.client.call("getIpset", { name: "sets/v4" }), status.INVALID_ARGUMENT, "INVALID_RESOURCE_NAME");
    await rejectsWith(f.client.call("deleteEntry", { name: "ipsets/v4/192.0.2.1" }), status.INVALID_ARGUMENT, "INVALID_RESOURCE_NAME");
  });

  it("addresses are parsed, never resolved: hostnames and malformed addresses are refused", async () => {
    for (const bad of ["999.1.1.1", "example.com", "localhost", "192.0.2.1 ; reboot", "010.1.1.1", "10.1", "192.0.2.0/33", ""]) {
      await rejectsWith(f.client.call("addEntry", { parent: "ipsets/v4", entry: entry(bad) }), status.INVALID_ARGUMENT, "INVALID_ELEMENT");
    }
    assert.equal(f.netns.setEntries("v4"), 0);
  });

  it("an IPv6 address into an inet set is INVALID_ARGUMENT naming the family", async () => {
    const error = await rejectsWith(f.client.call("addEntry", { parent: "ipsets/v4", entry: entry("2001:db8::1") }), status.INVALID_ARGUMENT, "FAMILY_MISMATCH");
    assert.match(error.details, /IPv6.*inet/);
  });

  it("ports are checked against the set type", async () => {
    await rejectsWith(f.client.call("addEntry", { parent: "ipsets/ports", entry: entry("192.0.2.1,tcp:70000") }), status.INVALID_ARGUMENT, "INVALID_ELEMENT");
    await rejectsWith(f.client.call("addEntry", { parent: "ipsets/ports", entry: entry("192.0.2.1") }), status.INVALID_ARGUMENT, "INVALID_ELEMENT");
    const ok = await f.client.call("addEntry", { parent: "ipsets/ports", entry: entry("192.0.2.1,25") });
    assert.equal(ok.element, "192.0.2.1,tcp:25");
  });

  it("unknown set → NOT_FOUND; existing set → ALREADY_EXISTS; missing entry → NOT_FOUND", async () => {
    await rejectsWith(f.client.call("getIpset", { name: "ipsets/nope" }), status.NOT_FOUND, "IPSET_NOT_FOUND");
    await rejectsWith(f.client.call("addEntry", { parent: "ipsets/nope", entry: entry("192.0.2.1") }), status.NOT_FOUND, "IPSET_NOT_FOUND");
    await rejectsWith(f.client.call("createIpset", { ipsetId: "v4", ipset: spec(IpsetType.IPSET_TYPE_HASH_NET), requestId: "" }), status.ALREADY_EXISTS, "IPSET_ALREADY_EXISTS");
    await rejectsWith(f.client.call("deleteEntry", { name: "ipsets/v4/entries/192.0.2.55" }), status.NOT_FOUND, "ENTRY_NOT_FOUND");
  });

  it("deleting a set an iptables rule references is FAILED_PRECONDITION naming the rule", async () => {
    await f.client.call("createIpset", { ipsetId: "referenced", ipset: spec(IpsetType.IPSET_TYPE_HASH_IP), requestId: "" });
    f.netns.exec("iptables", ["-A", "INPUT", "-p", "tcp", "--dport", "25", "-m", "set", "--match-set", "referenced", "src", "-j", "DROP"]);
    const error = await rejectsWith(f.client.call("deleteIpset", { name: "ipsets/referenced" }), status.FAILED_PRECONDITION, "IPSET_IN_USE");
    assert.match(error.details, /-A INPUT -p tcp -m tcp --dport 25 -m set --match-set referenced src -j DROP/);
    assert.match(f.netns.exec("ipset", ["list", "-name"]), /^referenced$/m);
    assert.equal((await f.client.call("getIpset", { name: "ipsets/referenced" })).managed, true);
  });

  it("a batch with one bad entry is rejected whole, before anything is applied", async () => {
    const entries = Array.from({ length: 5000 }, (_, i) => entry(`10.0.${i >> 8}.${i & 255}`));
    entries.splice(4321, 0, entry("10.0.0.256"));
    const error = await rejectsWith(f.client.call("batchAddEntries", { elements: [], comment: "", parent: "ipsets/v4", entries }), status.INVALID_ARGUMENT, "INVALID_ELEMENT");
    assert.match(error.details, /entries\[4321\]/);
    assert.equal(f.netns.setEntries("v4"), 0);
    assert.equal((await f.client.call("listEntries", { parent: "ipsets/v4", pageSize: 0, pageToken: "", filter: "" })).totalSize, 0);
  });

  it("timeouts and comments need a set created with them", async () => {
    await rejectsWith(f.client.call("addEntry", { parent: "ipsets/v4", entry: entry("192.0.2.1", { timeout: 60 }) }), status.FAILED_PRECONDITION, "TIMEOUT_NOT_SUPPORTED");
    await rejectsWith(f.client.call("addEntry", { parent: "ipsets/v4", entry: entry("192.0.2.1", { comment: "x" }) }), status.FAILED_PRECONDITION, "COMMENT_NOT_SUPPORTED");
    await f.client.call("createIpset", { ipsetId: "timed", ipset: spec(IpsetType.IPSET_TYPE_HASH_IP, { defaultTimeout: 60, comments: true }), requestId: "" });
    await rejectsWith(f.client.call("addEntry", { parent: "ipsets/timed", entry: entry("192.0.2.1", { timeout: 99_999_999 }) }), status.INVALID_ARGUMENT, "INVALID_TIMEOUT");
    await rejectsWith(f.client.call("addEntry", { parent: "ipsets/timed", entry: entry("192.0.2.1", { comment: 'quote " inside' }) }), status.INVALID_ARGUMENT, "INVALID_COMMENT");
    assert.equal(f.netns.setEntries("v4") + f.netns.setEntries("timed"), 0);
  });

  it("type options are checked: bitmap:ip needs a range, hash types refuse one", async () => {
    await rejectsWith(f.client.call("createIpset", { ipsetId: "bm", ipset: spec(IpsetType.IPSET_TYPE_BITMAP_IP, { family: AddressFamily.ADDRESS_FAMILY_UNSPECIFIED }), requestId: "" }), status.INVALID_ARGUMENT, "INVALID_IPSET_OPTION");
    await rejectsWith(f.client.call("createIpset", { ipsetId: "hr", ipset: spec(IpsetType.IPSET_TYPE_HASH_IP, { range: "192.0.2.0/24" }), requestId: "" }), status.INVALID_ARGUMENT, "INVALID_IPSET_OPTION");
    await rejectsWith(f.client.call("createIpset", { ipsetId: "nt", ipset: spec(IpsetType.IPSET_TYPE_UNSPECIFIED), requestId: "" }), status.INVALID_ARGUMENT, "INVALID_IPSET_TYPE");
    const bitmap = await f.client.call("createIpset", { ipsetId: "bm", ipset: spec(IpsetType.IPSET_TYPE_BITMAP_IP, { family: AddressFamily.ADDRESS_FAMILY_UNSPECIFIED, range: "192.0.2.0/24" }), requestId: "" });
    assert.equal(bitmap.typeName, "bitmap:ip");
    await rejectsWith(f.client.call("addEntry", { parent: "ipsets/bm", entry: entry("198.51.100.1") }), status.INVALID_ARGUMENT, "INVALID_ELEMENT");
    await f.client.call("addEntry", { parent: "ipsets/bm", entry: entry("192.0.2.9") });
  });

  it("an import with one bad line creates nothing", async () => {
    const error = await rejectsWith(f.client.call("importIpsets", { content: "create newset hash:ip\nadd newset 192.0.2.1\nadd newset not-an-ip\n" }), status.INVALID_ARGUMENT);
    assert.match(error.details, /line 3|not-an-ip/);
    assert.doesNotMatch(f.netns.exec("ipset", ["list", "-name"]), /^newset$/m);
    await rejectsWith(f.client.call("importIpsets", { content: "flush v4\n" }), status.INVALID_ARGUMENT, "INVALID_IMPORT");
  });

  it("page tokens and page sizes are checked", async () => {
    await rejectsWith(f.client.call("listEntries", { parent: "ipsets/v4", pageSize: 0, pageToken: "garbage", filter: "" }), status.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN");
    await rejectsWith(f.client.call("listEntries", { parent: "ipsets/v4", pageSize: -1, pageToken: "", filter: "" }), status.INVALID_ARGUMENT, "INVALID_PAGE_SIZE");
  });

  it("reusing a request_id for a different request is refused", async () => {
    await f.client.call("createIpset", { ipsetId: "idem1", ipset: spec(IpsetType.IPSET_TYPE_HASH_IP), requestId: "req-1" });
    await rejectsWith(f.client.call("createIpset", { ipsetId: "idem2", ipset: spec(IpsetType.IPSET_TYPE_HASH_IP), requestId: "req-1" }), status.INVALID_ARGUMENT, "REQUEST_ID_REUSED");
    assert.doesNotMatch(f.netns.exec("ipset", ["list", "-name"]), /^idem2$/m);
  });
});
