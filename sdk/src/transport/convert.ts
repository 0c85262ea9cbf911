// Wire messages (generated, in gen/) → the SDK's frozen plain objects (api.ts). Only transport/ imports gen/ (the
// namespaces through wire.ts).
import { ActivityWindow as WireWindow, eventOriginToJSON, eventTypeToJSON, type AuditRecord as WireAuditRecord, type BanTimeline as WireTimeline, type Event, type Offender as WireOffender, type TopOffenders as WireTopOffenders } from "../gen/portcullis/v1/events.js";
import type { AllowlistEntry as WireAllowlistEntry, Jail } from "../gen/portcullis/v1/jail.js";
import type { Entry, Ipset } from "../gen/portcullis/v1/ipset.js";
import { addressFamilyToJSON, AddressFamily } from "../gen/portcullis/v1/common.js";
import type { HostBan as WireHostBan, Node as WireNode } from "../gen/portcullis/v1/fleet.js";
import type { CallerIdentity as WireCallerIdentity, HostOverview as WireOverview, JailActivity as WireJailActivity } from "../gen/portcullis/v1/host.js";
import { FeedFormat as WireFeedFormat, type Feed as WireFeed } from "../gen/portcullis/v1/feed.js";
import type { Bouncer as WireBouncer } from "../gen/portcullis/v1/bouncer.js";
import type { ActivityWindow, AllowlistEntry, BouncerInfo, AuditRecord, BanOptions, BanTerms, BanTimeline, CallerIdentity, FeedFormat, FeedInfo, FleetNode, HostBan, HostEvent, HostOverview, IpsetEntry, IpsetInfo, JailActivity, JailStatus, Offender, TopOffenders } from "../api.js";

export function hostEvent(event: Event): HostEvent {
  return Object.freeze({
    sequence: event.sequence,
    time: event.time ?? new Date(0),
    type: eventTypeToJSON(event.type).replace(/^EVENT_TYPE_/, ""),
    resource: event.resource,
    principal: event.principal,
    origin: eventOriginToJSON(event.origin).replace(/^EVENT_ORIGIN_/, "").toLowerCase(),
    attributes: Object.freeze({ ...event.attributes }),
  });
}

