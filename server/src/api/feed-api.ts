import {
  Feed,
  FeedFormat,
  type FeedServiceServer,
  type FeedServiceService,
  type UpdateFeedRequest,
} from "../gen/portcullis/v1/feed.js";
import { ServerError } from "../errors.js";
import type { FeedService, FeedSettings, FeedView } from "../feeds/feed-service.js";
import { DEFAULT_POLL_MS, ipv6SetOf, type FeedFormat as DomainFormat } from "../feeds/feed-model.js";
import type { RequestStore } from "../store/request-store.js";
import { operation, type OperationsOf } from "./operation.js";
import { onceFor } from "./request-ids.js";
import { decodePageToken, encodePageToken, pageSize } from "./pagination.js";
import { feedName, ipsetName, parseFeedName, parseIpsetName } from "./resource-names.js";

export type FeedOperations = OperationsOf<typeof FeedServiceService, FeedServiceServer>;

const FORMATS: ReadonlyArray<[FeedFormat, DomainFormat]> = [
  [FeedFormat.FEED_FORMAT_PLAIN, "plain"],
  [FeedFormat.FEED_FORMAT_SPAMHAUS, "spamhaus"],
  [FeedFormat.FEED_FORMAT_NETSET, "netset"],
  [FeedFormat.FEED_FORMAT_IPSET_SAVE, "ipset-save"],
  [FeedFormat.FEED_FORMAT_JSON, "json"],
  [FeedFormat.FEED_FORMAT_CROWDSEC, "crowdsec"],
];

/** The FeedService contract mapped onto the domain: names parsed, formats translated, pages tokenized. */
export function feedOperations(feeds: FeedService, requests: RequestStore): FeedOperations {
  return {
    listFeeds: operation("viewer", () => "feeds", async (request) => {
      const size = pageSize(request.pageSize, 100, 1000);
      const after = decodePageToken(request.pageToken, "feeds");
      const all = feeds.list().filter((view) => view.definition.name > after);
      const page = all.slice(0, size);
      return { feeds: page.map(toFeed), nextPageToken: all.length > size ? encodePageToken("feeds", page[page.length - 1]!.definition.name) : "" };
    }),

    getFeed: operation("viewer", (request) => request.name, async (request) => toFeed(feeds.get(parseFeedName(request.name)))),

    createFeed: operation("admin", (request) => feedName(request.feedId), async (request, call) => onceFor(requests, "CreateFeed", request, Feed, async () => {
      const feed = request.feed;
      if (feed === undefined) throw new ServerError("INVALID_FEED_SOURCE", "feed is required: give at least its source, format and ipset", { field: "feed" });
      const view = await feeds.create(request.feedId, parseIpsetName(feed.ipset, "feed.ipset"), {
        source: feed.source,
        ...(feed.format === FeedFormat.FEED_FORMAT_UNSPECIFIED ? {} : { format: formatOf(feed.format, "feed.format") }),
        ...(feed.intervalSeconds === 0 ? {} : { intervalSeconds: feed.intervalSeconds }),
        ...(feed.jitterSeconds === undefined ? {} : { jitterSeconds: feed.jitterSeconds }),
        ...(feed.timeoutSeconds === 0 ? {} : { timeoutSeconds: feed.timeoutSeconds }),
        ...(feed.retries === undefined ? {} : { retries: feed.retries }),
        ...(feed.maxBytes === 0 ? {} : { maxBytes: feed.maxBytes }),
        ...(feed.maxShrink === undefined ? {} : { maxShrink: feed.maxShrink }),
        ...(feed.ca === "" ? {} : { ca: feed.ca }),
        ...(feed.apiKey === "" ? {} : { apiKey: feed.apiKey }),
        ...(feed.apiKeyFile === "" ? {} : { apiKeyFile: feed.apiKeyFile }),
        ...(feed.clientCertificate === "" ? {} : { clientCertificate: feed.clientCertificate }),
        ...(feed.clientKey === "" ? {} : { clientKey: feed.clientKey }),
        ...(feed.pollIntervalMs === 0 ? {} : { pollIntervalMs: feed.pollIntervalMs }),
      }, call);
      return toFeed(view);
    })),

    updateFeed: operation("admin", (request) => request.name, async (request, call) => toFeed(await feeds.update(parseFeedName(request.name), settingsOf(request), call))),

    deleteFeed: operation("admin", (request) => request.name, async (request, call) => {
      await feeds.delete(parseFeedName(request.name), call);
      return {};
    }),

    // The refresh records its own FEED_REFRESHED or FEED_FAILED event (a failure is an event too).
    refreshFeed: operation("operator", (request) => request.name, async (request, call) => {
      const { view, result } = await feeds.refresh(parseFeedName(request.name), request.force, { principal: call.principal, origin: "api" });
      return {
        feed: toFeed(view),
        changed: result.changed,
        addedCount: result.added,
        removedCount: result.removed,
        keptCount: result.kept,
        skippedCount: result.skipped,
        invalidCount: result.invalid,
      };
    }),
  };
}

