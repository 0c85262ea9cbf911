import { X509Certificate } from "node:crypto";
import { ServerError } from "../errors.js";
import { validateFeedName, validateIpsetName } from "../names.js";
import { FEED_FORMATS, ipv6SetOf, type FeedDefinition, type FeedFormat } from "./feed-model.js";

/** ipset's 31 characters, less the `-v6` of the IPv6 set. */
const MAX_SET_NAME = 28;
const MAX_SOURCE = 2048;
const MAX_CA = 64 * 1024;

/** The settings a create or an update gives; absent ones take their default (create) or stay (update). */
export interface FeedSettings {
  readonly source?: string;
  readonly format?: FeedFormat;
  readonly intervalSeconds?: number;
  readonly jitterSeconds?: number;
  readonly timeoutSeconds?: number;
  readonly retries?: number;
  readonly maxBytes?: number;
  readonly maxShrink?: number;
  /** "" for none. */
  readonly ca?: string;
}

interface Limit {
  readonly field: string;
  readonly min: number;
  readonly max: number;
}

const LIMITS = {
  intervalSeconds: { field: "interval_seconds", min: 10, max: 604_800 },
  timeoutSeconds: { field: "timeout_seconds", min: 1, max: 600 },
  retries: { field: "retries", min: 0, max: 10 },
  maxBytes: { field: "max_bytes", min: 1, max: 1_073_741_824 },
} as const satisfies Record<string, Limit>;

const DEFAULTS = { intervalSeconds: 3600, timeoutSeconds: 30, retries: 2, maxBytes: 64 * 1024 * 1024, maxShrink: 0.5 } as const;
/** The default jitter: a tenth of the interval, at most this. */
const MAX_DEFAULT_JITTER = 300;

/** A new feed's definition from what the request gave; every setting checked, defaults filled in. */
export function newDefinition(name: string, ipset: string, settings: FeedSettings): FeedDefinition {
  validateFeedName(name);
  validateIpsetName(ipset, "feed.ipset");
  if (ipset.length > MAX_SET_NAME) {
    throw new ServerError("INVALID_IPSET_NAME", `feed.ipset "${ipset}" is too long: the IPv6 set is named "${ipv6SetOf(ipset)}", which must fit ipset's 31 characters; use at most ${MAX_SET_NAME}`, { field: "feed.ipset", value: ipset });
  }
  if (settings.source === undefined || settings.source === "") throw new ServerError("INVALID_FEED_SOURCE", "feed.source is required: an https://, http:// or file:/// URL", { field: "feed.source" });
  if (settings.format === undefined) throw new ServerError("INVALID_SETTING", `feed.format is required: one of ${FEED_FORMATS.join(", ")}`, { field: "feed.format" });
  const interval = settings.intervalSeconds ?? DEFAULTS.intervalSeconds;
  return checked({
    name,
    source: settings.source,
    format: settings.format,
    ipset,
    intervalSeconds: interval,
    jitterSeconds: settings.jitterSeconds ?? Math.min(MAX_DEFAULT_JITTER, Math.floor(interval / 10)),
    timeoutSeconds: settings.timeoutSeconds ?? DEFAULTS.timeoutSeconds,
    retries: settings.retries ?? DEFAULTS.retries,
    maxBytes: settings.maxBytes ?? DEFAULTS.maxBytes,
    maxShrink: settings.maxShrink ?? DEFAULTS.maxShrink,
    ...(settings.ca === undefined || settings.ca === "" ? {} : { ca: settings.ca }),
  }, "feed.");
}

/** A feed's definition with the settings an update gives; NOTHING_TO_UPDATE when it gives none. */
export function updatedDefinition(current: FeedDefinition, settings: FeedSettings): FeedDefinition {
  if (Object.values(settings).every((value) => value === undefined)) {
    throw new ServerError("NOTHING_TO_UPDATE", "give at least one of source, format, interval_seconds, jitter_seconds, timeout_seconds, retries, max_bytes, max_shrink, ca", { field: "source" });
  }
  const { ca: _ca, ...rest } = current;
  const { ca: givenCa, ...given } = settings;
  const ca = givenCa ?? current.ca;
  const interval = settings.intervalSeconds ?? current.intervalSeconds;
  return checked({
    ...rest,
    ...definedOnly(given),
    // A jitter that no longer fits a shorter interval shrinks with it, unless one is given.
    jitterSeconds: settings.jitterSeconds ?? Math.min(current.jitterSeconds, interval),
    ...(ca === undefined || ca === "" ? {} : { ca }),
  }, "");
}

