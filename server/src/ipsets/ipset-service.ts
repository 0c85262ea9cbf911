import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import type { IpsetDriver } from "../drivers/ipset-driver.js";
import type { IptablesDriver } from "../drivers/iptables-driver.js";
import { parseIpsetSave, renderAddLine, renderCreateLine } from "../drivers/parse/ipset-save.js";
import type { EntryWrite, IpsetStore, StoredEntry } from "../store/ipset-store.js";
import { expandElement, holdsSingleAddresses, normalizeElement, validateComment, validateIpsetName } from "./element.js";
import { compatible, DEFAULT_GROW_LIMIT, grownDefinition, growsAutomatically, validateDefinition, validateTimeout, type DefinitionInput } from "./ipset-definition.js";
import { isModeledType, type IpsetDefinition, type KernelIpset } from "./ipset-model.js";
import { KeyedLock } from "../keyed-lock.js";
import { entryQuery, type EntryQuery } from "./entry-filter.js";
import { GroupedWrites } from "./grouped-writes.js";
import type { EventLog } from "../events/event-log.js";
import { ipsetName } from "../names.js";
import { releaseMemorySoon } from "../memory.js";
import { randomBytes } from "node:crypto";

/** A set as clients see it: definition, kernel counters, and whether Portcullis manages it. */
export interface IpsetView {
  readonly definition: IpsetDefinition;
  readonly managed: boolean;
  readonly memoryBytes: number;
  readonly references: number;
  readonly entryCount: number;
}

/** An entry as clients see it; timeout is the remaining time in seconds, absent when permanent. */
export interface EntryView {
  readonly element: string;
  readonly timeout?: number;
  readonly comment?: string;
}

/** An entry a client asks to add; timeout absent = the set's default. */
export interface EntryInput {
  readonly element: string;
  readonly timeout?: number;
  readonly comment?: string;
}

/** A batch as the API hands it over: entries with their own options, and/or elements sharing timeout and comment. */
export interface BatchInput {
  readonly entries: readonly EntryInput[];
  readonly elements?: readonly string[];
  readonly timeout?: number;
  readonly comment?: string;
}

/** A validated batch in flat arrays. expiresAt: absolute ms, 0 = permanent; comments: undefined when none has one. */
interface PreparedBatch {
  readonly elements: string[];
  readonly expiresAt: Float64Array;
  readonly comments: Array<string | undefined> | undefined;
}

export interface EntryPage {
  readonly entries: EntryView[];
  readonly totalSize: number;
  /** Element to continue after, when there are more. */
  readonly nextAfter?: string;
}

/** A table a pending safe-mode change would roll back to: its iptables-save text, which may name sets. */
export interface SavedTable {
  readonly family: string;
  readonly table: string;
  readonly deadline: number;
  readonly kernel: string;
}

export interface ReconcileReport {
  readonly setsCreated: number;
  readonly entriesRestored: number;
  /** Entries in a managed kernel set that the store did not know (added by hand, or cut short by a crash). */
  readonly entriesRemoved: number;
  /** Records the kernel would not take (each reported as a STATE_REFUSED event and forgotten). */
  readonly recordsRefused: number;
}

/** Batches from this size on leave enough garbage to be worth collecting right away. */
const LARGE_BATCH = 100_000;

/** The largest batch one call may carry (the proto documents it). */
export const MAX_BATCH = 2_000_000;
/** Entries recorded and rendered per step: small enough that one synchronous step never starves `ipset restore`. */
const RESTORE_CHUNK = 2_000;
/** Records of one set the kernel may refuse in a repair before the set is given up on (and reported). */
const MAX_REFUSED_RECORDS = 100;
/** Rows a filtered page reads from the store at a time while it looks for matches. */
const FILTER_SCAN = 1000;
/** Names of the copies a growing set is built in: `~` is not allowed in the names of sets made through the API. */
const GROW_PREFIX = "~pc-grow-";

/**
 * The ipset domain: validation, the managed/unmanaged rule, and the order of every change — validate, record in the
 * store, apply to the kernel, acknowledge — so an acknowledged change survives a crash and a kernel that lost it.
 */
export class IpsetService {
  readonly #kernel: IpsetDriver;
  readonly #rules: IptablesDriver;
  readonly #store: IpsetStore;
  readonly #log: Logger;
  readonly #events: EventLog;
  readonly #rollbacks: () => readonly SavedTable[];
  readonly #lock = new KeyedLock();
  /** Copies of growing sets being built now: a reconcile meanwhile must not take them for leftovers. */
  readonly #copies = new Set<string>();
  /** Single adds and deletes of a set that arrive together are recorded in one transaction and applied in one write. */
  readonly #singles = new GroupedWrites<EntryWrite, void>(this.#lock, (name, writes) => this.#applySingles(name, writes));

