import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseNetworkCanonical } from "../../server/src/addresses.js";
import { openDatabase } from "../../server/src/store/database.js";
import { AllowlistStore } from "../../server/src/store/allowlist-store.js";
import { Allowlist } from "../../server/src/jails/allowlist.js";

describe("allowlist", () => {
  it("canonical networks: host bits cleared, full-length prefixes written as the address", () => {
    const network = (text: string) => {
      const parsed = parseNetworkCanonical(text);
      return "problem" in parsed ? parsed.problem : parsed.network;
    };
    assert.equal(network("192.0.2.77/24"), "192.0.2.0/24");
    assert.equal(network("192.0.2.77/32"), "192.0.2.77");
    assert.equal(network("2001:DB8:0:0:1::5/64"), "2001:db8::/64");
    assert.equal(network("2001:db8::5/128"), "2001:db8::5");
    assert.equal(network("0.0.0.0/0"), "0.0.0.0/0");
    assert.match(network("192.0.2.1/33"), /prefix length must be 0-32/);
    assert.match(network("192.0.2.1/2/3"), /prefix length/);
    assert.match(network("192.0.2.1/-1"), /prefix length/);
    assert.match(network("example.com"), /not an IP address/);
  });

  it("covers addresses and narrower networks of the same family only; expired entries protect nothing", () => {
    const allowlist = new Allowlist(new AllowlistStore(openDatabase(":memory:")));
    allowlist.put({ network: "192.0.2.0/24", comment: "office", createdAt: 1, createdBy: "admin" });
    allowlist.put({ network: "2001:db8::/64", comment: "", createdAt: 1, createdBy: "admin" });
    allowlist.put({ network: "203.0.113.9", comment: "", createdAt: 1, expiresAt: Date.now() - 1, createdBy: "admin" });
    assert.equal(allowlist.covering("192.0.2.200")?.network, "192.0.2.0/24");
    assert.equal(allowlist.covering("192.0.2.128/25")?.network, "192.0.2.0/24");
    assert.equal(allowlist.covering("192.0.2.0/23"), undefined, "a wider network is not covered");
    assert.equal(allowlist.covering("192.0.3.1"), undefined);
    assert.equal(allowlist.covering("2001:db8::1")?.network, "2001:db8::/64");
    assert.equal(allowlist.covering("::ffff:192.0.2.1"), undefined, "IPv4-mapped IPv6 is another family");
    assert.equal(allowlist.covering("203.0.113.9"), undefined, "expired");
    assert.deepEqual(allowlist.list().map((entry) => entry.network), ["192.0.2.0/24", "2001:db8::/64"]);
    assert.equal(allowlist.stored().length, 3);
    assert.equal(allowlist.delete("192.0.2.0/24"), true);
    assert.equal(allowlist.delete("192.0.2.0/24"), false);
    assert.equal(allowlist.covering("192.0.2.200"), undefined);
  });
});
