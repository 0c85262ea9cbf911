import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import { KeyedLock } from "../keyed-lock.js";
import type { EventLog } from "../events/event-log.js";
import type { ApiCall } from "../events/api-call.js";
import type { FleetSharing, SharedEntry } from "../fleet/fleet.js";
import type { IpsetDriver } from "../drivers/ipset-driver.js";
import type { IptablesDriver } from "../drivers/iptables-driver.js";
import type { IpsetStore } from "../store/ipset-store.js";
import { entryName, ipsetName, validateIpsetName } from "../names.js";
import type { BatchInput, EntryInput, EntryView } from "./entry-preparation.js";
import { IpsetBatches } from "./ipset-batches.js";
import { compatible, describeDefinition, validateDefinition, type DefinitionInput } from "./ipset-definition.js";
import { IpsetEntries, type EntryPage } from "./ipset-entries.js";
import { IpsetImport } from "./ipset-import.js";
import { isModeledType, type IpsetDefinition } from "./ipset-model.js";
import { IpsetReconciler, type ReconcileReport } from "./ipset-reconcile.js";
import { ManagedSets, notFound, setView, type IpsetView, type SetOwners } from "./managed-sets.js";
import { SetGrowth } from "./set-growth.js";

export type { IpsetView, SetOwners } from "./managed-sets.js";
export type { EntryView } from "./entry-preparation.js";

/** A table a pending safe-mode change would roll back to: its iptables-save text, which may name sets. */
export interface SavedTable {
  readonly family: string;
  readonly table: string;
  readonly deadline: number;
  readonly kernel: string;
}

/**
 * The ipset domain: validation, the managed/unmanaged rule, and the order of every change — validate, record in the
 * store, apply to the kernel, acknowledge — so an acknowledged change survives a crash and a kernel that lost it.
 * This service holds the sets themselves; entries (ipset-entries.ts), batches (ipset-batches.ts), growth
 * (set-growth.ts), import (ipset-import.ts) and the repair at start (ipset-reconcile.ts) have files of their own, all
 * under the one lock per set held here. Changes asked for through the API record their events and, for entries of
 * shared sets or with fleet scope, go to the fleet; the `…Here` ones are Portcullis's own (jail enforcement, the fleet
 * applier), which record their own events.
 */
export class IpsetService {
  readonly #kernel: IpsetDriver;
  readonly #rules: IptablesDriver;
  readonly #store: IpsetStore;
  readonly #rollbacks: () => readonly SavedTable[];
  readonly #lock = new KeyedLock();
  readonly #sets: ManagedSets;
  readonly #entries: IpsetEntries;
  readonly #batches: IpsetBatches;
  readonly #import: IpsetImport;
  readonly #reconciler: IpsetReconciler;
  readonly #fleet: FleetSharing;

  constructor(deps: { kernel: IpsetDriver; rules: IptablesDriver; store: IpsetStore; events: EventLog; log: Logger; fleet: FleetSharing; pendingRollbacks?: () => readonly SavedTable[]; owners?: SetOwners }) {
    const { kernel, store, events, log } = deps;
    this.#fleet = deps.fleet;
    this.#kernel = kernel;
    this.#rollbacks = deps.pendingRollbacks ?? (() => []);
    this.#rules = deps.rules;
    this.#store = store;
    const lock = this.#lock;
    const sets = new ManagedSets(kernel, store, deps.owners ?? (() => undefined));
    const growth = new SetGrowth({ kernel, store, events, log });
    const batches = new IpsetBatches({ kernel, store, lock, sets, growth, events, log });
    this.#sets = sets;
    this.#batches = batches;
    this.#entries = new IpsetEntries({ kernel, store, lock, sets, growth, batches });
    this.#import = new IpsetImport({ kernel, store, lock, sets, growth, batches, log });
    this.#reconciler = new IpsetReconciler({ kernel, store, lock, growth, events, log });
  }

  // ---- sets ----------------------------------------------------------------------------------------------------

