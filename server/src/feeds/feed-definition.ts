import { X509Certificate } from "node:crypto";
import { ServerError } from "../errors.js";
import { validateFeedName, validateIpsetName } from "../names.js";
import { isAbsolute } from "node:path";
import { FEED_FORMATS, ipv6SetOf, isCrowdsec, type FeedDefinition, type FeedFormat } from "./feed-model.js";

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
  /** Format crowdsec only; "" for none. */
  readonly apiKey?: string;
  readonly apiKeyFile?: string;
  readonly clientCertificate?: string;
  readonly clientKey?: string;
  readonly pollIntervalMs?: number;
}

/** The settings that only a crowdsec feed takes (and that an empty string removes). */
const CROWDSEC_TEXTS = ["apiKey", "apiKeyFile", "clientCertificate", "clientKey"] as const;
const MAX_API_KEY = 256;
const MAX_PEM = 64 * 1024;

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
  pollIntervalMs: { field: "poll_interval_ms", min: 100, max: 60_000 },
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
    ...crowdsecSettings({}, settings),
  }, "feed.");
}

/** A feed's definition with the settings an update gives; NOTHING_TO_UPDATE when it gives none. */
export function updatedDefinition(current: FeedDefinition, settings: FeedSettings): FeedDefinition {
  if (Object.values(settings).every((value) => value === undefined)) {
    throw new ServerError("NOTHING_TO_UPDATE", "give at least one of source, format, interval_seconds, jitter_seconds, timeout_seconds, retries, max_bytes, max_shrink, ca, api_key, api_key_file, client_certificate, client_key, poll_interval_ms", { field: "source" });
  }
  if (settings.format !== undefined && isCrowdsec({ format: settings.format }) !== isCrowdsec(current)) {
    throw new ServerError("INVALID_SETTING", `format cannot change between crowdsec (a decision stream) and a list format (${current.format} to ${settings.format}): delete the feed and create it again`, { field: "format", value: settings.format });
  }
  const { ca: _ca, apiKey: _k, apiKeyFile: _f, clientCertificate: _c, clientKey: _ck, pollIntervalMs: _p, ...rest } = current;
  const { ca: givenCa, apiKey: _gk, apiKeyFile: _gf, clientCertificate: _gc, clientKey: _gck, pollIntervalMs: _gp, ...given } = settings;
  const ca = givenCa ?? current.ca;
  const interval = settings.intervalSeconds ?? current.intervalSeconds;
  return checked({
    ...rest,
    ...definedOnly(given),
    // A jitter that no longer fits a shorter interval shrinks with it, unless one is given.
    jitterSeconds: settings.jitterSeconds ?? Math.min(current.jitterSeconds, interval),
    ...(ca === undefined || ca === "" ? {} : { ca }),
    ...crowdsecSettings(current, settings),
  }, "");
}

/** The crowdsec settings of a definition: those given (an empty text removes one), else the current ones. */
function crowdsecSettings(current: Partial<FeedDefinition>, settings: FeedSettings): Partial<FeedDefinition> {
  const merged: Record<string, string | number> = {};
  for (const key of CROWDSEC_TEXTS) {
    // A certificate removed takes its key with it.
    const value = key === "clientKey" && settings.clientCertificate === "" ? "" : settings[key] ?? current[key];
    if (value !== undefined && value !== "") merged[key] = value;
  }
  const poll = settings.pollIntervalMs ?? current.pollIntervalMs;
  if (poll !== undefined) merged.pollIntervalMs = poll;
  return merged as Partial<FeedDefinition>;
}

/** Whether an update changes what the list is read from or how: the next refresh then reads it whole. */
export function changesTheList(before: FeedDefinition, after: FeedDefinition): boolean {
  return (["source", "format", "ca", ...CROWDSEC_TEXTS] as const).some((key) => before[key] !== after[key]);
}

