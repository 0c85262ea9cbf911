import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseIptablesSave } from "../../server/src/drivers/parse/iptables-save.js";
import { renderRuleLine } from "../../server/src/drivers/iptables-render.js";
import { validateRuleSpec } from "../../server/src/firewall/rule-validation.js";
import { identifyRules } from "../../server/src/firewall/rule-identity.js";
import type { ParsedRule, RuleSpec } from "../../server/src/firewall/rule-model.js";

const rulesOf = (lines: string[]): ParsedRule[] =>
  parseIptablesSave(["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ...lines, "COMMIT", ""].join("\n"))[0]!.rules;
const ssh: RuleSpec = { protocol: "tcp", destinationPort: { ports: [{ first: 22, last: 22 }], negate: false }, target: { kind: "ACCEPT" } };
const sshLine = renderRuleLine("INPUT", validateRuleSpec("ipv4", ssh));

describe("managed rules are recognised by content", () => {
  it("a kernel rule whose content equals a managed rule's gets the recorded id, wherever it is", () => {
    const managed = new Map([[sshLine, ["0123456789ab"]]]);
    const rules = rulesOf(["-A INPUT -p udp -m udp --dport 53 -j ACCEPT", sshLine]);
    assert.deepEqual(identifyRules("ipv4", "filter", rules, managed).map((rule) => [rule.id, rule.managed]).slice(1), [["0123456789ab", true]]);
    const moved = rulesOf([sshLine, "-A INPUT -p udp -m udp --dport 53 -j ACCEPT"]);
    assert.equal(identifyRules("ipv4", "filter", moved, managed)[0]!.id, "0123456789ab");
  });

  it("identical rules: the k-th occurrence takes the k-th id; surplus copies are someone else's, with distinct ids", () => {
    const managed = new Map([[sshLine, ["aaaaaaaaaaaa", "bbbbbbbbbbbb"]]]);
    const identities = identifyRules("ipv4", "filter", rulesOf([sshLine, sshLine, sshLine, sshLine]), managed);
    assert.deepEqual(identities.slice(0, 2), [{ id: "aaaaaaaaaaaa", managed: true }, { id: "bbbbbbbbbbbb", managed: true }]);
    assert.equal(identities[2]!.managed, false);
    assert.equal(identities[3]!.managed, false);
    assert.notEqual(identities[2]!.id, identities[3]!.id);
    assert.match(identities[2]!.id, /^x[0-9a-f]{11}$/);
  });

  it("a managed line in another chain or an unmodeled rule is not a match", () => {
    const managed = new Map([[sshLine, ["aaaaaaaaaaaa"]]]);
    const rules = rulesOf(["-A OUTPUT -p tcp -m tcp --dport 22 -j ACCEPT", "-A INPUT -p tcp -m tcp --dport 22 -m limit --limit 5/min -j ACCEPT"]);
    assert.ok(identifyRules("ipv4", "filter", rules, managed).every((rule) => !rule.managed));
  });
});
