import type { Logger } from "../logger.js";
import { ServerError, toServerError } from "../errors.js";
import type { EventLog } from "../events/event-log.js";
import type { EventOrigin } from "../events/event-model.js";
import type { FeedStore } from "../store/feed-store.js";
import { listReader } from "./feed-formats.js";
import { compareKeys, ListBuilder, NO_KEYS, sizeOf, type ListKeys, type ReadList } from "./feed-list.js";
import { setsOf, type FeedDefinition, type FeedState } from "./feed-model.js";
import { nextDueAt } from "./feed-schedule.js";
import { FeedSets } from "./feed-sets.js";
import { isTransient, type FeedSource } from "./feed-source.js";
import { FileSource } from "./file-source.js";
import { HttpSource } from "./http-source.js";
import type { ProtectedNetworks } from "./protected-networks.js";

/** What the two ways of filling a feed's sets (a whole list here, a decision stream in CrowdsecFollower) work with. */
export interface FeedWriterDeps {
  readonly sets: FeedSets;
  readonly store: FeedStore;
  readonly events: EventLog;
  readonly log: Logger;
  /** The allowlist and management addresses as they are now: left out of every list. */
  readonly protections: () => ProtectedNetworks;
  /** The folders whose files a feed may read (config feeds.fileRoots). */
  readonly fileRoots: readonly string[];
}

/** What a refresh did to the sets. */
export interface RefreshResult {
  /** False when the source said the list had not changed: nothing was read, parsed or swapped. */
  readonly changed: boolean;
  readonly added: number;
  readonly removed: number;
  readonly kept: number;
  readonly skipped: number;
  readonly invalid: number;
}

/** Who asked: the scheduler ("system") or a caller of RefreshFeed. */
export interface Initiator {
  readonly principal: string;
  readonly origin: EventOrigin;
}

export const SYSTEM: Initiator = { principal: "system", origin: "system" };
/** The stored list is fed to the kernel in pieces this large, so that its restore text never sits whole in memory. */
const STORED_PIECE = 256 * 1024;

/**
 * Reads a feed's list and makes its sets hold it: the list is parsed as it arrives and streamed by `ipset restore`
 * into two temporary sets, checked whole (format, shrink guard), and only then swapped in; the temporary sets go.
 *
 * What is stored, and why: a feed's last good list is kept as one text (one canonical element per line), with the
 * count of each set's entries, not as one store row per entry. A million rows would cost seconds to write on every
 * refresh and to compare with the kernel at every start; the text is one write, and a start only compares the
 * kernel's two entry counts (and the allowlist's fingerprint) with the recorded ones, rebuilding a set from the text
 * when they differ (after a reboot or an `ipset flush`). The store changes only after the kernel took the new list,
 * so the text always holds what the sets hold — less what the allowlist and the management addresses protect, which
 * are left out each time the list is applied, so that a change of the allowlist applies the kept list again without
 * asking the source (`reapply`).
 */
export class FeedRefresher {
  readonly #sets: FeedSets;
  readonly #store: FeedStore;
  readonly #events: EventLog;
  readonly #log: Logger;
  readonly #protections: () => ProtectedNetworks;
  /** The sets' contents as of the last apply, per feed, for the counts of the next (read from the stored list if missing). */
  readonly #keys = new Map<string, ListKeys>();
  readonly #fileRoots: readonly string[];

  constructor(deps: FeedWriterDeps) {
    this.#fileRoots = deps.fileRoots;
    this.#sets = deps.sets;
    this.#store = deps.store;
    this.#events = deps.events;
    this.#log = deps.log;
    this.#protections = deps.protections;
  }

