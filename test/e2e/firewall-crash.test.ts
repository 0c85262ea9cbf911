// An ApplyRuleset cut by kill -9 is all or nothing once the server is back: the kernel holds the old ruleset or the
// new one, whole, and the server manages exactly what the kernel holds (no rule of its own taken for another tool's,
// none added twice) — also when the kernel had committed the new rules and the server died before recording that.
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { RuleChange } from "../../server/src/store/firewall-store.js";
import type { RuleSpec } from "../../server/src/firewall/rule-model.js";
import { RulesetScope } from "../../server/src/gen/portcullis/v1/firewall.js";
import { EventType, type Event as HostEvent } from "../../server/src/gen/portcullis/v1/events.js";
import { accept, applyRequest, filterOf, inputOf, rule, tcpPort } from "../harness/firewall-requests.js";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";
import { EventTestClient, type FirewallTestClient } from "../harness/grpc-clients.js";

const RULES = 5_000;
/** Two rulesets told apart by their ports: A's are 30000 + i, B's 40000 + i. */
const rulesets = [30_000, 40_000].map((base) => Array.from({ length: RULES }, (_, i) => rule({ chain: "INPUT", ...tcpPort(base + i), target: accept })));

describe("an ApplyRuleset cut by kill -9: the old ruleset or the new one after the restart, never a mix", () => {
  let f: ServerFixture | undefined;
  let fw: FirewallTestClient;
  afterEach(async () => {
    await f?.close();
    f = undefined;
  });

  /** How many of each ruleset's rules the kernel's INPUT chain holds, and how many other rules. */
  const kernelCounts = (): { a: number; b: number; other: number } => {
    const counts = { a: 0, b: 0, other: 0 };
    for (const line of f!.netns.exec("iptables", ["-S", "INPUT"]).split("\n")) {
      if (!line.startsWith("-A INPUT")) continue;
      const port = Number(/--dport (\d+) /.exec(line)?.[1]);
      if (port >= 30_000 && port < 30_000 + RULES) counts.a++;
      else if (port >= 40_000 && port < 40_000 + RULES) counts.b++;
      else counts.other++;
    }
    return counts;
  };

  /** The rules the server lists in INPUT: managed and not. */
  const listed = async (): Promise<{ managed: number; foreign: number }> => {
    const counts = { managed: 0, foreign: 0 };
    for (let token = ""; ; ) {
      const page = await fw.call("listRules", { parent: inputOf("ipv4"), pageSize: 10_000, pageToken: token });
      for (const listedRule of page.rules) counts[listedRule.managed ? "managed" : "foreign"]++;
      token = page.nextPageToken;
      if (token === "") return counts;
    }
  };

  const apply = (turn: number, scope: RulesetScope) =>
    fw.call("applyRuleset", applyRequest({ parent: filterOf("ipv4"), chains: [], rules: rulesets[turn % 2]!, confirmWithin: 0, allowLockout: false, scope }));

  for (const scope of [RulesetScope.RULESET_SCOPE_TABLE, RulesetScope.RULESET_SCOPE_MANAGED]) {
    it(`scope ${RulesetScope[scope]}: killed at moments spread over an apply`, async () => {
      f = await startServerFixture();
      fw = f.firewall;
      let turn = 0;
      await apply(turn, scope);
      const outcomes: string[] = [];
      let recoveredBefore = 0;
      let finished = 0;
      for (const fraction of [0.15, 0.3, 0.38, 0.45, 0.52, 0.65]) {
        // Two applies first (the server is fresh after each restart), which time one here, so that the kill falls at
        // that fraction of the next: the kernel's commit is its second half.
        const started = performance.now();
        await apply(turn + 1, scope);
        await apply(turn, scope);
        const duration = (performance.now() - started) / 2;
        const before = turn % 2 === 0 ? "A" : "B";
        const after = turn % 2 === 0 ? "B" : "A";
        const call = apply(turn + 1, scope).then(() => "acknowledged", (error: { code?: number }) => `failed ${error.code}`);
        await sleep(Math.round(duration * fraction));
        await f.server.kill("SIGKILL");
        const outcome = await call;
        await f.server.restart();
        fw = f.firewallAs("admin");
        const kernel = kernelCounts();
        const which = kernel.a === RULES && kernel.b === 0 ? "A" : kernel.b === RULES && kernel.a === 0 ? "B" : "a mix";
        const where = `killed ${fraction} into an apply of ${duration.toFixed(0)} ms (${outcome})`;
        outcomes.push(`${fraction}: ${outcome}, ${which === before ? "before" : which === after ? "after" : which}`);
        assert.notEqual(which, "a mix", `${where}: the kernel holds ${kernel.a} of A and ${kernel.b} of B`);
        assert.equal(kernel.other, 0, `${where}: no other rule in INPUT`);
        assert.deepEqual(await listed(), { managed: RULES, foreign: 0 }, `${where}: the server manages exactly the rules the kernel holds`);
        if (outcome === "acknowledged") assert.equal(which, after, `${where}: an acknowledged apply survives`);
        // An apply the restart finished is reported as applied, by the system; none other is. (An apply published just
        // before the kill needed no finishing: hence "at most".)
        const eventClient: EventTestClient = new EventTestClient(f.server.address, f.server.credentials());
        const recovered: HostEvent[] = (await eventClient.call("listEvents", { afterSequence: 0, pageSize: 0, types: [EventType.EVENT_TYPE_RULESET_APPLIED], resourcePrefix: "", principal: "system", jail: "", address: "" })).events;
        eventClient.close();
        const added = recovered.length - recoveredBefore;
        assert.ok(added <= (outcome !== "acknowledged" && which === after ? 1 : 0), `${where}: ${added} RULESET_APPLIED events by the system`);
        if (added > 0) assert.equal(recovered.at(-1)!.attributes.interrupted, "true");
        recoveredBefore = recovered.length;
        if (added > 0) finished++;
        if (which === after) turn++;
      }
      // Still one ruleset after a later apply: the next one replaces it whole.
      await apply(turn + 1, scope);
      assert.deepEqual(kernelCounts(), turn % 2 === 0 ? { a: 0, b: RULES, other: 0 } : { a: RULES, b: 0, other: 0 });
      assert.deepEqual(await listed(), { managed: RULES, foreign: 0 });
      console.log(`# ${RulesetScope[scope]}: ${outcomes.join("; ")}; ${finished} finished by the restart`);
    });
  }
});

