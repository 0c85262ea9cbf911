import { FeedServiceService, type CreateFeedRequest, type DeleteFeedRequest, type Feed, type GetFeedRequest, type ListFeedsRequest, type ListFeedsResponse, type RefreshFeedRequest, type RefreshFeedResponse, type UpdateFeedRequest } from "./transport/wire.js";
import type { Disposable } from "./base/disposable.js";
import type { Event } from "./base/event.js";
import type { CancellationToken } from "./base/cancellation.js";
import type { FeedFormat, FeedInfo, FeedRefresh, HostEvent } from "./api.js";
import type { Channel } from "./transport/channel.js";
import { FEED_FORMATS, feedInfo } from "./transport/convert.js";

/** A feed's settings, as {@link Feeds.create} and {@link Feeds.update} take them. */
export interface FeedSettings {
  /** An https://, http:// or file:/// URL (a path on the server's host, in a folder of its feeds.fileRoots). */
  readonly source?: string;
  readonly format?: FeedFormat;
  /** Seconds between refreshes, 10 to 604800; default 3600. */
  readonly intervalSeconds?: number;
  /** Up to this many random seconds added to each interval; default a tenth of the interval, at most 300. */
  readonly jitterSeconds?: number;
  /** Seconds one read of the list may take, 1 to 600; default 30. */
  readonly timeoutSeconds?: number;
  /** Attempts after a failed one (unreachable, timeout, 5xx), 1, 2, 4… seconds apart; default 2. */
  readonly retries?: number;
  /** The largest list read, in bytes; default 64 MiB. */
  readonly maxBytes?: number;
  /** A list that would take away more than this share of the sets' entries is refused (0 to 1); default 0.5. */
  readonly maxShrink?: number;
  /** PEM CA certificates for an https source ("" in an update: the system's again). */
  readonly ca?: string;
  /** crowdsec: the bouncer API key (`cscli bouncers add`); stored by the server, never returned. */
  readonly apiKey?: string;
  /** crowdsec: an absolute path on the server's host of a file holding the API key, in place of apiKey. */
  readonly apiKeyFile?: string;
  /** crowdsec: PEM client certificate and key for a Local API that authenticates bouncers by TLS. */
  readonly clientCertificate?: string;
  readonly clientKey?: string;
  /** crowdsec: ms between two reads of the decision stream, 100 to 60000; default 1000. */
  readonly pollIntervalMs?: number;
}

/** What {@link Feeds.create} makes: the settings, the set to fill and an optional idempotency key. */
export interface FeedCreateOptions extends FeedSettings {
  readonly source: string;
  readonly format: FeedFormat;
  /** The hash:net set of the list's IPv4 part (at most 28 characters); the IPv6 part goes to `ipset` + "-v6". */
  readonly ipset: string;
  /** Idempotency key: a retried create with the same key returns the first result instead of AlreadyExists. */
  readonly requestId?: string;
}

/** Published blocklists that fill sets, refreshed on a schedule: `client.feeds`. */
export class Feeds {
  readonly #channel: Channel;
  readonly #events: Event<HostEvent>;

  /** @internal */
  constructor(channel: Channel, events: Event<HostEvent>) {
    this.#channel = channel;
    this.#events = events;
  }

