import { ServerError } from "../errors.js";
import type { KeyedLock } from "../keyed-lock.js";
import type { IpsetDriver } from "../drivers/ipset-driver.js";
import type { EntryWrite, IpsetStore } from "../store/ipset-store.js";
import { expandElement, normalizeElement } from "./element.js";
import { entryQuery, filteredPage } from "./entry-filter.js";
import { prepareEntry, toApply, toView, type EntryInput, type EntryView } from "./entry-preparation.js";
import { GroupedWrites } from "./grouped-writes.js";
import type { IpsetBatches } from "./ipset-batches.js";
import { DEFAULT_GROW_LIMIT, growsAutomatically } from "./ipset-definition.js";
import { isModeledType, type IpsetDefinition } from "./ipset-model.js";
import { notFound, type ManagedSets } from "./managed-sets.js";
import { delLines } from "./restore-text.js";
import type { SetGrowth } from "./set-growth.js";

export interface EntryPage {
  readonly entries: EntryView[];
  readonly totalSize: number;
  /** Element to continue after, when there are more. */
  readonly nextAfter?: string;
}

/**
 * Entries one at a time: listed, tested, added and deleted. Single adds and deletes of a set that arrive together are
 * grouped (GroupedWrites) into one store transaction and one kernel write; a network in a set of single addresses is
 * several entries, so it goes as a batch.
 */
export class IpsetEntries {
  readonly #kernel: IpsetDriver;
  readonly #store: IpsetStore;
  readonly #lock: KeyedLock;
  readonly #sets: ManagedSets;
  readonly #growth: SetGrowth;
  readonly #batches: IpsetBatches;
  readonly #singles: GroupedWrites<EntryWrite, void>;

  constructor(deps: { kernel: IpsetDriver; store: IpsetStore; lock: KeyedLock; sets: ManagedSets; growth: SetGrowth; batches: IpsetBatches }) {
    this.#kernel = deps.kernel;
    this.#store = deps.store;
    this.#lock = deps.lock;
    this.#sets = deps.sets;
    this.#growth = deps.growth;
    this.#batches = deps.batches;
    this.#singles = new GroupedWrites<EntryWrite, void>(deps.lock, (name, writes) => this.#applySingles(name, writes));
  }