function checked(definition: FeedDefinition, prefix: string): FeedDefinition {
  checkSource(definition.source, `${prefix}source`);
  for (const key of ["intervalSeconds", "timeoutSeconds", "retries", "maxBytes"] as const) inRange(definition[key], LIMITS[key], prefix);
  inRange(definition.jitterSeconds, { field: "jitter_seconds", min: 0, max: definition.intervalSeconds }, prefix);
  if (!(definition.maxShrink >= 0 && definition.maxShrink <= 1)) {
    throw new ServerError("INVALID_SETTING", `${prefix}max_shrink must be from 0 to 1 (the share of the sets' entries a new list may take away), got ${definition.maxShrink}`, { field: `${prefix}max_shrink`, value: String(definition.maxShrink) });
  }
  if (definition.ca !== undefined) checkCa(definition.ca, `${prefix}ca`);
  checkCrowdsec(definition, prefix);
  return Object.freeze(definition);
}

/** A crowdsec feed reads an http(s) Local API with credentials; another feed takes none of its settings. */
function checkCrowdsec(definition: FeedDefinition, prefix: string): void {
  const refuse = (field: string, why: string): never => {
    throw new ServerError("INVALID_SETTING", `${prefix}${field} ${why}`, { field: `${prefix}${field}` });
  };
  if (!isCrowdsec(definition)) {
    const given = ([...CROWDSEC_TEXTS, "pollIntervalMs"] as const).find((key) => definition[key] !== undefined);
    if (given !== undefined) refuse(snake(given), "is a setting of crowdsec feeds only (format FEED_FORMAT_CROWDSEC)");
    return;
  }
  if (new URL(definition.source).protocol === "file:") {
    throw new ServerError("INVALID_FEED_SOURCE", `${prefix}source of a crowdsec feed is the Local API's base URL (http://127.0.0.1:8080 or https://…), not a file`, { field: `${prefix}source` });
  }
  if (definition.pollIntervalMs !== undefined) inRange(definition.pollIntervalMs, LIMITS.pollIntervalMs, prefix);
  if (definition.apiKey !== undefined && (definition.apiKey.length > MAX_API_KEY || !/^[\x21-\x7e]+$/.test(definition.apiKey))) {
    refuse("api_key", `must be 1 to ${MAX_API_KEY} printable characters without spaces (the key \`cscli bouncers add\` prints)`);
  }
  if (definition.apiKeyFile !== undefined && (!isAbsolute(definition.apiKeyFile) || definition.apiKeyFile.length > 4096)) refuse("api_key_file", "must be an absolute path on the server's host");
  if (definition.apiKey !== undefined && definition.apiKeyFile !== undefined) refuse("api_key_file", "and api_key are both given; give one of them");
  if ((definition.clientCertificate === undefined) !== (definition.clientKey === undefined)) refuse(definition.clientKey === undefined ? "client_key" : "client_certificate", "is missing: a client certificate needs its key, and a key its certificate");
  if (definition.clientCertificate !== undefined) {
    checkCa(definition.clientCertificate, `${prefix}client_certificate`);
    if (definition.clientKey!.length > MAX_PEM || !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(definition.clientKey!)) refuse("client_key", "must be a PEM private key (-----BEGIN PRIVATE KEY-----…)");
  }
  if (definition.apiKey === undefined && definition.apiKeyFile === undefined && definition.clientCertificate === undefined) {
    refuse("api_key", "is required for a crowdsec feed (or api_key_file, or client_certificate and client_key): the key `cscli bouncers add <name>` prints");
  }
}

function snake(key: string): string {
  return key.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
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
    // Credentials are never written into events: whether they were set or removed.
    ["api_key", settings.apiKey === undefined ? undefined : settings.apiKey === "" ? "none" : "set"],
    ["api_key_file", settings.apiKeyFile],
    ["client_certificate", settings.clientCertificate === undefined ? undefined : settings.clientCertificate === "" ? "none" : "set"],
    ["client_key", settings.clientKey === undefined ? undefined : settings.clientKey === "" ? "none" : "set"],
    ["poll_interval_ms", settings.pollIntervalMs],
  ];
  return Object.fromEntries(given.filter(([, value]) => value !== undefined).map(([key, value]) => [key, String(value)]));
}