// A change of single rules has the same window, a short one: the kernel has committed, the store not yet. The state a
// stop leaves there is made by hand (the kernel changed, the change sealed in the database, the server down), and
// the restart must record the change — or, when the kernel does not have it, drop it.
describe("a rule created, replaced or deleted when the server stopped: recorded or dropped by what the kernel holds", () => {
  let f: ServerFixture | undefined;
  afterEach(async () => {
    await f?.close();
    f = undefined;
  });

  const port = (p: number): RuleSpec => ({ protocol: "tcp", destinationPort: { ports: [{ first: p, last: p }], negate: false }, target: { kind: "ACCEPT" } });
  const line = (p: number): string => `-A INPUT -p tcp -m tcp --dport ${p} -j ACCEPT`;

  it("each of create, replace and delete, with and without the kernel's commit", async () => {
    f = await startServerFixture();
    let fw = f.firewall;
    const created = await fw.call("createRule", { parent: inputOf("ipv4"), rule: rule({ ...tcpPort(25), target: accept }), position: 0, allowLockout: false, requestId: "", confirmWithin: 0 });
    const input = (): string[] => f!.netns.exec("iptables", ["-S", "INPUT"]).trim().split("\n").slice(1);
    const listed = async (): Promise<string[]> => (await fw.call("listRules", { parent: inputOf("ipv4"), pageSize: 100, pageToken: "" })).rules.map((r) => `${r.managed ? "managed" : "foreign"} ${r.id} ${r.text}`);
    /** Stops the server as kill -9 would after sealing `change`, with the kernel changed by `iptables` (or not). */
    const stoppedAfter = async (change: RuleChange, iptables?: string[]): Promise<void> => {
      await f!.server.kill("SIGKILL");
      const db = new Database(join(f!.server.dataDir, "portcullis.db"));
      db.prepare("INSERT INTO firewall_sealed_rules (family, table_name, change) VALUES ('ipv4', 'filter', ?)").run(JSON.stringify(change));
      db.close();
      if (iptables !== undefined) f!.netns.exec("iptables", ["-w", ...iptables]);
      await f!.server.restart();
      fw = f!.firewallAs("admin");
    };

    // A replace the kernel took: the new rule is the managed one, under its new id, in the old one's place.
    await stoppedAfter({ kind: "replace", id: created.id, newId: "aaaaaaaaaaa1", spec: port(26) }, ["-R", "INPUT", "1", "-p", "tcp", "-m", "tcp", "--dport", "26", "-j", "ACCEPT"]);
    assert.deepEqual(input(), [line(26)]);
    assert.deepEqual(await listed(), [`managed aaaaaaaaaaa1 ${line(26)}`]);
    // One it did not take: the rule stays as it was, and nothing is added.
    await stoppedAfter({ kind: "replace", id: "aaaaaaaaaaa1", newId: "aaaaaaaaaaa2", spec: port(27) });
    assert.deepEqual(input(), [line(26)]);
    assert.deepEqual(await listed(), [`managed aaaaaaaaaaa1 ${line(26)}`]);
    // A create the kernel took is managed; one it did not take is not added by the restart.
    await stoppedAfter({ kind: "add", rules: [{ id: "aaaaaaaaaaa3", chain: "INPUT", spec: port(28), first: false }] }, ["-A", "INPUT", "-p", "tcp", "-m", "tcp", "--dport", "28", "-j", "ACCEPT"]);
    await stoppedAfter({ kind: "add", rules: [{ id: "aaaaaaaaaaa4", chain: "INPUT", spec: port(29), first: false }] });
    assert.deepEqual(input(), [line(26), line(28)]);
    assert.deepEqual(await listed(), [`managed aaaaaaaaaaa1 ${line(26)}`, `managed aaaaaaaaaaa3 ${line(28)}`]);
    // A delete the kernel took is not undone by the restart; one it did not take leaves the rule managed.
    await stoppedAfter({ kind: "delete", id: "aaaaaaaaaaa1" }, ["-D", "INPUT", "-p", "tcp", "-m", "tcp", "--dport", "26", "-j", "ACCEPT"]);
    await stoppedAfter({ kind: "delete", id: "aaaaaaaaaaa3" });
    assert.deepEqual(input(), [line(28)]);
    assert.deepEqual(await listed(), [`managed aaaaaaaaaaa3 ${line(28)}`]);
  });
});