  async list(): Promise<IpsetView[]> {
    const kernel = new Map((await this.#kernel.list()).map((set) => [set.definition.name, set]));
    const managed = new Map(this.#store.sets().map((definition) => [definition.name, definition]));
    const names = [...new Set([...kernel.keys(), ...managed.keys()])].sort();
    return names.map((name) => setView(kernel.get(name), managed.get(name), this.#sets.ownerOf(name)));
  }

  /** A page of the sets (by name) after the set `after` ("" for the first page). */
  async page(after: string, size: number): Promise<{ ipsets: IpsetView[]; nextAfter?: string }> {
    const all = (await this.list()).filter((set) => set.definition.name > after);
    const page = all.slice(0, size);
    return { ipsets: page, ...(all.length > size ? { nextAfter: page[page.length - 1]!.definition.name } : {}) };
  }

  get(name: string): Promise<IpsetView> {
    return this.#sets.view(name);
  }

  /** A managed set's definition, from the store (no kernel call); IPSET_NOT_FOUND or IPSET_NOT_MANAGED otherwise. */
  definition(name: string): Promise<IpsetDefinition> {
    return this.#sets.definition(name);
  }

  async create(input: DefinitionInput, call: ApiCall): Promise<IpsetView> {
    const view = await this.createHere(input);
    call.record({ type: "IPSET_CREATED", resource: ipsetName(view.definition.name), attributes: { type: view.definition.typeName } });
    return view;
  }

  /** A set made for jail enforcement, which records its own event. */
  async createHere(input: DefinitionInput): Promise<IpsetView> {
    const definition = validateDefinition(input);
    return this.#lock.with([definition.name], async () => {
      await this.#sets.create(definition);
      return this.get(definition.name);
    });
  }

  async delete(name: string, call: ApiCall): Promise<void> {
    await this.#lock.with([name], async () => {
      await this.#sets.definition(name);
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
    call.record({ type: "IPSET_DELETED", resource: ipsetName(name) });
  }

  async flush(name: string, call: ApiCall): Promise<IpsetView> {
    const view = await this.#lock.with([name], async () => {
      await this.#sets.definition(name);
      await this.#kernel.flush(name);
      this.#store.flush(name);
      return this.get(name);
    });
    call.record({ type: "IPSET_FLUSHED", resource: ipsetName(name) });
    return view;
  }

  async rename(name: string, newName: string, call: ApiCall): Promise<IpsetView> {
    validateIpsetName(newName, "new_ipset_id");
    const view = await this.#lock.with([name, newName], async () => {
      await this.#sets.definition(name);
      this.#refuseIfRollbackNeeds(name, "renamed");
      await this.#sets.refuseTaken(newName);
      await this.#kernel.rename(name, newName);
      this.#store.renameSet(name, newName);
      return this.get(newName);
    });
    call.record({ type: "IPSET_RENAMED", resource: ipsetName(name), attributes: { new_name: ipsetName(view.definition.name) } });
    return view;
  }

  async swap(name: string, other: string, call: ApiCall): Promise<[IpsetView, IpsetView]> {
    const views = await this.#lock.with([name, other], async (): Promise<[IpsetView, IpsetView]> => {
      const a = await this.#sets.definition(name);
      const b = await this.#sets.definition(other);
      if (name === other) throw new ServerError("IPSET_INCOMPATIBLE", "a set cannot be swapped with itself; name two different sets", { field: "other" });
      if (!compatible(a, b)) {
        throw new ServerError("IPSET_INCOMPATIBLE", `sets "${name}" (${describeDefinition(a)}) and "${other}" (${describeDefinition(b)}) must have the same type and family to be swapped`, { ipset: name, other });
      }
      await this.#kernel.swap(name, other);
      this.#store.swapEntries(name, other);
      return [await this.get(name), await this.get(other)];
    });
    call.record({ type: "IPSETS_SWAPPED", resource: ipsetName(name), attributes: { other: ipsetName(other) } });
    return views;
  }

  async adopt(name: string, call: ApiCall): Promise<IpsetView> {
    const view = await this.adoptHere(name);
    call.record({ type: "IPSET_ADOPTED", resource: ipsetName(name) });
    return view;
  }

  /** A kernel set taken under management for jail enforcement: no event. */
  async adoptHere(name: string): Promise<IpsetView> {
    return this.#lock.with([name], async () => {
      if (this.#store.getSet(name) !== undefined) throw new ServerError("IPSET_ALREADY_MANAGED", `set "${name}" is already managed by Portcullis`, { ipset: name });
      if (this.#sets.ownerOf(name) !== undefined) throw this.#sets.unmanaged(name);
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
      return setView(kernel, kernel.definition);
    });
  }

  /**
   * Destroys sets another part of Portcullis fills (a feed's, see SetOwners), refused like DeleteIpset while a rule
   * (or a pending safe-mode rollback) uses one of them: all are checked before any is destroyed. Missing ones are fine.
   */
  async destroyOwnedSets(names: readonly string[]): Promise<void> {
    await this.#lock.with(names, async () => {
      await this.refuseOwnedSetsInUse(names);
      for (const name of names) {
        try {
          await this.#kernel.destroy(name);
        } catch (error) {
          if (error instanceof ServerError && error.reason === "IPSET_NOT_FOUND") continue;
          if (error instanceof ServerError && error.reason === "IPSET_IN_USE") await this.#refuseInUse(name);
          throw error;
        }
      }
    });
  }

  /** Refuses (IPSET_IN_USE) if a rule or a pending safe-mode rollback uses one of the sets: see destroyOwnedSets. */
  async refuseOwnedSetsInUse(names: readonly string[]): Promise<void> {
    for (const name of names) {
      this.#refuseIfRollbackNeeds(name, "deleted");
      if (((await this.#kernel.get(name))?.references ?? 0) > 0) await this.#refuseInUse(name);
    }
  }

  async export(names: readonly string[]): Promise<string> {
    for (const name of names) {
      if ((await this.#kernel.get(name)) === undefined) throw notFound(name);
    }
    return this.#kernel.save(names);
  }

  // ---- entries, batches, import and repair: see their files -----------------------------------------------------

  /** A page of entries after `after`, ordered by element; `filter` (see entryQuery) selects some of them. */
  listEntries(name: string, after: string, limit: number, filter = ""): Promise<EntryPage> {
    return this.#entries.list(name, after, limit, filter);
  }

  /** AddEntry: ENTRY_ADDED; shared with the fleet when `fleet` asks or the set is shared. */
  async addEntry(name: string, input: EntryInput, call: ApiCall, fleet?: boolean): Promise<EntryView> {
    const shared = this.#fleet.scope("set", name, fleet);
    const added = await this.#entries.add(name, input);
    if (shared) await this.#fleet.shareSetChange("ban", name, [{ element: added.element, timeout: added.timeout ?? 0 }], call);
    call.record({
      type: "ENTRY_ADDED",
      resource: entryName(name, added.element),
      attributes: {
        element: added.element,
        ...(added.timeout === undefined ? {} : { timeout: String(added.timeout) }),
        ...(added.comment === undefined || added.comment === "" ? {} : { comment: added.comment }),
        ...this.#fleet.attributes("set", name, fleet),
      },
    });
    return added;
  }

  /** An entry added for jail enforcement or the fleet applier, which record their own events: nothing is shared. */
  addEntryHere(name: string, input: EntryInput): Promise<EntryView> {
    return this.#entries.add(name, input);
  }

  /** DeleteEntry: ENTRY_DELETED; a fleet removal goes out even when this host had no such entry (others may). */
  async deleteEntry(name: string, rawElement: string, call: ApiCall, fleet?: boolean): Promise<void> {
    const shared = this.#fleet.scope("set", name, fleet);
    try {
      await this.#entries.delete(name, rawElement);
    } catch (error) {
      if (!(shared && error instanceof ServerError && error.reason === "ENTRY_NOT_FOUND")) throw error;
    }
    if (shared) await this.#fleet.shareSetChange("unban", name, [{ element: rawElement, timeout: 0 }], call);
    call.record({ type: "ENTRY_DELETED", resource: entryName(name, rawElement), attributes: { element: rawElement, ...this.#fleet.attributes("set", name, fleet) } });
  }

  /** See IpsetEntries.removeElement: absent is fine. */
  removeElement(name: string, rawElement: string): Promise<void> {
    return this.#entries.removeElement(name, rawElement);
  }

  testEntry(name: string, rawElement: string): Promise<boolean> {
    return this.#entries.test(name, rawElement);
  }

  /** BatchAddEntries: ENTRIES_ADDED; every entry given goes to the fleet when `fleet` asks or the set is shared. */
  async batchAdd(name: string, input: BatchInput, call: ApiCall, fleet?: boolean): Promise<number> {
    const shared = this.#fleet.scope("set", name, fleet);
    const added = await this.#batches.add(name, input);
    if (shared) await this.#fleet.shareSetChange("ban", name, await this.#shared(name, input), call);
    call.record({ type: "ENTRIES_ADDED", resource: ipsetName(name), attributes: { count: String(added), ...this.#fleet.attributes("set", name, fleet) } });
    return added;
  }

  /** Entries added for jail enforcement or the fleet applier, which record their own events: nothing is shared. */
  batchAddHere(name: string, input: BatchInput): Promise<number> {
    return this.#batches.add(name, input);
  }

  async batchDelete(name: string, rawElements: readonly string[], call: ApiCall): Promise<number> {
    const deleted = await this.#batches.delete(name, rawElements);
    call.record({ type: "ENTRIES_DELETED", resource: ipsetName(name), attributes: { count: String(deleted) } });
    return deleted;
  }

  /** Entries removed for jail enforcement: no event. */
  batchDeleteHere(name: string, rawElements: readonly string[]): Promise<number> {
    return this.#batches.delete(name, rawElements);
  }

  /** Run at start, before serving: see IpsetBatches.rollBackInterrupted. */
  rollBackInterruptedBatches(): Promise<number> {
    return this.#batches.rollBackInterrupted();
  }

  /** ImportIpsets: ENTRIES_ADDED (`import`) for each set imported. */
  async import(text: string, call: ApiCall): Promise<{ sets: IpsetView[]; added: number }> {
    const result = await this.#import.import(text);
    for (const set of result.sets) call.record({ type: "ENTRIES_ADDED", resource: ipsetName(set.definition.name), attributes: { import: "true" } });
    return result;
  }

  reconcile(full: boolean): Promise<ReconcileReport> {
    return this.#reconciler.reconcile(full);
  }

  // ---- helpers -------------------------------------------------------------------------------------------------

  /** A batch's entries as the fleet shares them: an entry's own timeout, the batch's for elements, else the set's. */
  async #shared(name: string, input: BatchInput): Promise<SharedEntry[]> {
    const entries = [
      ...input.entries.map((entry) => ({ element: entry.element, timeout: entry.timeout })),
      ...(input.elements ?? []).map((element) => ({ element, timeout: input.timeout })),
    ];
    const setDefault = entries.some((entry) => entry.timeout === undefined) ? (await this.get(name)).definition.timeout ?? 0 : 0;
    return entries.map((entry) => ({ element: entry.element, timeout: entry.timeout ?? setDefault }));
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
}
