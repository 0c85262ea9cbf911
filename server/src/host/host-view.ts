import { formatAddress, overlaps, parseAddressStrict, parseNetworkCanonical } from "../addresses.js";
import { ServerError } from "../errors.js";
import { windowBuckets, type BanHistory, type WindowName } from "../events/ban-history.js";
import type { EventLog } from "../events/event-log.js";
import type { HostEvent } from "../events/event-model.js";
import type { FirewallService, RuleView } from "../firewall/firewall-service.js";
import { WRITABLE_TABLES, type Family, type Table } from "../firewall/rule-model.js";
import type { FleetSharing } from "../fleet/fleet.js";
import type { EntryView, IpsetService } from "../ipsets/ipset-service.js";
import type { Allowlist } from "../jails/allowlist.js";
import type { JailService } from "../jails/jail-service.js";
import { ignoreIpCovering } from "../jails/jail-checks.js";
import type { AllowlistRow } from "../store/allowlist-store.js";

const DAY_MS = 86_400_000;

/** The host at a glance: what the console's overview counts. */
export interface HostOverview {
  /** Bans in force in every jail (fail2ban's counters; the recorded bans while it is down). */
  readonly activeBans: number;
  /** BAN events of the last 24 hours. */
  readonly bansLastDay: number;
  readonly jailCount: number;
  readonly fail2banUp: boolean;
  readonly ipsetCount: number;
  readonly managedIpsetCount: number;
  /** Entries of every set, as the kernel counts them. */
  readonly entryCount: number;
  readonly managedRuleCount: number;
  /** Whether the host is in a fleet (a `cluster` section). */
  readonly fleet: boolean;
  readonly fleetNodes: number;
  readonly fleetNodesOnline: number;
}

/** One jail's activity over a window, with fail2ban's own counters (which have no window). */
export interface JailActivity {
  readonly jail: string;
  /** BAN and UNBAN events of the window. */
  readonly bans: number;
  readonly unbans: number;
  readonly currentlyBanned: number;
  readonly totalBanned: number;
  readonly currentlyFailed: number;
  readonly totalFailed: number;
}

/** How a managed rule matches an address. */
export type RuleMatch = "source" | "destination" | "set";

/** Everything about one address now. */
export interface AddressReport {
  /** The address in canonical form. */
  readonly address: string;
  readonly jailBans: ReadonlyArray<{ readonly jail: string; readonly since: number; readonly expiresAt?: number; readonly forever: boolean }>;
  readonly entries: ReadonlyArray<{ readonly ipset: string; readonly entry: EntryView }>;
  readonly rules: ReadonlyArray<{ readonly family: Family; readonly table: Table; readonly rule: RuleView; readonly matches: readonly RuleMatch[] }>;
  readonly allowlist: readonly AllowlistRow[];
  readonly ignoreIp: ReadonlyArray<{ readonly jail: string; readonly entry: string }>;
  /** Its newest events, newest first. */
  readonly events: readonly HostEvent[];
}

/** Matching entries read per managed set when an address is inspected. */
const ENTRIES_PER_SET = 1000;

/**
 * The host as a whole, for a console: counters over jails, sets, rules and the fleet, jail activity over a window,
 * and everything that concerns one address. Reads only; every number comes from the domain services, the store and
 * the ban history, never from the caller.
 */
export class HostView {
  readonly #jails: JailService;
  readonly #ipsets: IpsetService;
  readonly #firewall: FirewallService;
  readonly #allowlist: Allowlist;
  readonly #events: EventLog;
  readonly #history: BanHistory;
  readonly #fleet: FleetSharing;

  constructor(deps: { jails: JailService; ipsets: IpsetService; firewall: FirewallService; allowlist: Allowlist; events: EventLog; history: BanHistory; fleet: FleetSharing }) {
    this.#jails = deps.jails;
    this.#ipsets = deps.ipsets;
    this.#firewall = deps.firewall;
    this.#allowlist = deps.allowlist;
    this.#events = deps.events;
    this.#history = deps.history;
    this.#fleet = deps.fleet;
  }

