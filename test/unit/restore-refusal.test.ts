import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { restoreRefusal } from "../../server/src/drivers/restore-refusal.js";

// stderr as iptables-restore 1.8.9 (nf_tables) prints it, captured from the real tool.
const lines = ["*filter", "-A INPUT -p udp -m set --match-set v6x src -j DROP", "COMMIT"];
const at = (number: number): string | undefined => lines[number - 1];

describe("iptables-restore's complaints", () => {
  it("a line it could not parse: 'Error occurred at line: N', with the reason first", () => {
    const error = restoreRefusal("iptables-restore", "iptables-restore v1.8.9 (nf_tables): The protocol family of set v6x is IPv6, which is not applicable.\n\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", at);
    assert.equal(error?.reason, "RULESET_REJECTED");
    assert.equal(error.message, 'iptables-restore refused the change at "-A INPUT -p udp -m set --match-set v6x src -j DROP": The protocol family of set v6x is IPv6, which is not applicable.; nothing was applied');
    assert.deepEqual(error.metadata, { line: lines[1] });
  });

  it("a COMMIT the kernel refused: 'line N failed'", () => {
    const error = restoreRefusal("iptables-restore", "iptables-restore: line 2 failed: Bad rule (does a matching rule exist in that chain?).\n", at);
    assert.equal(error?.message, 'iptables-restore refused the change at "-A INPUT -p udp -m set --match-set v6x src -j DROP": Bad rule (does a matching rule exist in that chain?).; nothing was applied');
  });

  it("no line named, or one outside the input: undefined (the caller reports a generic failure)", () => {
    assert.equal(restoreRefusal("iptables-restore", "Killed\n", at), undefined);
    assert.equal(restoreRefusal("iptables-restore", "iptables-restore: line 9 failed\n", at), undefined);
  });
});
