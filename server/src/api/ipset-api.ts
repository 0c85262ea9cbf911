import { AddressFamily } from "../gen/portcullis/v1/common.js";
import {
  BatchAddEntriesResponse,
  Ipset,
  IpsetType,
  type Entry,
  type IpsetServiceServer,
  type IpsetServiceService,
} from "../gen/portcullis/v1/ipset.js";
import { ServerError } from "../errors.js";
import type { IpsetService, IpsetView, EntryView } from "../ipsets/ipset-service.js";
import type { Family } from "../ipsets/ipset-model.js";
import type { RequestStore } from "../store/request-store.js";
import { operation, type OperationsOf } from "./operation.js";
import { onceFor } from "./request-ids.js";
import { decodePageToken, encodePageToken, pageSize } from "./pagination.js";
import { entryName, ipsetName, parseEntryName, parseIpsetName } from "./resource-names.js";

/** Request and response types of each IpsetService RPC, taken from the generated service interface. */
export type IpsetOperations = OperationsOf<typeof IpsetServiceService, IpsetServiceServer>;

const TYPES: ReadonlyArray<[IpsetType, string]> = [
  [IpsetType.IPSET_TYPE_HASH_IP, "hash:ip"],
  [IpsetType.IPSET_TYPE_HASH_NET, "hash:net"],
  [IpsetType.IPSET_TYPE_HASH_IP_PORT, "hash:ip,port"],
  [IpsetType.IPSET_TYPE_HASH_NET_PORT, "hash:net,port"],
  [IpsetType.IPSET_TYPE_BITMAP_IP, "bitmap:ip"],
  [IpsetType.IPSET_TYPE_LIST_SET, "list:set"],
];

/** The IpsetService contract mapped onto the domain: names parsed, enums translated, pages tokenized. */
export function ipsetOperations(ipsets: IpsetService, requests: RequestStore): IpsetOperations {
  return {
    listIpsets: operation("viewer", () => "ipsets", async (request) => {
      const page = await ipsets.page(decodePageToken(request.pageToken, "ipsets"), pageSize(request.pageSize, 100, 1000));
      return { ipsets: page.ipsets.map(toIpset), nextPageToken: page.nextAfter === undefined ? "" : encodePageToken("ipsets", page.nextAfter) };
    }),

    getIpset: operation("viewer", (request) => request.name, async (request) => toIpset(await ipsets.get(parseIpsetName(request.name)))),

    createIpset: operation("admin", (request) => ipsetName(request.ipsetId), async (request, call) => onceFor(requests, "CreateIpset", request, Ipset, async () => {
      const ipset = request.ipset;
      if (ipset === undefined) throw new ServerError("INVALID_IPSET_TYPE", "ipset is required: give at least its type", { field: "ipset" });
      const view = await ipsets.create({
        name: request.ipsetId,
        typeName: typeName(ipset.type),
        ...(fromFamily(ipset.family) === undefined ? {} : { family: fromFamily(ipset.family)! }),
        ...(ipset.hashsize === 0 ? {} : { hashsize: ipset.hashsize }),
        ...(ipset.maxelem === 0 ? {} : { maxelem: ipset.maxelem }),
        ...(ipset.defaultTimeout === undefined ? {} : { timeout: ipset.defaultTimeout }),
        ...(ipset.range === "" ? {} : { range: ipset.range }),
        ...(ipset.autoGrow === undefined ? {} : { autoGrow: ipset.autoGrow }),
        ...(ipset.growLimit === undefined ? {} : { growLimit: ipset.growLimit }),
        comments: ipset.comments,
      }, call);
      return toIpset(view);
    })),

    deleteIpset: operation("admin", (request) => request.name, async (request, call) => {
      await ipsets.delete(parseIpsetName(request.name), call);
      return {};
    }),

    flushIpset: operation("admin", (request) => request.name, async (request, call) => toIpset(await ipsets.flush(parseIpsetName(request.name), call))),

    renameIpset: operation("admin", (request) => request.name, async (request, call) => toIpset(await ipsets.rename(parseIpsetName(request.name), request.newIpsetId, call))),

    swapIpsets: operation("admin", (request) => `${request.name} ${request.other}`, async (request, call) => {
      const [ipset, other] = await ipsets.swap(parseIpsetName(request.name), parseIpsetName(request.other, "other"), call);
      return { ipset: toIpset(ipset), other: toIpset(other) };
    }),

    adoptIpset: operation("admin", (request) => request.name, async (request, call) => toIpset(await ipsets.adopt(parseIpsetName(request.name), call))),

    listEntries: operation("viewer", (request) => request.parent, async (request) => {
      const set = parseIpsetName(request.parent, "parent");
      const size = pageSize(request.pageSize, 1000, 10_000);
      const page = await ipsets.listEntries(set, decodePageToken(request.pageToken, request.parent), size, request.filter);
      return {
        entries: page.entries.map((entry) => toEntry(set, entry)),
        nextPageToken: page.nextAfter === undefined ? "" : encodePageToken(request.parent, page.nextAfter),
        totalSize: page.totalSize,
      };
    }),

    addEntry: operation("operator", (request) => request.parent, async (request, call) => {
      const set = parseIpsetName(request.parent, "parent");
      const entry = request.entry ?? { name: "", element: "", comment: "" };
      return toEntry(set, await ipsets.addEntry(set, fromEntry(entry), call, request.fleet));
    }),

    deleteEntry: operation("operator", (request) => request.name, async (request, call) => {
      const [set, element] = parseEntryName(request.name);
      await ipsets.deleteEntry(set, element, call, request.fleet);
      return {};
    }),

    testEntry: operation("viewer", (request) => request.parent, async (request) => ({
      matched: await ipsets.testEntry(parseIpsetName(request.parent, "parent"), request.element),
    })),

    batchAddEntries: operation("operator", (request) => request.parent, async (request, call) => onceFor(requests, "BatchAddEntries", request, BatchAddEntriesResponse, async () => {
      const set = parseIpsetName(request.parent, "parent");
      // Entry messages already have the domain's shape (comment "" = none): no per-entry copy of a million entries.
      const addedCount = await ipsets.batchAdd(set, {
        entries: request.entries,
        elements: request.elements,
        ...(request.timeout === undefined ? {} : { timeout: request.timeout }),
        comment: request.comment,
      }, call, request.fleet);
      return { addedCount };
    })),

    batchDeleteEntries: operation("operator", (request) => request.parent, async (request, call) => ({
      deletedCount: await ipsets.batchDelete(parseIpsetName(request.parent, "parent"), request.elements, call),
    })),

    importIpsets: operation("admin", () => "ipsets", async (request, call) => {
      const result = await ipsets.import(request.content, call);
      return { ipsets: result.sets.map(toIpset), addedCount: result.added };
    }),

    exportIpsets: operation("viewer", (request) => (request.names.length === 0 ? "ipsets" : request.names.join(" ")), async (request) => ({
      content: await ipsets.export(request.names.map((name, i) => parseIpsetName(name, `names[${i}]`))),
    })),
  };
}

