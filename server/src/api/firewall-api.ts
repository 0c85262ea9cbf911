import {
  ChainPolicy,
  ConntrackState as WireState,
  RulesetScope,
  SetDirection as WireDirection,
  Rule,
  TargetKind,
  type AddressMatch as WireAddress,
  type Chain,
  type FirewallServiceServer,
  type FirewallServiceService,
  type InterfaceMatch as WireInterface,
  type PortMatch as WirePorts,
  type Ruleset,
  type RulesetDiff as WireDiff,
} from "../gen/portcullis/v1/firewall.js";
import { ServerError, withField } from "../errors.js";
import type { ChainView, FirewallService, RuleView, TableSnapshot } from "../firewall/firewall-service.js";
import type { AddressMatch, ConntrackState, InterfaceMatch, Policy, PortMatch, RuleSpec, SetDirection, Target } from "../firewall/rule-model.js";
import type { RulesetDiff } from "../firewall/ruleset-diff.js";
import { operation, type OperationsOf } from "./operation.js";
import { onceFor } from "./request-ids.js";
import type { RequestStore } from "../store/request-store.js";
import { decodePageToken, encodePageToken, pageSize } from "./pagination.js";
import { chainName, parseChainName, parseRuleName, parseTableName, ruleName, tableName, type TableName } from "./firewall-names.js";
import { saturated } from "./safe-integers.js";

export type FirewallOperations = OperationsOf<typeof FirewallServiceService, FirewallServiceServer>;

const STATES: ReadonlyArray<[WireState, ConntrackState]> = [
  [WireState.CONNTRACK_STATE_NEW, "NEW"],
  [WireState.CONNTRACK_STATE_ESTABLISHED, "ESTABLISHED"],
  [WireState.CONNTRACK_STATE_RELATED, "RELATED"],
  [WireState.CONNTRACK_STATE_INVALID, "INVALID"],
  [WireState.CONNTRACK_STATE_UNTRACKED, "UNTRACKED"],
];

const TARGET_KINDS: Readonly<Record<Target["kind"], TargetKind>> = {
  ACCEPT: TargetKind.TARGET_KIND_ACCEPT,
  DROP: TargetKind.TARGET_KIND_DROP,
  REJECT: TargetKind.TARGET_KIND_REJECT,
  RETURN: TargetKind.TARGET_KIND_RETURN,
  LOG: TargetKind.TARGET_KIND_LOG,
  JUMP: TargetKind.TARGET_KIND_JUMP,
  OTHER: TargetKind.TARGET_KIND_OTHER,
};