  /** Creates a feed and its two sets; its first refresh starts at once. Fails with AlreadyExists when either set exists. */
  async create(feed: string, options: FeedCreateOptions, token?: CancellationToken): Promise<FeedInfo> {
    const request: CreateFeedRequest = {
      feedId: feed,
      requestId: options.requestId ?? "",
      feed: {
        name: "",
        source: options.source,
        format: FEED_FORMATS[options.format],
        ipset: `ipsets/${options.ipset}`,
        ipsetV6: "",
        intervalSeconds: options.intervalSeconds ?? 0,
        timeoutSeconds: options.timeoutSeconds ?? 0,
        maxBytes: options.maxBytes ?? 0,
        ca: options.ca ?? "",
        apiKey: options.apiKey ?? "",
        apiKeyFile: options.apiKeyFile ?? "",
        clientCertificate: options.clientCertificate ?? "",
        clientKey: options.clientKey ?? "",
        pollIntervalMs: options.pollIntervalMs ?? 0,
        credentialsSet: false,
        ...(options.jitterSeconds === undefined ? {} : { jitterSeconds: options.jitterSeconds }),
        ...(options.retries === undefined ? {} : { retries: options.retries }),
        ...(options.maxShrink === undefined ? {} : { maxShrink: options.maxShrink }),
      },
    };
    return feedInfo(await this.#channel.unary<CreateFeedRequest, Feed>(FeedServiceService, "createFeed", request, token));
  }

  /** Every feed with its last refresh (all pages). */
  async list(token?: CancellationToken): Promise<readonly FeedInfo[]> {
    const all: FeedInfo[] = [];
    const pages = this.#channel.pages<ListFeedsRequest, ListFeedsResponse>(FeedServiceService, "listFeeds", (pageToken) => ({ pageSize: 1000, pageToken }), token);
    for await (const page of pages) all.push(...page.feeds.map(feedInfo));
    return Object.freeze(all);
  }

  /** A feed with its last refresh. */
  async get(feed: string, token?: CancellationToken): Promise<FeedInfo> {
    return feedInfo(await this.#channel.unary<GetFeedRequest, Feed>(FeedServiceService, "getFeed", { name: `feeds/${feed}` }, token, true));
  }

  /** Changes the settings given; a new source, format or CA makes the next refresh (at once) read the list whole. */
  async update(feed: string, settings: FeedSettings, token?: CancellationToken): Promise<FeedInfo> {
    const request: UpdateFeedRequest = {
      name: `feeds/${feed}`,
      ...(settings.source === undefined ? {} : { source: settings.source }),
      ...(settings.format === undefined ? {} : { format: FEED_FORMATS[settings.format] }),
      ...(settings.intervalSeconds === undefined ? {} : { intervalSeconds: settings.intervalSeconds }),
      ...(settings.jitterSeconds === undefined ? {} : { jitterSeconds: settings.jitterSeconds }),
      ...(settings.timeoutSeconds === undefined ? {} : { timeoutSeconds: settings.timeoutSeconds }),
      ...(settings.retries === undefined ? {} : { retries: settings.retries }),
      ...(settings.maxBytes === undefined ? {} : { maxBytes: settings.maxBytes }),
      ...(settings.maxShrink === undefined ? {} : { maxShrink: settings.maxShrink }),
      ...(settings.ca === undefined ? {} : { ca: settings.ca }),
      ...(settings.apiKey === undefined ? {} : { apiKey: settings.apiKey }),
      ...(settings.apiKeyFile === undefined ? {} : { apiKeyFile: settings.apiKeyFile }),
      ...(settings.clientCertificate === undefined ? {} : { clientCertificate: settings.clientCertificate }),
      ...(settings.clientKey === undefined ? {} : { clientKey: settings.clientKey }),
      ...(settings.pollIntervalMs === undefined ? {} : { pollIntervalMs: settings.pollIntervalMs }),
    };
    return feedInfo(await this.#channel.unary<UpdateFeedRequest, Feed>(FeedServiceService, "updateFeed", request, token));
  }

  /** Deletes a feed and destroys its sets; refused (FailedPrecondition) while a firewall rule uses one of them. */
  async delete(feed: string, token?: CancellationToken): Promise<void> {
    await this.#channel.unary<DeleteFeedRequest, unknown>(FeedServiceService, "deleteFeed", { name: `feeds/${feed}` }, token);
  }

  /**
   * Refreshes a feed now and resolves when it is done. A list the source says is unchanged is not read (`changed`
   * false) unless `force`; a refused list (reason FEED_UNAVAILABLE, FEED_TOO_LARGE, FEED_INVALID, FEED_SHRANK) rejects,
   * and the sets stay as they were.
   */
  async refresh(feed: string, options: { readonly force?: boolean } = {}, token?: CancellationToken): Promise<FeedRefresh> {
    const reply = await this.#channel.unary<RefreshFeedRequest, RefreshFeedResponse>(FeedServiceService, "refreshFeed", { name: `feeds/${feed}`, force: options.force ?? false }, token);
    return Object.freeze({
      feed: feedInfo(reply.feed!),
      changed: reply.changed,
      added: reply.addedCount,
      removed: reply.removedCount,
      kept: reply.keptCount,
      skipped: reply.skippedCount,
      invalid: reply.invalidCount,
    });
  }

  /** Fires when a feed's sets took a new list (a FEED_REFRESHED event: counts in its attributes). */
  readonly onDidRefresh: Event<HostEvent> = (listener, thisArgs, disposables) => this.#onType("FEED_REFRESHED", listener, thisArgs, disposables);

  /** Fires when a feed's refresh failed and its sets stayed as they were (a FEED_FAILED event: `reason`, `detail`). */
  readonly onDidFail: Event<HostEvent> = (listener, thisArgs, disposables) => this.#onType("FEED_FAILED", listener, thisArgs, disposables);

  #onType(type: string, listener: (event: HostEvent) => unknown, thisArgs: unknown, disposables: Disposable[] | undefined): Disposable {
    return this.#events((event) => {
      if (event.type === type) listener.call(thisArgs, event);
    }, undefined, disposables);
  }
}