  async list(name: string, after: string, limit: number, filter: string): Promise<EntryPage> {
    const managed = this.#store.getSet(name);
    const now = Date.now();
    const query = filter === "" ? undefined : entryQuery(filter);
    if (managed !== undefined) {
      const page = query === undefined ? this.#store.page(name, after, limit + 1, now) : filteredPage(this.#store, name, query, after, limit + 1, now);
      const more = page.length > limit;
      const entries = page.slice(0, limit).map((entry) => toView(entry, now));
      return { entries, totalSize: this.#store.count(name, now), ...(more ? { nextAfter: entries[entries.length - 1]!.element } : {}) };
    }
    // Unmanaged sets are read from the kernel; ordering by element keeps page tokens meaningful across calls.
    if ((await this.#kernel.get(name)) === undefined) throw notFound(name);
    const all = (await this.#kernel.entries(name)).filter((entry) => query === undefined || query.matches(entry.element)).sort((x, y) => (x.element < y.element ? -1 : x.element > y.element ? 1 : 0));
    const start = after === "" ? 0 : lowerBound(all, after);
    const slice = all.slice(start, start + limit);
    const more = start + limit < all.length;
    return {
      entries: slice.map((entry) => ({ element: entry.element, ...(entry.timeout ? { timeout: entry.timeout } : {}), ...(entry.comment === undefined ? {} : { comment: entry.comment }) })),
      totalSize: all.length,
      ...(more ? { nextAfter: slice[slice.length - 1]!.element } : {}),
    };
  }

  async add(name: string, input: EntryInput): Promise<EntryView> {
    const definition = await this.#sets.definition(name);
    const now = Date.now();
    const entry = prepareEntry(definition, input, now, "entry");
    // A network in a set of single addresses is one entry per address: all of them or none, as a batch is.
    if (expandElement(definition.typeName, entry.element).length > 1) {
      await this.#batches.add(name, { entries: [{ ...input, element: entry.element }] });
      return toView(entry, now);
    }
    await this.#singles.submit(name, { element: entry.element, entry });
    return toView(entry, now);
  }

  async delete(name: string, rawElement: string): Promise<void> {
    const definition = await this.#sets.definition(name);
    const element = normalizeElement(definition, rawElement);
    const elements = expandElement(definition.typeName, element);
    if (elements.length === 1) return this.#singles.submit(name, { element });
    await this.#lock.with([name], async () => {
      const previous = elements.map((one) => this.#store.getEntry(name, one)).filter((entry) => entry !== undefined);
      if (previous.length === 0) {
        const what = elements.length > 1 ? `no address of ${element} is an entry` : `${element} is not an entry`;
        throw new ServerError("ENTRY_NOT_FOUND", `${what} of set "${name}"`, { ipset: name, element });
      }
      this.#store.deleteEntries(name, elements);
      try {
        await this.#deleteFromKernel(name, elements);
      } catch (error) {
        this.#store.putEntries(name, previous);
        throw error;
      }
    });
  }

  /**
   * Takes an element out of a managed set whether or not Portcullis recorded it (an entry added with the ipset
   * command while Portcullis was down); absent is fine.
   */
  async removeElement(name: string, rawElement: string): Promise<void> {
    const definition = await this.#sets.definition(name);
    const elements = expandElement(definition.typeName, normalizeElement(definition, rawElement));
    await this.#lock.with([name], async () => {
      this.#store.deleteEntries(name, elements);
      await this.#deleteFromKernel(name, elements);
    });
  }

  async test(name: string, rawElement: string): Promise<boolean> {
    // A managed set's definition is recorded: only other sets cost a `ipset list` process to learn theirs.
    const definition = this.#store.getSet(name) ?? (await this.#kernel.get(name))?.definition;
    if (definition === undefined) throw notFound(name);
    if (!isModeledType(definition.typeName)) {
      throw new ServerError("INVALID_IPSET_TYPE", `set "${name}" has type ${definition.typeName}, which Portcullis cannot test`, { ipset: name });
    }
    const element = normalizeElement(definition, rawElement);
    if (expandElement(definition.typeName, element).length > 1) {
      throw new ServerError("INVALID_ELEMENT", `"${rawElement}": set "${name}" holds single addresses; test one address at a time`, { field: "element", value: rawElement });
    }
    return this.#kernel.test(name, element);
  }

  /**
   * Applies a group of single adds and deletes of one set (see GroupedWrites), under its lock, in the order every
   * change follows: recorded in one transaction, applied (each line answered on its own, written together), and
   * answered each on its own; a write the kernel refused is undone in the store, the others stand. A delete of an
   * element not recorded is ENTRY_NOT_FOUND, as alone. A set found full grows once for the whole group.
   */
  async #applySingles(name: string, writes: readonly EntryWrite[]): Promise<Array<PromiseSettledResult<void>>> {
    let definition = await this.#sets.definition(name);
    const now = Date.now();
    const previous = this.#store.writeEntries(name, writes, now);
    const errors: unknown[] = writes.map((write, i) => (write.entry === undefined && previous[i] === undefined ? notAnEntry(name, write.element) : undefined));
    const apply = (write: EntryWrite, at: IpsetDefinition): Promise<void> =>
      write.entry === undefined ? this.#kernel.delete(name, write.element) : this.#kernel.add(name, toApply(at, write.entry, Date.now()));
    const applyAll = async (indexes: readonly number[]): Promise<void> => {
      const outcomes = await Promise.allSettled(indexes.map((i) => apply(writes[i]!, definition)));
      outcomes.forEach((outcome, k) => (errors[indexes[k]!] = outcome.status === "rejected" ? outcome.reason : undefined));
    };
    await applyAll(writes.flatMap((_, i) => (errors[i] === undefined ? [i] : [])));
    // A single add finds a full set only from the kernel (counting the store per add would cost more).
    const full = writes.flatMap((_, i) => (errors[i] instanceof ServerError && (errors[i] as ServerError).reason === "IPSET_FULL" ? [i] : []));
    const maxelem = definition.maxelem ?? 0;
    if (full.length > 0 && growsAutomatically(definition) && maxelem < (definition.growLimit ?? DEFAULT_GROW_LIMIT)) {
      try {
        definition = await this.#growth.grow(definition, maxelem + full.length);
        await applyAll(full);
      } catch (error) {
        for (const i of full) errors[i] = error;
      }
    }
    const undo = writes.flatMap((write, i): EntryWrite[] => {
      if (errors[i] === undefined || (write.entry === undefined && previous[i] === undefined)) return [];
      const before = previous[i];
      return [before === undefined ? { element: write.element } : { element: write.element, entry: before }];
    });
    if (undo.length > 0) this.#store.writeEntries(name, undo, now);
    return errors.map((error) => (error === undefined ? { status: "fulfilled", value: undefined } : { status: "rejected", reason: error }));
  }

  /** One element through the session, several (a network's addresses) as one restore. */
  async #deleteFromKernel(name: string, elements: readonly string[]): Promise<void> {
    if (elements.length === 1) await this.#kernel.delete(name, elements[0]!);
    else await this.#kernel.restore(delLines(name, elements));
  }
}

function lowerBound(entries: readonly { element: string }[], after: string): number {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (entries[mid]!.element <= after) low = mid + 1;
    else high = mid;
  }
  return low;
}

function notAnEntry(name: string, element: string): ServerError {
  return new ServerError("ENTRY_NOT_FOUND", `${element} is not an entry of set "${name}"`, { ipset: name, element });
}