/** The FirewallService contract mapped onto the domain. */
export function firewallOperations(firewall: FirewallService, requests: RequestStore): FirewallOperations {
  const safeguards = (request: { allowLockout: boolean; confirmWithin: number }) => ({ allowLockout: request.allowLockout, confirmWithin: request.confirmWithin });
  return {
    listChains: operation("viewer", (request) => request.parent, async (request) => {
      const t = parseTableName(request.parent);
      return { chains: (await firewall.snapshot(t.family, t.table)).chains.map((chain) => toChain(t, chain)) };
    }),

    getChain: operation("viewer", (request) => request.name, async (request) => {
      const c = parseChainName(request.name);
      return toChain(c, await firewall.chain(c.family, c.table, c.chain));
    }),

    createChain: operation("admin", (request) => `${request.parent}/chains/${request.chainId}`, async (request, call) => {
      const t = parseTableName(request.parent);
      return toChain(t, await firewall.createChain(t.family, t.table, request.chainId, call));
    }),

    deleteChain: operation("admin", (request) => request.name, async (request, call) => {
      const c = parseChainName(request.name);
      await firewall.deleteChain(c.family, c.table, c.chain, call);
      return {};
    }),

    setChainPolicy: operation("admin", (request) => request.name, async (request, call) => {
      const c = parseChainName(request.name);
      const { chain } = await firewall.setPolicy(c.family, c.table, c.chain, fromPolicy(request.policy, "policy"), call, safeguards(request));
      return toChain(c, chain);
    }),

    listRules: operation("viewer", (request) => request.parent, async (request) => {
      const c = parseChainName(request.parent, "parent");
      const size = pageSize(request.pageSize, 1000, 10_000);
      const page = await firewall.rulesPage(c.family, c.table, c.chain, decodePageToken(request.pageToken, request.parent), size);
      return {
        rules: page.rules.map((rule) => toRule(c, rule)),
        nextPageToken: page.nextAfter === undefined ? "" : encodePageToken(request.parent, page.nextAfter),
        totalSize: page.totalSize,
      };
    }),

    getRule: operation("viewer", (request) => request.name, async (request) => {
      const r = parseRuleName(request.name);
      return toRule(r, await firewall.rule(r.family, r.table, r.chain, r.rule));
    }),

    createRule: operation("admin", (request) => request.parent, async (request, call) => onceFor(requests, "CreateRule", request, Rule, async () => {
      const c = parseChainName(request.parent, "parent");
      const { rule } = await firewall.createRule(c.family, c.table, c.chain, fromRule(request.rule), request.position, call, safeguards(request));
      return toRule(c, rule);
    })),

    replaceRule: operation("admin", (request) => request.name, async (request, call) => {
      const r = parseRuleName(request.name);
      const { rule } = await firewall.replaceRule(r.family, r.table, r.chain, r.rule, fromRule(request.rule), call, safeguards(request));
      return toRule(r, rule);
    }),

    deleteRule: operation("admin", (request) => request.name, async (request, call) => {
      const r = parseRuleName(request.name);
      await firewall.deleteRule(r.family, r.table, r.chain, r.rule, call, safeguards(request));
      return {};
    }),

    exportRuleset: operation("viewer", (request) => request.parent, async (request) => {
      const t = parseTableName(request.parent);
      return toRuleset(t, await firewall.snapshot(t.family, t.table));
    }),

    applyRuleset: operation("admin", (request) => request.parent, async (request, call) => {
      const t = parseTableName(request.parent);
      const chains = request.chains.map((chain, i) => ({
        name: chain.name.includes("/") ? parseChainName(chain.name, `chains[${i}].name`).chain : chain.name,
        ...(chain.policy === ChainPolicy.CHAIN_POLICY_UNSPECIFIED ? {} : { policy: fromPolicy(chain.policy, `chains[${i}].policy`) }),
      }));
      // Converted one by one as the service reaches them (see RuleSource).
      const rules = {
        length: request.rules.length,
        at: (i: number) => {
          const rule = request.rules[i];
          return { chain: rule?.chain ?? "", spec: withField(() => fromRule(rule), `rules[${i}]`) };
        },
      };
      const applied = await firewall.apply(t.family, t.table, chains, rules, call, {
        ...safeguards(request),
        scope: fromScope(request.scope),
        replaceForeign: request.replaceForeign,
        dryRun: request.dryRun,
      });
      const rollbackAt = applied.rollbackAt;
      return {
        name: tableName(t),
        chains: applied.chains.map((chain) => toChain(t, chain)),
        ruleCount: applied.ruleCount,
        ...(rollbackAt === undefined ? {} : { rollbackTime: new Date(rollbackAt) }),
        ...(applied.diff === undefined ? {} : { diff: toDiff(applied.diff) }),
      };
    }),

    confirmRuleset: operation("admin", (request) => request.parent, async (request, call) => {
      const t = parseTableName(request.parent);
      await firewall.confirm(t.family, t.table, call);
      return { name: tableName(t) };
    }),

    listServices: operation("viewer", () => "services", async () => {
      const { services, groups } = firewall.services();
      return {
        services: [
          ...Object.entries(groups).map(([name, members]) => {
            const expanded = services.filter((service) => members.includes(service.name));
            return { name, protocol: "tcp", ports: expanded.flatMap((service) => [...service.ports]), description: `group: ${members.join(", ")}` };
          }),
          ...services.map((service) => ({ name: service.name, protocol: service.protocol, ports: [...service.ports], description: service.description })),
        ],
      };
    }),

    allowService: operation("admin", (request) => request.parent, async (request, call) => {
      const c = parseChainName(request.parent, "parent");
      const rules = await firewall.allowService(c.family, c.chain, request.services, fromAddress(request.source), call);
      return { rules: rules.map((rule) => toRule({ family: c.family, table: "filter" }, rule)) };
    }),

    enablePanicMode: operation("admin", () => "firewall", async (_request, call) => toPanic(await firewall.enablePanic(call))),
    disablePanicMode: operation("admin", () => "firewall", async (_request, call) => toPanic(await firewall.disablePanic(call))),
    getPanicMode: operation("viewer", () => "firewall", async () => toPanic(firewall.panicStatus())),
  };
}

function toPanic(status: { enabled: boolean; managementAddresses: readonly string[] }): { enabled: boolean; managementAddresses: string[] } {
  return { enabled: status.enabled, managementAddresses: [...status.managementAddresses] };
}

function fromPolicy(policy: ChainPolicy, field: string): Policy {
  if (policy === ChainPolicy.CHAIN_POLICY_ACCEPT) return "ACCEPT";
  if (policy === ChainPolicy.CHAIN_POLICY_DROP) return "DROP";
  throw new ServerError("INVALID_POLICY", `${field} must be CHAIN_POLICY_ACCEPT or CHAIN_POLICY_DROP`, { field });
}

