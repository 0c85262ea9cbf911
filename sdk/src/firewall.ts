import { ChainPolicy, ConntrackState, FirewallServiceService, RulesetScope, SetDirection, TargetKind, type ApplyRulesetRequest, type ApplyRulesetResponse, type Chain, type ConfirmRulesetRequest, type ConfirmRulesetResponse, type DisablePanicModeRequest, type EnablePanicModeRequest, type GetPanicModeRequest, type CreateRuleRequest, type DeleteRuleRequest, type ExportRulesetRequest, type ListChainsRequest, type ListChainsResponse, type ListRulesRequest, type ListRulesResponse, type PanicModeStatus, type PortMatch, type Rule, type Ruleset } from "./transport/wire.js";
import type { CancellationToken } from "./base/cancellation.js";
import type { ChainInfo, FirewallRule, PanicMode, PortSpec, RuleInput, RulesetInput, RuleTarget } from "./api.js";
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

/** Options of {@link Firewall.apply}. */
export interface ApplyOptions {
  /** "ipv4" (default) or "ipv6". */
  readonly family?: "ipv4" | "ipv6";
  /** Safe mode: seconds until the previous table comes back unless {@link Firewall.confirm} is called. */
  readonly confirmWithin?: number;
  /** Apply even if it would cut this client off the API (only with confirmWithin). */
  readonly allowLockout?: boolean;
  /**
   * "table" (default): the ruleset is the whole filter table. "managed": it replaces only the rules and chains
   * Portcullis manages; rules and chains of other tools (Docker, fail2ban, Kubernetes) stay as and where they are.
   */
  readonly scope?: "table" | "managed";
  /**
   * Scope "table": replace the rules and chains of other tools too. Without it, an apply that would remove or change
   * any of them is refused (`FOREIGN_RULES`).
   */
  readonly replaceForeign?: boolean;
  /** Only compute what the apply would change ({@link ApplyResult.diff}); nothing is applied. */
  readonly dryRun?: boolean;
}

/** What {@link Firewall.apply} did (or, with `dryRun`, would do). */
export interface ApplyResult {
  readonly ruleCount: number;
  /** Safe mode: when the previous table comes back unless confirmed. */
  readonly rollbackAt?: Date;
  /** With `dryRun`: the changes the apply would make. */
  readonly diff?: RulesetDiff;
}

/** What an apply changes, as `-A CHAIN …` rule lines. */
export interface RulesetDiff {
  /** Managed rules added. */
  readonly added: readonly string[];
  /** Managed rules removed. */
  readonly removed: readonly string[];
  /** Managed rules replaced by another at the same place. */
  readonly changed: readonly { readonly before: string; readonly after: string }[];
  /** How many managed rules stay as they are. */
  readonly unchanged: number;
  /** Rules of other tools that stay as they are. */
  readonly foreignKept: readonly string[];
  /** Rules of other tools the apply removes (scope "table": or changes). */
  readonly foreignRemoved: readonly string[];
  /** Chains created. */
  readonly chainsCreated: readonly string[];
  /** Chains deleted. */
  readonly chainsDeleted: readonly string[];
}

/** A whole filter table as the kernel has it (see {@link Firewall.export}). */
export interface RulesetExport {
  /** The table as `iptables-save` prints it (without counters). */
  readonly text: string;
  readonly chains: readonly ChainInfo[];
  readonly rules: readonly FirewallRule[];
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

  /** The chains of the filter table, built-in first as iptables lists them. */
  async chains(family: "ipv4" | "ipv6" = "ipv4", token?: CancellationToken): Promise<readonly ChainInfo[]> {
    const response = await this.#channel.unary<ListChainsRequest, ListChainsResponse>(FirewallServiceService, "listChains", { parent: tableName(family) }, token, true);
    return Object.freeze(response.chains.map(chainInfo));
  }

  /** The whole filter table: text, chains and rules (`rules[i].spec` is what {@link Firewall.apply} takes back). */
  async export(family: "ipv4" | "ipv6" = "ipv4", token?: CancellationToken): Promise<RulesetExport> {
    const ruleset = await this.#channel.unary<ExportRulesetRequest, Ruleset>(FirewallServiceService, "exportRuleset", { parent: tableName(family) }, token, true);
    return Object.freeze({ text: ruleset.text, chains: Object.freeze(ruleset.chains.map(chainInfo)), rules: Object.freeze(ruleset.rules.map(firewallRule)) });
  }

