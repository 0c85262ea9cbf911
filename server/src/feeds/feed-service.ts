import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import { KeyedLock } from "../keyed-lock.js";
import { delayUntil } from "../timer-delay.js";
import type { EventLog } from "../events/event-log.js";
import type { IpsetDriver } from "../drivers/ipset-driver.js";
import type { FeedStore } from "../store/feed-store.js";
import type { IpsetService } from "../ipsets/ipset-service.js";
import type { Allowlist } from "../jails/allowlist.js";
import { changesTheList, newDefinition, settingsAttributes, updatedDefinition, type FeedSettings } from "./feed-definition.js";
import type { ApiCall } from "../events/api-call.js";
import { feedName, ipsetName } from "../names.js";
import { CrowdsecFollower } from "./crowdsec-follower.js";
import { initialState, isCrowdsec, setsOf, type FeedDefinition, type FeedState } from "./feed-model.js";
import { FeedRefresher, SYSTEM, type Initiator, type RefreshResult } from "./feed-refresher.js";
import { dueAtStart, nextDueAt } from "./feed-schedule.js";
import { FeedSets } from "./feed-sets.js";
import { checkFileRoots } from "./file-roots.js";
import { ProtectedNetworks } from "./protected-networks.js";

export type { FeedSettings } from "./feed-definition.js";
export type { RefreshResult } from "./feed-refresher.js";

/** A feed as clients see it. */
export interface FeedView {
  readonly definition: FeedDefinition;
  readonly state: FeedState;
}

export interface FeedRepairReport {
  /** Feeds whose sets were rebuilt from their stored lists (the kernel had lost or changed them). */
  readonly repaired: number;
  /** Feeds whose stored lists were applied again because what is protected changed. */
  readonly refiltered: number;
}

/** Allowlist changes that come together are applied to the feeds once, this long after the last. */
const ALLOWLIST_SETTLE_MS = 500;

/**
 * Feeds: published blocklists that fill a pair of sets each. This service holds their settings, schedules their
 * refreshes (each feed on its own timer: interval plus jitter, sooner after failures), runs one change per feed at a
 * time, repairs their sets from the stored lists at start, and applies the lists again when the allowlist changes.
 * The refresh itself is FeedRefresher's; a crowdsec feed's polls are CrowdsecFollower's (each poll on the same timer
 * and lock, every poll_interval_ms, and a start or an allowlist change makes its next read a full one).
 */
export class FeedService {
  readonly #store: FeedStore;
  readonly #ipsets: IpsetService;
  readonly #sets: FeedSets;
  readonly #refresher: FeedRefresher;
  readonly #follower: CrowdsecFollower;
  readonly #events: EventLog;
  readonly #log: Logger;
  readonly #allowlist: Allowlist;
  readonly #managementAddresses: readonly string[];
  readonly #fileRoots: readonly string[];
  readonly #lock = new KeyedLock();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  /** The refresh of each feed under way, to give it up when the feed goes or the server stops. */
  readonly #running = new Map<string, AbortController>();
  #unsubscribe: (() => void) | undefined;
  #settle: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(deps: { store: FeedStore; kernel: IpsetDriver; ipsets: IpsetService; allowlist: Allowlist; managementAddresses: readonly string[]; fileRoots: readonly string[]; events: EventLog; log: Logger }) {
    this.#fileRoots = deps.fileRoots;
    this.#store = deps.store;
    this.#ipsets = deps.ipsets;
    this.#events = deps.events;
    this.#log = deps.log;
    this.#allowlist = deps.allowlist;
    this.#managementAddresses = deps.managementAddresses;
    this.#sets = new FeedSets(deps.kernel, deps.log);
    const writers = { sets: this.#sets, store: deps.store, events: deps.events, log: deps.log, protections: () => this.#protections(), fileRoots: deps.fileRoots };
    this.#refresher = new FeedRefresher(writers);
    this.#follower = new CrowdsecFollower(writers);
  }

