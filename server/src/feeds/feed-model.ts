/** Domain model of feeds: published blocklists that fill a pair of sets, independent of the wire and of the store. */

/** How a list is written (see FeedFormat in proto/portcullis/v1/feed.proto). */
export const FEED_FORMATS = ["plain", "spamhaus", "netset", "ipset-save", "json", "crowdsec"] as const;
export type FeedFormat = (typeof FEED_FORMATS)[number];

/** A feed's settings, as created and updated through the API. */
export interface FeedDefinition {
  readonly name: string;
  /** An http(s) or file URL. */
  readonly source: string;
  readonly format: FeedFormat;
  /** The set of the list's IPv4 part; the IPv6 part goes to `${ipset}-v6` (ipv6SetOf). */
  readonly ipset: string;
  readonly intervalSeconds: number;
  readonly jitterSeconds: number;
  readonly timeoutSeconds: number;
  readonly retries: number;
  readonly maxBytes: number;
  /** Share of the sets' entries a new list may take away (0 to 1). */
  readonly maxShrink: number;
  /** PEM CA certificates for an https source; undefined: the system's. */
  readonly ca?: string;
  /** Format crowdsec: the bouncer API key (never shown), or the file that holds it. */
  readonly apiKey?: string;
  readonly apiKeyFile?: string;
  /** Format crowdsec: a PEM client certificate and its key (never shown), for a Local API that wants TLS auth. */
  readonly clientCertificate?: string;
  readonly clientKey?: string;
  /** Format crowdsec: ms between two reads of the decision stream (undefined: DEFAULT_POLL_MS). */
  readonly pollIntervalMs?: number;
}

/** How often a CrowdSec decision stream is read unless the feed says otherwise. */
export const DEFAULT_POLL_MS = 1000;

/** Whether a feed follows a CrowdSec decision stream (rather than reading a whole list). */
export function isCrowdsec(definition: Pick<FeedDefinition, "format">): boolean {
  return definition.format === "crowdsec";
}

/** What the source said about the list applied, to ask it next time whether it changed. */
export interface SourceValidators {
  /** HTTP ETag; for a file, its size and modification time. */
  readonly etag?: string;
  /** HTTP Last-Modified. */
  readonly lastModified?: string;
}

/** What the refreshes did, kept across restarts (store/feed-store.ts). Times are ms since the epoch. */
export interface FeedState {
  readonly validators: SourceValidators;
  readonly lastSuccessAt?: number;
  readonly lastAttemptAt?: number;
  /** When the next scheduled refresh is due: a restart keeps it, so it does not refetch every feed at once. */
  readonly nextDueAt: number;
  /** Entries of the IPv4 and IPv6 sets, as the last apply left them (what a repair checks the kernel against). */
  readonly ipv4Entries: number;
  readonly ipv6Entries: number;
  /** Entries of the list left out because the allowlist or a management address covers them. */
  readonly skipped: number;
  /** Lines of the last list read that were not an address or network. */
  readonly invalid: number;
  /** Refreshes failed since the last success. */
  readonly failures: number;
  readonly lastErrorReason?: string;
  readonly lastError?: string;
  /** Fingerprint of the protected networks the sets were filtered with (protected-networks.ts). */
  readonly protection?: string;
}

/** The state of a feed never refreshed. */
export function initialState(now: number): FeedState {
  return { validators: {}, nextDueAt: now, ipv4Entries: 0, ipv6Entries: 0, skipped: 0, invalid: 0, failures: 0 };
}

/** The set that holds a feed's IPv6 part. */
export function ipv6SetOf(ipset: string): string {
  return `${ipset}-v6`;
}

/** Both sets of a feed: IPv4, then IPv6. */
export function setsOf(definition: Pick<FeedDefinition, "ipset">): readonly [string, string] {
  return [definition.ipset, ipv6SetOf(definition.ipset)];
}