/** Whether an update changes what the list is read from or how: the next refresh then reads it whole. */
export function changesTheList(before: FeedDefinition, after: FeedDefinition): boolean {
  return before.source !== after.source || before.format !== after.format || before.ca !== after.ca;
}

function checked(definition: FeedDefinition, prefix: string): FeedDefinition {
  checkSource(definition.source, `${prefix}source`);
  for (const key of ["intervalSeconds", "timeoutSeconds", "retries", "maxBytes"] as const) inRange(definition[key], LIMITS[key], prefix);
  inRange(definition.jitterSeconds, { field: "jitter_seconds", min: 0, max: definition.intervalSeconds }, prefix);
  if (!(definition.maxShrink >= 0 && definition.maxShrink <= 1)) {
    throw new ServerError("INVALID_SETTING", `${prefix}max_shrink must be from 0 to 1 (the share of the sets' entries a new list may take away), got ${definition.maxShrink}`, { field: `${prefix}max_shrink`, value: String(definition.maxShrink) });
  }
  if (definition.ca !== undefined) checkCa(definition.ca, `${prefix}ca`);
  return Object.freeze(definition);
}

function inRange(value: number, limit: Limit, prefix: string): void {
  if (Number.isInteger(value) && value >= limit.min && value <= limit.max) return;
  throw new ServerError("INVALID_SETTING", `${prefix}${limit.field} must be a whole number from ${limit.min} to ${limit.max}, got ${value}`, { field: `${prefix}${limit.field}`, value: String(value) });
}

function checkSource(source: string, field: string): void {
  const refuse = (why: string): never => {
    throw new ServerError("INVALID_FEED_SOURCE", `${field} "${source.slice(0, 200)}" ${why}`, { field, value: source.slice(0, 200) });
  };
  if (source.length > MAX_SOURCE) refuse(`is longer than ${MAX_SOURCE} characters`);
  let url: URL;
  try {
    url = new URL(source);
  } catch {
    return refuse("is not a URL; give an https://, http:// or file:/// URL");
  }
  if (url.username !== "" || url.password !== "") refuse("carries a user name or password, which would be shown to every viewer of the feed; use a URL without them");
  if (url.protocol === "https:" || url.protocol === "http:") {
    if (url.hostname === "") refuse("has no host");
    return;
  }
  if (url.protocol === "file:") {
    if (url.hostname !== "" && url.hostname !== "localhost") refuse("names another host; a file source is a path on this server's host (file:///path)");
    if (url.search !== "" || url.hash !== "") refuse("has a query or fragment, which a file path cannot have");
    return;
  }
  refuse(`uses ${url.protocol.replace(/:$/, "")}; give an https://, http:// or file:/// URL`);
}

/** One or more PEM certificates, each readable. */
function checkCa(ca: string, field: string): void {
  const blocks = ca.length > MAX_CA ? null : ca.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g);
  const readable = blocks !== null && blocks.every((block) => {
    try {
      new X509Certificate(block);
      return true;
    } catch {
      return false;
    }
  });
  if (!readable) throw new ServerError("INVALID_FEED_SOURCE", `${field} must be one or more PEM certificates (-----BEGIN CERTIFICATE-----…), at most ${MAX_CA} characters`, { field });
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as Partial<T>;
}

/** The settings an update gave, by their request field names, for its FEED_UPDATED event (a CA as whether one is set). */
export function settingsAttributes(settings: FeedSettings): Record<string, string> {
  const given: Array<[string, unknown]> = [
    ["source", settings.source], ["format", settings.format], ["interval_seconds", settings.intervalSeconds],
    ["jitter_seconds", settings.jitterSeconds], ["timeout_seconds", settings.timeoutSeconds], ["retries", settings.retries],
    ["max_bytes", settings.maxBytes], ["max_shrink", settings.maxShrink],
    ["ca", settings.ca === undefined ? undefined : settings.ca === "" ? "none" : "set"],
  ];
  return Object.fromEntries(given.filter(([, value]) => value !== undefined).map(([key, value]) => [key, String(value)]));
}