function typeName(type: IpsetType): string {
  const found = TYPES.find(([value]) => value === type);
  if (found === undefined) throw new ServerError("INVALID_IPSET_TYPE", "ipset.type is required: one of IPSET_TYPE_HASH_IP, _HASH_NET, _HASH_IP_PORT, _HASH_NET_PORT, _BITMAP_IP, _LIST_SET", { field: "ipset.type" });
  return found[1];
}

function fromFamily(family: AddressFamily): Family | undefined {
  if (family === AddressFamily.ADDRESS_FAMILY_INET) return "inet";
  if (family === AddressFamily.ADDRESS_FAMILY_INET6) return "inet6";
  return undefined;
}

function toIpset(view: IpsetView): Ipset {
  const d = view.definition;
  return {
    name: ipsetName(d.name),
    type: TYPES.find(([, name]) => name === d.typeName)?.[0] ?? IpsetType.IPSET_TYPE_UNSPECIFIED,
    typeName: d.typeName,
    family: d.family === "inet" ? AddressFamily.ADDRESS_FAMILY_INET : d.family === "inet6" ? AddressFamily.ADDRESS_FAMILY_INET6 : AddressFamily.ADDRESS_FAMILY_UNSPECIFIED,
    hashsize: d.hashsize ?? 0,
    maxelem: d.maxelem ?? 0,
    ...(d.timeout === undefined ? {} : { defaultTimeout: d.timeout }),
    comments: d.comments,
    range: d.range ?? "",
    memoryBytes: view.memoryBytes,
    references: view.references,
    entryCount: view.entryCount,
    managed: view.managed,
    ...(d.autoGrow === undefined ? {} : { autoGrow: d.autoGrow }),
    ...(d.growLimit === undefined ? {} : { growLimit: d.growLimit }),
    ...(view.owner === undefined ? {} : { feed: view.owner }),
  };
}

function fromEntry(entry: Entry): { element: string; timeout?: number; comment?: string } {
  return {
    element: entry.element,
    ...(entry.timeout === undefined ? {} : { timeout: entry.timeout }),
    ...(entry.comment === "" ? {} : { comment: entry.comment }),
  };
}

export function toEntry(set: string, entry: EntryView): Entry {
  return {
    name: entryName(set, entry.element),
    element: entry.element,
    ...(entry.timeout === undefined ? {} : { timeout: entry.timeout }),
    comment: entry.comment ?? "",
  };
}

