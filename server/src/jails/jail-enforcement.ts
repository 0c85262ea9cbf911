import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import { formatAddress, networkBase, parseAddressStrict, type Address } from "../addresses.js";
import type { EventLog } from "../events/event-log.js";
import type { IpsetService } from "../ipsets/ipset-service.js";
import { MAX_TIMEOUT_SECONDS } from "../ipsets/ipset-model.js";
import type { FirewallService } from "../firewall/firewall-service.js";
import type { Family } from "../firewall/rule-model.js";
import { KeyedLock } from "../keyed-lock.js";
import type { Allowlist } from "./allowlist.js";
import type { JailService } from "./jail-service.js";

/** Jail sets hold up to this many entries (fail2ban's stock ipset action keeps ipset's default, 65,536). */
const SET_MAXELEM = 1_000_000;
const SET_NAME_MAX = 31;

/** A ban or unban the Portcullis action reports (see fail2ban/action.d/portcullis.py). */
export interface ActionItem {
  readonly op: "ban" | "unban";
  readonly ip: string;
  /** Seconds; -1 for ever (bans). */
  readonly bantime: number;
  readonly failures: number;
  /** IPv6 bans cover the address's network of this prefix length (128 = the address alone). */
  readonly ipv6Prefix: number;
}

/** The sets a jail's bans go into: the seed's `fail2ban-<jail>`, and `fail2ban6-<jail>` for IPv6. */
export function jailSets(jail: string): Record<Family, string> {
  return { ipv4: `fail2ban-${jail}`, ipv6: `fail2ban6-${jail}` };
}

/**
 * The server side of the Portcullis fail2ban action: fail2ban decides, Portcullis enforces. A jail's bans go into its
 * own managed sets (hash:net with per-entry timeouts, so the kernel expires them too) through the ipset fast path,
 * dropped by one managed rule per family at the top of INPUT; each ban and unban is recorded and reported as it
 * happens (no polling). The host allowlist is honoured here as well: a ban fail2ban was told to make by hand
 * (`fail2ban-client set <jail> banip`, which skips ignoreip) of an allowlisted address is refused and lifted again.
 */
export class JailEnforcement {
  readonly #ipsets: IpsetService;
  readonly #firewall: FirewallService;
  readonly #jails: JailService;
  readonly #allowlist: Allowlist;
  readonly #events: EventLog;
  readonly #log: Logger;
  readonly #lock = new KeyedLock();
  /** Jails whose sets and rules were made sure of since this process started. */
  readonly #ready = new Set<string>();

  constructor(deps: { ipsets: IpsetService; firewall: FirewallService; jails: JailService; allowlist: Allowlist; events: EventLog; log: Logger }) {
    this.#ipsets = deps.ipsets;
    this.#firewall = deps.firewall;
    this.#jails = deps.jails;
    this.#allowlist = deps.allowlist;
    this.#events = deps.events;
    this.#log = deps.log;
  }

  /** The jail starts: its sets and DROP rules exist afterwards (managed: restored after a reboot). Idempotent. */
  async start(jail: string): Promise<void> {
    if (this.#ready.has(jail)) return;
    const sets = jailSets(jail);
    if (sets.ipv6.length > SET_NAME_MAX) {
      throw new ServerError("INVALID_RESOURCE_NAME", `jail name ${jail} is too long for its ipset names (at most ${SET_NAME_MAX - 10} characters)`, { jail });
    }
    await this.#lock.with([jail], async () => {
      if (this.#ready.has(jail)) return;
      for (const family of ["ipv4", "ipv6"] as const) {
        const name = sets[family];
        let existing;
        try {
          existing = await this.#ipsets.get(name);
        } catch (error) {
          if (!(error instanceof ServerError && error.reason === "IPSET_NOT_FOUND")) throw error;
        }
        if (existing === undefined) {
          await this.#ipsets.createHere({ name, typeName: "hash:net", family: family === "ipv4" ? "inet" : "inet6", maxelem: SET_MAXELEM, timeout: 0, comments: false });
          this.#events.append({ type: "IPSET_CREATED", resource: `ipsets/${name}`, attributes: { type: "hash:net", jail } }, "system", "system");
        } else {
          if (!existing.managed) await this.#ipsets.adoptHere(name);
          if (existing.definition.typeName !== "hash:net" || existing.definition.timeout === undefined) {
            throw new ServerError("INVALID_IPSET_TYPE", `set ${name} exists as ${existing.definition.typeName}${existing.definition.timeout === undefined ? " without timeout support" : ""}; jail ${jail} needs hash:net with timeout: delete the set`, { ipset: name });
          }
        }
        const rule = await this.#firewall.ensureRule(family, "filter", "INPUT", { matchSet: { set: name, directions: ["src"], negate: false }, target: { kind: "DROP" } }, 1);
        if (rule !== undefined) {
          this.#events.append({ type: "RULE_CREATED", resource: `firewall/${family}/tables/filter/chains/INPUT/rules/${rule.id}`, attributes: { rule: rule.text, jail } }, "system", "system");
        }
      }
      this.#ready.add(jail);
    });
  }

