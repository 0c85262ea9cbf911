import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ApplyRulesetRequest, ChainPolicy, FirewallServiceService, Rule, RulesetScope, TargetKind } from "../../sdk/src/gen/portcullis/v1/firewall.js";
import { LazyItems } from "../../sdk/src/wire/decode.js";
import { withFastEncoding } from "../../sdk/src/wire/fast-services.js";

const rule = (i: number): Rule => Rule.fromPartial({ chain: i % 2 ? "INPUT" : "mail_in", protocol: "tcp", destinationPort: { ports: [{ first: 1000 + i, last: 1000 + i }] }, comment: `ünï ${i}`, target: { kind: TargetKind.TARGET_KIND_ACCEPT } });

describe("lazy request items: a big repeated field decoded item by item, when read", () => {
  const fast = withFastEncoding(FirewallServiceService, { lazyRequestItems: { applyRuleset: "rules" } });
  const request: ApplyRulesetRequest = {
    parent: "firewall/ipv4/tables/filter",
    chains: [{ name: "INPUT", builtin: true, policy: ChainPolicy.CHAIN_POLICY_DROP, packets: 0, bytes: 0, ruleCount: 0, references: 0 }],
    rules: Array.from({ length: 50 }, (_, i) => rule(i)),
    confirmWithin: 30,
    allowLockout: true,
    scope: RulesetScope.RULESET_SCOPE_MANAGED,
    replaceForeign: true,
    dryRun: true,
  };
  const bytes = Buffer.from(ApplyRulesetRequest.encode(request).finish());

  it("gives the same message: the other fields decoded, the items through length and at()", () => {
    const decoded = fast.applyRuleset.requestDeserialize(bytes);
    assert.ok((decoded.rules as unknown) instanceof LazyItems);
    assert.equal(decoded.rules.length, 50);
    assert.deepEqual({ ...decoded, rules: [...(decoded.rules as unknown as LazyItems<Rule>)] }, request);
    assert.deepEqual(decoded.rules.at(7), request.rules[7]);
    assert.deepEqual(decoded.rules.at(-1), request.rules[49]);
    assert.equal(decoded.rules.at(50), undefined);
  });

  it("a malformed item throws when it is read, not before", () => {
    // The last rule's comment claims more bytes than its message holds.
    const broken = Buffer.from(bytes);
    const comment = broken.lastIndexOf(Buffer.from("ünï 49"));
    broken[comment - 1] = 0x7f;
    const decoded = fast.applyRuleset.requestDeserialize(broken);
    assert.deepEqual(decoded.rules.at(0), request.rules[0]);
    assert.throws(() => decoded.rules.at(49), RangeError);
  });

  it("is refused for a field that is not a repeated message field", () => {
    assert.throws(() => withFastEncoding(FirewallServiceService, { lazyRequestItems: { applyRuleset: "parent" } }), /no repeated message field/);
  });
});
