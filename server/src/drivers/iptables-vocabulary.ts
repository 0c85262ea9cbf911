/**
 * What iptables and the kernel accept in a rule, shared by the parser and renderer of rule text (drivers) and the
 * validation of structured rules (firewall/rule-validation.ts): protocols, replies, limits, chain and interface names.
 */
import { ServerError, type Reason } from "../errors.js";
import type { ConntrackState, Family, Table } from "../firewall/rule-model.js";
import { CHAIN_NAME } from "../names.js";

export const PORT_PROTOCOLS: ReadonlySet<string> = new Set(["tcp", "udp", "sctp", "udplite"]);
export const PROTOCOLS: Record<Family, readonly string[]> = {
  ipv4: ["tcp", "udp", "icmp", "sctp", "udplite", "esp", "ah", "gre"],
  ipv6: ["tcp", "udp", "ipv6-icmp", "sctp", "udplite", "esp", "ah", "gre"],
};
export const REJECT_WITH: Record<Family, readonly string[]> = {
  ipv4: [
    "icmp-net-unreachable", "icmp-host-unreachable", "icmp-port-unreachable", "icmp-proto-unreachable",
    "icmp-net-prohibited", "icmp-host-prohibited", "icmp-admin-prohibited", "tcp-reset",
  ],
  ipv6: ["icmp6-no-route", "icmp6-adm-prohibited", "icmp6-addr-unreachable", "icmp6-port-unreachable", "tcp-reset"],
};
/** What REJECT sends when told nothing; iptables-save always prints it, so validated specs carry it too. */
export const DEFAULT_REJECT_WITH: Record<Family, string> = { ipv4: "icmp-port-unreachable", ipv6: "icmp6-port-unreachable" };
/** The kernel prints conntrack states in this order, whatever order they were given in. */
export const STATE_ORDER: readonly ConntrackState[] = ["INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED"];
/** LOG levels by name as the LOG target reads them; iptables-save prints the number and omits the default, 4. */
export const LOG_LEVELS: ReadonlyMap<string, string> = new Map([
  ["emerg", "0"], ["panic", "0"], ["alert", "1"], ["crit", "2"], ["error", "3"], ["warning", "4"], ["notice", "5"],
  ["info", "6"], ["debug", "7"],
]);
export const DEFAULT_LOG_LEVEL = "4";
/** Kernel limits: xt_comment keeps 255 bytes plus NUL, LOG 29 plus NUL (iptables silently cuts longer prefixes). */
export const MAX_COMMENT_BYTES = 255;
export const MAX_LOG_PREFIX_BYTES = 29;
/** A multiport match has 15 port slots and a range takes two of them. */
export const MULTIPORT_SLOTS = 15;
/** ipset's IPSET_DIM_MAX: at most 6 directions in a set match. */
export const MAX_SET_DIRECTIONS = 6;
export const BUILTIN_CHAINS: Readonly<Record<Table, readonly string[]>> = {
  filter: ["INPUT", "FORWARD", "OUTPUT"],
  raw: ["PREROUTING", "OUTPUT"],
  mangle: ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
  nat: ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
};
/** `-j NAME` reads these as targets, and built-in chains cannot be jumped to, so no jump can name them. */
export const NOT_JUMPABLE: ReadonlySet<string> = new Set([
  "ACCEPT", "DROP", "RETURN", "REJECT", "LOG", "QUEUE", "INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING",
]);

export function refuseRule(reason: Reason, field: string, value: string, message: string): never {
  throw new ServerError(reason, message, { field, value });
}

export function invalidRule(field: string, value: string, message: string): never {
  return refuseRule("INVALID_RULE", field, value, message);
}

// C0 and C1 control characters: line breaks would split a restore line, the others make listings unreadable.
export const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export function checkText(value: string, field: string, maxBytes: number, what: string): void {
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes > maxBytes) invalidRule(field, value, `${field} is ${bytes} bytes of UTF-8; the kernel keeps at most ${maxBytes} bytes of a ${what}, shorten it`);
  if (value.includes('"')) invalidRule(field, value, `${field} must not contain double quotes ("); use single quotes instead`);
  if (CONTROL.test(value)) invalidRule(field, value, `${field} must not contain control characters such as newlines or tabs`);
}

export function checkChain(name: string, field: string): string {
  if (!CHAIN_NAME.test(name)) {
    refuseRule("INVALID_CHAIN_NAME", field, name, `${field} "${name}" is not a valid chain name: use 1 to 28 characters from A-Z, a-z, 0-9, "_", "." and "-", not starting with "-"`);
  }
  return name;
}

export function checkInterface(name: string, field: string): string {
  if (name.length < 1 || name.length > 15 || !/^[A-Za-z0-9_.-]*\+?$/.test(name)) {
    invalidRule(field, name, `${field} "${name}" is not a valid interface name: use 1 to 15 characters from A-Z, a-z, 0-9, "_", "." and "-", optionally ending in "+" to match every name with that prefix (eth+)`);
  }
  return name;
}