  constructor(deps: { kernel: IpsetDriver; rules: IptablesDriver; store: IpsetStore; events: EventLog; log: Logger; pendingRollbacks?: () => readonly SavedTable[] }) {
    this.#kernel = deps.kernel;
    this.#rollbacks = deps.pendingRollbacks ?? (() => []);
    this.#rules = deps.rules;
    this.#store = deps.store;
    this.#events = deps.events;
    this.#log = deps.log;
  }

  // ---- sets ----------------------------------------------------------------------------------------------------

  async list(): Promise<IpsetView[]> {
    const kernel = new Map((await this.#kernel.list()).map((set) => [set.definition.name, set]));
    const managed = new Map(this.#store.sets().map((definition) => [definition.name, definition]));
    const names = [...new Set([...kernel.keys(), ...managed.keys()])].sort();
    return names.map((name) => view(kernel.get(name), managed.get(name)));
  }

  async get(name: string): Promise<IpsetView> {
    const managed = this.#store.getSet(name);
    const kernel = await this.#kernel.get(name);
    if (kernel === undefined && managed === undefined) throw notFound(name);
    return view(kernel, managed);
  }

  /** A managed set's definition, from the store (no kernel call); IPSET_NOT_FOUND or IPSET_NOT_MANAGED otherwise. */
  async definition(name: string): Promise<IpsetDefinition> {
    return this.#managed(name);
  }

  async create(input: DefinitionInput): Promise<IpsetView> {
    const definition = validateDefinition(input);
    return this.#lock.with([definition.name], async () => {
      await this.#createLocked(definition);
      return this.get(definition.name);
    });
  }

  async delete(name: string): Promise<void> {
    await this.#lock.with([name], async () => {
      await this.#managed(name);
      this.#refuseIfRollbackNeeds(name, "deleted");
      const kernel = await this.#kernel.get(name);
      if (kernel !== undefined && kernel.references > 0) await this.#refuseInUse(name);
      // Kernel first: if the destroy is refused, the recorded entries must still be there.
      if (kernel !== undefined) {
        try {
          await this.#kernel.destroy(name);
        } catch (error) {
          if (error instanceof ServerError && error.reason === "IPSET_IN_USE") await this.#refuseInUse(name);
          throw error;
        }
      }
      this.#store.deleteSet(name);
    });
  }

  async flush(name: string): Promise<IpsetView> {
    return this.#lock.with([name], async () => {
      await this.#managed(name);
      await this.#kernel.flush(name);
      this.#store.flush(name);
      return this.get(name);
    });
  }

  async rename(name: string, newName: string): Promise<IpsetView> {
    validateIpsetName(newName, "new_ipset_id");
    return this.#lock.with([name, newName], async () => {
      await this.#managed(name);
      this.#refuseIfRollbackNeeds(name, "renamed");
      if (this.#store.getSet(newName) !== undefined || (await this.#kernel.get(newName)) !== undefined) throw alreadyExists(newName);
      await this.#kernel.rename(name, newName);
      this.#store.renameSet(name, newName);
      return this.get(newName);
    });
  }

  async swap(name: string, other: string): Promise<[IpsetView, IpsetView]> {
    return this.#lock.with([name, other], async () => {
      const a = await this.#managed(name);
      const b = await this.#managed(other);
      if (name === other) throw new ServerError("IPSET_INCOMPATIBLE", "a set cannot be swapped with itself; name two different sets", { field: "other" });
      if (!compatible(a, b)) {
        throw new ServerError("IPSET_INCOMPATIBLE", `sets "${name}" (${describe(a)}) and "${other}" (${describe(b)}) must have the same type and family to be swapped`, { ipset: name, other });
      }
      await this.#kernel.swap(name, other);
      this.#store.swapEntries(name, other);
      return [await this.get(name), await this.get(other)];
    });
  }

  async adopt(name: string): Promise<IpsetView> {
    return this.#lock.with([name], async () => {
      if (this.#store.getSet(name) !== undefined) throw new ServerError("IPSET_ALREADY_MANAGED", `set "${name}" is already managed by Portcullis`, { ipset: name });
      const kernel = await this.#kernel.get(name);
      if (kernel === undefined) throw notFound(name);
      if (!isModeledType(kernel.definition.typeName)) {
        throw new ServerError("INVALID_IPSET_TYPE", `set "${name}" has type ${kernel.definition.typeName}, which Portcullis cannot manage`, { ipset: name });
      }
      const now = Date.now();
      const entries = (await this.#kernel.entries(name)).map((entry) => ({
        element: entry.element,
        ...(entry.timeout ? { expiresAt: now + entry.timeout * 1000 } : {}),
        ...(entry.comment === undefined ? {} : { comment: entry.comment }),
      }));
      this.#store.createSet(kernel.definition);
      this.#store.putEntries(name, entries);
      return view(kernel, kernel.definition);
    });
  }

  // ---- entries -------------------------------------------------------------------------------------------------

  /** A page of entries after `after`, ordered by element; `filter` (see entryQuery) selects some of them. */
  async listEntries(name: string, after: string, limit: number, filter = ""): Promise<EntryPage> {
    const managed = this.#store.getSet(name);
    const now = Date.now();
    const query = filter === "" ? undefined : entryQuery(filter);
    if (managed !== undefined) {
      const page = query === undefined ? this.#store.page(name, after, limit + 1, now) : this.#filteredPage(name, query, after, limit + 1, now);
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

  /**
   * Up to `limit` live entries after `after` that the query selects, ordered by element: its points looked up one by
   * one, its ranges scanned in order until `limit` of them matched.
   */
  #filteredPage(name: string, query: EntryQuery, after: string, limit: number, now: number): StoredEntry[] {
    const found = new Map<string, StoredEntry>();
    for (const point of query.points) {
      if (point <= after) continue;
      const entry = this.#store.getEntry(name, point, now);
      if (entry !== undefined && query.matches(entry.element)) found.set(entry.element, entry);
    }
    let matched = 0;
    for (const range of query.ranges) {
      if (range.to !== undefined && range.to <= after) continue;
      let cursor = after;
      for (;;) {
        const rows = this.#store.range(name, range.from, range.to, cursor, FILTER_SCAN, now);
        for (const row of rows) {
          if (matched >= limit) break;
          cursor = row.element;
          if (!query.matches(row.element) || found.has(row.element)) continue;
          found.set(row.element, row);
          matched++;
        }
        if (matched >= limit || rows.length < FILTER_SCAN) break;
      }
      if (matched >= limit) break;
    }
    return [...found.values()].sort((x, y) => (x.element < y.element ? -1 : x.element > y.element ? 1 : 0)).slice(0, limit);
  }

  async addEntry(name: string, input: EntryInput): Promise<EntryView> {
    const definition = await this.#managed(name);
    const now = Date.now();
    const entry = prepare(definition, input, now, "entry");
    // A network in a set of single addresses is one entry per address: all of them or none, as a batch is.
    if (expandElement(definition.typeName, entry.element).length > 1) {
      await this.batchAdd(name, { entries: [{ ...input, element: entry.element }] });
      return toView(entry, now);
    }
    await this.#singles.submit(name, { element: entry.element, entry });
    return toView(entry, now);
  }

  async deleteEntry(name: string, rawElement: string): Promise<void> {
    const definition = await this.#managed(name);
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
    const definition = await this.#managed(name);
    const elements = expandElement(definition.typeName, normalizeElement(definition, rawElement));
    await this.#lock.with([name], async () => {
      this.#store.deleteEntries(name, elements);
      await this.#deleteFromKernel(name, elements);
    });
  }

  async testEntry(name: string, rawElement: string): Promise<boolean> {
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
   * Validates the whole batch first (one bad element rejects it), then records and applies it in chunks. All or
   * nothing: if the kernel refuses part of it, the part applied is taken back out of the kernel and the store; if the
   * server stops first, the next start does that (rollBackInterruptedBatches).
   */
  async batchAdd(name: string, input: BatchInput): Promise<number> {
    const definition = await this.#managed(name);
    const batch = prepareBatch(definition, input, Date.now());
    await this.#lock.with([name], async () => {
      const current = await this.#managed(name);
      const batchId = await this.#applyBatch(current, batch, this.#growthNeeded(current, batch.elements, true));
      this.#store.commitBatch(batchId);
    });
    if (batch.elements.length >= LARGE_BATCH) releaseMemorySoon();
    return batch.elements.length;
  }

  /**
   * Takes out what batches the server stopped applying had recorded (and the kernel may partly hold): from the
   * user's view the batch did not happen, and a retry applies it once. Run at start, before serving.
   */
  async rollBackInterruptedBatches(): Promise<number> {
    let entries = 0;
    for (const { id, ipset } of this.#store.pendingBatches()) {
      const count = await this.#rollBackBatch(ipset, id);
      entries += count;
      this.#events.append({ type: "STATE_REFUSED", resource: ipsetName(ipset), attributes: { count: String(count), rolled_back: "true" } }, "system", "system");
      this.#log.warn({ ipset, entries: count }, "a batch the server stopped applying was rolled back");
    }
    return entries;
  }

  async batchDelete(name: string, rawElements: readonly string[]): Promise<number> {
    const definition = await this.#managed(name);
    checkBatchSize(rawElements.length);
    const elements = [...new Set(rawElements.flatMap((raw, i) => expandElement(definition.typeName, normalizeElementAt(definition, raw, `elements[${i}]`))))];
    checkBatchSize(elements.length);
    return this.#lock.with([name], async () => {
      const deleted = this.#store.deleteEntries(name, elements);
      await this.#kernel.restore(delLines(name, elements));
      return deleted;
    });
  }

  // ---- import / export -----------------------------------------------------------------------------------------

  /** Imports `ipset save` text: everything is validated before the first set is created. */
  async import(text: string): Promise<{ sets: IpsetView[]; added: number }> {
    const parsed = parseIpsetSave(text);
    const now = Date.now();
    const definitions = new Map<string, { definition: IpsetDefinition; create: boolean }>();
    for (const [i, set] of parsed.sets.entries()) {
      const wanted = validateDefinition({ ...set, name: set.name });
      if (definitions.has(set.name)) throw new ServerError("INVALID_IMPORT", `set "${set.name}" is created twice (create line ${i + 1})`, { ipset: set.name });
      const existing = this.#store.getSet(set.name);
      if (existing !== undefined) {
        if (!compatible(existing, wanted)) {
          throw new ServerError("IPSET_INCOMPATIBLE", `set "${set.name}" exists as ${describe(existing)}, the import declares ${describe(wanted)}`, { ipset: set.name });
        }
        definitions.set(set.name, { definition: existing, create: false });
      } else {
        if ((await this.#kernel.get(set.name)) !== undefined) throw notManaged(set.name);
        definitions.set(set.name, { definition: wanted, create: true });
      }
    }
    const adds = new Map<string, { entries: EntryInput[]; lines: number[] }>();
    for (const add of parsed.adds) {
      if (add.nomatch === true) {
        throw new ServerError("INVALID_IMPORT", `line ${add.line}: nomatch (exception) entries are not supported; remove the line or the nomatch flag`, { line: String(add.line) });
      }
      if (!definitions.has(add.set)) {
        const existing = this.#store.getSet(add.set);
        if (existing === undefined) {
          throw new ServerError("INVALID_IMPORT", `line ${add.line}: set "${add.set}" is neither created by the import nor managed by Portcullis`, { line: String(add.line), ipset: add.set });
        }
        definitions.set(add.set, { definition: existing, create: false });
      }
      let forSet = adds.get(add.set);
      if (forSet === undefined) adds.set(add.set, (forSet = { entries: [], lines: [] }));
      forSet.entries.push(add.entry);
      forSet.lines.push(add.line);
    }
    checkBatchSize(parsed.adds.length);
    const batches = new Map<string, PreparedBatch>();
    for (const [name, forSet] of adds) {
      batches.set(name, prepareBatch(definitions.get(name)!.definition, { entries: forSet.entries }, now, (i) => `line ${forSet.lines[i]}`));
    }
    const names = [...definitions.keys()];
    return this.#lock.with(names, async () => {
      // Every set's room is checked (sets made now sized, existing ones to grow noted) before anything is applied.
      const growTo = new Map<string, number>();
      for (const [name, planned] of definitions) {
        const batch = batches.get(name);
        if (batch === undefined) continue;
        const needed = this.#growthNeeded(planned.definition, batch.elements, !planned.create);
        if (needed === undefined) continue;
        if (planned.create) definitions.set(name, { ...planned, definition: grownDefinition(planned.definition, needed) });
        else growTo.set(name, needed);
      }
      // All or nothing: if the kernel refuses any part, what the import did so far is undone.
      const created: string[] = [];
      const applied: Array<{ name: string; batchId: number }> = [];
      let added = 0;
      try {
        for (const [name, { definition, create }] of definitions) {
          if (create) {
            await this.#createLocked(definition);
            created.push(name);
          }
          const batch = batches.get(name);
          if (batch === undefined) continue;
          applied.push({ name, batchId: await this.#applyBatch(definition, batch, growTo.get(name)) });
          added += batch.elements.length;
        }
      } catch (error) {
        for (const { name, batchId } of applied.reverse()) if (!created.includes(name)) await this.#rollBackBatch(name, batchId);
        for (const name of created.reverse()) {
          await this.#kernel.destroy(name).catch((undo: unknown) => this.#log.error({ ipset: name, error: String(undo) }, "cannot destroy a set of a failed import"));
          this.#store.deleteSet(name);
        }
        throw error;
      }
      for (const { batchId } of applied) this.#store.commitBatch(batchId);
      return { sets: await Promise.all(names.map((name) => this.get(name))), added };
    });
  }

  async export(names: readonly string[]): Promise<string> {
    for (const name of names) {
      if ((await this.#kernel.get(name)) === undefined) throw notFound(name);
    }
    return this.#kernel.save(names);
  }

  // ---- reconciliation ------------------------------------------------------------------------------------------

  /**
   * Makes each managed kernel set hold exactly the live recorded entries again (after a reboot, `ipset flush`,
   * `ipset destroy` or `ipset add` by hand, or a crash mid-batch), with their remaining timeouts; expired entries are
   * forgotten, not resurrected. With `full` false, a set whose kernel entry count equals the recorded count is trusted
   * without reading its entries. A record the kernel refuses (or one that no longer validates) is reported as a
   * STATE_REFUSED event, logged and forgotten; it never keeps the rest, or the server, from starting.
   */
  async reconcile(full: boolean): Promise<ReconcileReport> {
    const now = Date.now();
    this.#store.purgeExpired(now);
    const kernel = new Map((await this.#kernel.list()).map((set) => [set.definition.name, set]));
    const report = { setsCreated: 0, entriesRestored: 0, entriesRemoved: 0, recordsRefused: 0 };
    // The copy of a set that was growing when the server stopped.
    for (const set of kernel.values()) {
      if (!set.definition.name.startsWith(GROW_PREFIX) || set.references > 0 || this.#copies.has(set.definition.name)) continue;
      await this.#kernel.destroy(set.definition.name).catch((error: unknown) => this.#log.warn({ ipset: set.definition.name, error: String(error) }, "cannot destroy the copy of a grown set"));
    }
    for (const definition of this.#store.sets()) {
      await this.#lock.with([definition.name], async () => {
        try {
          await this.#reconcileSet(definition, kernel.get(definition.name), full, now, report);
        } catch (error) {
          const reason = error instanceof ServerError ? error.reason : "KERNEL_COMMAND_FAILED";
          this.#log.error({ ipset: definition.name, reason, error: String(error) }, "managed set could not be repaired; left as it is");
          this.#events.append({ type: "STATE_REFUSED", resource: ipsetName(definition.name), attributes: { reason } }, "system", "system");
        }
      });
    }
    if (report.setsCreated + report.entriesRestored + report.entriesRemoved + report.recordsRefused > 0) this.#log.warn(report, "kernel ipset state repaired from the store");
    return report;
  }

  async #reconcileSet(definition: IpsetDefinition, current: KernelIpset | undefined, full: boolean, now: number, report: { setsCreated: number; entriesRestored: number; entriesRemoved: number; recordsRefused: number }): Promise<void> {
    const name = definition.name;
    if (current === undefined) {
      await this.#kernel.create(definition);
      report.setsCreated++;
    } else if (!compatible(current.definition, definition)) {
      this.#log.error({ ipset: name, kernel: current.definition.typeName, recorded: definition.typeName }, "kernel set differs from the managed definition; left alone");
      return;
    } else if (!full && current.entryCount === this.#store.count(name, now)) {
      return;
    }
    const present = current === undefined ? new Set<string>() : new Set((await this.#kernel.entries(name)).map((entry) => entry.element));
    const missing: StoredEntry[] = [];
    const lines: string[] = [];
    const refused: Array<{ element: string; error: ServerError }> = [];
    for (const entry of this.#store.liveEntries(name, now)) {
      if (present.delete(entry.element)) continue;
      try {
        // The record passes the checks a request would (it may come from an older version, or a hand-edited store).
        if (normalizeElement(definition, entry.element) !== entry.element || expandElement(definition.typeName, entry.element).length > 1) {
          throw new ServerError("INVALID_ELEMENT", `recorded element ${entry.element} is not in the form the kernel holds`, { element: entry.element });
        }
        if (entry.comment !== undefined) commentOf(definition, entry.comment, "comment");
        lines.push(renderAddLine(name, toApply(definition, entry, now)));
        missing.push(entry);
      } catch (error) {
        if (!(error instanceof ServerError)) throw error;
        refused.push({ element: entry.element, error });
      }
    }
    const kernelRefused = await this.#kernel.restoreSkipping(lines, MAX_REFUSED_RECORDS);
    for (const { index, error } of kernelRefused) refused.push({ element: missing[index]!.element, error });
    // What is left in `present` is in the kernel but not recorded: not part of the desired state.
    const extra = [...present];
    if (extra.length > 0) await this.#kernel.restore(delLines(name, extra));
    if (refused.length > 0) this.#store.deleteEntries(name, refused.map((record) => record.element));
    for (const { element, error } of refused) {
      this.#log.error({ ipset: name, element, reason: error.reason, error: error.message }, "recorded entry refused; forgotten");
      this.#events.append({ type: "STATE_REFUSED", resource: ipsetName(name), attributes: { element, reason: error.reason } }, "system", "system");
    }
    const applied = missing.length - kernelRefused.length;
    report.entriesRestored += applied;
    report.entriesRemoved += extra.length;
    report.recordsRefused += refused.length;
    if (current === undefined || applied + extra.length > 0) {
      this.#events.append({ type: "STATE_REPAIRED", resource: ipsetName(name), attributes: { count: String(applied), ...(extra.length > 0 ? { removed: String(extra.length) } : {}), ...(current === undefined ? { recreated: "true" } : {}) } }, "system", "system");
    }
  }

  // ---- helpers -------------------------------------------------------------------------------------------------

  /**
   * Applies a group of single adds and deletes of one set (see GroupedWrites), under its lock, in the order every
   * change follows: recorded in one transaction, applied (each line answered on its own, written together), and
   * answered each on its own; a write the kernel refused is undone in the store, the others stand. A delete of an
   * element not recorded is ENTRY_NOT_FOUND, as alone. A set found full grows once for the whole group.
   */
  async #applySingles(name: string, writes: readonly EntryWrite[]): Promise<Array<PromiseSettledResult<void>>> {
    let definition = await this.#managed(name);
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
        definition = await this.#grow(definition, maxelem + full.length);
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

  async #createLocked(definition: IpsetDefinition): Promise<void> {
    if (this.#store.getSet(definition.name) !== undefined || (await this.#kernel.get(definition.name)) !== undefined) {
      throw alreadyExists(definition.name);
    }
    this.#store.createSet(definition);
    try {
      await this.#kernel.create(definition);
    } catch (error) {
      this.#store.deleteSet(definition.name);
      throw error;
    }
  }

  /** The recorded definition of a managed set; unknown → NOT_FOUND, unmanaged → FAILED_PRECONDITION. */
  async #managed(name: string): Promise<IpsetDefinition> {
    const definition = this.#store.getSet(name);
    if (definition !== undefined) return definition;
    // Only the error path pays for a kernel lookup (the store answers the common case without I/O).
    throw (await this.#kernel.get(name)) === undefined ? notFound(name) : notManaged(name);
  }

  /** One element through the session, several (a network's addresses) as one restore. */
  async #deleteFromKernel(name: string, elements: readonly string[]): Promise<void> {
    if (elements.length === 1) await this.#kernel.delete(name, elements[0]!);
    else await this.#kernel.restore(delLines(name, elements));
  }

  /** A pending safe-mode rollback restores rules that may match the set: without it, the rollback could never apply. */
  #refuseIfRollbackNeeds(name: string, what: string): void {
    const pattern = new RegExp(`--match-set ${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} `);
    const saved = this.#rollbacks().find((table) => pattern.test(table.kernel));
    if (saved === undefined) return;
    throw new ServerError("IPSET_IN_USE", `set "${name}" cannot be ${what}: the ${saved.family} ${saved.table} table a pending safe-mode change rolls back to at ${new Date(saved.deadline).toISOString()} uses it; confirm that change or let it roll back first`, { ipset: name, table: saved.table });
  }

  async #refuseInUse(name: string): Promise<never> {
    const rules = await this.#rules.setReferences(name);
    const first = rules[0];
    const detail = first === undefined
      ? "it is referenced by another kernel component (a list:set set or a rule outside iptables)"
      : `it is referenced by the ${first.family === "inet" ? "iptables" : "ip6tables"} rule "${first.rule}" in table ${first.table}${rules.length > 1 ? ` (and ${rules.length - 1} more)` : ""}`;
    throw new ServerError("IPSET_IN_USE", `set "${name}" cannot be deleted: ${detail}; delete the rule first`, { ipset: name, ...(first === undefined ? {} : { rule: first.rule, table: first.table }) });
  }

  /**
   * Room for a batch, under the set's lock: undefined if it fits, else how many entries the set must grow to hold (a
   * set that grows), or IPSET_FULL before anything is applied. `exists` false: a set the caller is about to create
   * (to be made that large, not grown).
   */
  #growthNeeded(definition: IpsetDefinition, elements: readonly string[], exists: boolean): number | undefined {
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
  async #grow(definition: IpsetDefinition, needed: number, more?: (copy: string) => AsyncIterable<string>): Promise<IpsetDefinition> {
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

  /**
   * Records and applies a batch as a provisional store batch, returning its id for the caller to commit; if the
   * kernel refuses any of it, what it applied is taken back out of the kernel and the store before the error goes on.
   * With `growTo`, the set grows: the batch goes into the larger copy after the entries already there, recorded as it
   * is streamed (one `ipset restore`, as a user would build the copy; the live set is untouched until the swap).
   */
  async #applyBatch(definition: IpsetDefinition, batch: PreparedBatch, growTo?: number): Promise<number> {
    const batchId = this.#store.beginBatch(definition.name);
    try {
      if (growTo === undefined) {
        await this.#kernel.restore(this.#recordThenRender(definition, batch, batchId));
      } else {
        await this.#grow(definition, growTo, (copy) => this.#recordThenRender(definition, batch, batchId, copy));
      }
    } catch (error) {
      await this.#rollBackBatch(definition.name, batchId);
      throw error;
    }
    return batchId;
  }

  /**
   * Deletes a provisional batch's new entries from the kernel, then forgets them. If the kernel cannot take the
   * deletes, the store forgets them anyway: the next reconcile removes entries the store does not know.
   */
  async #rollBackBatch(name: string, batchId: number): Promise<number> {
    const elements = this.#store.batchElements(name, batchId);
    try {
      if (elements.length > 0) await this.#kernel.restore(delLines(name, elements));
    } catch (error) {
      if (!(error instanceof ServerError && error.reason === "IPSET_NOT_FOUND")) {
        // The refused element itself may be one the kernel cannot name in a delete either (a list:set member that is
        // no longer a set): it never got in, so the deletes go on past such lines.
        try {
          await this.#kernel.restoreSkipping(elements.map((element) => `del ${name} ${element}`), MAX_REFUSED_RECORDS);
        } catch (again) {
          if (!(again instanceof ServerError && again.reason === "IPSET_NOT_FOUND")) this.#log.error({ ipset: name, error: String(again) }, "cannot take a refused batch back out of the kernel; the next reconcile will");
        }
      }
    }
    this.#store.discardBatch(name, batchId);
    return elements.length;
  }

  /**
   * Records each chunk in the store, then yields its `add` lines to `ipset restore`: record before apply, streamed.
   * `target`: the set the lines name (the copy of a growing set).
   */
  async *#recordThenRender(definition: IpsetDefinition, batch: PreparedBatch, batchId: number, target = definition.name): AsyncGenerator<string> {
    const { elements, expiresAt, comments } = batch;
    for (let from = 0; from < elements.length; from += RESTORE_CHUNK) {
      const to = Math.min(elements.length, from + RESTORE_CHUNK);
      this.#store.putBatch(definition.name, batchId, batch, from, to);
      // Timeouts are computed when the chunk is sent, so a long batch does not hand the kernel stale remaining times.
      const now = Date.now();
      let text = "";
      for (let i = from; i < to; i++) {
        const expiry = expiresAt[i]!;
        text += `${renderAddLine(target, toApply(definition, { element: elements[i]!, ...(expiry === 0 ? {} : { expiresAt: expiry }), ...(comments?.[i] === undefined ? {} : { comment: comments[i] }) }, now))}\n`;
      }
      yield text;
    }
  }
}

