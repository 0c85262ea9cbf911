import { ServerError } from "../errors.js";
import { TABLES, type Family, type Table } from "../firewall/rule-model.js";
import type { TableName as BaseTableName } from "../names.js";

export interface TableName extends BaseTableName {
  readonly family: Family;
  readonly table: Table;
}
export interface ChainName extends TableName {
  readonly chain: string;
}
export interface RuleName extends ChainName {
  readonly rule: string;
}

const PATTERN = /^firewall\/(ipv4|ipv6)\/tables\/([a-z]+)(?:\/chains\/([^/]+)(?:\/rules\/([^/]+))?)?$/;

/** Parses `firewall/{family}/tables/{table}[/chains/{chain}[/rules/{rule}]]` at the expected depth. */
function parse(name: string, depth: 1 | 2 | 3, field: string): RuleName {
  const match = PATTERN.exec(name);
  const shape = ["firewall/{family}/tables/{table}", "firewall/{family}/tables/{table}/chains/{chain}", "firewall/{family}/tables/{table}/chains/{chain}/rules/{rule}"][depth - 1]!;
  const parts = match === null ? 0 : match[4] !== undefined ? 3 : match[3] !== undefined ? 2 : 1;
  if (match === null || parts !== depth || !(TABLES as readonly string[]).includes(match[2]!)) {
    throw new ServerError("INVALID_RESOURCE_NAME", `${field} must look like "${shape}" with family ipv4 or ipv6 and table ${TABLES.join(", ")}; got "${name.slice(0, 200)}"`, { field, value: name.slice(0, 200) });
  }
  return { family: match[1] as Family, table: match[2] as Table, chain: match[3] ?? "", rule: match[4] ?? "" };
}

export const parseTableName = (name: string, field = "parent"): TableName => parse(name, 1, field);
export const parseChainName = (name: string, field = "name"): ChainName => parse(name, 2, field);
export const parseRuleName = (name: string, field = "name"): RuleName => parse(name, 3, field);

export { tableName, chainName, ruleName } from "../names.js";