function fromScope(scope: RulesetScope): "TABLE" | "MANAGED" {
  if (scope === RulesetScope.RULESET_SCOPE_UNSPECIFIED || scope === RulesetScope.RULESET_SCOPE_TABLE) return "TABLE";
  if (scope === RulesetScope.RULESET_SCOPE_MANAGED) return "MANAGED";
  throw new ServerError("INVALID_SCOPE", "scope must be RULESET_SCOPE_TABLE or RULESET_SCOPE_MANAGED", { field: "scope" });
}

function toDiff(diff: RulesetDiff): WireDiff {
  return {
    added: [...diff.added],
    removed: [...diff.removed],
    changed: diff.changed.map((change) => ({ before: change.before, after: change.after })),
    foreignKept: [...diff.foreignKept],
    foreignRemoved: [...diff.foreignRemoved],
    chainsCreated: [...diff.chainsCreated],
    chainsDeleted: [...diff.chainsDeleted],
    unchanged: diff.unchanged,
  };
}

function toChain(t: TableName, chain: ChainView): Chain {
  return {
    name: chainName(t, chain.name),
    builtin: chain.builtin,
    policy: chain.policy === "ACCEPT" ? ChainPolicy.CHAIN_POLICY_ACCEPT : chain.policy === "DROP" ? ChainPolicy.CHAIN_POLICY_DROP : ChainPolicy.CHAIN_POLICY_UNSPECIFIED,
    packets: saturated(chain.packets),
    bytes: saturated(chain.bytes),
    ruleCount: chain.ruleCount,
    references: chain.references,
  };
}

function toRuleset(t: TableName, snapshot: TableSnapshot): Ruleset {
  return { name: tableName(t), text: snapshot.text, chains: snapshot.chains.map((chain) => toChain(t, chain)), rules: snapshot.rules.map((rule) => toRule(t, rule)) };
}

function fromAddress(match: WireAddress | undefined): AddressMatch | undefined {
  return match === undefined || match.address === "" ? undefined : { address: match.address, negate: match.negate };
}

function fromInterface(match: WireInterface | undefined): InterfaceMatch | undefined {
  return match === undefined || match.name === "" ? undefined : { name: match.name, negate: match.negate };
}

function fromPorts(match: WirePorts | undefined): PortMatch | undefined {
  if (match === undefined || match.ports.length === 0) return undefined;
  return { ports: match.ports.map((range) => ({ first: range.first, last: range.last === 0 ? range.first : range.last })), negate: match.negate };
}

function fromTarget(target: Rule["target"]): Target {
  switch (target?.kind) {
    case TargetKind.TARGET_KIND_ACCEPT: return { kind: "ACCEPT" };
    case TargetKind.TARGET_KIND_DROP: return { kind: "DROP" };
    case TargetKind.TARGET_KIND_RETURN: return { kind: "RETURN" };
    case TargetKind.TARGET_KIND_REJECT: return { kind: "REJECT", ...(target.rejectWith === "" ? {} : { rejectWith: target.rejectWith }) };
    case TargetKind.TARGET_KIND_LOG: return { kind: "LOG", ...(target.logPrefix === "" ? {} : { prefix: target.logPrefix }) };
    case TargetKind.TARGET_KIND_JUMP: return { kind: "JUMP", chain: target.chain, goto: target.goto };
    default:
      throw new ServerError("INVALID_RULE", "rule.target.kind is required: ACCEPT, DROP, REJECT, RETURN, LOG or JUMP", { field: "rule.target.kind" });
  }
}

