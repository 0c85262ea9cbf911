import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import type { KeyedLock } from "../keyed-lock.js";
import type { EventLog } from "../events/event-log.js";
import { ipsetName } from "../names.js";
import { releaseMemorySoon } from "../memory.js";
import type { IpsetDriver } from "../drivers/ipset-driver.js";
import { renderAddLine } from "../drivers/parse/ipset-save.js";
import type { IpsetStore } from "../store/ipset-store.js";
import { expandElement } from "./element.js";
import { checkBatchSize, normalizeElementAt, prepareBatch, toApply, type BatchInput, type PreparedBatch } from "./entry-preparation.js";
import type { IpsetDefinition } from "./ipset-model.js";
import type { ManagedSets } from "./managed-sets.js";
import { delLines, RESTORE_CHUNK } from "./restore-text.js";
import type { SetGrowth } from "./set-growth.js";

/** Batches from this size on leave enough garbage to be worth collecting right away. */
const LARGE_BATCH = 100_000;
/** Deletes a rollback may see refused (elements the kernel cannot hold) before it leaves the rest to reconcile. */
const MAX_REFUSED_DELETES = 100;

/**
 * Batches of entries, all or nothing: a batch is recorded as a provisional store batch while `ipset restore` applies
 * it, committed once the kernel took all of it, and taken back out of kernel and store otherwise (at once, or at the
 * next start if the server stopped first).
 */
export class IpsetBatches {
  readonly #kernel: IpsetDriver;
  readonly #store: IpsetStore;
  readonly #lock: KeyedLock;
  readonly #sets: ManagedSets;
  readonly #growth: SetGrowth;
  readonly #events: EventLog;
  readonly #log: Logger;

  constructor(deps: { kernel: IpsetDriver; store: IpsetStore; lock: KeyedLock; sets: ManagedSets; growth: SetGrowth; events: EventLog; log: Logger }) {
    this.#kernel = deps.kernel;
    this.#store = deps.store;
    this.#lock = deps.lock;
    this.#sets = deps.sets;
    this.#growth = deps.growth;
    this.#events = deps.events;
    this.#log = deps.log;
  }

  /**
   * Validates the whole batch first (one bad element rejects it), then records and applies it in chunks. All or
   * nothing: if the kernel refuses part of it, the part applied is taken back out of the kernel and the store; if the
   * server stops first, the next start does that (rollBackInterrupted).
   */
  async add(name: string, input: BatchInput): Promise<number> {
    const definition = await this.#sets.definition(name);
    const batch = prepareBatch(definition, input, Date.now());
    await this.#lock.with([name], async () => {
      const current = await this.#sets.definition(name);
      const batchId = await this.apply(current, batch, this.#growth.needed(current, batch.elements, true));
      this.#store.commitBatch(batchId);
    });
    if (batch.elements.length >= LARGE_BATCH) releaseMemorySoon();
    return batch.elements.length;
  }

  async delete(name: string, rawElements: readonly string[]): Promise<number> {
    const definition = await this.#sets.definition(name);
    checkBatchSize(rawElements.length);
    const elements = [...new Set(rawElements.flatMap((raw, i) => expandElement(definition.typeName, normalizeElementAt(definition, raw, `elements[${i}]`))))];
    checkBatchSize(elements.length);
    return this.#lock.with([name], async () => {
      const deleted = this.#store.deleteEntries(name, elements);
      await this.#kernel.restore(delLines(name, elements));
      return deleted;
    });
  }

  /**
   * Takes out what batches the server stopped applying had recorded (and the kernel may partly hold): from the
   * user's view the batch did not happen, and a retry applies it once. Run at start, before serving.
   */
  async rollBackInterrupted(): Promise<number> {
    let entries = 0;
    for (const { id, ipset } of this.#store.pendingBatches()) {
      const count = await this.rollBack(ipset, id);
      entries += count;
      this.#events.append({ type: "STATE_REFUSED", resource: ipsetName(ipset), attributes: { count: String(count), rolled_back: "true" } }, "system", "system");
      this.#log.warn({ ipset, entries: count }, "a batch the server stopped applying was rolled back");
    }
    return entries;
  }

  /**
   * Records and applies a batch as a provisional store batch, returning its id for the caller to commit; if the
   * kernel refuses any of it, what it applied is taken back out of the kernel and the store before the error goes on.
   * With `growTo`, the set grows: the batch goes into the larger copy after the entries already there, recorded as it
   * is streamed (one `ipset restore`, as a user would build the copy; the live set is untouched until the swap).
   */
  async apply(definition: IpsetDefinition, batch: PreparedBatch, growTo?: number): Promise<number> {
    const batchId = this.#store.beginBatch(definition.name);
    try {
      if (growTo === undefined) {
        await this.#kernel.restore(this.#recordThenRender(definition, batch, batchId));
      } else {
        await this.#growth.grow(definition, growTo, (copy) => this.#recordThenRender(definition, batch, batchId, copy));
      }
    } catch (error) {
      await this.rollBack(definition.name, batchId);
      throw error;
    }
    return batchId;
  }

  /**
   * Deletes a provisional batch's new entries from the kernel, then forgets them. A delete the kernel refuses is of an
   * element it could never hold (the one that refused the batch, such as 0.0.0.0), so the others go on past it. If the
   * kernel cannot take the deletes at all, the store forgets them anyway: the next reconcile removes entries the store
   * does not know.
   */
  async rollBack(name: string, batchId: number): Promise<number> {
    const elements = this.#store.batchElements(name, batchId);
    try {
      if (elements.length > 0) await this.#kernel.restoreSkipping(elements.map((element) => `del ${name} ${element}`), MAX_REFUSED_DELETES);
    } catch (error) {
      if (!(error instanceof ServerError && error.reason === "IPSET_NOT_FOUND")) this.#log.error({ ipset: name, error: String(error) }, "cannot take a refused batch back out of the kernel; the next reconcile will");
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