export function jailStatus(jail: Jail): JailStatus {
  return Object.freeze({
    name: jail.name.replace(/^jails\//, ""),
    currentlyFailed: jail.currentlyFailed,
    totalFailed: jail.totalFailed,
    files: Object.freeze([...jail.files]),
    currentlyBanned: jail.currentlyBanned,
    totalBanned: jail.totalBanned,
    banned: Object.freeze([...jail.banned]),
    maxRetry: jail.maxRetry,
    findTime: jail.findTime,
    banTime: jail.banTime,
    ignoreIp: Object.freeze([...jail.ignoreIp]),
    actions: Object.freeze([...jail.actions]),
  });
}

export function ipsetEntry(entry: Entry): IpsetEntry {
  return Object.freeze({
    element: entry.element,
    ...(entry.timeout === undefined || entry.timeout === 0 ? {} : { timeout: entry.timeout }),
    ...(entry.comment === "" ? {} : { comment: entry.comment }),
  });
}

export function ipsetInfo(set: Ipset): IpsetInfo {
  return Object.freeze({
    name: set.name.replace(/^ipsets\//, ""),
    type: set.typeName,
    ...(set.family === AddressFamily.ADDRESS_FAMILY_UNSPECIFIED ? {} : { family: addressFamilyToJSON(set.family).replace(/^ADDRESS_FAMILY_/, "").toLowerCase() }),
    entryCount: set.entryCount,
    managed: set.managed,
    ...(set.feed === undefined ? {} : { feed: set.feed.replace(/^feeds\//, "") }),
  });
}

export function allowlistEntry(entry: WireAllowlistEntry): AllowlistEntry {
  return Object.freeze({
    network: entry.network,
    comment: entry.comment,
    createTime: entry.createTime ?? new Date(0),
    ...(entry.expireTime === undefined ? {} : { expireTime: entry.expireTime }),
    createdBy: entry.createdBy,
  });
}

export function auditRecord(record: WireAuditRecord): AuditRecord {
  return Object.freeze({
    time: record.time ?? new Date(0),
    principal: record.principal,
    role: record.role,
    method: record.method,
    resource: record.resource,
    code: record.code,
    reason: record.reason,
    ...(record.originNode === "" ? {} : { originNode: record.originNode }),
  });
}

export function fleetNode(node: WireNode): FleetNode {
  return Object.freeze({
    name: node.name.replace(/^nodes\//, ""),
    version: node.version,
    heartbeatTime: node.heartbeatTime ?? new Date(0),
    startTime: node.startTime ?? new Date(0),
    lag: node.lag,
    bansApplied: node.bansApplied,
    bansRefused: node.bansRefused,
    online: node.online,
  });
}

export function hostBan(ban: WireHostBan): HostBan {
  return Object.freeze({
    node: ban.node.replace(/^nodes\//, ""),
    resource: ban.resource,
    banTime: ban.banTime ?? new Date(0),
    ...(ban.expireTime === undefined ? {} : { expireTime: ban.expireTime }),
    ...(ban.originNode === "" ? {} : { originNode: ban.originNode.replace(/^nodes\//, "") }),
  });
}

/** The request field for fleet scope: sent only when asked for. */
export function fleetScope(options: BanOptions): { fleet?: boolean } {
  return options.fleet === true ? { fleet: true } : {};
}

/** A ban's scope, duration and reason as BanIp and BatchBanIp take them. */
export function banTerms(options: BanTerms): { fleet?: boolean; duration?: number; reason?: string } {
  return {
    ...fleetScope(options),
    ...(options.duration === undefined ? {} : { duration: options.duration }),
    ...(options.reason === undefined ? {} : { reason: options.reason }),
  };
}

export function callerIdentity(identity: WireCallerIdentity): CallerIdentity {
  return Object.freeze({ principal: identity.principal, role: identity.role, ...(identity.address === "" ? {} : { address: identity.address }) });
}

const WINDOWS: ReadonlyArray<[ActivityWindow, WireWindow]> = [
  ["hour", WireWindow.ACTIVITY_WINDOW_HOUR],
  ["day", WireWindow.ACTIVITY_WINDOW_DAY],
  ["week", WireWindow.ACTIVITY_WINDOW_WEEK],
  ["month", WireWindow.ACTIVITY_WINDOW_MONTH],
];

/** A window on the wire (undefined: the server's default, a day). */
export function wireWindow(window: ActivityWindow | undefined): WireWindow {
  return window === undefined ? WireWindow.ACTIVITY_WINDOW_UNSPECIFIED : WINDOWS.find(([name]) => name === window)?.[1] ?? WireWindow.UNRECOGNIZED;
}

function activityWindow(window: WireWindow): ActivityWindow {
  return WINDOWS.find(([, wire]) => wire === window)?.[0] ?? "day";
}

export function banTimeline(timeline: WireTimeline): BanTimeline {
  return Object.freeze({
    window: activityWindow(timeline.window),
    bucketSeconds: timeline.bucketSeconds,
    buckets: Object.freeze(timeline.buckets.map((bucket) => Object.freeze({ start: bucket.startTime ?? new Date(0), bans: bucket.bans, unbans: bucket.unbans }))),
  });
}

function offender(found: WireOffender): Offender {
  return Object.freeze({
    address: found.address,
    banCount: found.banCount,
    lastBanTime: found.lastBanTime ?? new Date(0),
    jails: Object.freeze(found.jails.map(jailName)),
    addressCount: found.addressCount,
  });
}

export function topOffenders(top: WireTopOffenders): TopOffenders {
  return Object.freeze({ window: activityWindow(top.window), addresses: Object.freeze(top.addresses.map(offender)), networks: Object.freeze(top.networks.map(offender)) });
}

export function hostOverview(overview: WireOverview): HostOverview {
  return Object.freeze({ ...overview });
}

export function jailActivity(activity: WireJailActivity): JailActivity {
  return Object.freeze({ ...activity, jail: jailName(activity.jail) });
}

/** "jails/sshd" → "sshd". */
export function jailName(name: string): string {
  return name.replace(/^jails\//, "");
}
/** The SDK's format names and the contract's. */
export const FEED_FORMATS: Readonly<Record<FeedFormat, WireFeedFormat>> = {
  plain: WireFeedFormat.FEED_FORMAT_PLAIN,
  spamhaus: WireFeedFormat.FEED_FORMAT_SPAMHAUS,
  netset: WireFeedFormat.FEED_FORMAT_NETSET,
  "ipset-save": WireFeedFormat.FEED_FORMAT_IPSET_SAVE,
  json: WireFeedFormat.FEED_FORMAT_JSON,
  crowdsec: WireFeedFormat.FEED_FORMAT_CROWDSEC,
};

export function feedInfo(feed: WireFeed): FeedInfo {
  const status = feed.status;
  return Object.freeze({
    name: feed.name.replace(/^feeds\//, ""),
    source: feed.source,
    format: (Object.keys(FEED_FORMATS) as FeedFormat[]).find((name) => FEED_FORMATS[name] === feed.format) ?? "plain",
    ipset: feed.ipset.replace(/^ipsets\//, ""),
    ipsetV6: feed.ipsetV6.replace(/^ipsets\//, ""),
    intervalSeconds: feed.intervalSeconds,
    jitterSeconds: feed.jitterSeconds ?? 0,
    timeoutSeconds: feed.timeoutSeconds,
    retries: feed.retries ?? 0,
    maxBytes: feed.maxBytes,
    maxShrink: feed.maxShrink ?? 0,
    ...(feed.ca === "" ? {} : { ca: feed.ca }),
    ...(feed.apiKeyFile === "" ? {} : { apiKeyFile: feed.apiKeyFile }),
    ...(feed.clientCertificate === "" ? {} : { clientCertificate: feed.clientCertificate }),
    ...(feed.pollIntervalMs === 0 ? {} : { pollIntervalMs: feed.pollIntervalMs }),
    credentialsSet: feed.credentialsSet,
    status: Object.freeze({
      ...(status?.lastSuccessTime === undefined ? {} : { lastSuccessTime: status.lastSuccessTime }),
      ...(status?.lastAttemptTime === undefined ? {} : { lastAttemptTime: status.lastAttemptTime }),
      nextRefreshTime: status?.nextRefreshTime ?? new Date(0),
      entryCount: status?.entryCount ?? 0,
      skippedCount: status?.skippedCount ?? 0,
      invalidCount: status?.invalidCount ?? 0,
      consecutiveFailures: status?.consecutiveFailures ?? 0,
      ...(status === undefined || status.lastErrorReason === "" ? {} : { lastErrorReason: status.lastErrorReason, lastError: status.lastError }),
      ...(status === undefined || status.etag === "" ? {} : { etag: status.etag }),
      ...(status === undefined || status.lastModified === "" ? {} : { lastModified: status.lastModified }),
    }),
  });
}

export function bouncerInfo(bouncer: WireBouncer): BouncerInfo {
  return Object.freeze({
    name: bouncer.name.replace(/^bouncers\//, ""),
    createTime: bouncer.createTime ?? new Date(0),
    ...(bouncer.lastPullTime === undefined ? {} : { lastPullTime: bouncer.lastPullTime }),
    ...(bouncer.version === "" ? {} : { version: bouncer.version }),
  });
}