  /** Schedules every feed's next refresh and follows the allowlist. Run after `reconcile` at start. */
  start(): void {
    const now = Date.now();
    for (const definition of this.#store.definitions()) {
      const state = this.#store.state(definition.name);
      // A decision stream starts again with every active decision at once (the Local API's answer is what counts).
      if (state !== undefined) this.#schedule(definition.name, isCrowdsec(definition) ? now : dueAtStart(definition, state, now));
    }
    this.#unsubscribe = this.#events.subscribe((event) => {
      if (event.type !== "ALLOWLIST_ENTRY_ADDED" && event.type !== "ALLOWLIST_ENTRY_REMOVED") return;
      // Called inside the transaction that records the event: the work waits for a later turn.
      clearTimeout(this.#settle);
      this.#settle = setTimeout(() => void this.#applyProtections(), ALLOWLIST_SETTLE_MS);
      this.#settle.unref();
    });
  }

  close(): void {
    this.#closed = true;
    this.#unsubscribe?.();
    clearTimeout(this.#settle);
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    for (const running of this.#running.values()) running.abort();
  }

  list(): FeedView[] {
    return this.#store.definitions().map((definition) => this.#view(definition));
  }

  get(name: string): FeedView {
    return this.#view(this.#definition(name));
  }

  /** Records a feed and makes its two sets (empty); its first refresh starts at once. */
  async create(name: string, ipset: string, settings: FeedSettings, call: ApiCall): Promise<FeedView> {
    const definition = newDefinition(name, ipset, settings);
    checkFileRoots(definition, this.#fileRoots);
    return this.#lock.with([name], async () => {
      if (this.#store.get(name) !== undefined) throw new ServerError("FEED_ALREADY_EXISTS", `feed "${name}" already exists; choose another name or delete it first`, { feed: name });
      for (const set of setsOf(definition)) await this.#refuseTakenSet(set);
      this.#store.create(definition, initialState(Date.now()));
      try {
        await this.#sets.ensure(definition);
      } catch (error) {
        this.#store.delete(name);
        throw error;
      }
      this.#schedule(name, Date.now());
      call.record({ type: "FEED_CREATED", resource: feedName(name), attributes: { source: definition.source, ipset: ipsetName(definition.ipset) } });
      return this.#view(definition);
    });
  }

  /** Changes settings; a new source, format or CA makes the next refresh (started at once) read the list whole. */
  async update(name: string, settings: FeedSettings, call: ApiCall): Promise<FeedView> {
    return this.#lock.with([name], async () => {
      const current = this.#definition(name);
      const next = updatedDefinition(current, settings);
      checkFileRoots(next, this.#fileRoots);
      const state = this.#store.state(name)!;
      this.#store.update(next);
      // A stream is followed with its settings as they were when it started: it starts again, at once, with the new ones.
      this.#follower.forget(name);
      const now = Date.now();
      if (isCrowdsec(next) || changesTheList(current, next)) {
        this.#store.putState(name, { ...state, validators: {}, nextDueAt: now });
      } else if (next.intervalSeconds !== current.intervalSeconds || next.jitterSeconds !== current.jitterSeconds) {
        this.#store.putState(name, { ...state, nextDueAt: Math.max(now, nextDueAt(next, state.lastAttemptAt ?? now, state.failures)) });
      }
      this.#schedule(name, this.#store.state(name)!.nextDueAt);
      call.record({ type: "FEED_UPDATED", resource: feedName(name), attributes: settingsAttributes(settings) });
      return this.#view(next);
    });
  }

  /** Deletes a feed and destroys its sets; refused (IPSET_IN_USE) while a rule uses either. */
  async delete(name: string, call: ApiCall): Promise<void> {
    // A refresh under way is given up, unless the delete is to be refused anyway (checked again under the lock).
    await this.#ipsets.refuseOwnedSetsInUse(setsOf(this.#definition(name)));
    this.#running.get(name)?.abort();
    await this.#lock.with([name], async () => {
      const definition = this.#definition(name);
      await this.#ipsets.destroyOwnedSets(setsOf(definition));
      this.#store.delete(name);
      this.#refresher.forget(name);
      this.#follower.forget(name);
      clearTimeout(this.#timers.get(name));
      this.#timers.delete(name);
      call.record({ type: "FEED_DELETED", resource: feedName(name) });
    });
  }

  /** Refreshes a feed now (one attempt) and answers when done; a refused list is thrown, the sets left as they were. */
  async refresh(name: string, force: boolean, initiator: Initiator): Promise<{ view: FeedView; result: RefreshResult }> {
    const result = await this.#run(name, (definition, signal) => this.#read(definition, { force, retries: 0, initiator, signal }));
    return { view: this.get(name), result };
  }

  /**
   * Makes the kernel hold every feed's sets as recorded: sets the kernel lost or whose entry counts differ from the
   * record (a reboot, `ipset flush` or `ipset add` by hand) are rebuilt from the stored list, with a STATE_REPAIRED
   * event; sets filtered with other protected networks than today's are filtered again. Comparing counts keeps the
   * start fast: a feed's list is read only when its sets need it. Temporary sets a stop left are destroyed.
   */
  async reconcile(): Promise<FeedRepairReport> {
    const report = { repaired: 0, refiltered: 0 };
    await this.#sets.removeLeftovers();
    const fingerprint = this.#protections().fingerprint;
    for (const definition of this.#store.definitions()) {
      await this.#lock.with([definition.name], async () => {
        const state = this.#store.state(definition.name);
        if (state === undefined) return;
        try {
          // A decision stream's sets are made equal to the Local API's decisions by the first read after start, and
          // its entries expire in the kernel: their counts are no measure of loss. Only missing sets are made.
          if (isCrowdsec(definition)) {
            await this.#sets.ensure(definition);
            return;
          }
          const [ipv4, ipv6] = await this.#sets.current(definition);
          const lost = ipv4 === undefined || ipv6 === undefined || ipv4.entryCount !== state.ipv4Entries || ipv6.entryCount !== state.ipv6Entries;
          if (lost) {
            const { entries } = await this.#refresher.reapply(definition, "repair");
            report.repaired++;
            this.#events.append({ type: "STATE_REPAIRED", resource: `feeds/${definition.name}`, attributes: { count: String(entries), ...(ipv4 === undefined || ipv6 === undefined ? { recreated: "true" } : {}) } }, "system", "system");
            this.#log.warn({ feed: definition.name, entries }, "feed sets rebuilt from the stored list");
          } else if (state.protection !== undefined && state.protection !== fingerprint) {
            await this.#refresher.reapply(definition, "allowlist");
            report.refiltered++;
          }
        } catch (error) {
          const reason = error instanceof ServerError ? error.reason : "KERNEL_COMMAND_FAILED";
          this.#log.error({ feed: definition.name, reason, error: String(error) }, "feed sets could not be repaired; left as they are");
          this.#events.append({ type: "STATE_REFUSED", resource: `feeds/${definition.name}`, attributes: { reason } }, "system", "system");
        }
      });
    }
    return report;
  }

  /** What the metrics show of each feed. */
  metrics(): Array<{ name: string; lastSuccessAt?: number; entries: number; skipped: number }> {
    return this.list().map(({ definition, state }) => ({ name: definition.name, ...(state.lastSuccessAt === undefined ? {} : { lastSuccessAt: state.lastSuccessAt }), entries: state.ipv4Entries + state.ipv6Entries, skipped: state.skipped }));
  }

  /** Runs a refresh of one feed under its lock, cancellable by delete and close; schedules the next after it. */
  async #run<T>(name: string, work: (definition: FeedDefinition, signal: AbortSignal) => Promise<T>): Promise<T> {
    try {
      return await this.#lock.with([name], async () => {
        const definition = this.#definition(name);
        const controller = new AbortController();
        this.#running.set(name, controller);
        try {
          return await work(definition, controller.signal);
        } catch (error) {
          if (!controller.signal.aborted) throw error;
          throw this.#closed
            ? new ServerError("SHUTTING_DOWN", "the server is stopping; the refresh was given up", { feed: name })
            : new ServerError("FEED_NOT_FOUND", `feed "${name}" was deleted during its refresh`, { feed: name });
        } finally {
          this.#running.delete(name);
        }
      });
    } finally {
      const state = this.#store.state(name);
      if (state !== undefined) this.#schedule(name, this.#follower.nextDueAt(name) ?? state.nextDueAt);
    }
  }

  /** One read of a feed's source into its sets: a decision stream's poll, or a whole list's refresh (with retries). */
  #read(definition: FeedDefinition, options: { force: boolean; retries: number; initiator: Initiator; signal: AbortSignal }): Promise<RefreshResult> {
    const { force, initiator, signal } = options;
    return isCrowdsec(definition) ? this.#follower.poll(definition, { force, initiator, signal }) : this.#refresher.refresh(definition, options);
  }

  #schedule(name: string, dueAt: number): void {
    if (this.#closed) return;
    clearTimeout(this.#timers.get(name));
    const timer = setTimeout(() => {
      this.#timers.delete(name);
      const definition = this.#store.get(name);
      if (definition === undefined) return;
      // A failure was recorded (FEED_FAILED) and the next try scheduled by #run.
      this.#run(name, (current, signal) => this.#read(current, { force: false, retries: current.retries, initiator: SYSTEM, signal })).catch(() => undefined);
    }, delayUntil(dueAt));
    timer.unref();
    this.#timers.set(name, timer);
  }

  /** Applies the stored lists again where what is protected changed since they were applied. */
  async #applyProtections(): Promise<void> {
    const fingerprint = this.#protections().fingerprint;
    for (const definition of this.#store.definitions()) {
      if (this.#closed) return;
      await this.#lock.with([definition.name], async () => {
        const state = this.#follower.state(definition.name) ?? this.#store.state(definition.name);
        if (state?.protection === undefined || state.protection === fingerprint) return;
        if (isCrowdsec(definition)) {
          // The decisions are not stored: the next read asks for all of them and applies them with today's protections.
          this.#follower.resync(definition.name);
          this.#schedule(definition.name, Date.now());
          return;
        }
        await this.#refresher.reapply(definition, "allowlist");
      }).catch((error: unknown) => this.#log.error({ feed: definition.name, err: error }, "applying an allowlist change to a feed's sets failed; the next repair tries again"));
    }
  }

  /** A set a new feed would fill must be nobody's: no set of that name, no other feed's. */
  async #refuseTakenSet(set: string): Promise<void> {
    const owner = this.#store.ownerOf(set);
    if (owner !== undefined) throw new ServerError("IPSET_ALREADY_EXISTS", `set "${set}" is filled by ${owner}; choose another ipset for the feed`, { ipset: set, feed: owner });
    try {
      await this.#ipsets.get(set);
    } catch (error) {
      if (error instanceof ServerError && error.reason === "IPSET_NOT_FOUND") return;
      throw error;
    }
    throw new ServerError("IPSET_ALREADY_EXISTS", `set "${set}" already exists; a feed makes its own sets (${set.endsWith("-v6") ? "this is the name of the IPv6 set" : "and an IPv6 one with -v6 added"}): choose another ipset, or delete that set first`, { ipset: set });
  }

  #protections(): ProtectedNetworks {
    return ProtectedNetworks.of(this.#allowlist, this.#managementAddresses);
  }

  #definition(name: string): FeedDefinition {
    const definition = this.#store.get(name);
    if (definition === undefined) throw new ServerError("FEED_NOT_FOUND", `feed "${name}" does not exist`, { feed: name });
    return definition;
  }

  #view(definition: FeedDefinition): FeedView {
    return { definition, state: this.#follower.state(definition.name) ?? this.#store.state(definition.name)! };
  }
}
