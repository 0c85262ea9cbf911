import { ServerError } from "./errors.js";

/** Resource names (AIP-122) as clients see them; the API parses them, the domain uses them to name events. */
export const ipsetName = (set: string): string => `ipsets/${set}`;
export const entryName = (set: string, element: string): string => `ipsets/${set}/entries/${element}`;
export const jailName = (jail: string): string => `jails/${jail}`;
export const banName = (jail: string, address: string): string => `jails/${jail}/bans/${address}`;
export const feedName = (feed: string): string => `feeds/${feed}`;
export const bouncerName = (bouncer: string): string => `bouncers/${bouncer}`;

export interface TableName {
  readonly family: "ipv4" | "ipv6";
  readonly table: string;
}
export const tableName = (t: TableName): string => `firewall/${t.family}/tables/${t.table}`;
export const chainName = (t: TableName, chain: string): string => `${tableName(t)}/chains/${chain}`;
export const ruleName = (t: TableName, chain: string, id: string): string => `${chainName(t, chain)}/rules/${id}`;

/**
 * The ids inside resource names, one pattern each wherever the name is read (API, config, fail2ban's socket, rule
 * text). None may start with "-": ipset and iptables would read such a name as an option.
 */
/** ipset's limit is 31 characters. */
export const IPSET_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,30}$/;
/** fail2ban's jail names (section names of jail.conf), as its socket protocol carries them. */
export const JAIL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;
/** A feed's name (`feeds/{feed}`). */
export const FEED_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
/** A CrowdSec bouncer's name (`bouncers/{bouncer}`). */
export const BOUNCER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
/** iptables' limit is 28 characters (XT_EXTENSION_MAXNAMELEN less the terminating NUL and a reserve iptables keeps). */
export const CHAIN_NAME = /^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,27}$/;

export function validateIpsetName(name: string, field = "ipset_id"): void {
  if (!IPSET_NAME.test(name)) {
    throw new ServerError("INVALID_IPSET_NAME",
      `${field} "${name}" is not a valid ipset name: use 1 to 31 characters from A-Z, a-z, 0-9, "_", ".", ":" and "-", starting with a letter or digit`,
      { field, value: name });
  }
}

export function validateFeedName(name: string, field = "feed_id"): void {
  if (!FEED_NAME.test(name)) {
    throw new ServerError("INVALID_FEED_NAME", `${field} "${name.slice(0, 100)}" is not a valid feed name: use 1 to 63 characters from A-Z, a-z, 0-9, "_", "." and "-", starting with a letter or digit`, { field, value: name.slice(0, 100) });
  }
}

export function validateBouncerName(name: string, field = "bouncer_id"): void {
  if (!BOUNCER_NAME.test(name)) {
    throw new ServerError("INVALID_BOUNCER_NAME", `${field} "${name.slice(0, 100)}" is not a valid bouncer name: use 1 to 63 characters from A-Z, a-z, 0-9, "_", "." and "-", starting with a letter or digit`, { field, value: name.slice(0, 100) });
  }
}