  /**
   * Replaces the whole filter table at once (nothing is half-applied), or with `scope: "managed"` only the rules and
   * chains Portcullis manages. A whole-table apply that would remove or change rules of other tools (Docker,
   * fail2ban) is refused unless `replaceForeign`. `dryRun` answers the diff without applying. With `confirmWithin`,
   * the previous table comes back by itself unless {@link Firewall.confirm} is called in time.
   */
  async apply(ruleset: RulesetInput, options: ApplyOptions = {}, token?: CancellationToken): Promise<ApplyResult> {
    const request: ApplyRulesetRequest = {
      parent: tableName(options.family ?? "ipv4"),
      chains: (ruleset.chains ?? []).map((chain) => ({
        name: chain.name,
        builtin: false,
        policy: chain.policy === undefined ? ChainPolicy.CHAIN_POLICY_UNSPECIFIED : chain.policy === "DROP" ? ChainPolicy.CHAIN_POLICY_DROP : ChainPolicy.CHAIN_POLICY_ACCEPT,
        packets: 0,
        bytes: 0,
        ruleCount: 0,
        references: 0,
      })),
      rules: ruleset.rules.map((rule) => wireRule(rule.chain, rule)),
      confirmWithin: options.confirmWithin ?? 0,
      allowLockout: options.allowLockout ?? false,
      scope: options.scope === "managed" ? RulesetScope.RULESET_SCOPE_MANAGED : RulesetScope.RULESET_SCOPE_TABLE,
      replaceForeign: options.replaceForeign ?? false,
      dryRun: options.dryRun ?? false,
    };
    const response = await this.#channel.unary<ApplyRulesetRequest, ApplyRulesetResponse>(FirewallServiceService, "applyRuleset", request, token);
    const diff = response.diff;
    return Object.freeze({
      ruleCount: response.ruleCount,
      ...(response.rollbackTime === undefined ? {} : { rollbackAt: response.rollbackTime }),
      ...(diff === undefined ? {} : {
        diff: Object.freeze({
          added: Object.freeze(diff.added),
          removed: Object.freeze(diff.removed),
          changed: Object.freeze(diff.changed.map((change) => Object.freeze({ before: change.before, after: change.after }))),
          unchanged: diff.unchanged,
          foreignKept: Object.freeze(diff.foreignKept),
          foreignRemoved: Object.freeze(diff.foreignRemoved),
          chainsCreated: Object.freeze(diff.chainsCreated),
          chainsDeleted: Object.freeze(diff.chainsDeleted),
        }),
      }),
    });
  }

  /** Keeps the changes made in safe mode (an apply, add or delete with `confirmWithin`): cancels their rollback. */
  async confirm(family: "ipv4" | "ipv6" = "ipv4", token?: CancellationToken): Promise<void> {
    await this.#channel.unary<ConfirmRulesetRequest, ConfirmRulesetResponse>(FirewallServiceService, "confirmRuleset", { parent: tableName(family) }, token);
  }

