import type { Logger } from "../logger.js";
import { toServerError, type ServerError } from "../errors.js";
import { parseNetworkCanonical } from "../addresses.js";
import { MAX_TIMEOUT_SECONDS } from "../ipsets/ipset-model.js";
import type { EventLog } from "../events/event-log.js";
import type { FeedStore } from "../store/feed-store.js";
import { CrowdsecSource, type Decision } from "./crowdsec-source.js";
import { DEFAULT_POLL_MS, setsOf, type FeedDefinition, type FeedState } from "./feed-model.js";
import type { FeedWriterDeps, Initiator, RefreshResult } from "./feed-refresher.js";
import type { FeedSets } from "./feed-sets.js";
import type { ProtectedNetworks } from "./protected-networks.js";

/** After failed reads the next comes later, doubling from the poll interval up to this. */
const MAX_RETRY_MS = 10_000;
/** A poll that changed nothing records the feed's state at most this often (its last success time, for metrics). */
const IDLE_WRITE_MS = 30_000;
/** An event names at most this many of the entries a poll added or removed. */
const MAX_NAMED = 50;

/** What the sets hold of one stream: element → decision id → when the decision ends (ms since the epoch). */
type Held = Map<string, Map<number, number>>;

/** One feed's stream as followed since the server started. */
interface Stream {
  source: CrowdsecSource;
  definition: FeedDefinition;
  /** False until a startup read was applied (again after a failure or an allowlist change): the next read is one. */
  started: boolean;
  held: Held;
  /** Decisions left out (not a ban of an Ip or Range, or protected), by id, and those whose value is not an address. */
  skipped: Set<number>;
  invalid: Set<number>;
  /** The state as of the last poll (the store's copy is written when something changed, or every IDLE_WRITE_MS). */
  state: FeedState;
  writtenAt: number;
}

/**
 * Follows crowdsec feeds: a CrowdSec Local API's decision stream, read as a bouncer reads it. The first read (after
 * a start, a failure, or a change of what is protected) asks for every active decision and replaces the sets' contents
 * like a whole list (temporary sets filled by restore, swapped in); each later read applies the decisions new and
 * deleted since to the live sets, each entry with its decision's remaining duration as its kernel timeout.
 *
 * Events are for what a SIEM acts on: FEED_REFRESHED when the sets changed (with the entries, up to MAX_NAMED),
 * never for a poll that changed nothing; FEED_FAILED once when the Local API becomes unreachable or refuses the
 * feed, not at every poll of the outage (the state counts the failures; the read that ends the outage resyncs).
 */
export class CrowdsecFollower {
  readonly #sets: FeedSets;
  readonly #store: FeedStore;
  readonly #events: EventLog;
  readonly #log: Logger;
  readonly #protections: () => ProtectedNetworks;
  readonly #streams = new Map<string, Stream>();
  readonly #fileRoots: readonly string[];

  constructor(deps: FeedWriterDeps) {
    this.#fileRoots = deps.fileRoots;
    this.#sets = deps.sets;
    this.#store = deps.store;
    this.#events = deps.events;
    this.#log = deps.log;
    this.#protections = deps.protections;
  }

  /** Reads the stream once and applies it (`force`: a startup read, whatever came before). Throws what failed. */
  async poll(definition: FeedDefinition, options: { force: boolean; initiator: Initiator; signal: AbortSignal }): Promise<RefreshResult> {
    const stream = this.#stream(definition);
    const startup = options.force || !stream.started;
    const now = Date.now();
    try {
      const delta = await stream.source.read(startup, { timeoutMs: definition.timeoutSeconds * 1000, maxBytes: definition.maxBytes, signal: options.signal });
      const result = startup ? await this.#replace(stream, delta.added) : await this.#change(stream, delta.added, delta.deleted);
      this.#succeeded(stream, result, startup, options.initiator);
      return result;
    } catch (error) {
      if (options.signal.aborted) throw toServerError(error);
      throw this.#failed(stream, error, now, options.initiator);
    }
  }

  /** When the feed's next read is due (undefined: not followed yet, read now). */
  nextDueAt(name: string): number | undefined {
    return this.#streams.get(name)?.state.nextDueAt;
  }

  /** The feed's state as of its last poll (the store's copy may be up to IDLE_WRITE_MS older). */
  state(name: string): FeedState | undefined {
    return this.#streams.get(name)?.state;
  }

  /** Makes the next read a startup read (what is protected changed): the sets are then made equal to it again. */
  resync(name: string): void {
    const stream = this.#streams.get(name);
    if (stream !== undefined) stream.started = false;
  }

  /** Forgets a feed deleted, or whose settings changed (the next read starts again with its new settings). */
  forget(name: string): void {
    this.#streams.delete(name);
  }

