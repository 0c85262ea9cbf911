import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { kernelHolds } from "../../server/src/firewall/interrupted-changes.js";

/** line → ids, as managedLines gives them: one id per occurrence. */
const lines = (...entries: string[]): Map<string, string[]> => {
  const map = new Map<string, string[]>();
  entries.forEach((line, i) => map.set(line, [...(map.get(line) ?? []), `id${i}`]));
  return map;
};
/** line → how many rules of the kernel's table have it. */
const kernel = (...entries: string[]): Map<string, number> => {
  const map = new Map<string, number>();
  for (const line of entries) map.set(line, (map.get(line) ?? 0) + 1);
  return map;
};

const A = "-A INPUT -p tcp -m tcp --dport 25 -j ACCEPT";
const B = "-A INPUT -p tcp -m tcp --dport 143 -j ACCEPT";
const C = "-A INPUT -s 192.0.2.0/24 -j DROP";
const FOREIGN = "-A INPUT -j f2b-sshd";

describe("kernelHolds: which version of a table's managed rules an apply cut short left in the kernel", () => {
  it("the staged rules when the kernel has them, the previous ones when it still has those (other tools' rules aside)", () => {
    assert.equal(kernelHolds(kernel(FOREIGN, B, C), lines(A, C), lines(B, C)), "staged");
    assert.equal(kernelHolds(kernel(FOREIGN, A, C), lines(A, C), lines(B, C)), "before");
  });

  it("a ruleset that only removes rules (the staged lines are all in the previous ones) is told apart by what it removes", () => {
    assert.equal(kernelHolds(kernel(A, B, C), lines(A, B, C), lines(B)), "before");
    assert.equal(kernelHolds(kernel(B), lines(A, B, C), lines(B)), "staged");
  });

  it("counts matter: a line the ruleset repeats once more", () => {
    assert.equal(kernelHolds(kernel(A, A, B), lines(A, B), lines(A, A, B)), "staged");
    assert.equal(kernelHolds(kernel(A, B), lines(A, B), lines(A, A, B)), "before");
  });

  it("no evidence either way (equal rulesets, a table a reboot emptied) keeps the previous rules", () => {
    assert.equal(kernelHolds(kernel(A, B), lines(A, B), lines(A, B)), "before");
    assert.equal(kernelHolds(kernel(), lines(A), lines(B)), "before");
  });

  it("the majority of the differing lines decides when another tool happens to have one of them", () => {
    const D = "-A INPUT -p udp -m udp --dport 53 -j ACCEPT";
    // The kernel holds the staged B, C, D; another tool has an A of its own.
    assert.equal(kernelHolds(kernel(A, B, C, D), lines(A), lines(B, C, D)), "staged");
  });
});
