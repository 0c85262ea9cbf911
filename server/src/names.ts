/** Resource names (AIP-122) as clients see them; the API parses them, the domain uses them to name events. */
export const ipsetName = (set: string): string => `ipsets/${set}`;
export const entryName = (set: string, element: string): string => `ipsets/${set}/entries/${element}`;

export interface TableName {
  readonly family: "ipv4" | "ipv6";
  readonly table: string;
}
export const tableName = (t: TableName): string => `firewall/${t.family}/tables/${t.table}`;
export const chainName = (t: TableName, chain: string): string => `${tableName(t)}/chains/${chain}`;
export const ruleName = (t: TableName, chain: string, id: string): string => `${chainName(t, chain)}/rules/${id}`;
