import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { AddressFamily } from "../../server/src/gen/portcullis/v1/common.js";
import { IpsetType } from "../../server/src/gen/portcullis/v1/ipset.js";
import { VictimAttacker } from "../harness/netns.js";
import { canConnect, listen } from "../harness/tcp.js";
import { IpsetTestClient } from "../harness/grpc-clients.js";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";
import { waitFor } from "../harness/wait.js";

describe("durability: acknowledged entries survive kill -9 and a kernel that lost the set", () => {
  let hosts: VictimAttacker;
  let f: ServerFixture;
  let listener: { stop(): void };

  before(async () => {
    hosts = new VictimAttacker();
    f = await startServerFixture(hosts.victim, { PORTCULLIS_RECONCILE_INTERVAL_SECONDS: "1" });
    listener = await listen(hosts.victim.name, 993);
  });
  after(async () => {
    listener?.stop();
    await f?.close();
    hosts?.destroy();
  });

  it("restores sets and entries with their remaining timeout; expired ones stay gone", async () => {
    await f.client.call("createIpset", {
      ipsetId: "bans",
      ipset: { name: "", type: IpsetType.IPSET_TYPE_HASH_IP, typeName: "", family: AddressFamily.ADDRESS_FAMILY_INET, hashsize: 0, maxelem: 0, comments: true, range: "", memoryBytes: 0, references: 0, entryCount: 0, managed: false, defaultTimeout: 0 },
      requestId: "",
    });
    await f.client.call("addEntry", { parent: "ipsets/bans", entry: { name: "", element: VictimAttacker.attackerV4, comment: "dovecot", timeout: 600 } });
    await f.client.call("addEntry", { parent: "ipsets/bans", entry: { name: "", element: "198.51.100.1", comment: "", timeout: 2 } });
    await f.client.call("addEntry", { parent: "ipsets/bans", entry: { name: "", element: "203.0.113.9", comment: "permanent" } });
    const bulk = Array.from({ length: 2000 }, (_, i) => ({ name: "", element: `10.9.${i >> 8}.${i & 255}`, comment: "", timeout: 900 }));
    await f.client.call("batchAddEntries", { elements: [], comment: "", parent: "ipsets/bans", entries: bulk });

    // The acknowledged writes are in the WAL: kill -9 loses nothing.
    await f.server.kill("SIGKILL");
    // As after a reboot: the kernel set is gone (no rule references it yet, so it can be destroyed by hand).
    hosts.victim.exec("ipset", ["destroy", "bans"]);
    assert.throws(() => hosts.victim.exec("ipset", ["list", "bans"]));
    await new Promise((resolve) => setTimeout(resolve, 2500)); // let the 2 s entry expire while the server is down

    await f.server.restart();
    const client = new IpsetTestClient(f.server.address, f.server.credentials());
    try {
      const saved = hosts.victim.exec("ipset", ["save", "bans"]);
      assert.match(saved, /^create bans hash:ip family inet .*timeout 0 comment/m);
      const attacker = new RegExp(`^add bans ${VictimAttacker.attackerV4.replace(/\./g, "\\.")} timeout (\\d+) comment "dovecot"$`, "m").exec(saved);
      assert.ok(attacker, saved.slice(0, 500));
      const remaining = Number(attacker[1]);
      assert.ok(remaining <= 597 && remaining > 550, `remaining timeout ${remaining} must be what was left, not a fresh 600`);
      assert.match(saved, /^add bans 203\.0\.113\.9 timeout 0 comment "permanent"$/m);
      assert.doesNotMatch(saved, /198\.51\.100\.1 /, "the expired entry must not be resurrected");
      assert.match(hosts.victim.exec("ipset", ["list", "-terse", "bans"]), /Number of entries: 2002/);

      // And it is real: the attacker is dropped again once a rule uses the restored set.
      hosts.victim.exec("iptables", ["-I", "INPUT", "-m", "set", "--match-set", "bans", "src", "-j", "DROP"]);
      assert.equal(await canConnect(hosts.attacker.name, VictimAttacker.victimV4, 993), false);
      const listed = await client.call("listEntries", { parent: "ipsets/bans", pageSize: 10, pageToken: "", filter: "" });
      assert.equal(listed.totalSize, 2002);
    } finally {
      client.close();
    }
  });

  it("repairs a set flushed by hand while it runs (periodic reconciliation)", async () => {
    hosts.victim.exec("ipset", ["flush", "bans"]);
    assert.match(hosts.victim.exec("ipset", ["list", "-terse", "bans"]), /Number of entries: 0/);
    await waitFor("the periodic reconciliation (every second here) refilling the set", () => /Number of entries: 2002/.test(hosts.victim.exec("ipset", ["list", "-terse", "bans"])), { every: 200 });
    assert.equal(await canConnect(hosts.attacker.name, VictimAttacker.victimV4, 993), false, "the repaired set drops the attacker again");
  });
});
