import { AddressFamily, IpsetServiceService, IpsetType, type AddEntryRequest, type CreateIpsetRequest, type DeleteIpsetRequest, type ExportIpsetsRequest, type ExportIpsetsResponse, type ListIpsetsRequest, type ListIpsetsResponse, type BatchAddEntriesRequest, type BatchAddEntriesResponse, type DeleteEntryRequest, type Entry, type GetIpsetRequest, type Ipset, type ListEntriesRequest, type ListEntriesResponse, type TestEntryRequest, type TestEntryResponse } from "./transport/wire.js";
import type { CancellationToken } from "./base/cancellation.js";
import type { BanOptions, IpsetEntry, IpsetInfo } from "./api.js";
import type { Channel } from "./transport/channel.js";
import { fleetScope, ipsetEntry, ipsetInfo } from "./transport/convert.js";

/** Options of {@link Ipsets.add}. */
export interface AddOptions {
  /** Seconds until the entries expire (the set must support timeouts); 0 = permanent. */
  readonly timeout?: number;
  readonly comment?: string;
  /** Also on every host of the fleet (the server needs a `cluster` section); default false. */
  readonly fleet?: boolean;
}

/** What {@link Ipsets.create} makes. */
export interface CreateOptions {
  /** "hash:ip" (default), "hash:net", "hash:ip,port" or "hash:net,port". */
  readonly type?: "hash:ip" | "hash:net" | "hash:ip,port" | "hash:net,port";
  /** "inet" (default) or "inet6". */
  readonly family?: "inet" | "inet6";
  /** Entries can expire: the default timeout in seconds (0 = entries are permanent unless given one). */
  readonly timeout?: number;
  /** Entries can carry a comment. */
  readonly comments?: boolean;
  /** The most entries the set holds before it grows (or refuses more); the kernel's default is 65536. */
  readonly maxelem?: number;
  /** A batch that would pass maxelem grows the set (a larger copy swapped in) instead of being refused; default true. */
  readonly autoGrow?: boolean;
  /** The largest maxelem growth may reach; default 16777216. */
  readonly growLimit?: number;
  /** Idempotency key: a retried create with the same key returns the first result instead of AlreadyExists. */
  readonly requestId?: string;
}

const TYPES: Readonly<Record<NonNullable<CreateOptions["type"]>, IpsetType>> = {
  "hash:ip": IpsetType.IPSET_TYPE_HASH_IP,
  "hash:net": IpsetType.IPSET_TYPE_HASH_NET,
  "hash:ip,port": IpsetType.IPSET_TYPE_HASH_IP_PORT,
  "hash:net,port": IpsetType.IPSET_TYPE_HASH_NET_PORT,
};

/** The host's IP sets: `client.ipsets`. */
export class Ipsets {
  readonly #channel: Channel;

  /** @internal */
  constructor(channel: Channel) {
    this.#channel = channel;
  }

