import { ServerError } from "../errors.js";
import { validateBouncerName, validateFeedName, validateIpsetName } from "../names.js";

const IPSET_PREFIX = "ipsets/";
const ENTRIES = "/entries/";
const FEED_PREFIX = "feeds/";

/** `ipsets/{ipset}` → the set name, checked against the set-name rules so no odd text reaches a kernel command. */
export function parseIpsetName(name: string, field = "name"): string {
  if (!name.startsWith(IPSET_PREFIX) || name.length === IPSET_PREFIX.length || name.includes("/", IPSET_PREFIX.length)) {
    throw new ServerError("INVALID_RESOURCE_NAME", `${field} must look like "ipsets/{ipset}", got "${truncate(name)}"`, { field, value: truncate(name) });
  }
  const set = name.slice(IPSET_PREFIX.length);
  validateIpsetName(set, field);
  return set;
}

/** `ipsets/{ipset}/entries/{element}` → [set, element]; the element may contain a slash (CIDR). */
export function parseEntryName(name: string, field = "name"): [string, string] {
  const at = name.indexOf(ENTRIES);
  if (!name.startsWith(IPSET_PREFIX) || at <= IPSET_PREFIX.length || at + ENTRIES.length === name.length) {
    throw new ServerError("INVALID_RESOURCE_NAME", `${field} must look like "ipsets/{ipset}/entries/{element}", got "${truncate(name)}"`, { field, value: truncate(name) });
  }
  return [parseIpsetName(name.slice(0, at), field), name.slice(at + ENTRIES.length)];
}

/** `feeds/{feed}` → the feed's name, checked against the feed-name rules. */
export function parseFeedName(name: string, field = "name"): string {
  if (!name.startsWith(FEED_PREFIX) || name.length === FEED_PREFIX.length || name.includes("/", FEED_PREFIX.length)) {
    throw new ServerError("INVALID_RESOURCE_NAME", `${field} must look like "feeds/{feed}", got "${truncate(name)}"`, { field, value: truncate(name) });
  }
  const feed = name.slice(FEED_PREFIX.length);
  validateFeedName(feed, field);
  return feed;
}

const BOUNCER_PREFIX = "bouncers/";

/** `bouncers/{bouncer}` → the bouncer's name, checked against the bouncer-name rules. */
export function parseBouncerName(name: string, field = "name"): string {
  if (!name.startsWith(BOUNCER_PREFIX) || name.length === BOUNCER_PREFIX.length || name.includes("/", BOUNCER_PREFIX.length)) {
    throw new ServerError("INVALID_RESOURCE_NAME", `${field} must look like "bouncers/{bouncer}", got "${truncate(name)}"`, { field, value: truncate(name) });
  }
  const bouncer = name.slice(BOUNCER_PREFIX.length);
  validateBouncerName(bouncer, field);
  return bouncer;
}

export { ipsetName, entryName, feedName, bouncerName } from "../names.js";

function truncate(value: string): string {
  return value.length > 200 ? `${value.slice(0, 200)}…` : value;
}
