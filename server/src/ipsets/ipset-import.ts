import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import type { KeyedLock } from "../keyed-lock.js";
import type { IpsetDriver } from "../drivers/ipset-driver.js";
import { parseIpsetSave } from "../drivers/parse/ipset-save.js";
import type { IpsetStore } from "../store/ipset-store.js";
import { checkBatchSize, prepareBatch, type EntryInput, type PreparedBatch } from "./entry-preparation.js";
import type { IpsetBatches } from "./ipset-batches.js";
import { compatible, describeDefinition, grownDefinition, validateDefinition } from "./ipset-definition.js";
import type { IpsetDefinition } from "./ipset-model.js";
import type { IpsetView, ManagedSets } from "./managed-sets.js";
import type { SetGrowth } from "./set-growth.js";

/**
 * ImportIpsets: `ipset save` text made into managed sets and entries, all or nothing across every set it names, with
 * each set's entries applied as one batch.
 */
export class IpsetImport {
  readonly #kernel: IpsetDriver;
  readonly #store: IpsetStore;
  readonly #lock: KeyedLock;
  readonly #sets: ManagedSets;
  readonly #growth: SetGrowth;
  readonly #batches: IpsetBatches;
  readonly #log: Logger;

  constructor(deps: { kernel: IpsetDriver; store: IpsetStore; lock: KeyedLock; sets: ManagedSets; growth: SetGrowth; batches: IpsetBatches; log: Logger }) {
    this.#kernel = deps.kernel;
    this.#store = deps.store;
    this.#lock = deps.lock;
    this.#sets = deps.sets;
    this.#growth = deps.growth;
    this.#batches = deps.batches;
    this.#log = deps.log;
  }

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
          throw new ServerError("IPSET_INCOMPATIBLE", `set "${set.name}" exists as ${describeDefinition(existing)}, the import declares ${describeDefinition(wanted)}`, { ipset: set.name });
        }
        definitions.set(set.name, { definition: existing, create: false });
      } else {
        if ((await this.#kernel.get(set.name)) !== undefined || this.#sets.ownerOf(set.name) !== undefined) throw this.#sets.unmanaged(set.name);
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
        const needed = this.#growth.needed(planned.definition, batch.elements, !planned.create);
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
            await this.#sets.create(definition);
            created.push(name);
          }
          const batch = batches.get(name);
          if (batch === undefined) continue;
          applied.push({ name, batchId: await this.#batches.apply(definition, batch, growTo.get(name)) });
          added += batch.elements.length;
        }
      } catch (error) {
        for (const { name, batchId } of applied.reverse()) if (!created.includes(name)) await this.#batches.rollBack(name, batchId);
        for (const name of created.reverse()) {
          await this.#kernel.destroy(name).catch((undo: unknown) => this.#log.error({ ipset: name, error: String(undo) }, "cannot destroy a set of a failed import"));
          this.#store.deleteSet(name);
        }
        throw error;
      }
      for (const { batchId } of applied) this.#store.commitBatch(batchId);
      return { sets: await Promise.all(names.map((name) => this.#sets.view(name))), added };
    });
  }
}
