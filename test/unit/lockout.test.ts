import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { findLockout, type TableView } from "../../server/src/firewall/lockout.js";
import type { RuleSpec } from "../../server/src/firewall/rule-model.js";

const api = { source: "203.0.113.7", destinationPort: 50051 };
const local = { source: "127.0.0.1", destinationPort: 50051, inInterface: "lo" };
const notInSet = async (): Promise<boolean> => false;
const inSet = async (): Promise<boolean> => true;
const view = (rules: RuleSpec[], policy: "ACCEPT" | "DROP" = "DROP", chains: Record<string, RuleSpec[]> = {}): TableView => ({
  rules: new Map([["INPUT", rules.map((spec) => ({ spec, modeled: true }))], ...Object.entries(chains).map(([name, specs]) => [name, specs.map((spec) => ({ spec, modeled: true }))] as const)]),
  policies: new Map([["INPUT", policy]]),
});
const port = (first: number) => ({ ports: [{ first, last: first }], negate: false });

describe("anti-lockout evaluation of the caller's next connection to the API", () => {
  it("a DROP policy with nothing accepting the API locks out", async () => {
    assert.match((await findLockout(view([]), api, notInSet))!, /policy of chain INPUT is DROP/);
    assert.equal(await findLockout(view([], "ACCEPT"), api, notInSet), undefined);
  });

  it("an ACCEPT for the API port, the caller's network or loopback keeps it open", async () => {
    assert.equal(await findLockout(view([{ protocol: "tcp", destinationPort: port(50051), target: { kind: "ACCEPT" } }]), api, notInSet), undefined);
    assert.equal(await findLockout(view([{ source: { address: "203.0.113.0/24", negate: false }, target: { kind: "ACCEPT" } }]), api, notInSet), undefined);
    assert.equal(await findLockout(view([{ inInterface: { name: "lo", negate: false }, target: { kind: "ACCEPT" } }]), local, notInSet), undefined);
    // …but loopback does not help a remote caller, and another port does not help anyone.
    assert.notEqual(await findLockout(view([{ inInterface: { name: "lo", negate: false }, target: { kind: "ACCEPT" } }]), api, notInSet), undefined);
    assert.notEqual(await findLockout(view([{ protocol: "tcp", destinationPort: port(22), target: { kind: "ACCEPT" } }]), api, notInSet), undefined);
  });

  it("a DROP or REJECT that matches (or may match) the caller before the ACCEPT locks out", async () => {
    const acceptApi: RuleSpec = { protocol: "tcp", destinationPort: port(50051), target: { kind: "ACCEPT" } };
    assert.match((await findLockout(view([{ source: { address: "203.0.113.0/24", negate: false }, target: { kind: "DROP" } }, acceptApi], "ACCEPT"), api, notInSet))!, /rule 1 of chain INPUT \(DROP\) matches/);
    assert.match((await findLockout(view([{ inInterface: { name: "eth0", negate: false }, target: { kind: "REJECT" } }, acceptApi], "ACCEPT"), api, notInSet))!, /may match/);
    assert.equal(await findLockout(view([{ source: { address: "198.51.100.0/24", negate: false }, target: { kind: "DROP" } }, acceptApi]), api, notInSet), undefined);
    assert.equal(await findLockout(view([{ source: { address: "203.0.113.7", negate: true }, target: { kind: "DROP" } }, acceptApi]), api, notInSet), undefined);
  });

  it("a set match asks whether the caller is in the set", async () => {
    const banned: RuleSpec = { matchSet: { set: "bans", directions: ["src"], negate: false }, target: { kind: "DROP" } };
    assert.equal(await findLockout(view([banned], "ACCEPT"), api, notInSet), undefined);
    assert.match((await findLockout(view([banned], "ACCEPT"), api, inSet))!, /DROP/);
  });

  it("follows jumps into user chains, and ESTABLISHED-only accepts do not count for a new connection", async () => {
    const chains = { mgmt: [{ protocol: "tcp", destinationPort: port(50051), target: { kind: "ACCEPT" } } as RuleSpec] };
    assert.equal(await findLockout(view([{ target: { kind: "JUMP", chain: "mgmt", goto: false } }], "DROP", chains), api, notInSet), undefined);
    assert.notEqual(await findLockout(view([{ states: ["ESTABLISHED", "RELATED"], target: { kind: "ACCEPT" } }]), api, notInSet), undefined);
    assert.equal(await findLockout(view([{ states: ["NEW", "ESTABLISHED"], target: { kind: "ACCEPT" } }]), api, notInSet), undefined);
  });
});
