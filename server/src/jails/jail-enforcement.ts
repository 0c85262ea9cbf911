import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import { formatAddress, networkBase, parseAddressStrict, type Address } from "../addresses.js";
import type { EventLog } from "../events/event-log.js";
import type { IpsetService } from "../ipsets/ipset-service.js";
import type { FirewallService } from "../firewall/firewall-service.js";
import type { Family } from "../firewall/rule-model.js";
import { KeyedLock } from "../keyed-lock.js";
import type { Allowlist } from "./allowlist.js";
import type { JailService } from "./jail-service.js";

/** ipset's longest timeout, in seconds. */
const MAX_SET_TIMEOUT = 2_147_483;
/** Jail sets hold up to this many entries (fail2ban's stock ipset action keeps ipset's default, 65,536). */
const SET_MAXELEM = 1_000_000;
const SET_NAME_MAX = 31;

/** What the Portcullis action reports for a ban (see fail2ban/action.d/portcullis.py). */
export interface ActionBan {
  readonly jail: string;
  readonly ip: string;
  /** Seconds; -1 for ever. */
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
          await this.#ipsets.create({ name, typeName: "hash:net", family: family === "ipv4" ? "inet" : "inet6", maxelem: SET_MAXELEM, timeout: 0, comments: false });
        } else {
          if (!existing.managed) await this.#ipsets.adopt(name);
          if (existing.definition.typeName !== "hash:net" || existing.definition.timeout === undefined) {
            throw new ServerError("INVALID_IPSET_TYPE", `set ${name} exists as ${existing.definition.typeName}${existing.definition.timeout === undefined ? " without timeout support" : ""}; jail ${jail} needs hash:net with timeout: delete the set`, { ipset: name });
          }
        }
        await this.#firewall.ensureRule(family, "filter", "INPUT", { matchSet: { set: name, directions: ["src"], negate: false }, target: { kind: "DROP" } }, 1);
      }
      this.#ready.add(jail);
    });
  }

  /** A ban fail2ban made (a detection, or the effect of a BanIp): into the jail's set, then reported if news. */
  async ban(request: ActionBan): Promise<void> {
    const { jail } = request;
    const address = canonicalAddress(request.ip);
    await this.start(jail);
    const allowed = this.#allowlist.covering(address);
    if (allowed !== undefined) {
      this.#log.warn({ jail, address, entry: allowed.network }, "fail2ban banned an allowlisted address; lifting the ban");
      // fail2ban is busy with this very ban until we answer: the unban queues behind it.
      setImmediate(() => void this.#jails.unban(jail, address).catch((error: unknown) => this.#log.warn({ err: error, jail, address }, "lifting the ban failed")));
      throw new ServerError("ADDRESS_ALLOWLISTED", `${address} is protected by the host allowlist entry ${allowed.network}`, { entry: allowed.network, address });
    }
    const { set, element } = this.#target(jail, address, request.ipv6Prefix);
    const timeout = request.bantime < 0 ? 0 : Math.min(MAX_SET_TIMEOUT, Math.max(1, Math.ceil(request.bantime)));
    // Recorded first, so that the watcher (which compares fail2ban's lists meanwhile) never reports it as well.
    const news = this.#jails.noteBan(jail, address, true);
    try {
      await this.#ipsets.addEntry(set, { element, timeout });
    } catch (error) {
      if (news) this.#jails.noteBan(jail, address, false);
      throw error;
    }
    if (news) {
      this.#events.append({
        type: "BAN",
        resource: `jails/${jail}/bans/${address}`,
        attributes: { jail, address, bantime: String(request.bantime), failures: String(request.failures), ...(element === address ? {} : { network: element }) },
      }, "fail2ban", "fail2ban");
    }
  }

  /** An unban fail2ban made (expiry, UnbanIp, a stopping jail): out of the set, then reported if news. */
  async unban(request: Omit<ActionBan, "bantime" | "failures">): Promise<void> {
    const { jail } = request;
    const address = canonicalAddress(request.ip);
    const { set, element } = this.#target(jail, address, request.ipv6Prefix);
    const news = this.#jails.noteBan(jail, address, false);
    // An IPv6 network stays while another banned address of the jail is in it.
    const shared = element !== address && [...this.#jails.recordedBans(jail)].some((other) => other.includes(":") && this.#target(jail, other, request.ipv6Prefix).element === element);
    if (!shared) {
      try {
        await this.#ipsets.removeElement(set, element);
      } catch (error) {
        if (!(error instanceof ServerError && error.reason === "IPSET_NOT_FOUND")) throw error;
      }
    }
    if (news) this.#events.append({ type: "UNBAN", resource: `jails/${jail}/bans/${address}`, attributes: { jail, address } }, "fail2ban", "fail2ban");
  }

  #target(jail: string, address: string, ipv6Prefix: number): { set: string; element: string } {
    const sets = jailSets(jail);
    if (!address.includes(":")) return { set: sets.ipv4, element: address };
    if (ipv6Prefix >= 128) return { set: sets.ipv6, element: address };
    const base = networkBase(parseAddressStrict(address) as Address, ipv6Prefix);
    return { set: sets.ipv6, element: `${formatAddress(base)}/${ipv6Prefix}` };
  }
}

function canonicalAddress(text: string): string {
  const parsed = parseAddressStrict(text);
  if ("problem" in parsed) throw new ServerError("INVALID_ELEMENT", `address "${text.slice(0, 100)}": ${parsed.problem}`, { field: "ip", value: text.slice(0, 100) });
  return formatAddress(parsed);
}
