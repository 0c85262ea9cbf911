import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ServerError } from "../../server/src/errors.js";
import { decodePageToken, encodePageToken, pageSize } from "../../server/src/api/pagination.js";
import { parseEntryName, parseIpsetName } from "../../server/src/api/resource-names.js";
import { KeyedLock } from "../../server/src/keyed-lock.js";
import { findSetReferences } from "../../server/src/drivers/parse/set-references.js";
import { requireRole } from "../../server/src/auth/roles.js";

const reason = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (error) {
    return error instanceof ServerError ? error.reason : "not a ServerError";
  }
  return undefined;
};

describe("resource names (AIP-122)", () => {
  it("parses set and entry names, CIDR elements included", () => {
    assert.equal(parseIpsetName("ipsets/spam_ips"), "spam_ips");
    assert.deepEqual(parseEntryName("ipsets/spam/entries/203.0.113.0/24"), ["spam", "203.0.113.0/24"]);
    assert.deepEqual(parseEntryName("ipsets/v6/entries/2001:db8::/32"), ["v6", "2001:db8::/32"]);
  });
  it("refuses anything else", () => {
    for (const bad of ["", "ipsets/", "sets/x", "ipsets/a/b", "ipsets/x/entries"]) assert.equal(reason(() => parseIpsetName(bad)), "INVALID_RESOURCE_NAME", bad);
    for (const bad of ["ipsets/x", "ipsets/x/entries/", "ipsets//entries/1.2.3.4", "x/entries/1.2.3.4"]) assert.equal(reason(() => parseEntryName(bad)), "INVALID_RESOURCE_NAME", bad);
  });
});

describe("pagination", () => {
  it("round-trips tokens and binds them to their list", () => {
    assert.equal(decodePageToken(encodePageToken("ipsets/a", "10.0.0.9"), "ipsets/a"), "10.0.0.9");
    assert.equal(decodePageToken("", "ipsets/a"), "");
    assert.equal(reason(() => decodePageToken(encodePageToken("ipsets/a", "x"), "ipsets/b")), "INVALID_PAGE_TOKEN");
    assert.equal(reason(() => decodePageToken("!!!", "ipsets/a")), "INVALID_PAGE_TOKEN");
  });
  it("checks page sizes", () => {
    assert.equal(pageSize(0, 100, 1000), 100);
    assert.equal(pageSize(1000, 100, 1000), 1000);
    assert.equal(reason(() => pageSize(1001, 100, 1000)), "INVALID_PAGE_SIZE");
    assert.equal(reason(() => pageSize(-5, 100, 1000)), "INVALID_PAGE_SIZE");
  });
});

describe("roles", () => {
  it("admin ⊇ operator ⊇ viewer, and the refusal names the role needed", () => {
    requireRole("admin", "operator", "M", "root");
    requireRole("operator", "operator", "M", "op");
    assert.throws(() => requireRole("viewer", "operator", "portcullis.v1.IpsetService/AddEntry", "vera"), /needs the operator role; certificate "vera" has role viewer/);
  });
});

describe("KeyedLock", () => {
  it("serializes work on one key and lets other keys run in parallel", async () => {
    const lock = new KeyedLock();
    const order: string[] = [];
    const slow = (label: string, ms: number) => async () => {
      order.push(`${label}+`);
      await new Promise((resolve) => setTimeout(resolve, ms));
      order.push(`${label}-`);
    };
    await Promise.all([lock.with(["a"], slow("a1", 30)), lock.with(["a"], slow("a2", 1)), lock.with(["b"], slow("b", 1))]);
    assert.ok(order.indexOf("a1-") < order.indexOf("a2+"), order.join(" "));
    assert.ok(order.indexOf("b-") < order.indexOf("a1-"), order.join(" "));
  });
  it("locks several keys without deadlock and releases on failure", async () => {
    const lock = new KeyedLock();
    await Promise.all([lock.with(["x", "y"], async () => undefined), lock.with(["y", "x"], async () => undefined)]);
    await assert.rejects(lock.with(["x"], async () => Promise.reject(new Error("boom"))), /boom/);
    assert.equal(await lock.with(["x"], async () => 42), 42);
  });
});

describe("set references in iptables-save output", () => {
  it("finds rules that match a set, by table, including rules others wrote", () => {
    const dump = [
      "*raw", ":PREROUTING ACCEPT [0:0]", "-A PREROUTING -m set --match-set blocklist src -j DROP", "COMMIT",
      "*filter", ":INPUT ACCEPT [0:0]", ":f2b-sshd - [0:0]",
      "-A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd",
      "-A f2b-sshd -m set --match-set f2b-sshd src -j REJECT --reject-with icmp-port-unreachable",
      "-A INPUT -m set --match-set blocklist-old src -j DROP",
      "-A INPUT -m set --match-set blocklist src,dst -j DROP", "COMMIT", "",
    ].join("\n");
    assert.deepEqual(findSetReferences(dump, "inet", "blocklist").map((r) => `${r.table}: ${r.rule}`), [
      "raw: -A PREROUTING -m set --match-set blocklist src -j DROP",
      "filter: -A INPUT -m set --match-set blocklist src,dst -j DROP",
    ]);
    assert.equal(findSetReferences(dump, "inet", "f2b-sshd").length, 1);
    assert.equal(findSetReferences(dump, "inet", "nothing").length, 0);
  });
});
