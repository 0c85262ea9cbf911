import { ServerError } from "../errors.js";
import { canonicalNetwork } from "../addresses.js";
import type { Fail2banClient } from "../drivers/fail2ban-client.js";
import type { Fail2banCli } from "../drivers/fail2ban-cli.js";
import { parseBannedList, parseBansWithTime, parseJailList, parseJailStatus, strings, type BanWithTime, type JailStatus } from "../drivers/parse/fail2ban-replies.js";
import type { JailBanStore } from "../store/jail-ban-store.js";
import { KeyedLock } from "../keyed-lock.js";
import { jailName } from "../names.js";
import type { ApiCall } from "../events/api-call.js";
import type { FleetSharing } from "../fleet/fleet.js";
import { JailDropIn, TUNING_KEYS, type JailTuning, type TuningKey } from "./jail-drop-in.js";
import type { Allowlist } from "./allowlist.js";
import { EnforcementWaiters } from "./enforcement-waiter.js";
import { ALL_JAILS, JailBans, type BanOptions } from "./jail-bans.js";
import type { BanExpiry } from "./ban-expiry.js";
import { canonicalOrUndefined, validateAddress, validateJailName, validateNote } from "./jail-checks.js";
import { JailSettingsCache, tuningOf, updateAttributes, withoutNulls, type JailSettings, type JailUpdate } from "./jail-settings.js";

export { ALL_JAILS } from "./jail-bans.js";
export type { JailSettings, JailUpdate } from "./jail-settings.js";
export type { BanOptions } from "./jail-bans.js";

/** A jail as clients see it: what `fail2ban-client status <jail>` shows plus its settings and each ban's times. */
export interface JailView extends JailStatus, JailSettings {
  readonly name: string;
  /** The banned addresses, soonest to end first. */
  readonly banned: string[];
  /** Each ban's times, when asked for (see get). */
  readonly bans: BanWithTime[];
}

/** GetJail reuses a ban list read at the same counters for at most this long (a safety net, like the watcher's full looks). */
const LIST_REUSE_MS = 10_000;

/** The name fail2ban gives the Portcullis action (action.d/portcullis.py). */
export const PORTCULLIS_ACTION = "portcullis";

/**
 * The jail domain over fail2ban's socket: jails, their settings (cached: jail-settings.ts) and ignore lists, UpdateJail
 * (with its drop-in, jail-drop-in.ts), stopping, starting and reloading. Bans and unbans have a file of their own
 * (jail-bans.ts), as has the wait for the Portcullis action's reports (enforcement-waiter.ts); what fail2ban bans by
 * itself is found by the BanWatcher. The checks of names and addresses are in jail-checks.ts.
 */
export class JailService {
  readonly #fail2ban: Fail2banClient;
  readonly #bans: JailBanStore;
  readonly #settings: JailSettingsCache;
  /** Per jail: API bans/unbans and the watcher's comparison of ban lists never interleave. */
  readonly #banLock = new KeyedLock();
  readonly #waiters = new EnforcementWaiters();
  readonly #banChanges: JailBans;
  /** Each jail's ban list as GetJail last read it, with the counters and connection it was read at. */
  readonly #lastList = new Map<string, { counters: string; connection: number; at: number; banned: string[] }>();
  readonly #configDir: string;
  readonly #cli: Fail2banCli;

  /**
   * `bans`: where bans made here are noted, so that the BanWatcher does not report them a second time. `configDir`:
   * fail2ban's configuration directory, where UpdateJail keeps its drop-ins. `allowlist`: the host allowlist, which
   * BanIp honours. `fleet`: where bans and unbans asked for with fleet scope (or in shared jails) go. `expiry`: lifts
   * the bans BanIp gave a duration of their own.
   */
  constructor(deps: { fail2ban: Fail2banClient; bans: JailBanStore; configDir: string; cli: Fail2banCli; allowlist: Allowlist; fleet: FleetSharing; expiry: BanExpiry }) {
    this.#fail2ban = deps.fail2ban;
    this.#bans = deps.bans;
    this.#configDir = deps.configDir;
    this.#cli = deps.cli;
    this.#settings = new JailSettingsCache(deps.fail2ban);
    this.#banChanges = new JailBans({ fail2ban: deps.fail2ban, bans: deps.bans, allowlist: deps.allowlist, lock: this.#banLock, waiters: this.#waiters, jails: this, fleet: deps.fleet, expiry: deps.expiry });
  }