// ---- pure helpers ------------------------------------------------------------------------------------------------

function view(kernel: KernelIpset | undefined, managed: IpsetDefinition | undefined): IpsetView {
  const growth = managed === undefined ? {} : { ...(managed.autoGrow === undefined ? {} : { autoGrow: managed.autoGrow }), ...(managed.growLimit === undefined ? {} : { growLimit: managed.growLimit }) };
  return {
    definition: kernel === undefined ? managed! : { ...kernel.definition, ...growth },
    managed: managed !== undefined,
    memoryBytes: kernel?.memoryBytes ?? 0,
    references: kernel?.references ?? 0,
    entryCount: kernel?.entryCount ?? 0,
  };
}

/** Validates one entry against its set and turns its relative timeout into an absolute expiry. */
function prepare(definition: IpsetDefinition, input: EntryInput, now: number, field: string): StoredEntry {
  const element = normalizeElementAt(definition, input.element, `${field}.element`);
  const expiresAt = expiryOf(definition, input.timeout, now, `${field}.timeout`);
  const comment = commentOf(definition, input.comment, `${field}.comment`);
  return { element, ...(expiresAt === 0 ? {} : { expiresAt }), ...(comment === undefined ? {} : { comment }) };
}

/** Absolute expiry (ms) for a requested timeout; 0 = permanent. Absent timeout = the set's default. */
function expiryOf(definition: IpsetDefinition, timeout: number | undefined, now: number, field: string): number {
  if (timeout !== undefined) {
    if (definition.timeout === undefined) {
      throw new ServerError("TIMEOUT_NOT_SUPPORTED", `set "${definition.name}" was created without timeout support; omit ${field} or recreate the set with a default timeout`, { field, ipset: definition.name });
    }
    validateTimeout(timeout, field);
  }
  const seconds = timeout ?? definition.timeout ?? 0;
  return seconds > 0 ? now + seconds * 1000 : 0;
}

