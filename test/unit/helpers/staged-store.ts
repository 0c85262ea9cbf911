import { parseRuleLine } from "../../../server/src/drivers/parse/iptables-save.js";
import { renderRuleLine } from "../../../server/src/drivers/iptables-render.js";
import type { RuleSpec } from "../../../server/src/firewall/rule-model.js";
import type { Db } from "../../../server/src/store/database.js";
import { FirewallStore, type ManagedChain } from "../../../server/src/store/firewall-store.js";

/** A managed ACCEPT rule for one TCP port. */
export const accept = (port: number): RuleSpec => ({ protocol: "tcp", destinationPort: { ports: [{ first: port, last: port }], negate: false }, target: { kind: "ACCEPT" } });

/**
 * A firewall store on this database, with what the generation tests do to it: count a generation's rows, and apply
 * a table of `count` ACCEPT rules (ids `${prefix}0…`) as ApplyRuleset stages, publishes and releases it.
 */
export function stagedStore(db: Db, chains: readonly ManagedChain[]): { store: FirewallStore; rows(generation: number): number; apply(prefix: string, count: number): Promise<void> } {
  const store = new FirewallStore(db, renderRuleLine, parseRuleLine);
  return {
    store,
    rows: (generation) => (db.prepare("SELECT count(*) AS n FROM firewall_rules WHERE generation = ?").get(generation) as { n: number }).n,
    apply: async (prefix, count) => {
      const stage = store.stageTable("ipv4", "filter");
      stage.add(Array.from({ length: count }, (_, i) => ({ id: `${prefix}${i}`, chain: "INPUT", seq: i, spec: accept(1000 + i) })));
      await stage.stored();
      stage.seal(chains, []);
      stage.publish();
      stage.release();
    },
  };
}