  /**
   * Reads the list (conditionally unless `force`) and applies it; transient failures are tried again `retries` times
   * with backoff. A failure leaves the sets as they were, is recorded (FEED_FAILED) and thrown.
   */
  async refresh(definition: FeedDefinition, options: { force: boolean; retries: number; initiator?: Initiator; signal: AbortSignal }): Promise<RefreshResult> {
    const initiator = options.initiator ?? SYSTEM;
    const name = definition.name;
    const state = this.#state(name);
    const source = sourceFor(definition, this.#fileRoots);
    for (let attempt = 0; ; attempt++) {
      try {
        const read = await source.read(options.force ? {} : state.validators, { timeoutMs: definition.timeoutSeconds * 1000, maxBytes: definition.maxBytes, signal: options.signal });
        const now = Date.now();
        if (read.kind === "unchanged") {
          this.#store.putState(name, { ...this.#succeeded(definition, state, now), validators: read.validators });
          return { changed: false, added: 0, removed: 0, kept: 0, skipped: state.skipped, invalid: state.invalid };
        }
        const { list, counts, next, timings } = await this.#apply(definition, state, read.text, true);
        const recorded: FeedState = { ...this.#succeeded(definition, next, now), validators: read.validators };
        this.#store.putList(name, list.text, recorded);
        // Where the time went, from the first byte (the read, the kernel's restore, the swap; the whole refresh).
        const totalMs = Math.round(Date.now() - now);
        this.#keys.set(name, list.keys);
        const result = { changed: true, ...counts, skipped: list.skipped, invalid: list.invalid };
        this.#events.append({ type: "FEED_REFRESHED", resource: `feeds/${name}`, attributes: { ...countAttributes(result), entries: String(sizeOf(list.keys)), cause: "source" } }, initiator.principal, initiator.origin);
        this.#log.info({ feed: name, ...result, ...timings, totalMs }, "feed refreshed");
        return result;
      } catch (error) {
        if (isTransient(error) && attempt < options.retries && !options.signal.aborted) {
          await sleep(backoffMs(attempt), options.signal);
          continue;
        }
        // A refresh given up (the feed deleted, the server stopping) is not a failure of the feed.
        if (options.signal.aborted) throw toServerError(error);
        throw this.#failed(definition, error, initiator);
      }
    }
  }

  /**
   * Applies the stored list again, with what is protected now (the allowlist changed, or the kernel lost the sets);
   * both sets exist afterwards (made empty if missing and without entries). Returns what changed in the sets.
   */
  async reapply(definition: FeedDefinition, cause: "allowlist" | "repair"): Promise<{ added: number; removed: number; entries: number }> {
    const name = definition.name;
    const stored = this.#store.list(name);
    const state = this.#state(name);
    if (stored === undefined) {
      await this.#sets.ensure(definition);
      this.#store.putState(name, { ...state, protection: this.#protections().fingerprint });
      return { added: 0, removed: 0, entries: 0 };
    }
    const { list, counts, next } = await this.#apply({ ...definition, format: "plain" }, state, pieces(stored), false);
    // A family the list has no entries of is not written: its set, if the kernel lost it, is made again empty.
    await this.#sets.ensure(definition);
    this.#store.putState(name, next);
    this.#keys.set(name, list.keys);
    const entries = sizeOf(list.keys);
    if (cause === "allowlist" && counts.added + counts.removed > 0) {
      this.#events.append({ type: "FEED_REFRESHED", resource: `feeds/${name}`, attributes: { ...countAttributes({ ...counts, skipped: list.skipped, invalid: 0 }), entries: String(entries), cause } }, "system", "system");
    }
    return { added: counts.added, removed: counts.removed, entries };
  }

  /** Forgets what it kept of a deleted feed. */
  forget(name: string): void {
    this.#keys.delete(name);
  }

  /**
   * Parses `text` into temporary sets as it arrives, checks the list whole, then swaps the sets in (a family the list
   * lacks is emptied). Returns the list, what changed, and the state it leaves (not yet recorded).
   */
  async #apply(definition: FeedDefinition, state: FeedState, text: AsyncIterable<string>, guard: boolean): Promise<{ list: ReadList; counts: { added: number; removed: number; kept: number }; next: FeedState; timings: Record<string, number> }> {
    const started = performance.now();
    const timings: Record<string, number> = {};
    const mark = (phase: string): void => void (timings[phase] = Math.round(performance.now() - started));
    const protections = this.#protections();
    const build = this.#sets.reserve();
    const builder = new ListBuilder(protections, build, state.ipv4Entries);
    const reader = listReader(definition.format, builder.add);
    let failure: unknown;
    let list: ReadList | undefined;
    // The kernel fills the temporary sets while the rest of the list arrives. A failure ends the restore input early
    // (what was read is in the temporary sets, destroyed below) and is raised once the restore is over. The list is
    // sorted while the kernel takes its last lines.
    const lines = async function* (): AsyncGenerator<string> {
      try {
        for await (const piece of text) {
          reader.push(piece);
          const restore = builder.takeRestore();
          if (restore !== "") yield restore;
        }
        reader.end();
        mark("readMs");
        const restore = builder.takeRestore(true);
        if (restore !== "") yield restore;
        list = builder.finish();
      } catch (error) {
        failure = error;
      }
    };
    try {
      await this.#sets.fill(lines());
      mark("restoredMs");
      if (failure !== undefined) throw failure;
      if (list === undefined) throw new Error("the list was not read to its end");
      checkFormat(definition, list);
      const current = state.ipv4Entries + state.ipv6Entries;
      const entries = sizeOf(list.keys);
      if (guard && current > 0 && (current - entries) / current > definition.maxShrink) {
        throw new ServerError("FEED_SHRANK", `the list would shrink the sets from ${current} to ${entries} entries, by more than the feed's max_shrink of ${definition.maxShrink}; the sets stay as they were (if the list really shrank, raise max_shrink)`, { entries: String(entries), current: String(current) });
      }
      const before = this.#keys.get(definition.name) ?? this.#storedKeys(definition.name, protections);
      const [ipv4, ipv6] = setsOf(definition);
      for (const [family, target, temporary, held] of [["ipv4", ipv4, build.ipv4, state.ipv4Entries], ["ipv6", ipv6, build.ipv6, state.ipv6Entries]] as const) {
        if (builder.wrote(family)) await this.#sets.install(temporary, target);
        else if (held > 0) await this.#sets.empty(target, family);
      }
      mark("swappedMs");
      const next: FeedState = { ...state, ipv4Entries: list.keys.ipv4.length, ipv6Entries: list.keys.ipv6.length, skipped: list.skipped, invalid: list.invalid, protection: protections.fingerprint };
      return { list, counts: compareKeys(before, list.keys), next, timings };
    } finally {
      // Not waited for: what the sets hold is settled; a stop before it ends leaves them to the next repair.
      void this.#sets.release(build, [builder.wrote("ipv4"), builder.wrote("ipv6")]);
    }
  }

  /** The sets' contents as the stored list and today's protections make them (after a restart). */
  #storedKeys(name: string, protections: ProtectedNetworks): ListKeys {
    const stored = this.#store.list(name);
    if (stored === undefined) return NO_KEYS;
    const builder = new ListBuilder(protections);
    const reader = listReader("plain", builder.add);
    reader.push(stored);
    reader.end();
    return builder.finish().keys;
  }

