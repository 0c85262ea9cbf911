import { randomBytes } from "node:crypto";
import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import type { IpsetDriver } from "../drivers/ipset-driver.js";
import { renderCreateLine } from "../drivers/parse/ipset-save.js";
import type { IpsetDefinition, KernelIpset } from "../ipsets/ipset-model.js";
import { isCrowdsec, setsOf, type FeedDefinition } from "./feed-model.js";
import type { RestoreTarget } from "./feed-list.js";

/** Names of the sets a list is built in: `~` is not allowed in the names of sets made through the API. */
const TEMPORARY_PREFIX = "~pc-feed-";

/**
 * The most entries a feed's set holds, per family: maxelem is fixed when a set is made, and the set a list is built in
 * is made before the list's length is known. It costs nothing until used (the kernel allocates per entry).
 */
export const FEED_MAXELEM = 16_777_216;

export type Family = "ipv4" | "ipv6";

/** The two sets a new list is built in before they are swapped in, with their `create` lines. */
export interface BuildSets extends RestoreTarget {
  readonly names: readonly [string, string];
}

/**
 * A feed's two sets in the kernel (hash:net, one per family), and the temporary sets lists are built in. Rules match
 * the sets by name, so replacing a set's contents with `ipset swap` (or emptying it with `ipset flush`, one kernel
 * operation too) never shows them a set that is missing or half filled.
 */
export class FeedSets {
  readonly #kernel: IpsetDriver;
  readonly #log: Logger;
  /** Temporary sets being filled now: a repair meanwhile must not take them for leftovers. */
  readonly #building = new Set<string>();

  constructor(kernel: IpsetDriver, log: Logger) {
    this.#kernel = kernel;
    this.#log = log;
  }

  /**
   * The definition of a feed's set of one family; with `timeouts` (a crowdsec feed, whose entries expire with their
   * decisions) it supports per-entry timeouts, permanent by default.
   */
  static definition(name: string, family: Family, timeouts = false): IpsetDefinition {
    return { name, typeName: "hash:net", family: family === "ipv4" ? "inet" : "inet6", maxelem: FEED_MAXELEM, comments: false, ...(timeouts ? { timeout: 0 } : {}) };
  }

  /** Creates whichever of the feed's sets the kernel lacks (empty); returns how many it created. */
  async ensure(feed: Pick<FeedDefinition, "ipset" | "format">): Promise<number> {
    let created = 0;
    const [ipv4, ipv6] = setsOf(feed);
    for (const [name, family] of [[ipv4, "ipv4"], [ipv6, "ipv6"]] as const) {
      if ((await this.#kernel.get(name)) !== undefined) continue;
      await this.#kernel.create(FeedSets.definition(name, family, isCrowdsec(feed)));
      created++;
    }
    return created;
  }

  /** The kernel's view of both sets (undefined: missing). */
  async current(feed: Pick<FeedDefinition, "ipset">): Promise<[KernelIpset | undefined, KernelIpset | undefined]> {
    const [ipv4, ipv6] = setsOf(feed);
    return [await this.#kernel.get(ipv4), await this.#kernel.get(ipv6)];
  }

  /** Names for a new pair of temporary sets (with timeout support if `timeouts`); `release` them when done. */
  reserve(timeouts = false): BuildSets {
    const id = randomBytes(4).toString("hex");
    const names = [`${TEMPORARY_PREFIX}${id}-4`, `${TEMPORARY_PREFIX}${id}-6`] as const;
    for (const name of names) this.#building.add(name);
    return {
      names,
      ipv4: names[0],
      ipv6: names[1],
      createLine: (family) => renderCreateLine(FeedSets.definition(family === "ipv4" ? names[0] : names[1], family, timeouts)),
    };
  }

  /** Fills temporary sets from `ipset restore` lines (their create lines included), streamed. */
  fill(lines: AsyncIterable<string>): Promise<void> {
    return this.#kernel.restore(lines);
  }

  /**
   * Puts a filled temporary set in the place of a feed's set: swapped with it, or renamed to its name when the kernel
   * lost it. The temporary name then holds the old contents, for `release` to destroy.
   */
  async install(temporary: string, target: string): Promise<void> {
    try {
      await this.#kernel.swap(temporary, target);
    } catch (error) {
      if (!(error instanceof ServerError && error.reason === "IPSET_NOT_FOUND") || (await this.#kernel.get(target)) !== undefined) throw error;
      await this.#kernel.rename(temporary, target);
    }
  }

  /** Applies `add`/`del` lines to live sets (entries already there or already gone are not an error). */
  change(lines: string): Promise<void> {
    return this.#kernel.restore([lines]);
  }

  /** Empties a feed's set (created empty if the kernel lost it). */
  async empty(target: string, family: Family, timeouts = false): Promise<void> {
    if ((await this.#kernel.get(target)) === undefined) await this.#kernel.create(FeedSets.definition(target, family, timeouts));
    else await this.#kernel.flush(target);
  }

  /** Destroys a pair of temporary sets: those `made` says the restore created (after a swap: the old contents). */
  async release(sets: BuildSets, made: readonly [boolean, boolean]): Promise<void> {
    for (const [i, name] of sets.names.entries()) {
      if (made[i] === true) {
        await this.#kernel.destroy(name).catch((error: unknown) => {
          if (!(error instanceof ServerError && error.reason === "IPSET_NOT_FOUND")) this.#log.warn({ ipset: name, error: String(error) }, "cannot destroy a feed's temporary set; the next repair will");
        });
      }
      this.#building.delete(name);
    }
  }

  /** Destroys temporary sets a stop left behind (unreferenced, not being filled now). */
  async removeLeftovers(): Promise<void> {
    for (const set of await this.#kernel.list()) {
      const name = set.definition.name;
      if (!name.startsWith(TEMPORARY_PREFIX) || set.references > 0 || this.#building.has(name)) continue;
      await this.#kernel.destroy(name).catch((error: unknown) => this.#log.warn({ ipset: name, error: String(error) }, "cannot destroy a feed's leftover temporary set"));
    }
  }
}