function settingsOf(request: UpdateFeedRequest): FeedSettings {
  return {
    ...(request.source === undefined ? {} : { source: request.source }),
    ...(request.format === undefined ? {} : { format: formatOf(request.format, "format") }),
    ...(request.intervalSeconds === undefined ? {} : { intervalSeconds: request.intervalSeconds }),
    ...(request.jitterSeconds === undefined ? {} : { jitterSeconds: request.jitterSeconds }),
    ...(request.timeoutSeconds === undefined ? {} : { timeoutSeconds: request.timeoutSeconds }),
    ...(request.retries === undefined ? {} : { retries: request.retries }),
    ...(request.maxBytes === undefined ? {} : { maxBytes: request.maxBytes }),
    ...(request.maxShrink === undefined ? {} : { maxShrink: request.maxShrink }),
    ...(request.ca === undefined ? {} : { ca: request.ca }),
    ...(request.apiKey === undefined ? {} : { apiKey: request.apiKey }),
    ...(request.apiKeyFile === undefined ? {} : { apiKeyFile: request.apiKeyFile }),
    ...(request.clientCertificate === undefined ? {} : { clientCertificate: request.clientCertificate }),
    ...(request.clientKey === undefined ? {} : { clientKey: request.clientKey }),
    ...(request.pollIntervalMs === undefined ? {} : { pollIntervalMs: request.pollIntervalMs }),
  };
}

function formatOf(format: FeedFormat, field: string): DomainFormat {
  const found = FORMATS.find(([value]) => value === format);
  if (found === undefined) throw new ServerError("INVALID_SETTING", `${field} must be one of FEED_FORMAT_PLAIN, _SPAMHAUS, _NETSET, _IPSET_SAVE, _JSON, _CROWDSEC`, { field });
  return found[1];
}

function toFeed(view: FeedView): Feed {
  const { definition: d, state: s } = view;
  return {
    name: feedName(d.name),
    source: d.source,
    format: FORMATS.find(([, name]) => name === d.format)?.[0] ?? FeedFormat.FEED_FORMAT_UNSPECIFIED,
    ipset: ipsetName(d.ipset),
    ipsetV6: ipsetName(ipv6SetOf(d.ipset)),
    intervalSeconds: d.intervalSeconds,
    jitterSeconds: d.jitterSeconds,
    timeoutSeconds: d.timeoutSeconds,
    retries: d.retries,
    maxBytes: d.maxBytes,
    maxShrink: d.maxShrink,
    ca: d.ca ?? "",
    // The API key and the client key are never answered: only whether one is stored.
    apiKey: "",
    apiKeyFile: d.apiKeyFile ?? "",
    clientCertificate: d.clientCertificate ?? "",
    clientKey: "",
    pollIntervalMs: d.format === "crowdsec" ? d.pollIntervalMs ?? DEFAULT_POLL_MS : 0,
    credentialsSet: d.apiKey !== undefined || d.clientKey !== undefined,
    status: {
      ...(s.lastSuccessAt === undefined ? {} : { lastSuccessTime: new Date(s.lastSuccessAt) }),
      ...(s.lastAttemptAt === undefined ? {} : { lastAttemptTime: new Date(s.lastAttemptAt) }),
      nextRefreshTime: new Date(s.nextDueAt),
      entryCount: s.ipv4Entries + s.ipv6Entries,
      skippedCount: s.skipped,
      invalidCount: s.invalid,
      consecutiveFailures: s.failures,
      lastErrorReason: s.lastErrorReason ?? "",
      lastError: s.lastError ?? "",
      etag: s.validators.etag ?? "",
      lastModified: s.validators.lastModified ?? "",
    },
  };
}