  #stream(definition: FeedDefinition): Stream {
    const existing = this.#streams.get(definition.name);
    if (existing !== undefined) return existing;
    const state = this.#store.state(definition.name) ?? { validators: {}, nextDueAt: 0, ipv4Entries: 0, ipv6Entries: 0, skipped: 0, invalid: 0, failures: 0 };
    const stream: Stream = { source: new CrowdsecSource(definition, this.#fileRoots), definition, started: false, held: new Map(), skipped: new Set(), invalid: new Set(), state, writtenAt: 0 };
    this.#streams.set(definition.name, stream);
    return stream;
  }

  /** Every active decision replaces the sets' contents (temporary sets, swapped in). */
  async #replace(stream: Stream, decisions: readonly Decision[]): Promise<RefreshResult> {
    const before = new Set(stream.held.keys());
    const held: Held = new Map();
    const skipped = new Set<number>();
    const invalid = new Set<number>();
    const protections = this.#protections();
    const now = Date.now();
    for (const decision of decisions) {
      const element = this.#element(decision, protections, skipped, invalid);
      if (element === undefined) continue;
      const ids = held.get(element) ?? new Map<number, number>();
      ids.set(decision.id, now + decision.durationMs);
      held.set(element, ids);
    }
    const build = this.#sets.reserve(true);
    const lines = [`${build.createLine("ipv4")}\n`, `${build.createLine("ipv6")}\n`];
    for (const [element, ids] of held) lines.push(addLine(element.includes(":") ? build.ipv6 : build.ipv4, element, ids, now));
    try {
      await this.#sets.fill((async function* () {
        yield lines.join("");
      })());
      const [ipv4, ipv6] = setsOf(stream.definition);
      await this.#sets.install(build.ipv4, ipv4);
      await this.#sets.install(build.ipv6, ipv6);
    } finally {
      void this.#sets.release(build, [true, true]);
    }
    stream.held = held;
    stream.skipped = skipped;
    stream.invalid = invalid;
    stream.started = true;
    const after = new Set(held.keys());
    return this.#result([...after].filter((element) => !before.has(element)), [...before].filter((element) => !after.has(element)), stream, [...after].filter((element) => before.has(element)).length);
  }

  /** Decisions deleted, then new ones, applied to the live sets. */
  async #change(stream: Stream, added: readonly Decision[], deleted: readonly Decision[]): Promise<RefreshResult> {
    if (added.length === 0 && deleted.length === 0) return this.#result([], [], stream, stream.held.size);
    const before = new Set<string>();
    const touched = new Set<string>();
    const touch = (element: string): void => {
      if (!touched.has(element) && stream.held.has(element)) before.add(element);
      touched.add(element);
    };
    for (const decision of deleted) {
      stream.skipped.delete(decision.id);
      stream.invalid.delete(decision.id);
      const parsed = parseNetworkCanonical(decision.value);
      if ("problem" in parsed) continue;
      const ids = stream.held.get(parsed.network);
      if (ids === undefined || !ids.has(decision.id)) continue;
      touch(parsed.network);
      ids.delete(decision.id);
      if (ids.size === 0) stream.held.delete(parsed.network);
    }
    const protections = this.#protections();
    const now = Date.now();
    for (const decision of added) {
      const element = this.#element(decision, protections, stream.skipped, stream.invalid);
      if (element === undefined) continue;
      touch(element);
      const ids = stream.held.get(element) ?? new Map<number, number>();
      ids.set(decision.id, now + decision.durationMs);
      stream.held.set(element, ids);
    }
    const [ipv4, ipv6] = setsOf(stream.definition);
    const lines: string[] = [];
    for (const element of touched) {
      const set = element.includes(":") ? ipv6 : ipv4;
      const ids = stream.held.get(element);
      // Still held: added, or another decision on it remains (its timeout follows the longest).
      lines.push(ids === undefined ? `del ${set} ${element}\n` : addLine(set, element, ids, now));
    }
    if (lines.length > 0) await this.#sets.change(lines.join(""));
    const addedElements = [...touched].filter((element) => !before.has(element) && stream.held.has(element));
    const removed = [...before].filter((element) => !stream.held.has(element));
    return this.#result(addedElements, removed, stream, stream.held.size - addedElements.length);
  }

  /** The element a decision puts in the sets; undefined (and counted) when it is left out. */
  #element(decision: Decision, protections: ProtectedNetworks, skipped: Set<number>, invalid: Set<number>): string | undefined {
    const scope = decision.scope.toLowerCase();
    if (decision.type.toLowerCase() !== "ban" || (scope !== "ip" && scope !== "range")) {
      skipped.add(decision.id);
      return undefined;
    }
    if (decision.durationMs <= 0) return undefined;
    const parsed = parseNetworkCanonical(decision.value);
    if ("problem" in parsed) {
      invalid.add(decision.id);
      return undefined;
    }
    if (protections.protects(parsed)) {
      skipped.add(decision.id);
      return undefined;
    }
    return parsed.network;
  }

  #result(added: string[], removed: string[], stream: Stream, kept: number): RefreshResult & { names: { added: string[]; removed: string[] } } {
    return { changed: added.length + removed.length > 0, added: added.length, removed: removed.length, kept, skipped: stream.skipped.size, invalid: stream.invalid.size, names: { added, removed } };
  }

  #succeeded(stream: Stream, result: RefreshResult & { names?: { added: string[]; removed: string[] } }, startup: boolean, initiator: Initiator): void {
    const name = stream.definition.name;
    const now = Date.now();
    const recovered = stream.state.failures > 0;
    let ipv4Entries = 0;
    for (const element of stream.held.keys()) if (!element.includes(":")) ipv4Entries++;
    const { lastError: _error, lastErrorReason: _reason, ...rest } = stream.state;
    stream.state = {
      ...rest, lastSuccessAt: now, lastAttemptAt: now, failures: 0, nextDueAt: now + pollMs(stream.definition),
      ipv4Entries, ipv6Entries: stream.held.size - ipv4Entries, skipped: result.skipped, invalid: result.invalid,
      protection: this.#protections().fingerprint,
    };
    if (startup || result.changed || recovered || now - stream.writtenAt >= IDLE_WRITE_MS) {
      this.#store.putState(name, stream.state);
      stream.writtenAt = now;
    }
    if (!startup && !result.changed) return;
    const names = result.names ?? { added: [], removed: [] };
    this.#events.append({
      type: "FEED_REFRESHED",
      resource: `feeds/${name}`,
      attributes: {
        added: String(result.added), removed: String(result.removed), kept: String(result.kept), skipped: String(result.skipped), invalid: String(result.invalid),
        entries: String(stream.held.size), cause: startup ? "startup" : "decisions",
        ...named("added_entries", names.added), ...named("removed_entries", names.removed),
      },
    }, initiator.principal, initiator.origin);
    this.#log.info({ feed: name, added: result.added, removed: result.removed, entries: stream.held.size, startup }, "crowdsec decisions applied");
  }

  /** Counts a failed read; the first of an outage is an event. The sets stay; the read after it resyncs. */
  #failed(stream: Stream, error: unknown, now: number, initiator: Initiator): ServerError {
    const failure = toServerError(error);
    const name = stream.definition.name;
    if (failure.reason === "INTERNAL") this.#log.error({ feed: name, err: error }, "crowdsec feed poll failed unexpectedly");
    const failures = stream.state.failures + 1;
    stream.started = false;
    stream.state = {
      ...stream.state, lastAttemptAt: now, failures, lastErrorReason: failure.reason, lastError: failure.message,
      nextDueAt: now + Math.min(MAX_RETRY_MS, pollMs(stream.definition) * 2 ** Math.min(failures, 10)),
    };
    // A feed deleted meanwhile has nothing left to record.
    if (this.#store.state(name) === undefined) return failure;
    if (failures === 1 || now - stream.writtenAt >= IDLE_WRITE_MS) {
      this.#store.putState(name, stream.state);
      stream.writtenAt = now;
    }
    if (failures === 1) {
      this.#events.append({ type: "FEED_FAILED", resource: `feeds/${name}`, attributes: { reason: failure.reason, detail: failure.message } }, initiator.principal, initiator.origin);
      this.#log.warn({ feed: name, reason: failure.reason, detail: failure.message }, "crowdsec feed cannot read its decision stream; its sets stay as they are until it can");
    }
    return failure;
  }
}

function pollMs(definition: FeedDefinition): number {
  return definition.pollIntervalMs ?? DEFAULT_POLL_MS;
}

/**
 * The restore line that holds `element` until the last of its decisions ends; past ipset's longest timeout, without
 * one (the decision's deletion removes it).
 */
function addLine(set: string, element: string, ids: Map<number, number>, now: number): string {
  const until = Math.max(...ids.values());
  const seconds = Math.max(1, Math.ceil((until - now) / 1000));
  return `add ${set} ${element} timeout ${seconds > MAX_TIMEOUT_SECONDS ? 0 : seconds}\n`;
}

/** An event attribute naming entries, at most MAX_NAMED of them (then how many more). */
function named(key: string, elements: string[]): Record<string, string> {
  if (elements.length === 0) return {};
  const shown = elements.slice(0, MAX_NAMED).join(",");
  return { [key]: elements.length > MAX_NAMED ? `${shown},… (${elements.length - MAX_NAMED} more)` : shown };
}
