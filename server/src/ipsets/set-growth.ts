import { randomBytes } from "node:crypto";
import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import type { EventLog } from "../events/event-log.js";
import { ipsetName } from "../names.js";
import type { IpsetDriver } from "../drivers/ipset-driver.js";
import { renderAddLine, renderCreateLine } from "../drivers/parse/ipset-save.js";
import type { IpsetStore } from "../store/ipset-store.js";
import { toApply } from "./entry-preparation.js";
import { DEFAULT_GROW_LIMIT, grownDefinition, growsAutomatically } from "./ipset-definition.js";
import type { IpsetDefinition, KernelIpset } from "./ipset-model.js";
import { chunked } from "./restore-text.js";

/** Names of the copies a growing set is built in: `~` is not allowed in the names of sets made through the API. */
const GROW_PREFIX = "~pc-grow-";

/**
 * Room in managed hash sets: whether a batch fits, and growing a set that does not (maxelem is fixed at creation in
 * the kernel, so a larger copy is built and swapped in). Callers hold the set's lock.
 */
export class SetGrowth {
  readonly #kernel: IpsetDriver;
  readonly #store: IpsetStore;
  readonly #events: EventLog;
  readonly #log: Logger;
  /** Copies of growing sets being built now: a reconcile meanwhile must not take them for leftovers. */
  readonly #copies = new Set<string>();

  constructor(deps: { kernel: IpsetDriver; store: IpsetStore; events: EventLog; log: Logger }) {
    this.#kernel = deps.kernel;
    this.#store = deps.store;
    this.#events = deps.events;
    this.#log = deps.log;
  }

  /**
   * Room for a batch: undefined if it fits, else how many entries the set must grow to hold (a set that grows), or
   * IPSET_FULL before anything is applied. `exists` false: a set the caller is about to create (to be made that
   * large, not grown).
   */
  needed(definition: IpsetDefinition, elements: readonly string[], exists: boolean): number | undefined {
    const maxelem = definition.maxelem;
    if (maxelem === undefined || !definition.typeName.startsWith("hash:")) return undefined;
    const now = Date.now();
    const current = exists ? this.#store.count(definition.name, now) : 0;
    // The batch's size bounds what it adds; duplicates and entries already there are counted only when it matters.
    if (current + elements.length <= maxelem) return undefined;
    const limit = capacityLimit(definition, maxelem);
    let needed = current + elements.length;
    if (needed > limit) {
      needed = current + this.#newElements(definition.name, elements, exists, now);
      if (needed <= maxelem) return undefined;
    }
    if (needed > limit) throw full(definition, current, needed - current, limit);
    return needed;
  }

  /** How many distinct elements of a batch the set does not hold yet. */
  #newElements(name: string, elements: readonly string[], exists: boolean, now: number): number {
    const fresh = new Set<string>();
    for (const element of elements) if (!fresh.has(element) && (!exists || this.#store.getEntry(name, element, now) === undefined)) fresh.add(element);
    return fresh.size;
  }

  /**
   * Grows a set to hold `needed` entries: a copy with a larger maxelem is filled with the recorded entries (comments
   * and remaining timeouts kept) and swapped in, so rules, which match the set by name, never see it missing or short.
   * `more`: lines for the copy after the recorded entries (a batch, recorded as they are produced).
   */
  async grow(definition: IpsetDefinition, needed: number, more?: (copy: string) => AsyncIterable<string>): Promise<IpsetDefinition> {
    const grown = grownDefinition(definition, needed);
    const copy = `${GROW_PREFIX}${randomBytes(4).toString("hex")}`;
    this.#copies.add(copy);
    try {
      const now = Date.now();
      // Entries with nothing but an element are read as elements alone: a third of the cost of reading entries.
      const plain = definition.timeout === undefined && definition.comments !== true;
      const adds = plain
        ? chunked(this.#store.liveElements(definition.name, now), (element) => `${renderAddLine(copy, { element })}\n`)
        : chunked(this.#store.liveEntries(definition.name, now), (entry) => `${renderAddLine(copy, toApply(definition, entry, now))}\n`);
      // The copy is created by the same restore: ipset then knows its type, and adds go twice as fast as into a set
      // made beforehand (which it looks up again for each line). The recorded entries are all read before `more`
      // records anything.
      await this.#kernel.restore((async function* () {
        yield `${renderCreateLine({ ...grown, name: copy })}\n`;
        yield* adds;
        if (more !== undefined) yield* more(copy);
      })());
      await this.#kernel.swap(copy, definition.name);
    } finally {
      // After the swap the copy's name holds the old, smaller set; a restore refused early may not have made it.
      await this.#kernel.destroy(copy).catch((error: unknown) => {
        if (!(error instanceof ServerError && error.reason === "IPSET_NOT_FOUND")) this.#log.error({ ipset: copy, error: String(error) }, "cannot destroy the copy of a grown set; the next start will");
      });
      this.#copies.delete(copy);
    }
    this.#store.updateSet(grown);
    this.#events.append({ type: "IPSET_GROWN", resource: ipsetName(definition.name), attributes: { from_maxelem: String(definition.maxelem), to_maxelem: String(grown.maxelem) } }, "system", "system");
    this.#log.info({ ipset: definition.name, from: definition.maxelem, to: grown.maxelem }, "set grown");
    return grown;
  }

  /** Destroys the copy of a set that was growing when the server stopped (one of `sets`, as the kernel lists them). */
  async removeLeftovers(sets: Iterable<KernelIpset>): Promise<void> {
    for (const set of sets) {
      if (!set.definition.name.startsWith(GROW_PREFIX) || set.references > 0 || this.#copies.has(set.definition.name)) continue;
      await this.#kernel.destroy(set.definition.name).catch((error: unknown) => this.#log.warn({ ipset: set.definition.name, error: String(error) }, "cannot destroy the copy of a grown set"));
    }
  }
}

/** The most entries a set can be made to hold: its grow_limit if it grows, else its maxelem. */
function capacityLimit(definition: IpsetDefinition, maxelem: number): number {
  return growsAutomatically(definition) ? definition.growLimit ?? Math.max(DEFAULT_GROW_LIMIT, maxelem) : maxelem;
}

function full(definition: IpsetDefinition, current: number, adding: number, limit: number): ServerError {
  const fits = Math.max(0, limit - current);
  const why = growsAutomatically(definition)
    ? `it cannot grow past its grow_limit of ${limit} entries`
    : `it holds at most ${limit} entries (maxelem) and does not grow (auto_grow is off); recreate it with a larger maxelem or turn auto_grow on`;
  return new ServerError("IPSET_FULL", `set "${definition.name}" has ${current} entries and the batch adds ${adding} new ones, of which ${fits} fit: ${why}; nothing was added`, { ipset: definition.name, maxelem: String(definition.maxelem), fits: String(fits) });
}
