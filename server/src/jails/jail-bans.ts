import { ServerError } from "../errors.js";
import type { KeyedLock } from "../keyed-lock.js";
import { banName } from "../names.js";
import type { ApiCall } from "../events/api-call.js";
import type { EventInput } from "../events/event-model.js";
import type { FleetSharing } from "../fleet/fleet.js";
import type { Fail2banClient } from "../drivers/fail2ban-client.js";
import { number, strings } from "../drivers/parse/fail2ban-replies.js";
import type { JailBanStore } from "../store/jail-ban-store.js";
import type { Allowlist } from "./allowlist.js";
import type { BanExpiry } from "./ban-expiry.js";
import type { EnforcementWaiters, Enforcement } from "./enforcement-waiter.js";
import { protectedBy, TEN_YEARS_SECONDS, validateAddress, validateJailName, validateNote } from "./jail-checks.js";
import type { JailSettings } from "./jail-settings.js";

/** Addresses per `banip` request of a batch: fail2ban answers nothing else while it bans them. */
const BAN_CHUNK = 500;
const MAX_BATCH = 100_000;

/** What BanIp and BatchBanIp may add to a ban. */
export interface BanOptions {
  /** Also ban on every host of the fleet. */
  readonly fleet?: boolean;
  /** Seconds until Portcullis lifts the ban (at most the jail's bantime); unset: the jail's bantime. */
  readonly duration?: number;
  /** Why, for the BAN event. */
  readonly reason?: string;
}

/** Every jail, for bans and unbans that name no single jail. */
export const ALL_JAILS = "-";

/** What the bans ask of the rest of the jail service. */
export interface JailLookup {
  names(): Promise<string[]>;
  /** The running jails a request names: every one for ALL_JAILS, else the one (JAIL_NOT_FOUND if not running). */
  targets(jail: string): Promise<string[]>;
  banned(jail: string): Promise<string[]>;
  settings(jail: string): Promise<JailSettings>;
  usesPortcullisAction(jail: string): Promise<boolean>;
}

/**
 * Bans and unbans asked of fail2ban: checked against the host allowlist and the jails' ignoreip, recorded before
 * fail2ban is asked (so that the Portcullis action, which fail2ban calls meanwhile, knows they are not news), under
 * the jail's ban lock (shared with the BanWatcher's comparison of ban lists), and answered once they are in the kernel.
 * Those of API calls record their BAN and UNBAN events and go to the fleet when asked for or when the jail is shared;
 * the `…Here` ones are Portcullis's own (the fleet applier, the allowlist, jail enforcement record their own events).
 */
export class JailBans {
  readonly #fail2ban: Fail2banClient;
  readonly #bans: JailBanStore;
  readonly #allowlist: Allowlist;
  readonly #lock: KeyedLock;
  readonly #waiters: EnforcementWaiters;
  readonly #jails: JailLookup;
  readonly #fleet: FleetSharing;
  readonly #expiry: BanExpiry;

  constructor(deps: { fail2ban: Fail2banClient; bans: JailBanStore; allowlist: Allowlist; lock: KeyedLock; waiters: EnforcementWaiters; jails: JailLookup; fleet: FleetSharing; expiry: BanExpiry }) {
    this.#fail2ban = deps.fail2ban;
    this.#bans = deps.bans;
    this.#allowlist = deps.allowlist;
    this.#lock = deps.lock;
    this.#waiters = deps.waiters;
    this.#jails = deps.jails;
    this.#fleet = deps.fleet;
    this.#expiry = deps.expiry;
  }

