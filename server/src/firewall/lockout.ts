import ipaddr from "ipaddr.js";
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
  const verdict = await walk(table, "INPUT", packet, inSet, 0);
  return verdict.kind === "drop" ? verdict.reason : undefined;
}

type Verdict = { kind: "accept" } | { kind: "drop"; reason: string } | { kind: "return" };

async function walk(table: TableView, chain: string, packet: ApiPacket, inSet: SetMembership, depth: number): Promise<Verdict> {
  if (depth > 32) return { kind: "drop", reason: `chain ${chain} nests too deeply to evaluate` };
  for (const [index, rule] of (table.rules.get(chain) ?? []).entries()) {
    const where = `rule ${index + 1} of chain ${chain}`;
    const match = rule.modeled ? await matches(rule.spec, packet, inSet) : "maybe";
    if (match === "no") continue;
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
        const inner = await walk(table, target.chain, packet, inSet, depth + 1);
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

/** Whether one rule matches the API packet: "no" means the rule cannot matter for the caller's access. */
export async function matches(spec: RuleSpec, packet: ApiPacket, inSet: SetMembership): Promise<Match> {
  const parts: Match[] = [];
  if (spec.protocol !== undefined && spec.protocol !== "all") parts.push(negate(spec.protocol === "tcp" ? "yes" : "no", spec.protocolNegate === true));
  if (spec.source !== undefined) parts.push(negate(contains(spec.source.address, packet.source), spec.source.negate));
  if (spec.destination !== undefined) parts.push(negate(packet.destination === undefined ? "maybe" : contains(spec.destination.address, packet.destination), spec.destination.negate));
  if (spec.inInterface !== undefined) parts.push(negate(interfaceMatch(spec.inInterface.name, packet.inInterface), spec.inInterface.negate));
  if (spec.outInterface !== undefined) parts.push("no"); // INPUT has no output interface
  if (spec.destinationPort !== undefined) parts.push(portMatch(spec.destinationPort, packet.destinationPort));
  if (spec.sourcePort !== undefined) parts.push("maybe"); // the caller's ephemeral port is unknown
  if (spec.states !== undefined && spec.states.length > 0) parts.push(stateMatch(spec.states));
  if (spec.matchSet !== undefined) {
    const single = spec.matchSet.directions.length === 1 && spec.matchSet.directions[0] === "src";
    parts.push(single ? negate((await inSet(spec.matchSet.set, packet.source)) ? "yes" : "no", spec.matchSet.negate) : "maybe");
  }
  if (parts.includes("no")) return "no";
  return parts.includes("maybe") ? "maybe" : "yes";
}

function negate(match: Match, negated: boolean): Match {
  if (!negated || match === "maybe") return match;
  return match === "yes" ? "no" : "yes";
}

function contains(cidr: string, address: string): Match {
  try {
    const target = ipaddr.parse(address);
    const [network, prefix] = cidr.includes("/") ? ipaddr.parseCIDR(cidr) : [ipaddr.parse(cidr), target.kind() === "ipv4" ? 32 : 128];
    if (network.kind() !== target.kind()) return "no";
    return target.match(network, prefix) ? "yes" : "no";
  } catch {
    return "maybe";
  }
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