  async overview(now = Date.now()): Promise<HostOverview> {
    const [jails, sets, nodes] = await Promise.all([this.#jailCounters(), this.#ipsets.list(), this.#fleetNodes(), this.#history.ready]);
    return {
      activeBans: jails === undefined ? this.#jails.recordedBanCount() : jails.reduce((sum, jail) => sum + jail.counters.currentlyBanned, 0),
      bansLastDay: this.#history.bansSince(now - DAY_MS),
      jailCount: jails?.length ?? 0,
      fail2banUp: jails !== undefined,
      ipsetCount: sets.length,
      managedIpsetCount: sets.filter((set) => set.managed).length,
      entryCount: sets.reduce((sum, set) => sum + set.entryCount, 0),
      managedRuleCount: this.#firewall.managedRuleCount(),
      fleet: this.#fleet.nodes !== undefined,
      fleetNodes: nodes.length,
      fleetNodesOnline: nodes.filter((node) => node.online).length,
    };
  }

  /**
   * Every jail fail2ban runs, and every jail with bans or unbans in the window (one removed since shows zero
   * counters), by name.
   */
  async jailActivity(window: WindowName, now = Date.now()): Promise<JailActivity[]> {
    const live = new Map((await this.#jailCounters() ?? []).map((jail) => [jail.name, jail.counters]));
    await this.#history.ready;
    const counted = new Map(this.#history.jailCounts(windowBuckets(window, now).start).map((row) => [row.jail, row]));
    return [...new Set([...live.keys(), ...counted.keys()])].sort().map((jail) => {
      const counters = live.get(jail);
      return {
        jail,
        bans: counted.get(jail)?.bans ?? 0,
        unbans: counted.get(jail)?.unbans ?? 0,
        currentlyBanned: counters?.currentlyBanned ?? 0,
        totalBanned: counters?.totalBanned ?? 0,
        currentlyFailed: counters?.currentlyFailed ?? 0,
        totalFailed: counters?.totalFailed ?? 0,
      };
    });
  }

  /** Which jails ban the address, which managed sets and rules hold it, what protects it, and its newest events. */
  async inspect(rawAddress: string, eventLimit: number): Promise<AddressReport> {
    const parsed = parseAddressStrict(rawAddress);
    if ("problem" in parsed) throw new ServerError("INVALID_ELEMENT", `address "${rawAddress.slice(0, 100)}": ${parsed.problem}`, { field: "address", value: rawAddress.slice(0, 100) });
    const address = formatAddress(parsed);
    const target = parseNetworkCanonical(address);

    const jailBans = (await this.#jails.bansOf(address)).map(({ jail, since, ban }) => {
      const forever = ban !== undefined && ban.duration < 0;
      return { jail, since: ban?.bannedAt ?? since, forever, ...(ban === undefined || forever ? {} : { expiresAt: ban.bannedAt + ban.duration * 1000 }) };
    });

    const entries: Array<{ ipset: string; entry: EntryView }> = [];
    for (const set of (await this.#ipsets.list()).filter((candidate) => candidate.managed)) {
      const name = set.definition.name;
      for (const entry of (await this.#ipsets.listEntries(name, "", ENTRIES_PER_SET, address)).entries) entries.push({ ipset: name, entry });
    }
    const holding = new Set(entries.map((found) => found.ipset));

    // The rules as the kernel has them now (position and counters), of the address's family.
    const family: Family = parsed.kind() === "ipv4" ? "ipv4" : "ipv6";
    const rules: Array<AddressReport["rules"][number]> = [];
    for (const table of WRITABLE_TABLES) {
      for (const rule of (await this.#firewall.snapshot(family, table)).rules) {
        if (!rule.managed) continue;
        const matches: RuleMatch[] = [];
        const { source, destination, matchSet } = rule.spec;
        if (source !== undefined && !source.negate && overlaps(parseNetworkCanonical(source.address), target)) matches.push("source");
        if (destination !== undefined && !destination.negate && overlaps(parseNetworkCanonical(destination.address), target)) matches.push("destination");
        if (matchSet !== undefined && !matchSet.negate && holding.has(matchSet.set)) matches.push("set");
        if (matches.length > 0) rules.push({ family, table, rule, matches });
      }
    }

    const ignoreIp = await whileFail2banAnswers(async () => {
      const found: Array<{ jail: string; entry: string }> = [];
      for (const jail of await this.#jails.names()) {
        for (const entry of ignoreIpCovering(address, await this.#jails.ignoreList(jail))) found.push({ jail, entry });
      }
      return found;
    });

    return {
      address,
      jailBans,
      entries,
      rules,
      allowlist: this.#allowlist.list().filter((row) => overlaps(parseNetworkCanonical(row.network), target)),
      ignoreIp: ignoreIp ?? [],
      events: this.#events.latest(eventLimit, { address }),
    };
  }

  /** Each jail's counters; undefined when fail2ban does not answer. */
  async #jailCounters(): Promise<Array<{ name: string; counters: Awaited<ReturnType<JailService["counters"]>> }> | undefined> {
    return whileFail2banAnswers(async () => {
      const jails = [];
      for (const name of await this.#jails.names()) jails.push({ name, counters: await this.#jails.counters(name) });
      return jails;
    });
  }

  /** The fleet's nodes; none outside a fleet or while the fleet's NATS does not answer. */
  async #fleetNodes(): Promise<Array<{ online: boolean }>> {
    if (this.#fleet.nodes === undefined) return [];
    try {
      return await this.#fleet.nodes.list();
    } catch {
      return [];
    }
  }
}

/** The work's result, or undefined when fail2ban does not answer (a console still shows everything else). */
async function whileFail2banAnswers<T>(work: () => Promise<T>): Promise<T | undefined> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ServerError && error.reason === "FAIL2BAN_UNAVAILABLE") return undefined;
    throw error;
  }
}
