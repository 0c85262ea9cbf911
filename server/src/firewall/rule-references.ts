import { ServerError } from "../errors.js";
import type { IpsetDriver } from "../drivers/ipset-driver.js";
import type { Family, RuleSpec, Table } from "./rule-model.js";
import type { TableAccess } from "./table-access.js";

/** A rule may only name sets and chains that exist, so that nothing half-valid reaches the kernel. */
export async function checkReferences(tables: TableAccess, ipsets: IpsetDriver, family: Family, table: Table, spec: RuleSpec): Promise<void> {
  await checkSet(ipsets, spec);
  if (spec.target.kind === "JUMP") {
    const target = spec.target.chain;
    const snapshot = await tables.snapshot(family, table);
    if (!snapshot.chains.some((chain) => chain.name === target && !chain.builtin)) {
      throw new ServerError("UNKNOWN_REFERENCE", `rule.target.chain: there is no user chain ${target} in the ${family} ${table} table; create it first`, { field: "rule.target.chain", chain: target });
    }
  }
}

export async function checkSet(ipsets: IpsetDriver, spec: RuleSpec): Promise<void> {
  if (spec.matchSet === undefined) return;
  if ((await ipsets.get(spec.matchSet.set)) === undefined) {
    throw new ServerError("UNKNOWN_REFERENCE", `rule.match_set.set: set "${spec.matchSet.set}" does not exist; create it first`, { field: "rule.match_set.set", ipset: spec.matchSet.set });
  }
}
