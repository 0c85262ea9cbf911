import ipaddr from "ipaddr.js";
import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import type { IpsetDriver } from "../drivers/ipset-driver.js";
import type { DeclaredChains } from "./foreign-rules.js";
import { findLockout, matches, type ApiPacket, type TableView } from "./lockout.js";
import type { Family, Policy, RuleSpec, Table } from "./rule-model.js";
import type { TableViews } from "./table-reader.js";

/** Who asks, for the anti-lockout check: their address as the API sees it. */
export interface Caller {
  readonly address?: string;
}

/** What a caller may ask of a change that could cut them off: to make it anyway, or safe mode. */
export interface Safeguards {
  readonly allowLockout?: boolean;
  /** Safe mode: seconds until the table rolls back unless confirmed (0 = apply for good). */
  readonly confirmWithin?: number;
}

/** Options of every change that could cut the caller off. */
export interface ChangeOptions extends Safeguards {
  readonly caller: Caller;
}

export interface ApiEndpoint {
  /** undefined when listening on every address. */
  readonly address?: string;
  readonly port: number;
}

/**
 * The anti-lockout check of every change to the filter table: the caller's own connection to the API (lockout.ts
 * evaluates it) must still get through, or the change must be allowed in safe mode, which rolls it back unless
 * confirmed.
 */
export class LockoutGuard {
  readonly #ipsets: IpsetDriver;
  readonly #api: ApiEndpoint;
  readonly #log: Logger;

  constructor(deps: { ipsets: IpsetDriver; api: ApiEndpoint; log: Logger }) {
    this.#ipsets = deps.ipsets;
    this.#api = deps.api;
    this.#log = deps.log;
  }

  /** Whether a rule, added or deleted, could change the caller's access: otherwise no table read is needed. */
  async mayLockOut(family: Family, table: Table, spec: RuleSpec, change: "add" | "delete", caller: Caller): Promise<boolean> {
    if (table !== "filter") return false;
    const kind = spec.target.kind;
    // Adding an ACCEPT or LOG can only let more in; deleting a DROP or REJECT likewise.
    if (change === "add" ? kind === "ACCEPT" || kind === "LOG" : kind === "DROP" || kind === "REJECT" || kind === "LOG") return false;
    const packets = this.#apiPackets(family, caller);
    for (const packet of packets) {
      if ((await matches(spec, packet, (set, address) => this.#inSet(set, address))) !== "no") return true;
    }
    return false;
  }

  async check(family: Family, table: Table, view: TableView, options: ChangeOptions): Promise<void> {
    if (table !== "filter") return;
    for (const packet of this.#apiPackets(family, options.caller)) {
      const reason = await findLockout(view, packet, (set, address) => this.#inSet(set, address));
      if (reason === undefined) continue;
      if (options.allowLockout === true && (options.confirmWithin ?? 0) > 0) {
        this.#log.warn({ family, reason, caller: packet.source }, "change may cut the caller off the API; allowed in safe mode");
        return;
      }
      throw new ServerError(
        "LOCKOUT",
        `this change would cut ${packet.source} off the API (tcp port ${packet.destinationPort}): ${reason}. Add a rule that accepts the API first, or repeat with allow_lockout and confirm_within so that it rolls back unless confirmed`,
        { family, caller: packet.source },
      );
    }
  }

  /** The API connections to protect: the caller's, if of this family (a loopback caller enters through lo). */
  #apiPackets(family: Family, caller?: Caller): ApiPacket[] {
    const source = caller?.address;
    if (source === undefined || familyOfAddress(source) !== family) return [];
    const loopback = ipaddr.parse(source).range() === "loopback";
    const destination = this.#api.address !== undefined && familyOfAddress(this.#api.address) === family ? this.#api.address : undefined;
    return [{ source, destinationPort: this.#api.port, ...(destination === undefined ? {} : { destination }), ...(loopback ? { inInterface: "lo" } : {}) }];
  }

  async #inSet(set: string, address: string): Promise<boolean> {
    try {
      return await this.#ipsets.test(set, address);
    } catch {
      return true; // unknown: assume the worst for a drop
    }
  }
}

export function familyOfAddress(address: string): Family {
  return ipaddr.parse(address.split("/")[0]!).kind() === "ipv4" ? "ipv4" : "ipv6";
}

/** The table as it would be after one change, for the lockout check. */
export function viewOf(snapshot: TableViews, change: { policy?: [string, Policy]; insert?: [string, number, readonly RuleSpec[]]; replace?: [string, number, RuleSpec]; remove?: [string, number] }): TableView {
  const rules = groupRules(snapshot.rules);
  const policies = new Map(snapshot.chains.filter((chain) => chain.policy !== undefined).map((chain) => [chain.name, chain.policy!]));
  if (change.policy !== undefined) policies.set(change.policy[0], change.policy[1]);
  const edit = (chain: string): Array<{ spec: RuleSpec; modeled: boolean }> => {
    let list = rules.get(chain);
    if (list === undefined) rules.set(chain, (list = []));
    return list;
  };
  if (change.insert !== undefined) edit(change.insert[0]).splice(change.insert[1] - 1, 0, ...change.insert[2].map((spec) => ({ spec, modeled: true })));
  if (change.replace !== undefined) edit(change.replace[0]).splice(change.replace[1] - 1, 1, { spec: change.replace[2], modeled: true });
  if (change.remove !== undefined) edit(change.remove[0]).splice(change.remove[1] - 1, 1);
  return { rules, policies };
}

/** A whole table as ApplyRuleset writes it, for the lockout check. */
export function wholeTableView(declared: DeclaredChains, rules: ReadonlyArray<{ chain: string; spec: RuleSpec }>): TableView {
  return {
    rules: groupRules(rules.map((rule) => ({ chain: rule.chain, spec: rule.spec, modeled: true }))),
    policies: new Map([...declared].flatMap(([name, { policy }]) => (policy === undefined ? [] : [[name, policy] as const]))),
  };
}

function groupRules(rules: ReadonlyArray<{ chain: string; spec: RuleSpec; modeled: boolean }>): Map<string, Array<{ spec: RuleSpec; modeled: boolean }>> {
  const grouped = new Map<string, Array<{ spec: RuleSpec; modeled: boolean }>>();
  for (const rule of rules) {
    let list = grouped.get(rule.chain);
    if (list === undefined) grouped.set(rule.chain, (list = []));
    list.push({ spec: rule.spec, modeled: rule.modeled });
  }
  return grouped;
}
