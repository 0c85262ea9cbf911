import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { AddressFamily } from "../../server/src/gen/portcullis/v1/common.js";
import { IpsetType } from "../../server/src/gen/portcullis/v1/ipset.js";
import { VictimAttacker } from "../harness/netns.js";
import { canConnect, listen } from "../harness/tcp.js";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";
import { waitFor } from "../harness/wait.js";

const IMAP = 143;

describe("packet level: an entry added through the API drops the attacker's TCP connect", () => {
  let hosts: VictimAttacker;
  let f: ServerFixture;
  let listener: { stop(): void };

  before(async () => {
    hosts = new VictimAttacker();
    f = await startServerFixture(hosts.victim);
    listener = await listen(hosts.victim.name, IMAP);
    for (const [name, family, tool] of [["blocklist", AddressFamily.ADDRESS_FAMILY_INET, "iptables"], ["blocklist6", AddressFamily.ADDRESS_FAMILY_INET6, "ip6tables"]] as const) {
      await f.client.call("createIpset", {
        ipsetId: name,
        ipset: { name: "", type: IpsetType.IPSET_TYPE_HASH_IP, typeName: "", family, hashsize: 0, maxelem: 0, comments: false, range: "", memoryBytes: 0, references: 0, entryCount: 0, managed: false, defaultTimeout: 0 },
        requestId: "",
      });
      // The seed's one rule per ban set.
      hosts.victim.exec(tool, ["-I", "INPUT", "-m", "set", "--match-set", name, "src", "-j", "DROP"]);
    }
  });

  after(async () => {
    listener?.stop();
    await f?.close();
    hosts?.destroy();
  });

  for (const [label, set, victim, attacker] of [
    ["IPv4", "blocklist", VictimAttacker.victimV4, VictimAttacker.attackerV4],
    ["IPv6", "blocklist6", VictimAttacker.victimV6, VictimAttacker.attackerV6],
  ] as const) {
    it(`${label}: connect works, is dropped after the add, works again after the delete`, async () => {
      assert.equal(await canConnect(hosts.attacker.name, victim, IMAP), true, "baseline connect must succeed");
      await f.client.call("addEntry", { parent: `ipsets/${set}`, entry: { name: "", element: attacker, comment: "" } });
      assert.equal(await canConnect(hosts.attacker.name, victim, IMAP), false, "connect must fail once the attacker is in the set");
      await f.client.call("deleteEntry", { name: `ipsets/${set}/entries/${attacker}` });
      assert.equal(await canConnect(hosts.attacker.name, victim, IMAP), true, "connect must succeed again after the delete");
    });
  }

  it("a timed entry stops dropping by itself when its timeout expires", async () => {
    const added = Date.now();
    await f.client.call("addEntry", { parent: "ipsets/blocklist", entry: { name: "", element: VictimAttacker.attackerV4, comment: "", timeout: 3 } });
    assert.equal(await canConnect(hosts.attacker.name, VictimAttacker.victimV4, IMAP), false);
    await waitFor("the entry's expiry letting the attacker in", () => canConnect(hosts.attacker.name, VictimAttacker.victimV4, IMAP));
    // By its timeout, not before: the kernel counts from the add, after `added` (in ticks of a few ms).
    assert.ok(Date.now() - added >= 2900, `let in ${Date.now() - added} ms after the add`);
  });

  it("a CIDR entry in a hash:ip set drops every address inside it", async () => {
    await f.client.call("addEntry", { parent: "ipsets/blocklist", entry: { name: "", element: "192.0.2.96/28", comment: "" } });
    assert.equal(await canConnect(hosts.attacker.name, VictimAttacker.victimV4, IMAP), false);
    await f.client.call("deleteEntry", { name: "ipsets/blocklist/entries/192.0.2.96/28" });
    assert.equal(await canConnect(hosts.attacker.name, VictimAttacker.victimV4, IMAP), true);
  });
});