/** The comment to record, or undefined for none ("" means none, as in proto3). */
function commentOf(definition: IpsetDefinition, comment: string | undefined, field: string): string | undefined {
  if (comment === undefined || comment === "") return undefined;
  if (!definition.comments) {
    throw new ServerError("COMMENT_NOT_SUPPORTED", `set "${definition.name}" was created without comment support; omit ${field} or recreate the set with comments`, { field, ipset: definition.name });
  }
  validateComment(comment);
  return comment;
}

/**
 * Validates a whole batch into flat arrays (a million entries must not become a million objects). Field names for
 * errors are built only when an entry fails: `entries[i]`, `elements[i]`, or what `label` says (import lines).
 */
function prepareBatch(definition: IpsetDefinition, input: BatchInput, now: number, label?: (index: number) => string): PreparedBatch {
  const shared = input.elements ?? [];
  const total = input.entries.length + shared.length;
  checkBatchSize(total);
  const elements = new Array<string>(total);
  const expiresAt = new Float64Array(total);
  let comments: Array<string | undefined> | undefined;
  let i = 0;
  const fieldOf = (index: number): string => label?.(index) ?? (index < input.entries.length ? `entries[${index}]` : `elements[${index - input.entries.length}]`);
  try {
    for (; i < input.entries.length; i++) {
      const entry = input.entries[i]!;
      elements[i] = normalizeElement(definition, entry.element);
      expiresAt[i] = entry.timeout === undefined && definition.timeout === undefined ? 0 : expiryOf(definition, entry.timeout, now, "timeout");
      const comment = commentOf(definition, entry.comment, "comment");
      if (comment !== undefined) (comments ??= new Array<string | undefined>(total))[i] = comment;
    }
    if (shared.length > 0) {
      const sharedExpiry = expiryOf(definition, input.timeout, now, "timeout");
      const sharedComment = commentOf(definition, input.comment, "comment");
      if (sharedComment !== undefined) comments ??= new Array<string | undefined>(total);
      for (; i < total; i++) {
        elements[i] = normalizeElement(definition, shared[i - input.entries.length]!);
        expiresAt[i] = sharedExpiry;
        if (sharedComment !== undefined) comments![i] = sharedComment;
      }
    }
  } catch (error) {
    if (!(error instanceof ServerError)) throw error;
    const field = error.metadata.field === undefined || error.metadata.field === "element" ? fieldOf(i) : `${fieldOf(i)}.${error.metadata.field}`;
    throw new ServerError(error.reason, `${fieldOf(i)}: ${error.message}`, { ...error.metadata, field });
  }
  return expandBatch(definition.typeName, { elements, expiresAt, comments });
}

