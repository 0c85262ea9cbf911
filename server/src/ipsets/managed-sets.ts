import { ServerError } from "../errors.js";
import type { IpsetDriver } from "../drivers/ipset-driver.js";
import type { IpsetStore } from "../store/ipset-store.js";
import type { IpsetDefinition, KernelIpset } from "./ipset-model.js";

/** A set as clients see it: definition, kernel counters, and whether Portcullis manages it. */
export interface IpsetView {
  readonly definition: IpsetDefinition;
  readonly managed: boolean;
  readonly memoryBytes: number;
  readonly references: number;
  readonly entryCount: number;
  /** The resource (`feeds/{feed}`) that fills the set, when another part of Portcullis does. */
  readonly owner?: string;
}

/**
 * Which part of Portcullis other than this domain fills a set, if any (`feeds/{feed}`): such a set is not managed
 * here — its entries follow its owner — and no set of this domain may take its name.
 */
export type SetOwners = (name: string) => string | undefined;

/**
 * The sets as every part of the ipset domain needs them: a managed set's recorded definition, a set as clients see
 * it, and a new managed set made. Callers hold the set's lock.
 */
export class ManagedSets {
  readonly #kernel: IpsetDriver;
  readonly #store: IpsetStore;
  readonly #owners: SetOwners;

  constructor(kernel: IpsetDriver, store: IpsetStore, owners: SetOwners) {
    this.#kernel = kernel;
    this.#store = store;
    this.#owners = owners;
  }

  async view(name: string): Promise<IpsetView> {
    const managed = this.#store.getSet(name);
    const kernel = await this.#kernel.get(name);
    if (kernel === undefined && managed === undefined) throw notFound(name);
    return setView(kernel, managed, this.#owners(name));
  }

  /** The owner of a set another part of Portcullis fills (see SetOwners). */
  ownerOf(name: string): string | undefined {
    return this.#owners(name);
  }

  /** The recorded definition of a managed set; unknown → NOT_FOUND, unmanaged → FAILED_PRECONDITION. */
  async definition(name: string): Promise<IpsetDefinition> {
    const definition = this.#store.getSet(name);
    if (definition !== undefined) return definition;
    // Only the error path pays for a kernel lookup (the store answers the common case without I/O).
    throw (await this.#kernel.get(name)) === undefined ? notFound(name) : this.unmanaged(name);
  }

  /** Why a set that exists in the kernel only cannot be changed here: another tool's, or a feed's. */
  unmanaged(name: string): ServerError {
    const owner = this.#owners(name);
    if (owner === undefined) return notManaged(name);
    return new ServerError("IPSET_OWNED_BY_FEED", `set "${name}" is filled by ${owner}: its entries follow that feed's list; change the feed instead`, { ipset: name, feed: owner });
  }

  /** Refuses a name taken: by a managed set, a set in the kernel, or a set a feed fills. */
  async refuseTaken(name: string): Promise<void> {
    const owner = this.#owners(name);
    if (owner !== undefined) throw new ServerError("IPSET_ALREADY_EXISTS", `set "${name}" is filled by ${owner}; choose another name`, { ipset: name, feed: owner });
    if (this.#store.getSet(name) !== undefined || (await this.#kernel.get(name)) !== undefined) throw alreadyExists(name);
  }

  /** Records a new managed set, then creates it in the kernel. */
  async create(definition: IpsetDefinition): Promise<void> {
    await this.refuseTaken(definition.name);
    this.#store.createSet(definition);
    try {
      await this.#kernel.create(definition);
    } catch (error) {
      this.#store.deleteSet(definition.name);
      throw error;
    }
  }
}

export function setView(kernel: KernelIpset | undefined, managed: IpsetDefinition | undefined, owner?: string): IpsetView {
  const growth = managed === undefined ? {} : { ...(managed.autoGrow === undefined ? {} : { autoGrow: managed.autoGrow }), ...(managed.growLimit === undefined ? {} : { growLimit: managed.growLimit }) };
  return {
    definition: kernel === undefined ? managed! : { ...kernel.definition, ...growth },
    managed: managed !== undefined,
    memoryBytes: kernel?.memoryBytes ?? 0,
    references: kernel?.references ?? 0,
    entryCount: kernel?.entryCount ?? 0,
    ...(owner === undefined ? {} : { owner }),
  };
}

export function notFound(name: string): ServerError {
  return new ServerError("IPSET_NOT_FOUND", `set "${name}" does not exist`, { ipset: name });
}

export function notManaged(name: string): ServerError {
  return new ServerError("IPSET_NOT_MANAGED", `set "${name}" was created outside Portcullis and is read-only; adopt it first (AdoptIpset) to change it`, { ipset: name });
}

export function alreadyExists(name: string): ServerError {
  return new ServerError("IPSET_ALREADY_EXISTS", `set "${name}" already exists; choose another name or delete it first`, { ipset: name });
}
