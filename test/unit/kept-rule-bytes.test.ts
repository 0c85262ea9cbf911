import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ListRulesResponse, Rule, TargetKind } from "../../server/src/gen/portcullis/v1/firewall.js";
import { encodeListRules } from "../../server/src/grpc/kept-rule-bytes.js";

const rule = (id: string, comment = ""): Rule => Rule.fromPartial({ name: `tables/ipv4/filter/chains/INPUT/rules/${id}`, id, chain: "INPUT", position: 1, protocol: "tcp", comment, target: { kind: TargetKind.TARGET_KIND_ACCEPT } });

describe("ListRules' kept rule bytes", () => {
  it("encodes byte for byte what the generated encode writes, the first time and with kept bytes", () => {
    const rules = [rule("a1"), rule("b2", "ssh ✓"), rule("c3")];
    const response: ListRulesResponse = { rules, nextPageToken: "next", totalSize: 7 };
    const expected = Buffer.from(ListRulesResponse.encode(response).finish());
    assert.deepEqual(encodeListRules(response), expected);
    assert.deepEqual(encodeListRules(response), expected, "again, from the kept bytes");
    assert.deepEqual(ListRulesResponse.decode(encodeListRules({ rules: [rules[2]!, rules[0]!], nextPageToken: "", totalSize: 0 })).rules.map((r) => r.id), ["c3", "a1"]);
  });

  it("keeps bytes per wire rule object: a new rule of the same id is encoded anew", () => {
    const first = rule("a1", "old");
    encodeListRules({ rules: [first], nextPageToken: "", totalSize: 1 });
    const replaced = rule("a1", "new");
    assert.equal(ListRulesResponse.decode(encodeListRules({ rules: [replaced], nextPageToken: "", totalSize: 1 })).rules[0]!.comment, "new");
  });
});
