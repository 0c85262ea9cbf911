import { covers, parseNetworkCanonical } from "../addresses.js";
import type { ConntrackState, Policy, PortMatch, RuleSpec } from "./rule-model.js";

/** The caller's new connection to the API as the INPUT chain sees it. */
export interface ApiPacket {
  readonly source: string;
  /** The API's listen address, undefined when it listens on every address. */
  readonly destination?: string;
  readonly destinationPort: number;
  /** "lo" for a loopback caller; undefined when the interface cannot be known. */
  readonly inInterface?: string;
}

/** A table reduced to what evaluation needs: rules per chain, in order, and built-in policies. */
export interface TableView {
  readonly rules: ReadonlyMap<string, ReadonlyArray<{ readonly spec: RuleSpec; readonly modeled: boolean }>>;
  readonly policies: ReadonlyMap<string, Policy>;
}

/** Answers whether the caller's address is in a set (a kernel lookup). */
export type SetMembership = (set: string, address: string) => Promise<boolean>;

type Match = "yes" | "no" | "maybe";

/**
 * Would a new TCP connection from the caller to the API still be accepted by this INPUT chain? Evaluated
 * conservatively: a DROP/REJECT that *might* match counts as dropping, an ACCEPT counts only if it surely matches,
 * so a "safe" answer is safe and a doubtful one asks for safe mode. Returns the rule or policy that drops, if any.
 */
export async function findLockout(table: TableView, packet: ApiPacket, inSet: SetMembership): Promise<string | undefined> {
  // Set lookups are kernel calls: one per set named by the table, then the walk itself is synchronous.
  const members = new Map<string, boolean>();
  for (const rules of table.rules.values()) {
    for (const rule of rules) {
      const set = sourceSet(rule.spec);
      if (set !== undefined && !members.has(set)) members.set(set, await inSet(set, packet.source));
    }
  }
  const verdict = walk(table, "INPUT", packet, members, 0);
  return verdict.kind === "drop" ? verdict.reason : undefined;
}

type Verdict = { kind: "accept" } | { kind: "drop"; reason: string } | { kind: "return" };

function walk(table: TableView, chain: string, packet: ApiPacket, members: ReadonlyMap<string, boolean>, depth: number): Verdict {
  if (depth > 32) return { kind: "drop", reason: `chain ${chain} nests too deeply to evaluate` };
  const rules = table.rules.get(chain) ?? [];
  for (let index = 0; index < rules.length; index++) {
    const rule = rules[index]!;
    const match = rule.modeled ? matchWith(rule.spec, packet, members) : "maybe";
    if (match === "no") continue;
    const where = `rule ${index + 1} of chain ${chain}`;
    const target = rule.spec.target;
    switch (target.kind) {
      case "ACCEPT":
        if (match === "yes") return { kind: "accept" };
        break;
      case "DROP":
      case "REJECT":
        return { kind: "drop", reason: `${where} (${target.kind}) ${match === "yes" ? "matches" : "may match"} the connection` };
      case "RETURN":
        if (match === "yes") return chain === "INPUT" ? policyVerdict(table, chain) : { kind: "return" };
        break;
      case "JUMP": {
        const inner = walk(table, target.chain, packet, members, depth + 1);
        if (inner.kind === "drop") return inner;
        if (match === "yes" && (inner.kind === "accept" || target.goto)) return inner.kind === "accept" ? inner : policyVerdict(table, "INPUT");
        break;
      }
      case "OTHER":
        return { kind: "drop", reason: `${where} has target ${target.name}, which cannot be evaluated` };
      default:
        break; // LOG continues
    }
  }
  return chain === "INPUT" ? policyVerdict(table, chain) : { kind: "return" };
}

function policyVerdict(table: TableView, chain: string): Verdict {
  return table.policies.get(chain) === "DROP" ? { kind: "drop", reason: `the policy of chain ${chain} is DROP and no rule surely accepts the connection` } : { kind: "accept" };
}

/** The set a rule looks the packet's source up in, when that is all its set match does (otherwise undecidable). */
function sourceSet(spec: RuleSpec): string | undefined {
  const match = spec.matchSet;
  return match !== undefined && match.directions.length === 1 && match.directions[0] === "src" ? match.set : undefined;
}

/** Whether one rule matches the API packet: "no" means the rule cannot matter for the caller's access. */
export async function matches(spec: RuleSpec, packet: ApiPacket, inSet: SetMembership): Promise<Match> {
  const set = sourceSet(spec);
  return matchWith(spec, packet, set === undefined ? new Map() : new Map([[set, await inSet(set, packet.source)]]));
}

/** matches() with the set lookups done: each part of the rule narrows the answer; any "no" decides. */
function matchWith(spec: RuleSpec, packet: ApiPacket, members: ReadonlyMap<string, boolean>): Match {
  let maybe = false;
  const part = (match: Match): boolean => {
    if (match === "maybe") maybe = true;
    return match === "no";
  };
  if (spec.protocol !== undefined && spec.protocol !== "all" && part(negate(spec.protocol === "tcp" ? "yes" : "no", spec.protocolNegate === true))) return "no";
  if (spec.destinationPort !== undefined && part(portMatch(spec.destinationPort, packet.destinationPort))) return "no";
  if (spec.outInterface !== undefined) return "no"; // INPUT has no output interface
  if (spec.source !== undefined && part(negate(contains(spec.source.address, packet.source), spec.source.negate))) return "no";
  if (spec.destination !== undefined && part(negate(packet.destination === undefined ? "maybe" : contains(spec.destination.address, packet.destination), spec.destination.negate))) return "no";
  if (spec.inInterface !== undefined && part(negate(interfaceMatch(spec.inInterface.name, packet.inInterface), spec.inInterface.negate))) return "no";
  if (spec.sourcePort !== undefined) maybe = true; // the caller's ephemeral port is unknown
  if (spec.states !== undefined && spec.states.length > 0 && part(stateMatch(spec.states))) return "no";
  if (spec.matchSet !== undefined) {
    const member = members.get(spec.matchSet.set);
    if (sourceSet(spec) === undefined || member === undefined) maybe = true;
    else if (part(negate(member ? "yes" : "no", spec.matchSet.negate))) return "no";
  }
  return maybe ? "maybe" : "yes";
}

function negate(match: Match, negated: boolean): Match {
  if (!negated || match === "maybe") return match;
  return match === "yes" ? "no" : "yes";
}

function contains(cidr: string, address: string): Match {
  const network = parseNetworkCanonical(cidr);
  const target = parseNetworkCanonical(address);
  if ("problem" in network || "problem" in target) return "maybe";
  return covers(network, target) ? "yes" : "no";
}

function interfaceMatch(pattern: string, name: string | undefined): Match {
  if (name === undefined) return "maybe";
  return (pattern.endsWith("+") ? name.startsWith(pattern.slice(0, -1)) : pattern === name) ? "yes" : "no";
}

function portMatch(match: PortMatch, port: number): Match {
  const inside = match.ports.some((range) => port >= range.first && port <= range.last);
  return negate(inside ? "yes" : "no", match.negate);
}

/** The packet evaluated is the first of a new connection: a caller cut off from new connections is locked out. */
function stateMatch(states: readonly ConntrackState[]): Match {
  return states.includes("NEW") ? "yes" : "no";
}