/** A wire rule as a domain spec; field errors name the wire fields. */
export function fromRule(rule: Rule | undefined): RuleSpec {
  if (rule === undefined) throw new ServerError("INVALID_RULE", "rule is required", { field: "rule" });
  if (rule.target?.kind === TargetKind.TARGET_KIND_OTHER) {
    throw new ServerError("INVALID_RULE", "rule.target.kind OTHER is read-only: rules with targets Portcullis does not model cannot be created", { field: "rule.target.kind" });
  }
  const source = fromAddress(rule.source);
  const destination = fromAddress(rule.destination);
  const inInterface = fromInterface(rule.inInterface);
  const outInterface = fromInterface(rule.outInterface);
  const sourcePort = fromPorts(rule.sourcePort);
  const destinationPort = fromPorts(rule.destinationPort);
  const states = rule.states.length === 0 ? [] : rule.states.map((state, i) => {
    const found = STATES.find(([wire]) => wire === state);
    if (found === undefined) throw new ServerError("INVALID_RULE", `rule.states[${i}] must be NEW, ESTABLISHED, RELATED, INVALID or UNTRACKED`, { field: `rule.states[${i}]` });
    return found[1];
  });
  const matchSet = rule.matchSet === undefined || rule.matchSet.set === "" ? undefined : {
    set: rule.matchSet.set,
    directions: rule.matchSet.directions.length === 0 ? (["src"] as SetDirection[]) : rule.matchSet.directions.map((direction, i): SetDirection => {
      if (direction === WireDirection.SET_DIRECTION_SRC) return "src";
      if (direction === WireDirection.SET_DIRECTION_DST) return "dst";
      throw new ServerError("INVALID_RULE", `rule.match_set.directions[${i}] must be SRC or DST`, { field: `rule.match_set.directions[${i}]` });
    }),
    negate: rule.matchSet.negate,
  };
  // Assigned one by one rather than spread: ApplyRuleset converts 10k of these.
  const spec: { -readonly [K in keyof RuleSpec]: RuleSpec[K] } = { target: fromTarget(rule.target) };
  if (rule.protocol !== "") spec.protocol = rule.protocol;
  if (rule.protocolNegate) spec.protocolNegate = true;
  if (source !== undefined) spec.source = source;
  if (destination !== undefined) spec.destination = destination;
  if (inInterface !== undefined) spec.inInterface = inInterface;
  if (outInterface !== undefined) spec.outInterface = outInterface;
  if (sourcePort !== undefined) spec.sourcePort = sourcePort;
  if (destinationPort !== undefined) spec.destinationPort = destinationPort;
  if (matchSet !== undefined) spec.matchSet = matchSet;
  if (states.length > 0) spec.states = states;
  if (rule.comment !== "") spec.comment = rule.comment;
  return spec;
}

/**
 * Wire rules by the view they were made from: TableReader keeps the view of every rule whose line and counters did
 * not change, so a listing finds its wire rule here, and the gRPC adapter the bytes it kept of it (grpc/kept-rule-bytes.ts):
 * what the "list 10000 rules" bench row needs. Shared by every later listing, hence read-only.
 */
const wireRules = new WeakMap<RuleView, Readonly<Rule>>();

/** A rule on the wire. */
export function toRule(t: TableName, rule: RuleView): Readonly<Rule> {
  let wire = wireRules.get(rule);
  if (wire === undefined) wireRules.set(rule, (wire = newWireRule(t, rule)));
  return wire;
}

/** Fields copied one by one (no spread): ListRules builds 10k of these. */
function newWireRule(t: TableName, rule: RuleView): Rule {
  const spec = rule.spec;
  const target = spec.target;
  return {
    name: ruleName(t, rule.chain, rule.id),
    id: rule.id,
    chain: rule.chain,
    position: rule.position,
    protocol: spec.protocol ?? "",
    protocolNegate: spec.protocolNegate ?? false,
    source: toAddress(spec.source),
    destination: toAddress(spec.destination),
    inInterface: toInterface(spec.inInterface),
    outInterface: toInterface(spec.outInterface),
    sourcePort: toPorts(spec.sourcePort),
    destinationPort: toPorts(spec.destinationPort),
    matchSet: spec.matchSet === undefined ? undefined : {
      set: spec.matchSet.set,
      directions: spec.matchSet.directions.map((direction) => (direction === "src" ? WireDirection.SET_DIRECTION_SRC : WireDirection.SET_DIRECTION_DST)),
      negate: spec.matchSet.negate,
    },
    states: (spec.states ?? []).map((state) => STATES.find(([, name]) => name === state)![0]),
    comment: spec.comment ?? "",
    target: {
      kind: TARGET_KINDS[target.kind],
      chain: target.kind === "JUMP" ? target.chain : "",
      goto: target.kind === "JUMP" ? target.goto : false,
      rejectWith: target.kind === "REJECT" ? target.rejectWith ?? "" : "",
      logPrefix: target.kind === "LOG" ? target.prefix ?? "" : "",
      other: target.kind === "OTHER" ? target.name : "",
    },
    packets: saturated(rule.packets),
    bytes: saturated(rule.bytes),
    managed: rule.managed,
    modeled: rule.modeled,
    text: rule.text,
  };
}

function toAddress(match: AddressMatch | undefined): WireAddress | undefined {
  return match === undefined ? undefined : { address: match.address, negate: match.negate };
}

function toInterface(match: InterfaceMatch | undefined): WireInterface | undefined {
  return match === undefined ? undefined : { name: match.name, negate: match.negate };
}

function toPorts(match: PortMatch | undefined): WirePorts | undefined {
  return match === undefined ? undefined : { ports: match.ports.map((range) => ({ first: range.first, last: range.last })), negate: match.negate };
}