  /**
   * A batch from the action: bans and unbans in the order fail2ban made them, applied run by run (a run of bans as
   * one change per set). Returns the bans refused (invalid, or protected by the allowlist); the others are enforced.
   */
  async apply(jail: string, items: readonly ActionItem[]): Promise<Array<{ ip: string; error: string }>> {
    await this.start(jail);
    const refused: Array<{ ip: string; error: string }> = [];
    for (let i = 0; i < items.length; ) {
      let j = i;
      while (j < items.length && items[j]!.op === items[i]!.op) j++;
      const run = items.slice(i, j);
      if (items[i]!.op === "ban") refused.push(...(await this.#ban(jail, run)));
      else await this.#unban(jail, run);
      i = j;
    }
    return refused;
  }

  async #ban(jail: string, items: readonly ActionItem[]): Promise<Array<{ ip: string; error: string }>> {
    const refused: Array<{ ip: string; error: string }> = [];
    const bans = new Map<string, ActionItem>();
    for (const item of items) {
      const address = canonicalAddress(item.ip);
      if (address === undefined) {
        refused.push({ ip: item.ip.slice(0, 100), error: "not an IP address" });
        continue;
      }
      const allowed = this.#allowlist.covering(address);
      if (allowed === undefined) {
        bans.set(address, item);
        continue;
      }
      refused.push({ ip: address, error: `protected by the host allowlist entry ${allowed.network}` });
      this.#log.warn({ jail, address, entry: allowed.network }, "fail2ban banned an allowlisted address; lifting the ban");
      // fail2ban may be busy with this very ban: the unban queues behind it.
      setImmediate(() => void this.#jails.unbanHere(jail, address).catch((error: unknown) => this.#log.warn({ err: error, jail, address }, "lifting the ban failed")));
    }
    // Recorded first, so that the watcher (which compares fail2ban's lists meanwhile) never reports them as well.
    const fresh = this.#jails.noteBans(jail, [...bans.keys()], true);
    try {
      const perSet = new Map<string, Map<string, number>>();
      for (const [address, item] of bans) {
        const { set, element } = this.#target(jail, address, item.ipv6Prefix);
        const timeout = item.bantime < 0 ? 0 : Math.min(MAX_TIMEOUT_SECONDS, Math.max(1, Math.ceil(item.bantime)));
        const entries = perSet.get(set) ?? new Map<string, number>();
        // Several addresses of one IPv6 network: the network is banned for the longest of them (0 = for ever).
        const previous = entries.get(element);
        entries.set(element, previous === undefined ? timeout : previous === 0 || timeout === 0 ? 0 : Math.max(previous, timeout));
        perSet.set(set, entries);
      }
      for (const [set, entries] of perSet) {
        // One entry is one command; more are one batch (through the ipset session up to a thousand, no process).
        if (entries.size === 1) {
          for (const [element, timeout] of entries) await this.#ipsets.addEntryHere(set, { element, timeout });
        } else {
          await this.#ipsets.batchAddHere(set, { entries: [...entries].map(([element, timeout]) => ({ element, timeout })) });
        }
      }
    } catch (error) {
      this.#jails.noteBans(jail, fresh, false);
      throw error;
    }
    const freshSet = new Set(fresh);
    for (const [address, item] of bans) {
      if (!freshSet.has(address)) continue;
      const { element } = this.#target(jail, address, item.ipv6Prefix);
      this.#events.append({
        type: "BAN",
        resource: `jails/${jail}/bans/${address}`,
        attributes: { jail, address, bantime: String(item.bantime), failures: String(item.failures), ...(element === address ? {} : { network: element }) },
      }, "fail2ban", "fail2ban");
    }
    this.#jails.enforced(jail, "ban", [...bans.keys()]);
    return refused;
  }

  async #unban(jail: string, items: readonly ActionItem[]): Promise<void> {
    const unbans = new Map<string, ActionItem>();
    for (const item of items) {
      const address = canonicalAddress(item.ip);
      if (address !== undefined) unbans.set(address, item);
    }
    const news = new Set(this.#jails.noteBans(jail, [...unbans.keys()], false));
    // An IPv6 network stays while another banned address of the jail is in it: the networks of the jail's remaining
    // IPv6 bans, worked out once per prefix length in the batch (not once per unban).
    const heldByPrefix = new Map<number, Set<string>>();
    const held = (prefix: number): Set<string> => {
      let networks = heldByPrefix.get(prefix);
      if (networks === undefined) {
        networks = new Set([...this.#jails.recordedBans(jail)].filter((other) => other.includes(":")).map((other) => this.#target(jail, other, prefix).element));
        heldByPrefix.set(prefix, networks);
      }
      return networks;
    };
    const perSet = new Map<string, Set<string>>();
    for (const [address, item] of unbans) {
      const { set, element } = this.#target(jail, address, item.ipv6Prefix);
      if (element !== address && held(item.ipv6Prefix).has(element)) continue;
      perSet.set(set, (perSet.get(set) ?? new Set()).add(element));
    }
    for (const [set, elements] of perSet) {
      try {
        if (elements.size === 1) for (const element of elements) await this.#ipsets.removeElement(set, element);
        else await this.#ipsets.batchDeleteHere(set, [...elements]);
      } catch (error) {
        if (!(error instanceof ServerError && error.reason === "IPSET_NOT_FOUND")) throw error;
      }
    }
    for (const address of unbans.keys()) {
      if (news.has(address)) this.#events.append({ type: "UNBAN", resource: `jails/${jail}/bans/${address}`, attributes: { jail, address } }, "fail2ban", "fail2ban");
    }
    this.#jails.enforced(jail, "unban", [...unbans.keys()]);
  }

  #target(jail: string, address: string, ipv6Prefix: number): { set: string; element: string } {
    const sets = jailSets(jail);
    if (!address.includes(":")) return { set: sets.ipv4, element: address };
    if (ipv6Prefix >= 128) return { set: sets.ipv6, element: address };
    const base = networkBase(parseAddressStrict(address) as Address, ipv6Prefix);
    return { set: sets.ipv6, element: `${formatAddress(base)}/${ipv6Prefix}` };
  }
}

function canonicalAddress(text: string): string | undefined {
  const parsed = parseAddressStrict(text);
  return "problem" in parsed ? undefined : formatAddress(parsed);
}