  /** Runs `work` under these jails' ban lock: the BanWatcher compares ban lists under it (see BanWatcher.observe). */
  withBanLock<T>(jails: readonly string[], work: () => Promise<T>): Promise<T> {
    return this.#banLock.with(jails, work);
  }

  /** A jail's bantime in seconds (-1 for ever), from its cached settings. */
  async banTime(jail: string): Promise<number> {
    validateJailName(jail);
    return (await this.#settings.read(jail)).banTime;
  }

  /** Whether the jail bans through the Portcullis action (its settings, cached for a few seconds). */
  async usesPortcullisAction(jail: string): Promise<boolean> {
    return (await this.#settings.read(jail)).actions.includes(PORTCULLIS_ACTION);
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
    this.#waiters.enforced(jail, op, addresses);
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
        ban = this.#withOwnExpiries(jail, parseBansWithTime(await this.#fail2ban.send(["get", jail, "banip", "--with-time"]))).find((candidate) => candidate.address === address);
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
      if (known !== undefined) return { name, ...status, banned: known, bans: [], ...(await this.#settings.read(name)) };
      const connection = this.#fail2ban.connections;
      const reply = await this.#fail2ban.send(["status", name]);
      const fresh = parseJailStatus(reply);
      const banned = parseBannedList(reply);
      this.#lastList.set(name, { counters: `${fresh.currentlyBanned}/${fresh.totalBanned}`, connection, at: Date.now(), banned });
      return { name, ...fresh, banned, bans: [], ...(await this.#settings.read(name)) };
    }
    const status = parseJailStatus(await this.#fail2ban.send(["status", name, "short"]));
    const bans = this.#withOwnExpiries(name, parseBansWithTime(await this.#fail2ban.send(["get", name, "banip", "--with-time"])));
    return { name, ...status, banned: bans.map((ban) => ban.address), bans, ...(await this.#settings.read(name)) };
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

  /**
   * fail2ban's ban times, with the times Portcullis keeps for bans that BanIp gave a duration (fail2ban counts the
   * jail's bantime for them, from a start in whole seconds), soonest to end first again.
   */
  #withOwnExpiries(jail: string, bans: BanWithTime[]): BanWithTime[] {
    const expiries = this.#bans.expiries(jail);
    if (expiries.size === 0) return bans;
    const end = (ban: BanWithTime): number => (ban.duration < 0 ? Infinity : ban.bannedAt + ban.duration * 1000);
    return bans
      .map((ban) => {
        const own = expiries.get(ban.address);
        return own === undefined ? ban : { ...ban, bannedAt: own.since, duration: Math.max(0, Math.round((own.expiresAt - own.since) / 1000)) };
      })
      .sort((a, b) => end(a) - end(b));
  }

  /** A jail's settings (cached for a few seconds, see JailSettingsCache). */
  settings(jail: string): Promise<JailSettings> {
    return this.#settings.read(jail);
  }

  // ---- bans and unbans: see jail-bans.ts -------------------------------------------------------------------------

  ban(jail: string, rawAddress: string, call: ApiCall, options?: BanOptions): Promise<string[]> {
    return this.#banChanges.ban(jail, rawAddress, call, options);
  }

  batchBan(jail: string, rawAddresses: readonly string[], call: ApiCall, options?: BanOptions): Promise<string[]> {
    return this.#banChanges.batchBan(jail, rawAddresses, call, options);
  }

  unban(jail: string, rawAddress: string, call: ApiCall, fleet?: boolean): Promise<string[]> {
    return this.#banChanges.unban(jail, rawAddress, call, fleet);
  }

  unbanAll(call: ApiCall): Promise<Array<{ jail: string; address: string }>> {
    return this.#banChanges.unbanAll(call);
  }

  /** A ban on this host alone, for the fleet applier (which records its own events): no event, nothing shared. */
  banHere(jail: string, rawAddress: string): Promise<string[]> {
    return this.#banChanges.banHere(jail, rawAddress);
  }

  /** Many bans on this host alone, for the fleet applier: no event, nothing shared. */
  batchBanHere(jail: string, rawAddresses: readonly string[]): Promise<string[]> {
    return this.#banChanges.batchBanHere(jail, rawAddresses);
  }

  /** An unban on this host alone, for the allowlist, jail enforcement and the fleet applier: no event, nothing shared. */
  unbanHere(jail: string, rawAddress: string): Promise<string[]> {
    return this.#banChanges.unbanHere(jail, rawAddress);
  }

  // ---- jails and their settings ----------------------------------------------------------------------------------

  /** Counts a failed login like a log line would; `maxretry` of them within `findtime` ban the address. */
  async reportFailure(jail: string, rawAddress: string, message: string): Promise<void> {
    const address = validateAddress(rawAddress);
    const [name] = await this.targets(jail);
    validateNote(message, "message");
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
    this.#settings.forget(jail);
  }

  /** Takes a canonical address or network out of a jail's ignoreip. */
  async removeIgnore(jail: string, network: string): Promise<void> {
    validateJailName(jail);
    await this.#fail2ban.send(["set", jail, "delignoreip", canonicalNetwork(network, "entry")]);
    this.#settings.forget(jail);
  }

  async addIgnoreIp(jail: string, entry: string): Promise<JailView> {
    const [name] = await this.targets(jail);
    await this.#fail2ban.send(["set", name!, "addignoreip", canonicalNetwork(entry, "entry")]);
    this.#settings.forget(name!);
    return this.get(name!);
  }

  async removeIgnoreIp(jail: string, entry: string): Promise<JailView> {
    const [name] = await this.targets(jail);
    const current = strings(await this.#fail2ban.send(["get", name!, "ignoreip"]));
    // As written first (fail2ban's own config may hold host names), else in the canonical form AddIgnoreIp stores.
    const canonical = canonicalOrUndefined(entry);
    const listed = current.includes(entry) ? entry : current.find((item) => item === canonical);
    if (listed === undefined) {
      throw new ServerError("ENTRY_NOT_FOUND", `"${entry.slice(0, 100)}" is not in the ignoreip of jail ${name}; it has ${current.join(", ") || "nothing"}`, { jail: name!, entry: entry.slice(0, 100) });
    }
    await this.#fail2ban.send(["set", name!, "delignoreip", listed]);
    this.#settings.forget(name!);
    return this.get(name!);
  }

  /**
   * Changes maxretry, findtime, bantime and/or the bantime.increment options: first in the jail's drop-in (so that
   * nothing the running server has is missing from the file), then in the running server; if fail2ban refuses, both
   * go back to what they were.
   */
  async update(jail: string, changes: JailUpdate, call: ApiCall): Promise<JailView> {
    const [name] = await this.targets(jail);
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
      this.#settings.forget(name!);
    }
    const view = await this.get(name!);
    call.record({ type: "JAIL_UPDATED", resource: jailName(jail), attributes: updateAttributes(changes) });
    return view;
  }

  /** Stops a running jail; its actions lift its bans. */
  async stop(jail: string, call: ApiCall): Promise<void> {
    const [name] = await this.targets(jail);
    await this.#fail2ban.send(["stop", name!]);
    this.#settings.forget(name!);
    call.record({ type: "JAIL_STOPPED", resource: jailName(jail) });
  }

  /** Starts a configured jail that is not running, through fail2ban-client (which reads the configuration). */
  async start(jail: string, call: ApiCall): Promise<JailView> {
    validateJailName(jail);
    if ((await this.names()).includes(jail)) throw new ServerError("JAIL_RUNNING", `jail ${jail} is running already; stop it first or reload it`, { jail });
    // `start <jail>` only starts jails the server knows; a reload with --if-exists adds a stopped jail back.
    await this.#cli.run(["reload", "--if-exists", jail]);
    this.#settings.forget(jail);
    const view = await this.get(jail);
    call.record({ type: "JAIL_STARTED", resource: jailName(jail) });
    return view;
  }

  /** Reloads fail2ban's configuration for one jail or all; returns the jails running afterwards. */
  async reload(jail: string, call: ApiCall): Promise<string[]> {
    if (jail !== ALL_JAILS) await this.targets(jail);
    await this.#cli.run(["reload", ...(jail === ALL_JAILS ? [] : [jail])]);
    this.#settings.forget();
    const running = await this.names();
    call.record({ type: "JAILS_RELOADED", resource: jailName(jail), attributes: { jails: running.map(jailName).join(",") } });
    return running;
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

  /** The running jails a request names: every one for ALL_JAILS, else the one (JAIL_NOT_FOUND if not running). */
  async targets(jail: string): Promise<string[]> {
    if (jail === ALL_JAILS) return this.names();
    validateJailName(jail);
    const names = await this.names();
    if (!names.includes(jail)) throw new ServerError("JAIL_NOT_FOUND", `there is no jail ${jail}; fail2ban has ${names.join(", ") || "none"}`, { jail });
    return [jail];
  }
}