  /** Whether panic mode is on, and the management addresses it leaves the API to. */
  async panicMode(token?: CancellationToken): Promise<PanicMode> {
    return panicMode(await this.#channel.unary<GetPanicModeRequest, PanicModeStatus>(FirewallServiceService, "getPanicMode", {}, token, true));
  }

  /** Panic mode on: every packet is dropped in both families but the API's own, from the management addresses (admin). */
  async enablePanicMode(token?: CancellationToken): Promise<PanicMode> {
    return panicMode(await this.#channel.unary<EnablePanicModeRequest, PanicModeStatus>(FirewallServiceService, "enablePanicMode", {}, token));
  }

  /** Panic mode off: the rulesets saved when it began come back (admin). */
  async disablePanicMode(token?: CancellationToken): Promise<PanicMode> {
    return panicMode(await this.#channel.unary<DisablePanicModeRequest, PanicModeStatus>(FirewallServiceService, "disablePanicMode", {}, token));
  }

  /** Deletes a rule by its id. */
  async delete(where: ChainRef, id: string, options: Omit<ChangeOptions, "position"> = {}, token?: CancellationToken): Promise<void> {
    const request: DeleteRuleRequest = { name: `${chainName(where)}/rules/${id}`, allowLockout: options.allowLockout ?? false, confirmWithin: options.confirmWithin ?? 0 };
    await this.#channel.unary<DeleteRuleRequest, unknown>(FirewallServiceService, "deleteRule", request, token);
  }
}

function tableName(family: "ipv4" | "ipv6"): string {
  return `firewall/${family}/tables/filter`;
}

function chainName(where: ChainRef): string {
  return `${tableName(where.family ?? "ipv4")}/chains/${where.chain}`;
}

function chainInfo(chain: Chain): ChainInfo {
  return Object.freeze({
    name: chain.name.slice(chain.name.lastIndexOf("/") + 1),
    builtin: chain.builtin,
    ...(chain.policy === ChainPolicy.CHAIN_POLICY_DROP ? { policy: "DROP" as const } : chain.policy === ChainPolicy.CHAIN_POLICY_ACCEPT ? { policy: "ACCEPT" as const } : {}),
    ruleCount: chain.ruleCount,
    references: chain.references,
    packets: chain.packets,
    bytes: chain.bytes,
  });
}

/** @internal */
export function firewallRule(rule: Rule): FirewallRule {
  const spec = ruleInput(rule);
  return Object.freeze({ id: rule.id, chain: rule.chain, position: rule.position, text: rule.text, managed: rule.managed, packets: rule.packets, bytes: rule.bytes, ...(spec === undefined ? {} : { spec }) });
}

/** The inverse of wireRule, for the rules it can express (see FirewallRule.spec). */
function ruleInput(rule: Rule): RuleInput | undefined {
  const target = ruleTarget(rule.target);
  if (!rule.modeled || target === undefined || rule.sourcePort?.negate === true || rule.destinationPort?.negate === true || (rule.matchSet?.directions.length ?? 1) !== 1) return undefined;
  const negated = (value: string, negate: boolean): string => (negate ? `!${value}` : value);
  const portSpecs = (match: PortMatch | undefined): PortSpec[] | undefined =>
    match === undefined || match.ports.length === 0 ? undefined : match.ports.map((range): PortSpec => (range.first === range.last ? range.first : [range.first, range.last]));
  const sourcePorts = portSpecs(rule.sourcePort);
  const destinationPorts = portSpecs(rule.destinationPort);
  return Object.freeze({
    ...(rule.protocol === "" ? {} : { protocol: negated(rule.protocol, rule.protocolNegate) }),
    ...(rule.source === undefined ? {} : { source: negated(rule.source.address, rule.source.negate) }),
    ...(rule.destination === undefined ? {} : { destination: negated(rule.destination.address, rule.destination.negate) }),
    ...(rule.inInterface === undefined ? {} : { inInterface: negated(rule.inInterface.name, rule.inInterface.negate) }),
    ...(rule.outInterface === undefined ? {} : { outInterface: negated(rule.outInterface.name, rule.outInterface.negate) }),
    ...(sourcePorts === undefined ? {} : { sourcePorts }),
    ...(destinationPorts === undefined ? {} : { destinationPorts }),
    ...(rule.matchSet === undefined ? {} : {
      matchSet: { set: rule.matchSet.set, direction: rule.matchSet.directions[0] === SetDirection.SET_DIRECTION_DST ? "dst" as const : "src" as const, ...(rule.matchSet.negate ? { negate: true } : {}) },
    }),
    ...(rule.states.length === 0 ? {} : { states: rule.states.map((state) => STATE_NAMES.get(state)!) }),
    ...(rule.comment === "" ? {} : { comment: rule.comment }),
    target,
  });
}

function ruleTarget(target: Rule["target"]): RuleTarget | undefined {
  switch (target?.kind) {
    case TargetKind.TARGET_KIND_ACCEPT: return "ACCEPT";
    case TargetKind.TARGET_KIND_DROP: return "DROP";
    case TargetKind.TARGET_KIND_RETURN: return "RETURN";
    case TargetKind.TARGET_KIND_REJECT: return { reject: target.rejectWith };
    case TargetKind.TARGET_KIND_LOG: return { log: target.logPrefix };
    case TargetKind.TARGET_KIND_JUMP: return target.goto ? { goto: target.chain } : { jump: target.chain };
    default: return undefined;
  }
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

const STATE_NAMES = new Map(Object.entries(STATES).map(([name, state]) => [state, name as NonNullable<RuleInput["states"]>[number]]));

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
  const protocol = negatable(input.protocol);
  return {
    name: "",
    id: "",
    chain,
    position: 0,
    protocol: protocol?.value ?? "",
    protocolNegate: protocol?.negate ?? false,
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

function panicMode(status: PanicModeStatus): PanicMode {
  return Object.freeze({ enabled: status.enabled, managementAddresses: Object.freeze([...status.managementAddresses]) });
}
