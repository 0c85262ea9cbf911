import { ServerError } from "../errors.js";
import { canonicalNetwork, formatAddress, overlaps, parseAddressStrict, parseNetworkCanonical } from "../addresses.js";
import type { Fail2banClient } from "../drivers/fail2ban-client.js";
import type { Fail2banCli } from "../drivers/fail2ban-cli.js";
import {
  INCREMENT_OPTIONS,
  number,
  parseBannedList,
  parseBansWithTime,
  parseBanTimeIncrement,
  parseJailList,
  parseJailStatus,
  strings,
  type BanTimeIncrement,
  type BanWithTime,
  type JailStatus,
} from "../drivers/parse/fail2ban-replies.js";
import type { JailBanStore } from "../store/jail-ban-store.js";
import { JailDropIn, TUNING_KEYS, type JailTuning, type TuningKey } from "./jail-drop-in.js";
import { KeyedLock } from "../keyed-lock.js";
import type { Allowlist } from "./allowlist.js";
import { JAIL_NAME } from "../names.js";

/** A jail's settings (what `fail2ban-client get <jail> …` reads). */
export interface JailSettings {
  readonly maxRetry: number;
  readonly findTime: number;
  readonly banTime: number;
  readonly ignoreIp: string[];
  readonly actions: string[];
  readonly increment: BanTimeIncrement;
}

/** What UpdateJail changes: the settings given; `increment`, when given, replaces the whole bantime.increment set. */
export interface JailUpdate {
  readonly maxRetry?: number;
  readonly findTime?: number;
  readonly banTime?: number;
  readonly increment?: Omit<BanTimeIncrement, "formula">;
}

/** A jail as clients see it: what `fail2ban-client status <jail>` shows plus its settings and each ban's times. */
export interface JailView extends JailStatus, JailSettings {
  readonly name: string;
  /** The banned addresses, soonest to end first. */
  readonly banned: string[];
  /** Each ban's times, when asked for (see get). */
  readonly bans: BanWithTime[];
}

const SETTINGS_TTL_MS = 5000;
/** Addresses per `banip` request of a batch: fail2ban answers nothing else while it bans them. */
const BAN_CHUNK = 500;
const MAX_BATCH = 100_000;
/** GetJail reuses a ban list read at the same counters for at most this long (a safety net, like FULL_LOOK_EVERY). */
const LIST_REUSE_MS = 10_000;
/** The watcher reads a jail's whole ban list at least every this many looks, even when its counters did not move. */
const FULL_LOOK_EVERY = 20;

/** The name fail2ban gives the Portcullis action (action.d/portcullis.py). */
export const PORTCULLIS_ACTION = "portcullis";

/** Every jail, for bans and unbans that name no single jail. */
export const ALL_JAILS = "-";


/**
 * The jail domain over fail2ban's socket. Only validated strings it built itself go to fail2ban (which unpickles
 * whatever arrives): jail names match a strict pattern and addresses are parsed and printed canonically.
 */
export class JailService {
  readonly #fail2ban: Fail2banClient;
  readonly #bans: JailBanStore;
  readonly #settingsCache = new Map<string, { settings: JailSettings; at: number }>();
  /** Bumped whenever a jail's settings change here: a read that was under way meanwhile must not be cached. */
  #settingsEpoch = 0;
  /** Per jail: API bans/unbans and the watcher's comparison of ban lists never interleave. */
  readonly #banLock = new KeyedLock();
  /** API calls waiting for the Portcullis action to put their bans or unbans into the kernel. */
  readonly #waiters = new Set<EnforcementWaiter>();
  /** Each jail's ban counters at the watcher's last look at its list, and whether that look left something to settle. */
  readonly #lastLook = new Map<string, { counters: string; unsettled: boolean; version: number; looks: number }>();
  /** Each jail's ban list at the watcher's last look. */
  readonly #lastSeen = new Map<string, Set<string>>();
  /** Each jail's ban list as GetJail last read it, with the counters and connection it was read at. */
  readonly #lastList = new Map<string, { counters: string; connection: number; at: number; banned: string[] }>();
  readonly #configDir: string;
  readonly #cli: Fail2banCli;
  readonly #allowlist: Allowlist;