  /**
   * BanIp: a ban in one jail or all (see banHere), a BAN event per jail, shared when `fleet` asks or the jail is. With
   * a duration, Portcullis lifts it when that ends (BanExpiry); without, a duration an earlier ban gave is dropped and
   * the jail's bantime decides.
   */
  async ban(jail: string, rawAddress: string, call: ApiCall, options: BanOptions = {}): Promise<string[]> {
    const { fleet } = options;
    const shared = this.#fleet.scope("jail", jail, fleet);
    const terms = await this.#terms(jail === ALL_JAILS ? await this.#jails.names() : [jail], options);
    const banned = await this.banHere(jail, rawAddress);
    const address = validateAddress(rawAddress);
    for (const name of banned) this.#expiry.set(name, [address], terms.expiresAt);
    if (shared) await this.#fleet.shareBans(await this.#banTimes(banned, options.duration), [address], call);
    for (const name of banned) call.record(banEvent("BAN", name, address, { ...this.#fleet.attributes("jail", name, fleet), ...terms.attributes }));
    return banned;
  }

  /**
   * BatchBanIp (see batchBanHere): a BAN event per new ban. Shared chunk by chunk as this host bans them: the other
   * hosts start at once instead of after the whole batch, and what was banned here before a failure is shared too.
   * Every address goes, not only those new here: another host may not have it yet.
   */
  async batchBan(jail: string, rawAddresses: readonly string[], call: ApiCall, options: BanOptions = {}): Promise<string[]> {
    const { fleet } = options;
    const shared = this.#fleet.scope("jail", jail, fleet);
    const terms = await this.#terms([jail], options);
    // Every address gets the duration, also those banned before (as BanIp does): the batch says how long they last.
    const fresh = await this.batchBanHere(jail, rawAddresses, async (banned) => {
      this.#expiry.set(jail, banned, terms.expiresAt);
      if (shared) await this.#fleet.shareBans(await this.#banTimes([jail], options.duration), banned, call);
    });
    const attributes = { ...this.#fleet.attributes("jail", jail, fleet), ...terms.attributes };
    for (const address of fresh) call.record(banEvent("BAN", jail, address, attributes));
    return fresh;
  }

  /** UnbanIp (see unbanHere): an UNBAN event per jail; a fleet unban goes out even when this host had no such ban. */
  async unban(jail: string, rawAddress: string, call: ApiCall, fleet: boolean | undefined): Promise<string[]> {
    const shared = this.#fleet.scope("jail", jail, fleet);
    let unbanned: string[] = [];
    try {
      unbanned = await this.unbanHere(jail, rawAddress);
    } catch (error) {
      // Other hosts may have it.
      if (!(shared && error instanceof ServerError && error.reason === "BAN_NOT_FOUND")) throw error;
    }
    const address = validateAddress(rawAddress);
    if (shared) await this.#fleet.shareUnbans(jail === ALL_JAILS ? unbanned : [jail], [address], call);
    for (const name of unbanned) call.record(banEvent("UNBAN", name, address, this.#fleet.attributes("jail", name, fleet)));
    return unbanned;
  }

  /** Lifts every ban of every jail (see unbanAllHere), an UNBAN event each; nothing is shared. */
  async unbanAll(call: ApiCall): Promise<Array<{ jail: string; address: string }>> {
    const lifted = await this.#unbanAll();
    for (const { jail, address } of lifted) call.record(banEvent("UNBAN", jail, address, {}));
    return lifted;
  }

  /**
   * Bans in one jail or all; refused before anything changes if the host allowlist or a jail's ignoreip protects the
   * address.
   */
  async banHere(jail: string, rawAddress: string): Promise<string[]> {
    const address = validateAddress(rawAddress);
    const allowed = this.#allowlist.covering(address);
    if (allowed !== undefined) {
      throw new ServerError("ADDRESS_ALLOWLISTED", `${address} is protected by the host allowlist entry ${allowed.network}${allowed.comment === "" ? "" : ` ("${allowed.comment}")`}; remove it from the allowlist to ban it`, { entry: allowed.network, address });
    }
    // A single jail is checked through its (cached) settings: a warm ban costs fail2ban one request, the banip. An
    // unknown jail fails there with JAIL_NOT_FOUND; ignoreip changes made here drop the cache at once.
    const jails = jail === ALL_JAILS ? await this.#jails.names() : [jail];
    for (const name of jails) {
      validateJailName(name);
      const protector = protectedBy(address, (await this.#jails.settings(name)).ignoreIp);
      if (protector !== undefined) {
        throw new ServerError("ADDRESS_IGNORED", `${address} is protected by the ignoreip entry "${protector}" of jail ${name}; remove it from ignoreip to ban it`, { jail: name, entry: protector, address });
      }
    }
    for (const name of jails) {
      await this.#lock.with([name], async () => {
        // Recorded first: the Portcullis action, which fail2ban calls meanwhile, then knows it is not news.
        const recorded = this.#bans.record(name, [address], []).added.length > 0;
        const enforced = await this.#expect(name, "ban", [address]);
        try {
          await enforced.until(number(await this.#fail2ban.send(["set", name, "banip", address])));
        } catch (error) {
          if (recorded) this.#bans.record(name, [], [address]);
          throw error;
        } finally {
          enforced.dispose();
        }
      });
    }
    return jails;
  }

  /**
   * Bans many addresses in one jail, in chunks of BAN_CHUNK (fail2ban answers one request at a time: other calls get
   * their turn between chunks). Checked whole first; returns the addresses that were not banned before.
   * `onChunkBanned` gets each chunk (canonical addresses) once it is enforced, in order (fail2ban may already have the
   * next one); the call returns after the last.
   */
  async batchBanHere(jail: string, rawAddresses: readonly string[], onChunkBanned?: (addresses: readonly string[]) => Promise<void>): Promise<string[]> {
    if (rawAddresses.length > MAX_BATCH) throw new ServerError("BATCH_TOO_LARGE", `at most ${MAX_BATCH} addresses per batch, got ${rawAddresses.length}`, { field: "addresses" });
    const addresses = [...new Set(rawAddresses.map((raw, i) => validateAddress(raw, `addresses[${i}]`)))];
    const [name] = await this.#jails.targets(jail);
    const ignored = strings(await this.#fail2ban.send(["get", name!, "ignoreip"]));
    for (const address of addresses) {
      const allowed = this.#allowlist.covering(address);
      if (allowed !== undefined) throw new ServerError("ADDRESS_ALLOWLISTED", `${address} is protected by the host allowlist entry ${allowed.network}; nothing was banned`, { entry: allowed.network, address });
      const protector = protectedBy(address, ignored);
      if (protector !== undefined) throw new ServerError("ADDRESS_IGNORED", `${address} is protected by the ignoreip entry "${protector}" of jail ${name}; nothing was banned`, { jail: name!, entry: protector, address });
    }
    return this.#lock.with([name!], async () => {
      // Recorded first, like single bans: the Portcullis action, called for each, then knows they are not news.
      const fresh = this.#bans.record(name!, addresses, []).added;
      const freshSet = new Set(fresh);
      // What fail2ban may not have banned after a failure is not recorded as banned.
      const forget = (from: number): void => void this.#bans.record(name!, [], addresses.slice(from).filter((address) => freshSet.has(address)));
      // fail2ban bans the next chunk while the action's report that the previous one is in the kernel is awaited: the
      // two took turns before (fleet jail bans with three hosts on this 2-vCPU machine: 930-1,010/s → 980-1,120/s).
      let previous: { readonly start: number; readonly chunk: readonly string[]; readonly enforced: Promise<void> } | undefined;
      const confirmPrevious = async (): Promise<void> => {
        const done = previous;
        previous = undefined;
        if (done === undefined) return;
        try {
          await done.enforced;
        } catch (error) {
          forget(done.start);
          throw error;
        }
        await onChunkBanned?.(done.chunk);
      };
      for (let start = 0; start < addresses.length; start += BAN_CHUNK) {
        const chunk = addresses.slice(start, start + BAN_CHUNK);
        const enforced = await this.#expect(name!, "ban", chunk);
        let accepted: number;
        try {
          accepted = number(await this.#fail2ban.send(["set", name!, "banip", ...chunk]));
        } catch (error) {
          enforced.dispose();
          await confirmPrevious().catch(() => undefined);
          forget(start);
          throw error;
        }
        const enforcing = enforced.until(accepted).finally(() => enforced.dispose());
        enforcing.catch(() => undefined); // awaited by confirmPrevious
        await confirmPrevious();
        previous = { start, chunk, enforced: enforcing };
      }
      await confirmPrevious();
      return fresh;
    });
  }

  /**
   * Unbans in one jail or all; returns the jails where the address was banned. The unban is recorded before fail2ban
   * is asked, so that the Portcullis action, which fail2ban calls meanwhile, does not report it a second time.
   */
  async unbanHere(jail: string, rawAddress: string): Promise<string[]> {
    const address = validateAddress(rawAddress);
    const unbanned: string[] = [];
    for (const name of await this.#jails.targets(jail)) {
      await this.#lock.with([name], async () => {
        const known = this.#bans.record(name, [], [address]).removed.length > 0;
        const enforced = await this.#expect(name, "unban", [address]);
        let count: number;
        try {
          count = number(await this.#fail2ban.send(["set", name, "unbanip", address]));
          await enforced.until(count);
        } catch (error) {
          if (known) this.#bans.record(name, [address], []);
          throw error;
        } finally {
          enforced.dispose();
        }
        if (count > 0) unbanned.push(name);
      });
    }
    if (jail !== ALL_JAILS && unbanned.length === 0) {
      throw new ServerError("BAN_NOT_FOUND", `${address} is not banned in jail ${jail}`, { jail, address });
    }
    return unbanned;
  }

  /** Lifts every ban of every jail; returns what was banned (read just before, under the one-at-a-time socket). */
  async #unbanAll(): Promise<Array<{ jail: string; address: string }>> {
    const names = await this.#jails.names();
    return this.#lock.with(names, async () => {
      const lifted: Array<{ jail: string; address: string }> = [];
      for (const jail of names) for (const address of await this.#jails.banned(jail)) lifted.push({ jail, address });
      for (const { jail, address } of lifted) this.#bans.record(jail, [], [address]);
      const waiting = await Promise.all(names.map(async (jail) => {
        const addresses = lifted.filter((ban) => ban.jail === jail).map((ban) => ban.address);
        return { waiter: await this.#expect(jail, "unban", addresses), count: addresses.length };
      }));
      try {
        await this.#fail2ban.send(["unban", "--all"]);
        for (const { waiter, count } of waiting) await waiter.until(count);
      } finally {
        for (const { waiter } of waiting) waiter.dispose();
      }
      return lifted;
    });
  }

  /** Each jail with its bantime (or the ban's own duration), as the fleet shares its bans. */
  async #banTimes(jails: readonly string[], duration: number | undefined): Promise<Array<{ jail: string; banTime: number }>> {
    const banTimes: Array<{ jail: string; banTime: number }> = [];
    for (const jail of jails) banTimes.push({ jail, banTime: duration ?? (await this.#jails.settings(jail)).banTime });
    return banTimes;
  }

  /**
   * A ban's duration and reason, checked before anything is banned: when the duration ends, and the BAN event's
   * attributes. fail2ban holds a ban for its jail's bantime whatever Portcullis wants, so a duration longer than the
   * bantime of a jail it bans in is refused (BAN_DURATION_EXCEEDS_BANTIME) rather than silently cut short.
   */
  async #terms(jails: readonly string[], options: BanOptions): Promise<{ expiresAt: number | undefined; attributes: Record<string, string> }> {
    const { duration, reason = "" } = options;
    validateNote(reason, "reason");
    const attributes: Record<string, string> = reason === "" ? {} : { reason };
    if (duration === undefined) return { expiresAt: undefined, attributes };
    if (!Number.isSafeInteger(duration) || duration < 1 || duration > TEN_YEARS_SECONDS) {
      throw new ServerError("INVALID_BAN_DURATION", `duration must be 1 to ${TEN_YEARS_SECONDS} seconds, got ${duration}`, { field: "duration", value: String(duration) });
    }
    for (const jail of jails) {
      validateJailName(jail);
      const { banTime } = await this.#jails.settings(jail);
      if (banTime >= 0 && duration > banTime) {
        throw new ServerError("BAN_DURATION_EXCEEDS_BANTIME", `duration ${duration} s is longer than jail ${jail}'s bantime of ${banTime} s, after which fail2ban would lift the ban; ask for at most ${banTime} s or raise the jail's bantime (UpdateJail)`, { jail, field: "duration", value: String(duration), banTime: String(banTime) });
      }
    }
    const expiresAt = Date.now() + duration * 1000;
    return { expiresAt, attributes: { ...attributes, duration: String(duration), expire_time: new Date(expiresAt).toISOString() } };
  }

  /** For jails with the Portcullis action, a wait for its report of the change (see EnforcementWaiters.expect). */
  async #expect(jail: string, op: "ban" | "unban", addresses: readonly string[]): Promise<Enforcement> {
    return this.#waiters.expect(jail, op, addresses, await this.#jails.usesPortcullisAction(jail));
  }
}

/** A BAN or UNBAN event of `jails/{jail}/bans/{address}`, the address canonical (2001:DB8::0001 → 2001:db8::1). */
function banEvent(type: "BAN" | "UNBAN", jail: string, address: string, shared: Readonly<Record<string, string>>): EventInput {
  return { type, resource: banName(jail, address), attributes: { jail, address, ...shared } };
}