  /** Creates a managed set (restored after a reboot). Fails with AlreadyExists when there is one of that name. */
  async create(set: string, options: CreateOptions = {}, token?: CancellationToken): Promise<IpsetInfo> {
    const request: CreateIpsetRequest = {
      ipsetId: set,
      requestId: options.requestId ?? "",
      ipset: {
        name: "",
        type: TYPES[options.type ?? "hash:ip"],
        typeName: "",
        family: options.family === "inet6" ? AddressFamily.ADDRESS_FAMILY_INET6 : AddressFamily.ADDRESS_FAMILY_INET,
        hashsize: 0,
        maxelem: options.maxelem ?? 0,
        ...(options.timeout === undefined ? {} : { defaultTimeout: options.timeout }),
        ...(options.autoGrow === undefined ? {} : { autoGrow: options.autoGrow }),
        ...(options.growLimit === undefined ? {} : { growLimit: options.growLimit }),
        comments: options.comments ?? false,
        range: "",
        memoryBytes: 0,
        references: 0,
        entryCount: 0,
        managed: false,
      },
    };
    return ipsetInfo(await this.#channel.unary<CreateIpsetRequest, Ipset>(IpsetServiceService, "createIpset", request, token));
  }

  /** Every set on the host (managed or not), with entry counts (all pages). */
  async list(token?: CancellationToken): Promise<readonly IpsetInfo[]> {
    const all: IpsetInfo[] = [];
    const pages = this.#channel.pages<ListIpsetsRequest, ListIpsetsResponse>(IpsetServiceService, "listIpsets", (pageToken) => ({ pageSize: 1000, pageToken }), token);
    for await (const page of pages) all.push(...page.ipsets.map(ipsetInfo));
    return Object.freeze(all);
  }

  /** Destroys a set; refused (FailedPrecondition) while a firewall rule uses it. */
  async delete(set: string, token?: CancellationToken): Promise<void> {
    await this.#channel.unary<DeleteIpsetRequest, unknown>(IpsetServiceService, "deleteIpset", { name: `ipsets/${set}` }, token);
  }

  /** Sets in the `ipset save` format (`create` and `add` lines): the given ones, or every set. */
  async export(sets: readonly string[] = [], token?: CancellationToken): Promise<string> {
    const request: ExportIpsetsRequest = { names: sets.map((set) => `ipsets/${set}`) };
    return (await this.#channel.unary<ExportIpsetsRequest, ExportIpsetsResponse>(IpsetServiceService, "exportIpsets", request, token, true)).content;
  }

  /** A set, with its entry count. */
  async get(set: string, token?: CancellationToken): Promise<IpsetInfo> {
    return ipsetInfo(await this.#channel.unary<GetIpsetRequest, Ipset>(IpsetServiceService, "getIpset", { name: `ipsets/${set}` }, token, true));
  }

  /**
   * Adds addresses or networks (one call, applied together); returns how many entries were added or refreshed (a
   * network in a set of single addresses is one entry per address).
   */
  async add(set: string, elements: readonly string[], options: AddOptions = {}, token?: CancellationToken): Promise<number> {
    // One address is one entry; for a network, only the server knows the set's type, so a batch's count is asked for.
    if (elements.length === 1 && !elements[0]!.includes("/")) {
      const request: AddEntryRequest = { parent: `ipsets/${set}`, entry: { name: "", element: elements[0]!, comment: options.comment ?? "", ...(options.timeout === undefined ? {} : { timeout: options.timeout }) }, ...fleetScope(options) };
      await this.#channel.unary<AddEntryRequest, Entry>(IpsetServiceService, "addEntry", request, token);
      return 1;
    }
    const request: BatchAddEntriesRequest = { parent: `ipsets/${set}`, entries: [], elements: [...elements], comment: options.comment ?? "", ...(options.timeout === undefined ? {} : { timeout: options.timeout }), ...fleetScope(options) };
    return (await this.#channel.unary<BatchAddEntriesRequest, BatchAddEntriesResponse>(IpsetServiceService, "batchAddEntries", request, token)).addedCount;
  }

  /** Removes an entry (with `fleet`, on every host of the fleet). */
  async remove(set: string, element: string, options: BanOptions = {}, token?: CancellationToken): Promise<void> {
    await this.#channel.unary<DeleteEntryRequest, unknown>(IpsetServiceService, "deleteEntry", { name: `ipsets/${set}/entries/${element}`, ...fleetScope(options) }, token);
  }

  /** Whether the kernel set matches an address (a network's addresses match their network's entry). */
  async test(set: string, element: string, token?: CancellationToken): Promise<boolean> {
    return (await this.#channel.unary<TestEntryRequest, TestEntryResponse>(IpsetServiceService, "testEntry", { parent: `ipsets/${set}`, element }, token, true)).matched;
  }

  /** Every entry of a set (all pages). */
  async entries(set: string, token?: CancellationToken): Promise<readonly IpsetEntry[]> {
    return this.#entries(set, "", token);
  }

  /**
   * The entries of a set that an address or network is equal to, inside or covered by (by the address or network an
   * entry starts with; any spelling of the address), or, for other text, whose element starts with it (all pages).
   */
  async findEntries(set: string, filter: string, token?: CancellationToken): Promise<readonly IpsetEntry[]> {
    return this.#entries(set, filter, token);
  }

  async #entries(set: string, filter: string, token: CancellationToken | undefined): Promise<readonly IpsetEntry[]> {
    const all: IpsetEntry[] = [];
    const pages = this.#channel.pages<ListEntriesRequest, ListEntriesResponse>(IpsetServiceService, "listEntries", (pageToken) => ({ parent: `ipsets/${set}`, pageSize: 10_000, pageToken, filter }), token);
    for await (const page of pages) all.push(...page.entries.map(ipsetEntry));
    return Object.freeze(all);
  }
}