  /**
   * `bans`: where bans made here are noted, so that the BanWatcher does not report them a second time. `configDir`:
   * fail2ban's configuration directory, where UpdateJail keeps its drop-ins. `allowlist`: the host allowlist, which
   * BanIp honours.
   */
  constructor(deps: { fail2ban: Fail2banClient; bans: JailBanStore; configDir: string; cli: Fail2banCli; allowlist: Allowlist }) {
    this.#fail2ban = deps.fail2ban;
    this.#bans = deps.bans;
    this.#configDir = deps.configDir;
    this.#cli = deps.cli;
    this.#allowlist = deps.allowlist;
  }

  /**
   * Compares a jail's ban list with the one last seen and records the difference: the bans and unbans fail2ban made
   * by itself (or that happened while Portcullis was down). Under the jail's ban lock, so that a ban made through the
   * API between reading the list and the record is never mistaken for one of fail2ban's (or for an unban); and
   * dropped when the Portcullis action recorded a change meanwhile (it reports without the lock: fail2ban calls it
   * while the API waits for fail2ban under the lock), to be looked at again next time.
   */
  async observeBans(jail: string): Promise<{ added: string[]; removed: string[] }> {
    // With the Portcullis action the action reports each change as it happens; a difference seen here may be one whose
    // report is on its way (fail2ban lists a ban a moment before it calls the action), so it counts only when the
    // previous look saw it too: what is left is what happened while Portcullis was down.
    const settle = await this.usesPortcullisAction(jail);
    return this.#banLock.with([jail], async () => {
      const version = this.#bans.version(jail);
      // Counters first: `status <jail> short` is one cheap round trip, while the list (≈ 10 ms for 10k bans, during
      // which fail2ban answers nobody else) is read only when they moved, when the last look left something to
      // settle or our record changed since, and at least every FULL_LOOK_EVERY looks.
      const status = parseJailStatus(await this.#fail2ban.send(["status", jail, "short"]));
      const counters = `${status.currentlyBanned}/${status.totalBanned}`;
      const last = this.#lastLook.get(jail);
      if (last !== undefined && last.counters === counters && !last.unsettled && last.version === version && last.looks < FULL_LOOK_EVERY) {
        last.looks++;
        return { added: [], removed: [] };
      }
      const now = new Set(await this.banned(jail));
      const previous = this.#lastSeen.get(jail);
      this.#lastSeen.set(jail, now);
      if (this.#bans.version(jail) !== version) {
        this.#lastLook.delete(jail);
        return { added: [], removed: [] };
      }
      const before = this.#bans.addresses(jail);
      const differ = { added: [...now].filter((address) => !before.has(address)), removed: [...before].filter((address) => !now.has(address)) };
      const taken = !settle ? differ : {
        added: differ.added.filter((address) => previous?.has(address) === true),
        removed: differ.removed.filter((address) => previous?.has(address) === false),
      };
      const recorded = this.#bans.record(jail, taken.added, taken.removed);
      const unsettled = taken.added.length !== differ.added.length || taken.removed.length !== differ.removed.length;
      this.#lastLook.set(jail, { counters, unsettled, version: this.#bans.version(jail), looks: 0 });
      return recorded;
    });
  }

  /** A jail's bantime in seconds (-1 for ever), from its cached settings. */
  async banTime(jail: string): Promise<number> {
    validateJailName(jail);
    return (await this.#settings(jail)).banTime;
  }

  /** Whether the jail bans through the Portcullis action (its settings, cached for a few seconds). */
  async usesPortcullisAction(jail: string): Promise<boolean> {
    return (await this.#settings(jail)).actions.includes(PORTCULLIS_ACTION);
  }

  /**
   * Records bans or unbans the Portcullis action reported (fail2ban's own decisions, or the effect of API calls that
   * recorded them first); returns the addresses for which it is news, i.e. an event to report.
   */
  noteBans(jail: string, addresses: readonly string[], banned: boolean): string[] {
    const changed = this.#bans.record(jail, banned ? addresses : [], banned ? [] : addresses);
    return banned ? changed.added : changed.removed;
  }

  /** The Portcullis action's changes are in the kernel: API calls waiting for them may answer. */
  enforced(jail: string, op: "ban" | "unban", addresses: readonly string[]): void {
    for (const waiter of this.#waiters) if (waiter.jail === jail && waiter.op === op) waiter.saw(addresses);
  }

  /** The addresses of a jail's bans as last recorded. */
  recordedBans(jail: string): Set<string> {
    return this.#bans.addresses(jail);
  }

  /** A jail's counters and log files as `status <jail> short` gives them (one cheap round trip). */
  async counters(name: string): Promise<JailStatus> {
    validateJailName(name);
    return parseJailStatus(await this.#fail2ban.send(["status", name, "short"]));
  }

  /** How many bans are recorded in every jail (as last seen: what the overview shows while fail2ban is down). */
  recordedBanCount(): number {
    return this.#bans.count();
  }

  /**
   * The jails that ban an address (as recorded: the watcher and the Portcullis action keep the record in step with
   * fail2ban), each with its ban's start and length as fail2ban reports them (undefined when it does not answer).
   */
  async bansOf(rawAddress: string): Promise<Array<{ jail: string; since: number; ban?: BanWithTime }>> {
    const address = validateAddress(rawAddress);
    const bans: Array<{ jail: string; since: number; ban?: BanWithTime }> = [];
    for (const { jail, since } of this.#bans.banning(address)) {
      let ban: BanWithTime | undefined;
      try {
        ban = parseBansWithTime(await this.#fail2ban.send(["get", jail, "banip", "--with-time"])).find((candidate) => candidate.address === address);
      } catch (error) {
        if (!(error instanceof ServerError)) throw error;
      }
      bans.push({ jail, since, ...(ban === undefined ? {} : { ban }) });
    }
    return bans;
  }

  /** The addresses a jail bans now. */
  async banned(jail: string): Promise<string[]> {
    validateJailName(jail);
    return strings(await this.#fail2ban.send(["get", jail, "banip"]));
  }

  async names(): Promise<string[]> {
    return parseJailList(await this.#fail2ban.send(["status"]));
  }

  async list(): Promise<JailView[]> {
    const views: JailView[] = [];
    for (const name of await this.names()) views.push(await this.get(name));
    return views;
  }

  /**
   * A jail as `status <jail>` shows it, with its settings. `withBanTimes` adds each ban's times: the short status
   * then leaves out the ban list, which comes with its times from a second request (fail2ban formats two times per
   * ban for it, so it is only asked for when wanted).
   */
  async get(name: string, withBanTimes = false): Promise<JailView> {
    validateJailName(name);
    if (!withBanTimes) {
      // `status short` is one cheap round trip; the list costs fail2ban building and pickling it (≈ 1 ms for 1k bans,
      // during which it answers nobody else), so it is read only when neither source below can vouch for it.
      const status = parseJailStatus(await this.#fail2ban.send(["status", name, "short"]));
      const known = await this.#knownBans(name, status);
      if (known !== undefined) return { name, ...status, banned: known, bans: [], ...(await this.#settings(name)) };
      const connection = this.#fail2ban.connections;
      const reply = await this.#fail2ban.send(["status", name]);
      const fresh = parseJailStatus(reply);
      const banned = parseBannedList(reply);
      this.#lastList.set(name, { counters: `${fresh.currentlyBanned}/${fresh.totalBanned}`, connection, at: Date.now(), banned });
      return { name, ...fresh, banned, bans: [], ...(await this.#settings(name)) };
    }
    const status = parseJailStatus(await this.#fail2ban.send(["status", name, "short"]));
    const bans = parseBansWithTime(await this.#fail2ban.send(["get", name, "banip", "--with-time"]));
    return { name, ...status, banned: bans.map((ban) => ban.address), bans, ...(await this.#settings(name)) };
  }

  /**
   * A jail's ban list without asking fail2ban for it, when it is known for these counters: with the Portcullis action,
   * Portcullis's record of the bans it put into the kernel (when the count agrees); otherwise the list GetJail last
   * read, if the counters have not moved since on the same connection — every ban moves "total banned" and every
   * unban "currently banned", and a restarted fail2ban is a new connection.
   */
  async #knownBans(name: string, status: { currentlyBanned: number; totalBanned: number }): Promise<string[] | undefined> {
    if (await this.usesPortcullisAction(name)) {
      const recorded = this.#bans.list(name);
      if (recorded.length === status.currentlyBanned) return recorded;
    }
    const last = this.#lastList.get(name);
    const fresh = last !== undefined && last.counters === `${status.currentlyBanned}/${status.totalBanned}` && last.connection === this.#fail2ban.connections && Date.now() - last.at < LIST_REUSE_MS;
    return fresh ? last.banned : undefined;
  }

  /** Drops one jail's cached settings (or every jail's) after a change made here. */
  #forgetSettings(jail?: string): void {
    this.#settingsEpoch++;
    if (jail === undefined) this.#settingsCache.clear();
    else this.#settingsCache.delete(jail);
  }

  /**
   * A jail's settings, read with five round trips to a server that answers one request at a time, so they are kept
   * for SETTINGS_TTL_MS: status stays one round trip. Changes made here drop the cached copy at once; changes made
   * behind Portcullis's back (fail2ban-client, a reload) show within the TTL.
   */
  async #settings(name: string): Promise<JailSettings> {
    const cached = this.#settingsCache.get(name);
    if (cached !== undefined && Date.now() - cached.at < SETTINGS_TTL_MS) return cached.settings;
    const epoch = this.#settingsEpoch;
    const get = (key: string) => this.#fail2ban.send(["get", name, key]);
    const settings: JailSettings = {
      maxRetry: number(await get("maxretry")),
      findTime: number(await get("findtime")),
      banTime: number(await get("bantime")),
      ignoreIp: strings(await get("ignoreip")),
      actions: strings(await get("actions")),
      increment: parseBanTimeIncrement(await sequence(INCREMENT_OPTIONS.map((option) => () => get(`bantime.${option}`)))),
    };
    // A read that started before a change (an ignoreip added meanwhile) would put the old settings back for the TTL.
    if (this.#settingsEpoch === epoch) this.#settingsCache.set(name, { settings, at: Date.now() });
    return settings;
  }

  /**
   * Bans in one jail or all; refused before anything changes if the host allowlist or a jail's ignoreip protects the
   * address.
   */
  async ban(jail: string, rawAddress: string): Promise<string[]> {
    const address = validateAddress(rawAddress);
    const allowed = this.#allowlist.covering(address);
    if (allowed !== undefined) {
      throw new ServerError("ADDRESS_ALLOWLISTED", `${address} is protected by the host allowlist entry ${allowed.network}${allowed.comment === "" ? "" : ` ("${allowed.comment}")`}; remove it from the allowlist to ban it`, { entry: allowed.network, address });
    }
    // A single jail is checked through its (cached) settings: a warm ban costs fail2ban one request, the banip. An
    // unknown jail fails there with JAIL_NOT_FOUND; ignoreip changes made here drop the cache at once.
    const jails = jail === ALL_JAILS ? await this.names() : [jail];
    for (const name of jails) {
      validateJailName(name);
      const protector = protectedBy(address, (await this.#settings(name)).ignoreIp);
      if (protector !== undefined) {
        throw new ServerError("ADDRESS_IGNORED", `${address} is protected by the ignoreip entry "${protector}" of jail ${name}; remove it from ignoreip to ban it`, { jail: name, entry: protector, address });
      }
    }
    for (const name of jails) {
      await this.#banLock.with([name], async () => {
        // Recorded first: the Portcullis action, which fail2ban calls meanwhile, then knows it is not news.
        const recorded = this.#bans.record(name, [address], []).added.length > 0;
        const enforced = await this.#expectEnforcement(name, "ban", [address]);
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
  async batchBan(jail: string, rawAddresses: readonly string[], onChunkBanned?: (addresses: readonly string[]) => Promise<void>): Promise<string[]> {
    if (rawAddresses.length > MAX_BATCH) throw new ServerError("BATCH_TOO_LARGE", `at most ${MAX_BATCH} addresses per batch, got ${rawAddresses.length}`, { field: "addresses" });
    const addresses = [...new Set(rawAddresses.map((raw, i) => validateAddress(raw, `addresses[${i}]`)))];
    const [name] = await this.#targets(jail);
    const ignored = strings(await this.#fail2ban.send(["get", name!, "ignoreip"]));
    for (const address of addresses) {
      const allowed = this.#allowlist.covering(address);
      if (allowed !== undefined) throw new ServerError("ADDRESS_ALLOWLISTED", `${address} is protected by the host allowlist entry ${allowed.network}; nothing was banned`, { entry: allowed.network, address });
      const protector = protectedBy(address, ignored);
      if (protector !== undefined) throw new ServerError("ADDRESS_IGNORED", `${address} is protected by the ignoreip entry "${protector}" of jail ${name}; nothing was banned`, { jail: name!, entry: protector, address });
    }
    return this.#banLock.with([name!], async () => {
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
        const enforced = await this.#expectEnforcement(name!, "ban", chunk);
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
  async unban(jail: string, rawAddress: string): Promise<string[]> {
    const address = validateAddress(rawAddress);
    const unbanned: string[] = [];
    for (const name of await this.#targets(jail)) {
      await this.#banLock.with([name], async () => {
        const known = this.#bans.record(name, [], [address]).removed.length > 0;
        const enforced = await this.#expectEnforcement(name, "unban", [address]);
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
  async unbanAll(): Promise<Array<{ jail: string; address: string }>> {
    const names = await this.names();
    return this.#banLock.with(names, async () => {
      const lifted: Array<{ jail: string; address: string }> = [];
      for (const jail of names) for (const address of await this.banned(jail)) lifted.push({ jail, address });
      for (const { jail, address } of lifted) this.#bans.record(jail, [], [address]);
      const waiting = await Promise.all(names.map(async (jail) => {
        const addresses = lifted.filter((ban) => ban.jail === jail).map((ban) => ban.address);
        return { waiter: await this.#expectEnforcement(jail, "unban", addresses), count: addresses.length };
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

  /** Counts a failed login like a log line would; `maxretry` of them within `findtime` ban the address. */
  async reportFailure(jail: string, rawAddress: string, message: string): Promise<void> {
    const address = validateAddress(rawAddress);
    const [name] = await this.#targets(jail);
    if (message.length > 200 || /[\u0000-\u001f]/.test(message)) {
      throw new ServerError("INVALID_COMMENT", "message must be at most 200 characters without control characters", { field: "message" });
    }
    await this.#fail2ban.send(["set", name!, "attempt", address, ...(message === "" ? [] : [message])]);
  }

  /** Whether fail2ban answers. */
  async reachable(): Promise<boolean> {
    return (await this.status()).up;
  }

  /** A jail's ignoreip as fail2ban lists it. */
  async ignoreList(jail: string): Promise<string[]> {
    validateJailName(jail);
    return strings(await this.#fail2ban.send(["get", jail, "ignoreip"]));
  }

  /** Adds a canonical address or network to a jail's ignoreip. */
  async addIgnore(jail: string, network: string): Promise<void> {
    validateJailName(jail);
    await this.#fail2ban.send(["set", jail, "addignoreip", canonicalNetwork(network, "entry")]);
    this.#forgetSettings(jail);
  }

  /** Takes a canonical address or network out of a jail's ignoreip. */
  async removeIgnore(jail: string, network: string): Promise<void> {
    validateJailName(jail);
    await this.#fail2ban.send(["set", jail, "delignoreip", canonicalNetwork(network, "entry")]);
    this.#forgetSettings(jail);
  }

  async addIgnoreIp(jail: string, entry: string): Promise<JailView> {
    const [name] = await this.#targets(jail);
    await this.#fail2ban.send(["set", name!, "addignoreip", canonicalNetwork(entry, "entry")]);
    this.#forgetSettings(name!);
    return this.get(name!);
  }

  async removeIgnoreIp(jail: string, entry: string): Promise<JailView> {
    const [name] = await this.#targets(jail);
    const current = strings(await this.#fail2ban.send(["get", name!, "ignoreip"]));
    // As written first (fail2ban's own config may hold host names), else in the canonical form AddIgnoreIp stores.
    const canonical = canonicalOrUndefined(entry);
    const listed = current.includes(entry) ? entry : current.find((item) => item === canonical);
    if (listed === undefined) {
      throw new ServerError("ENTRY_NOT_FOUND", `"${entry.slice(0, 100)}" is not in the ignoreip of jail ${name}; it has ${current.join(", ") || "nothing"}`, { jail: name!, entry: entry.slice(0, 100) });
    }
    await this.#fail2ban.send(["set", name!, "delignoreip", listed]);
    this.#forgetSettings(name!);
    return this.get(name!);
  }

  /**
   * Changes maxretry, findtime, bantime and/or the bantime.increment options: first in the jail's drop-in (so that
   * nothing the running server has is missing from the file), then in the running server; if fail2ban refuses, both
   * go back to what they were.
   */
  async update(jail: string, changes: JailUpdate): Promise<JailView> {
    const [name] = await this.#targets(jail);
    const given = tuningOf(changes);
    if (Object.keys(given).length === 0) {
      throw new ServerError("NOTHING_TO_UPDATE", "give at least one of max_retry, find_time, ban_time, ban_time_increment", { field: "max_retry" });
    }
    if (changes.increment?.enabled === true && (await this.#fail2ban.send(["get", "dbfile"])) === null) {
      throw new ServerError("FAIL2BAN_NO_DATABASE", "bantime.increment needs fail2ban's database to remember earlier bans, and this fail2ban-server runs without one (set dbfile in fail2ban.local)", { field: "ban_time_increment" });
    }
    const dropIn = new JailDropIn(this.#configDir, name!);
    const previousFile = dropIn.read();
    // What the running server has for each option changed, as text it takes back if a later option is refused.
    const running: JailTuning = {};
    for (const key of TUNING_KEYS) {
      if (!(key in given)) continue;
      const value = await this.#fail2ban.send(["get", name!, key]);
      running[key] = value === null ? "" : String(value);
    }
    try {
      dropIn.write(withoutNulls({ ...previousFile, ...given }));
    } catch (error) {
      throw new ServerError("CONFIG_WRITE_FAILED", `cannot write ${dropIn.path}: ${(error as Error).message}`, { path: dropIn.path });
    }
    const applied: TuningKey[] = [];
    try {
      for (const key of TUNING_KEYS) {
        if (!(key in given)) continue;
        await this.#fail2ban.send(["set", name!, key, given[key] ?? ""]);
        applied.push(key);
      }
    } catch (error) {
      for (const key of applied) await this.#fail2ban.send(["set", name!, key, running[key] ?? ""]).catch(() => undefined);
      dropIn.write(previousFile);
      throw error;
    } finally {
      this.#forgetSettings(name!);
    }
    return this.get(name!);
  }

  /** Stops a running jail; its actions lift its bans. */
  async stop(jail: string): Promise<void> {
    const [name] = await this.#targets(jail);
    await this.#fail2ban.send(["stop", name!]);
    this.#forgetSettings(name!);
  }

  /** Starts a configured jail that is not running, through fail2ban-client (which reads the configuration). */
  async start(jail: string): Promise<JailView> {
    validateJailName(jail);
    if ((await this.names()).includes(jail)) throw new ServerError("JAIL_RUNNING", `jail ${jail} is running already; stop it first or reload it`, { jail });
    // `start <jail>` only starts jails the server knows; a reload with --if-exists adds a stopped jail back.
    await this.#cli.run(["reload", "--if-exists", jail]);
    this.#forgetSettings(jail);
    return this.get(jail);
  }

  /** Reloads fail2ban's configuration for one jail or all; returns the jails running afterwards. */
  async reload(jail: string): Promise<string[]> {
    if (jail !== ALL_JAILS) await this.#targets(jail);
    await this.#cli.run(["reload", ...(jail === ALL_JAILS ? [] : [jail])]);
    this.#forgetSettings();
    return this.names();
  }

  /** Whether fail2ban answers, its version and jail count; never throws for a server that is down. */
  async status(): Promise<{ up: boolean; version: string; jailCount: number }> {
    try {
      const version = String(await this.#fail2ban.send(["version"]));
      return { up: true, version, jailCount: (await this.names()).length };
    } catch (error) {
      if (error instanceof ServerError && error.reason === "FAIL2BAN_UNAVAILABLE") return { up: false, version: "", jailCount: 0 };
      throw error;
    }
  }

  /**
   * For jails with the Portcullis action (which applies fail2ban's changes after fail2ban has answered): a waiter for
   * the action's report that these addresses' bans or unbans are in the kernel. Set up before fail2ban is asked, so
   * that a report arriving before fail2ban's answer is not missed; `until(count)` then waits for `count` of them (what
   * fail2ban says it changed). For other jails the change is in the kernel once fail2ban answers.
   */
  async #expectEnforcement(jail: string, op: "ban" | "unban", addresses: readonly string[]): Promise<{ until(count: number): Promise<void>; dispose(): void }> {
    if (!(await this.usesPortcullisAction(jail))) return { until: async () => undefined, dispose: () => undefined };
    const waiter = new EnforcementWaiter(jail, op, addresses);
    this.#waiters.add(waiter);
    return { until: (count) => waiter.until(count), dispose: () => this.#waiters.delete(waiter) };
  }

  async #targets(jail: string): Promise<string[]> {
    if (jail === ALL_JAILS) return this.names();
    validateJailName(jail);
    const names = await this.names();
    if (!names.includes(jail)) throw new ServerError("JAIL_NOT_FOUND", `there is no jail ${jail}; fail2ban has ${names.join(", ") || "none"}`, { jail });
    return [jail];
  }
}

function validateJailName(name: string): void {
  if (!JAIL_NAME.test(name)) throw new ServerError("INVALID_RESOURCE_NAME", `"${name.slice(0, 70)}" is not a jail name (letters, digits, _ . @ -)`, { field: "jail", value: name.slice(0, 70) });
}

function validateAddress(raw: string, field = "address"): string {
  const parsed = parseAddressStrict(raw);
  if ("problem" in parsed) throw new ServerError("INVALID_ELEMENT", `${field} "${raw.slice(0, 100)}": ${parsed.problem}`, { field, value: raw.slice(0, 100) });
  return formatAddress(parsed);
}

/** The ignoreip entries (addresses or networks) that cover an address; host names there are skipped. */
export function ignoreIpCovering(address: string, entries: readonly string[]): string[] {
  const target = parseNetworkCanonical(address);
  return entries.filter((entry) => overlaps(parseNetworkCanonical(entry), target));
}

/** The first ignoreip entry that covers the address, if any. */
function protectedBy(address: string, entries: readonly string[]): string | undefined {
  return ignoreIpCovering(address, entries)[0];
}

/** Runs the calls one after the other (fail2ban answers one request at a time anyway). */
async function sequence<T>(calls: ReadonlyArray<() => Promise<T>>): Promise<T[]> {
  const results: T[] = [];
  for (const call of calls) results.push(await call());
  return results;
}

function withoutNulls(tuning: JailTuning): JailTuning {
  return Object.fromEntries(Object.entries(tuning).filter(([, value]) => value !== null));
}

const LIMITS = {
  maxRetry: { field: "max_retry", min: 1, max: 1000 },
  findTime: { field: "find_time", min: 1, max: 31_536_000 },
  banTime: { field: "ban_time", min: 1, max: 315_360_000, forever: -1 },
  maxTime: { field: "ban_time_increment.max_time", min: 1, max: 315_360_000 },
  randomTime: { field: "ban_time_increment.random_time", min: 1, max: 86_400 },
  multiplier: { field: "ban_time_increment.multipliers", min: 1, max: 100_000 },
} as const;
const MAX_MULTIPLIERS = 20;

/** A whole number in range (or the "for ever" value) as text; 0 means unset where `unset` allows it. */
function checked(value: number, limit: { field: string; min: number; max: number; forever?: number }, unset = false): string | null {
  if (unset && value === 0) return null;
  if (!Number.isInteger(value) || ((value < limit.min || value > limit.max) && value !== limit.forever)) {
    throw new ServerError("INVALID_SETTING", `${limit.field} must be a whole number from ${limit.min} to ${limit.max}${limit.forever === undefined ? "" : ` (or ${limit.forever} for ever)`}${unset ? " (or 0 for unset)" : ""}, got ${value}`, { field: limit.field, value: String(value) });
  }
  return String(value);
}

/**
 * The given settings as the option values fail2ban takes, each checked. bantime.factor is evaluated by fail2ban as
 * Python, so only a plain decimal number in range ever goes there.
 */
function tuningOf(update: JailUpdate): JailTuning {
  const tuning: JailTuning = {};
  if (update.maxRetry !== undefined) tuning.maxretry = checked(update.maxRetry, LIMITS.maxRetry);
  if (update.findTime !== undefined) tuning.findtime = checked(update.findTime, LIMITS.findTime);
  if (update.banTime !== undefined) tuning.bantime = checked(update.banTime, LIMITS.banTime);
  const increment = update.increment;
  if (increment !== undefined) {
    const { factor, multipliers } = increment;
    if (!Number.isFinite(factor) || (factor !== 0 && (factor < 0.001 || factor > 1000))) {
      throw new ServerError("INVALID_SETTING", `ban_time_increment.factor must be from 0.001 to 1000 (or 0 for unset), got ${factor}`, { field: "ban_time_increment.factor", value: String(factor) });
    }
    if (multipliers.length > MAX_MULTIPLIERS) {
      throw new ServerError("INVALID_SETTING", `ban_time_increment.multipliers takes at most ${MAX_MULTIPLIERS} values, got ${multipliers.length}`, { field: "ban_time_increment.multipliers" });
    }
    tuning["bantime.increment"] = increment.enabled ? "true" : "false";
    tuning["bantime.factor"] = factor === 0 ? null : String(Number(factor.toFixed(3)));
    tuning["bantime.maxtime"] = checked(increment.maxTime, LIMITS.maxTime, true);
    tuning["bantime.rndtime"] = checked(increment.randomTime, LIMITS.randomTime, true);
    tuning["bantime.multipliers"] = multipliers.length === 0 ? null : multipliers.map((value) => checked(value, LIMITS.multiplier)).join(" ");
    // fail2ban tests the text it is given for truth ("false" would count): off is the option removed.
    tuning["bantime.overalljails"] = increment.overallJails ? "true" : null;
  }
  return tuning;
}

/** How long an API call waits for the Portcullis action to report its change in the kernel. */
const ENFORCEMENT_TIMEOUT_MS = 10_000;

/** Counts the action's reports for a set of addresses until as many as fail2ban changed have come. */
class EnforcementWaiter {
  readonly jail: string;
  readonly op: "ban" | "unban";
  readonly #pending: Set<string>;
  #seen = 0;
  #needed = Infinity;
  #wake: (() => void) | undefined;

  constructor(jail: string, op: "ban" | "unban", addresses: readonly string[]) {
    this.jail = jail;
    this.op = op;
    this.#pending = new Set(addresses);
  }

  saw(addresses: readonly string[]): void {
    for (const address of addresses) if (this.#pending.delete(address)) this.#seen++;
    if (this.#seen >= this.#needed) this.#wake?.();
  }

  async until(count: number): Promise<void> {
    this.#needed = count;
    if (this.#seen >= count) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        this.#wake = resolve;
        timer = setTimeout(() => reject(new ServerError("ACTION_TIMEOUT", `fail2ban made the ${this.op} in jail ${this.jail}, but the Portcullis action did not report it in the kernel within ${ENFORCEMENT_TIMEOUT_MS / 1000} s; see fail2ban's log`, { jail: this.jail })), ENFORCEMENT_TIMEOUT_MS);
      });
    } finally {
      clearTimeout(timer);
    }
  }
}

function canonicalOrUndefined(entry: string): string | undefined {
  try {
    return canonicalNetwork(entry, "entry");
  } catch {
    return undefined;
  }
}
