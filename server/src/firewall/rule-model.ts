/** Domain model of iptables/ip6tables state, independent of the wire (proto) and of the tools' text. */

export type Family = "ipv4" | "ipv6";
export const TABLES = ["filter", "raw", "mangle", "nat"] as const;
export type Table = (typeof TABLES)[number];
/** Tables Portcullis changes; the others are read-only. */
export const WRITABLE_TABLES: readonly Table[] = ["filter"];

export type Policy = "ACCEPT" | "DROP";
export type ConntrackState = "NEW" | "ESTABLISHED" | "RELATED" | "INVALID" | "UNTRACKED";
export type SetDirection = "src" | "dst";

export interface AddressMatch {
  /** Address or CIDR as given/printed (iptables-save prints host routes with their prefix: 192.0.2.1/32). */
  readonly address: string;
  readonly negate: boolean;
}

export interface InterfaceMatch {
  readonly name: string;
  readonly negate: boolean;
}

/** One port or an inclusive range (first === last for a single port). */
export interface PortRange {
  readonly first: number;
  readonly last: number;
}

/** A single port/range renders as `-m tcp --dport`, several as `-m multiport --dports`. */
export interface PortMatch {
  readonly ports: readonly PortRange[];
  readonly negate: boolean;
}

export interface SetMatch {
  readonly set: string;
  /** One direction per dimension of the set, e.g. ["src"] or ["src", "dst"] for hash:ip,port-like sets. */
  readonly directions: readonly SetDirection[];
  readonly negate: boolean;
}

export type Target =
  | { readonly kind: "ACCEPT" | "DROP" | "RETURN" }
  | { readonly kind: "REJECT"; readonly rejectWith?: string }
  | { readonly kind: "LOG"; readonly prefix?: string; readonly level?: string }
  | { readonly kind: "JUMP"; readonly chain: string; readonly goto: boolean }
  /** A target Portcullis does not model (MASQUERADE, DNAT, …): read-only. */
  | { readonly kind: "OTHER"; readonly name: string };

/** The matching part and target of a rule, in a structured form that renders to one `-A CHAIN …` line. */
export interface RuleSpec {
  /** "tcp", "udp", "icmp", "ipv6-icmp", … or undefined for all protocols. */
  readonly protocol?: string;
  readonly protocolNegate?: boolean;
  readonly source?: AddressMatch;
  readonly destination?: AddressMatch;
  readonly inInterface?: InterfaceMatch;
  readonly outInterface?: InterfaceMatch;
  readonly sourcePort?: PortMatch;
  readonly destinationPort?: PortMatch;
  readonly matchSet?: SetMatch;
  readonly states?: readonly ConntrackState[];
  /** The user's comment. */
  readonly comment?: string;
  readonly target: Target;
}

/** A rule as found in a dump: its spec, where it is, and whether every part of it is modeled. */
export interface ParsedRule {
  readonly chain: string;
  /** 1-based position within the chain. */
  readonly position: number;
  readonly spec: RuleSpec;
  /**
   * What identifies the rule's content: for a modeled rule the line renderRuleLine makes of its spec (so that a rule
   * Portcullis created is recognised whatever spelling the kernel prints), otherwise `text`.
   */
  readonly key: string;
  /** The rule line as iptables-save printed it, without counters (`-A INPUT …`). */
  readonly text: string;
  /** False when the line holds matches/options the spec cannot express (then only `text` is faithful). */
  readonly modeled: boolean;
  readonly packets: number;
  readonly bytes: number;
}

export interface ParsedChain {
  readonly name: string;
  readonly builtin: boolean;
  /** Built-in chains only. */
  readonly policy?: Policy;
  readonly packets: number;
  readonly bytes: number;
}

export interface ParsedTable {
  readonly name: string;
  readonly chains: ParsedChain[];
  readonly rules: ParsedRule[];
}

/**
 * The managed rules of one table by content: canonical rule line (`-A CHAIN …`, see ParsedRule.key) → ids of the
 * managed rules with that line, in their recorded order.
 *
 * Portcullis does not mark its rules in the kernel (a `-m comment` per rule makes iptables-restore and -save half as
 * slow again): a kernel rule is managed when its content equals a recorded managed rule's. Identical rules are
 * interchangeable, so the k-th kernel occurrence of a line takes the k-th recorded id; surplus occurrences are rules
 * someone else added.
 */
export type ManagedLines = ReadonlyMap<string, readonly string[]>;
