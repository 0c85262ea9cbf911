import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FirewallServiceService, ListRulesResponse, Rule, TargetKind } from "../../sdk/src/gen/portcullis/v1/firewall.js";
import { withFastEncoding } from "../../sdk/src/wire/fast-services.js";

const rule = (i: number): Rule => Rule.fromPartial({
  name: `firewall/ipv4/tables/filter/chains/INPUT/rules/abc${i}`, id: `abc${i}`, chain: "INPUT", position: i + 1, protocol: "tcp",
  destinationPort: { ports: [{ first: 1000 + i, last: 1000 + i }] }, target: { kind: TargetKind.TARGET_KIND_ACCEPT }, comment: "ünï ✓", packets: 2 ** 40 + i, managed: true, text: `-A INPUT … ${i}`,
});

describe("kept response items: the bytes of items that never change are reused", () => {
  const fast = withFastEncoding(FirewallServiceService, { keptResponseItems: { listRules: "rules" } });
  const serialize = (message: ListRulesResponse): Buffer => fast.listRules.responseSerialize(message);

  it("encodes exactly what the generated encoder does, the first time and when the items come again", () => {
    const rules = Array.from({ length: 300 }, (_, i) => rule(i));
    const message: ListRulesResponse = { rules, nextPageToken: "next", totalSize: 1000 };
    const expected = Buffer.from(ListRulesResponse.encode(message).finish());
    assert.deepEqual(serialize(message), expected);
    assert.deepEqual(serialize(message), expected);
    // Another page: some items again, some new, in another order.
    const page: ListRulesResponse = { rules: [rule(500), ...rules.slice(100, 200).reverse(), rule(501)], nextPageToken: "", totalSize: 102 };
    assert.deepEqual(serialize(page), Buffer.from(ListRulesResponse.encode(page).finish()));
    assert.deepEqual(ListRulesResponse.decode(serialize(page)), page);
  });

  it("an item's bytes are made once: later encodes reuse them (which is why items must not change)", () => {
    const item = rule(7);
    serialize({ rules: [item], nextPageToken: "", totalSize: 1 });
    item.comment = "changed afterwards";
    assert.equal(ListRulesResponse.decode(serialize({ rules: [item], nextPageToken: "", totalSize: 1 })).rules[0]!.comment, "ünï ✓");
  });

  it("is refused for a field that is not a repeated message field with the lowest number", () => {
    assert.throws(() => withFastEncoding(FirewallServiceService, { keptResponseItems: { exportRuleset: "rules" } }), /lowest field number/);
    assert.throws(() => withFastEncoding(FirewallServiceService, { keptResponseItems: { listRules: "nextPageToken" } }), /no repeated message field/);
  });
});