  #state(name: string): FeedState {
    const state = this.#store.state(name);
    if (state === undefined) throw new ServerError("FEED_NOT_FOUND", `feed "${name}" does not exist`, { feed: name });
    return state;
  }

  #succeeded(definition: FeedDefinition, state: FeedState, now: number): FeedState {
    const { lastError: _error, lastErrorReason: _reason, ...rest } = state;
    return { ...rest, lastSuccessAt: now, lastAttemptAt: now, failures: 0, nextDueAt: nextDueAt(definition, now, 0) };
  }

  /** Records a failed refresh (state, FEED_FAILED) and returns the error for the caller. */
  #failed(definition: FeedDefinition, error: unknown, initiator: Initiator): ServerError {
    const failure = toServerError(error);
    if (failure.reason === "INTERNAL") this.#log.error({ feed: definition.name, err: error }, "feed refresh failed unexpectedly");
    const now = Date.now();
    const current = this.#store.state(definition.name);
    // A feed deleted meanwhile has nothing left to record.
    if (current === undefined) return failure;
    const failures = current.failures + 1;
    this.#store.putState(definition.name, { ...current, lastAttemptAt: now, failures, lastErrorReason: failure.reason, lastError: failure.message, nextDueAt: nextDueAt(definition, now, failures) });
    this.#events.append({ type: "FEED_FAILED", resource: `feeds/${definition.name}`, attributes: { reason: failure.reason, detail: failure.message } }, initiator.principal, initiator.origin);
    this.#log.warn({ feed: definition.name, reason: failure.reason, detail: failure.message }, "feed refresh failed; its sets stay as they were");
    return failure;
  }
}

/** The source a feed's URL names. */
function sourceFor(definition: Pick<FeedDefinition, "source" | "ca">, fileRoots: readonly string[]): FeedSource {
  const url = new URL(definition.source);
  return url.protocol === "file:" ? new FileSource(url, fileRoots) : new HttpSource(url, definition.ca);
}

/** A list mostly of lines that are not addresses is not in the feed's format (an HTML error page served with 200). */
function checkFormat(definition: FeedDefinition, list: ReadList): void {
  if (list.invalid === 0 || list.invalid <= list.valid) return;
  throw new ServerError("FEED_INVALID", `${list.invalid} of ${list.invalid + list.valid} entries of the list are not an address or network (the first at ${definition.format === "json" ? "item" : "line"} ${list.firstInvalidLine}); is the source a list in the feed's format (${definition.format})?`, { invalid: String(list.invalid), format: definition.format });
}

function countAttributes(result: { added: number; removed: number; kept: number; skipped: number; invalid: number }): Record<string, string> {
  return { added: String(result.added), removed: String(result.removed), kept: String(result.kept), skipped: String(result.skipped), invalid: String(result.invalid) };
}

/** 1, 2, 4… seconds (at most 30), each with up to a quarter more at random so that retries of many hosts spread. */
function backoffMs(attempt: number): number {
  const base = Math.min(30_000, 1000 * 2 ** attempt);
  return base + Math.random() * base * 0.25;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

async function* pieces(text: string): AsyncGenerator<string> {
  for (let at = 0; at < text.length; at += STORED_PIECE) yield text.slice(at, at + STORED_PIECE);
}
