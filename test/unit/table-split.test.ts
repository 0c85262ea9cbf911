import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { splitTable, TableSplits } from "../../server/src/firewall/table-split.js";

const TEXT = ["*filter", ":INPUT ACCEPT [0:0]", ":f2b-sshd - [0:0]", "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT", "-A INPUT -p tcp -m tcp --dport 25 -j ACCEPT", "-A INPUT -j f2b-sshd", "-A f2b-sshd -j RETURN", "COMMIT", ""].join("\n");
const managedOf = (entries: Array<[string, string[]]>) => new Map(entries);

describe("splitTable", () => {
  it("marks the managed lines (with the recorded ids) and leaves the others to their tools", () => {
    const views = splitTable("ipv4", "filter", TEXT, managedOf([["-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT", ["r1"]]]));
    assert.deepEqual(views.chains.map((chain) => chain.name), ["INPUT", "f2b-sshd"]);
    assert.deepEqual(views.rules.map((rule) => [rule.chain, rule.position, rule.managed]), [["INPUT", 1, true], ["INPUT", 2, false], ["INPUT", 3, false], ["f2b-sshd", 1, false]]);
    assert.equal(views.rules[0]!.id, "r1");
  });
});

describe("TableSplits", () => {
  const port22 = managedOf([["-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT", ["r1"]]]);
  const port25 = managedOf([["-A INPUT -p tcp -m tcp --dport 25 -j ACCEPT", ["r2"]]]);

  it("gives the remembered split while the text and the managed rules' revision are the same", () => {
    const splits = new TableSplits();
    const ahead = splitTable("ipv4", "filter", TEXT, port22);
    splits.remember("ipv4", "filter", TEXT, 7, ahead);
    assert.equal(splits.split("ipv4", "filter", `${TEXT}`, port22, 7), ahead);
    // Another table, or the other family, has a split of its own.
    assert.notEqual(splits.split("ipv6", "filter", TEXT, port22, 7), ahead);
  });

  it("splits again when the managed rules changed (a new revision) or the text is another", () => {
    const splits = new TableSplits();
    splits.remember("ipv4", "filter", TEXT, 7, splitTable("ipv4", "filter", TEXT, port22));
    const changed = splits.split("ipv4", "filter", TEXT, port25, 8);
    assert.deepEqual(changed.rules.filter((rule) => rule.managed).map((rule) => rule.id), ["r2"]);
    const other = TEXT.replace("--dport 25", "--dport 26");
    const reread = splits.split("ipv4", "filter", other, port25, 8);
    assert.deepEqual(reread.rules.filter((rule) => rule.managed).map((rule) => rule.id), []);
    // The last split made is the one kept.
    assert.equal(splits.split("ipv4", "filter", other, port25, 8), reread);
  });
});