/** The batch with each network in a set of single addresses replaced by its addresses (see expandElement). */
function expandBatch(typeName: string, batch: PreparedBatch): PreparedBatch {
  const { elements, expiresAt, comments } = batch;
  if (!holdsSingleAddresses(typeName) || !elements.some((element) => element.includes("/"))) return batch;
  const expanded: string[] = [];
  const expiries: number[] = [];
  const notes: Array<string | undefined> = [];
  for (let i = 0; i < elements.length; i++) {
    for (const element of expandElement(typeName, elements[i]!)) {
      expanded.push(element);
      expiries.push(expiresAt[i]!);
      notes.push(comments?.[i]);
    }
  }
  checkBatchSize(expanded.length);
  return { elements: expanded, expiresAt: Float64Array.from(expiries), comments: comments === undefined ? undefined : notes };
}

function normalizeElementAt(definition: IpsetDefinition, raw: string, field: string): string {
  try {
    return normalizeElement(definition, raw);
  } catch (error) {
    if (error instanceof ServerError) throw new ServerError(error.reason, `${field}: ${error.message}`, { ...error.metadata, field });
    throw error;
  }
}

/** The kernel form of a recorded entry: remaining seconds for timeout sets (0 = permanent), none otherwise. */
function toApply(definition: IpsetDefinition, entry: StoredEntry, now: number): { element: string; timeout?: number; comment?: string } {
  const timeout = definition.timeout === undefined ? undefined : entry.expiresAt === undefined ? 0 : Math.max(1, Math.ceil((entry.expiresAt - now) / 1000));
  return { element: entry.element, ...(timeout === undefined ? {} : { timeout }), ...(entry.comment === undefined ? {} : { comment: entry.comment }) };
}

