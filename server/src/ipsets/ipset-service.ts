import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import { KeyedLock } from "../keyed-lock.js";
import type { EventLog } from "../events/event-log.js";
import type { IpsetDriver } from "../drivers/ipset-driver.js";
import type { IptablesDriver } from "../drivers/iptables-driver.js";
import type { IpsetStore } from "../store/ipset-store.js";
import { validateIpsetName } from "../names.js";
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
 * under the one lock per set held here.
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

  constructor(deps: { kernel: IpsetDriver; rules: IptablesDriver; store: IpsetStore; events: EventLog; log: Logger; pendingRollbacks?: () => readonly SavedTable[]; owners?: SetOwners }) {
    const { kernel, store, events, log } = deps;
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

  get(name: string): Promise<IpsetView> {
    return this.#sets.view(name);
  }

  /** A managed set's definition, from the store (no kernel call); IPSET_NOT_FOUND or IPSET_NOT_MANAGED otherwise. */
  definition(name: string): Promise<IpsetDefinition> {
    return this.#sets.definition(name);
  }

  async create(input: DefinitionInput): Promise<IpsetView> {
    const definition = validateDefinition(input);
    return this.#lock.with([definition.name], async () => {
      await this.#sets.create(definition);
      return this.get(definition.name);
    });
  }

  async delete(name: string): Promise<void> {
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
  }

  async flush(name: string): Promise<IpsetView> {
    return this.#lock.with([name], async () => {
      await this.#sets.definition(name);
      await this.#kernel.flush(name);
      this.#store.flush(name);
      return this.get(name);
    });
  }

  async rename(name: string, newName: string): Promise<IpsetView> {
    validateIpsetName(newName, "new_ipset_id");
    return this.#lock.with([name, newName], async () => {
      await this.#sets.definition(name);
      this.#refuseIfRollbackNeeds(name, "renamed");
      await this.#sets.refuseTaken(newName);
      await this.#kernel.rename(name, newName);
      this.#store.renameSet(name, newName);
      return this.get(newName);
    });
  }

  async swap(name: string, other: string): Promise<[IpsetView, IpsetView]> {
    return this.#lock.with([name, other], async () => {
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
  }

  async adopt(name: string): Promise<IpsetView> {
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

  addEntry(name: string, input: EntryInput): Promise<EntryView> {
    return this.#entries.add(name, input);
  }

  deleteEntry(name: string, rawElement: string): Promise<void> {
    return this.#entries.delete(name, rawElement);
  }

  /** See IpsetEntries.removeElement: absent is fine. */
  removeElement(name: string, rawElement: string): Promise<void> {
    return this.#entries.removeElement(name, rawElement);
  }

  testEntry(name: string, rawElement: string): Promise<boolean> {
    return this.#entries.test(name, rawElement);
  }

  batchAdd(name: string, input: BatchInput): Promise<number> {
    return this.#batches.add(name, input);
  }

  batchDelete(name: string, rawElements: readonly string[]): Promise<number> {
    return this.#batches.delete(name, rawElements);
  }

  /** Run at start, before serving: see IpsetBatches.rollBackInterrupted. */
  rollBackInterruptedBatches(): Promise<number> {
    return this.#batches.rollBackInterrupted();
  }

  import(text: string): Promise<{ sets: IpsetView[]; added: number }> {
    return this.#import.import(text);
  }

  reconcile(full: boolean): Promise<ReconcileReport> {
    return this.#reconciler.reconcile(full);
  }

  // ---- helpers -------------------------------------------------------------------------------------------------

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
