import {
  ConntrackState,
  FirewallServiceService,
  SetDirection,
  TargetKind,
  type CreateRuleRequest,
  type DeleteRuleRequest,
  type ListRulesRequest,
  type ListRulesResponse,
  type PortMatch,
  type Rule,
} from "./gen/portcullis/v1/firewall.js";
import type { CancellationToken } from "./base/cancellation.js";
import type { FirewallRule, PortSpec, RuleInput, RuleTarget } from "./api.js";
import type { Channel } from "./transport/channel.js";

/** Where a rule lives: an address family and a chain of the filter table. */
export interface ChainRef {
  /** "ipv4" (default) or "ipv6". */
  readonly family?: "ipv4" | "ipv6";
  readonly chain: string;
}

/** Options of {@link Firewall.add} and {@link Firewall.delete}. */
export interface ChangeOptions {
  /** 1-based position to insert at (default: append). */
  readonly position?: number;
  /** Seconds until the change is rolled back unless confirmed (safe mode); 0/undefined = for good. */
  readonly confirmWithin?: number;
  /** Apply even if it would cut this client off the API. */
  readonly allowLockout?: boolean;
}

/** iptables/ip6tables rules of the filter table: `client.firewall`. */
export class Firewall {
  readonly #channel: Channel;

  /** @internal */
  constructor(channel: Channel) {
    this.#channel = channel;
  }

  /** Every rule of a chain, in order, with counters (all pages). */
  async rules(where: ChainRef, token?: CancellationToken): Promise<readonly FirewallRule[]> {
    const all: FirewallRule[] = [];
    const pages = this.#channel.pages<ListRulesRequest, ListRulesResponse>(FirewallServiceService, "listRules", (pageToken) => ({ parent: chainName(where), pageSize: 10_000, pageToken }), token);
    for await (const page of pages) all.push(...page.rules.map(firewallRule));
    return Object.freeze(all);
  }

  /** Adds a managed rule (appended, or inserted at `position`); refused if it would cut this client off the API. */
  async add(where: ChainRef, rule: RuleInput, options: ChangeOptions = {}, token?: CancellationToken): Promise<FirewallRule> {
    const request: CreateRuleRequest = {
      parent: chainName(where),
      rule: wireRule(where.chain, rule),
      position: options.position ?? 0,
      allowLockout: options.allowLockout ?? false,
      requestId: "",
      confirmWithin: options.confirmWithin ?? 0,
    };
    return firewallRule(await this.#channel.unary<CreateRuleRequest, Rule>(FirewallServiceService, "createRule", request, token));
  }

  /** Deletes a rule by its id. */
  async delete(where: ChainRef, id: string, options: Omit<ChangeOptions, "position"> = {}, token?: CancellationToken): Promise<void> {
    const request: DeleteRuleRequest = { name: `${chainName(where)}/rules/${id}`, allowLockout: options.allowLockout ?? false, confirmWithin: options.confirmWithin ?? 0 };
    await this.#channel.unary<DeleteRuleRequest, unknown>(FirewallServiceService, "deleteRule", request, token);
  }
}

function chainName(where: ChainRef): string {
  return `firewall/${where.family ?? "ipv4"}/tables/filter/chains/${where.chain}`;
}

function firewallRule(rule: Rule): FirewallRule {
  return Object.freeze({ id: rule.id, chain: rule.chain, position: rule.position, text: rule.text, managed: rule.managed, packets: rule.packets, bytes: rule.bytes });
}

/** "!192.0.2.0/24" → { address, negate: true }. */
function negatable(text: string | undefined): { value: string; negate: boolean } | undefined {
  if (text === undefined) return undefined;
  return text.startsWith("!") ? { value: text.slice(1).trim(), negate: true } : { value: text, negate: false };
}

function ports(specs: readonly PortSpec[] | undefined): PortMatch | undefined {
  if (specs === undefined || specs.length === 0) return undefined;
  return { ports: specs.map((spec) => (typeof spec === "number" ? { first: spec, last: spec } : { first: spec[0], last: spec[1] })), negate: false };
}

const STATES: Readonly<Record<string, ConntrackState>> = {
  NEW: ConntrackState.CONNTRACK_STATE_NEW,
  ESTABLISHED: ConntrackState.CONNTRACK_STATE_ESTABLISHED,
  RELATED: ConntrackState.CONNTRACK_STATE_RELATED,
  INVALID: ConntrackState.CONNTRACK_STATE_INVALID,
  UNTRACKED: ConntrackState.CONNTRACK_STATE_UNTRACKED,
};

function target(value: RuleTarget): Rule["target"] {
  const base = { chain: "", goto: false, rejectWith: "", logPrefix: "", other: "" };
  if (value === "ACCEPT") return { ...base, kind: TargetKind.TARGET_KIND_ACCEPT };
  if (value === "DROP") return { ...base, kind: TargetKind.TARGET_KIND_DROP };
  if (value === "RETURN") return { ...base, kind: TargetKind.TARGET_KIND_RETURN };
  if ("reject" in value) return { ...base, kind: TargetKind.TARGET_KIND_REJECT, rejectWith: value.reject };
  if ("log" in value) return { ...base, kind: TargetKind.TARGET_KIND_LOG, logPrefix: value.log };
  if ("jump" in value) return { ...base, kind: TargetKind.TARGET_KIND_JUMP, chain: value.jump };
  return { ...base, kind: TargetKind.TARGET_KIND_JUMP, chain: value.goto, goto: true };
}

function wireRule(chain: string, input: RuleInput): Rule {
  const source = negatable(input.source);
  const destination = negatable(input.destination);
  const inInterface = negatable(input.inInterface);
  const outInterface = negatable(input.outInterface);
  return {
    name: "",
    id: "",
    chain,
    position: 0,
    protocol: input.protocol ?? "",
    protocolNegate: false,
    source: source === undefined ? undefined : { address: source.value, negate: source.negate },
    destination: destination === undefined ? undefined : { address: destination.value, negate: destination.negate },
    inInterface: inInterface === undefined ? undefined : { name: inInterface.value, negate: inInterface.negate },
    outInterface: outInterface === undefined ? undefined : { name: outInterface.value, negate: outInterface.negate },
    sourcePort: ports(input.sourcePorts),
    destinationPort: ports(input.destinationPorts),
    matchSet: input.matchSet === undefined ? undefined : {
      set: input.matchSet.set,
      directions: [input.matchSet.direction === "dst" ? SetDirection.SET_DIRECTION_DST : SetDirection.SET_DIRECTION_SRC],
      negate: input.matchSet.negate ?? false,
    },
    states: (input.states ?? []).map((state) => STATES[state]!),
    comment: input.comment ?? "",
    target: target(input.target),
    packets: 0,
    bytes: 0,
    managed: false,
    modeled: true,
    text: "",
  };
}