function toView(entry: StoredEntry, now: number): EntryView {
  return {
    element: entry.element,
    ...(entry.expiresAt === undefined ? {} : { timeout: Math.max(0, Math.ceil((entry.expiresAt - now) / 1000)) }),
    ...(entry.comment === undefined ? {} : { comment: entry.comment }),
  };
}

/** `del` lines for restore input (absent elements are not an error under -exist). */
function delLines(set: string, elements: Iterable<string>): Generator<string> {
  return chunked(elements, (element) => `del ${set} ${element}\n`);
}

/** Restore text of items, RESTORE_CHUNK lines at a time (items may be a lazy iterable, such as a set's entries). */
function* chunked<T>(items: Iterable<T>, render: (item: T) => string): Generator<string> {
  let text = "";
  let lines = 0;
  for (const item of items) {
    text += render(item);
    if (++lines === RESTORE_CHUNK) {
      yield text;
      text = "";
      lines = 0;
    }
  }
  if (text !== "") yield text;
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

function checkBatchSize(size: number): void {
  if (size > MAX_BATCH) throw new ServerError("BATCH_TOO_LARGE", `a batch holds at most ${MAX_BATCH} entries; split it into several calls`, { size: String(size) });
}

function describe(definition: IpsetDefinition): string {
  return definition.family === undefined ? definition.typeName : `${definition.typeName} family ${definition.family}`;
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

function notAnEntry(name: string, element: string): ServerError {
  return new ServerError("ENTRY_NOT_FOUND", `${element} is not an entry of set "${name}"`, { ipset: name, element });
}

function notFound(name: string): ServerError {
  return new ServerError("IPSET_NOT_FOUND", `set "${name}" does not exist`, { ipset: name });
}

function notManaged(name: string): ServerError {
  return new ServerError("IPSET_NOT_MANAGED", `set "${name}" was created outside Portcullis and is read-only; adopt it first (AdoptIpset) to change it`, { ipset: name });
}

function alreadyExists(name: string): ServerError {
  return new ServerError("IPSET_ALREADY_EXISTS", `set "${name}" already exists; choose another name or delete it first`, { ipset: name });
}
