/** What can happen on a host, as recorded in the event log (the proto's EventType without its prefix). */
export const EVENT_TYPES = [
  "IPSET_CREATED", "IPSET_DELETED", "IPSET_FLUSHED", "IPSET_RENAMED", "IPSETS_SWAPPED", "IPSET_ADOPTED",
  "ENTRY_ADDED", "ENTRY_DELETED", "ENTRIES_ADDED", "ENTRIES_DELETED",
  "RULE_CREATED", "RULE_REPLACED", "RULE_DELETED", "CHAIN_CREATED", "CHAIN_DELETED", "POLICY_SET",
  "RULESET_APPLIED", "RULESET_CONFIRMED", "RULESET_ROLLED_BACK", "PANIC_ENABLED", "PANIC_DISABLED", "STATE_REPAIRED",
  "BAN", "UNBAN", "JAIL_UPDATED", "JAIL_STOPPED", "JAIL_STARTED", "JAILS_RELOADED",
  "ALLOWLIST_ENTRY_ADDED", "ALLOWLIST_ENTRY_REMOVED", "FAIL2BAN_DOWN", "FAIL2BAN_UP",
  "FLEET_BAN_REFUSED", "STATE_REFUSED", "IPSET_GROWN",
  "FEED_CREATED", "FEED_UPDATED", "FEED_DELETED", "FEED_REFRESHED", "FEED_FAILED",
  "BOUNCER_CREATED", "BOUNCER_DELETED",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export type EventOrigin = "api" | "system" | "fail2ban" | "fleet";

/** An event to record; the log gives it its sequence number and time. */
export interface EventInput {
  readonly type: EventType;
  readonly resource: string;
  readonly attributes?: Readonly<Record<string, string>>;
}

/** A recorded event. */
export interface HostEvent {
  readonly sequence: number;
  readonly time: number;
  readonly type: EventType;
  readonly resource: string;
  readonly principal: string;
  readonly origin: EventOrigin;
  readonly attributes: Readonly<Record<string, string>>;
}

/** Which events a list, watch or export takes; every criterion given must hold. */
export interface EventFilter {
  readonly types?: readonly EventType[];
  readonly resourcePrefix?: string;
  readonly principal?: string;
  /** The jail the event is about (see subjectOf). */
  readonly jail?: string;
  /** The address or network the event is about, canonical (see subjectOf). */
  readonly address?: string;
  /** ms since the epoch, inclusive. */
  readonly startTime?: number;
  /** ms since the epoch, exclusive. */
  readonly endTime?: number;
}

/**
 * The jail and the address (or network) an event is about, as the store indexes them for filters: the `jail`
 * attribute or the jail of a `jails/{jail}…` resource; the `address`, `element` or `network` attribute, without the
 * port part of an element such as `192.0.2.1,tcp:80`. The migration that added these columns computes the same in SQL.
 */
export function subjectOf(event: Pick<HostEvent, "resource" | "attributes">): { readonly jail?: string; readonly address?: string } {
  const jail = event.attributes.jail ?? (event.resource.startsWith("jails/") ? event.resource.slice(6).split("/")[0] : undefined);
  const about = event.attributes.address ?? event.attributes.element ?? event.attributes.network;
  const address = about === undefined ? undefined : about.split(",")[0];
  return { ...(jail === undefined || jail === "" ? {} : { jail }), ...(address === undefined || address === "" ? {} : { address }) };
}

export function matchesFilter(event: HostEvent, filter: EventFilter): boolean {
  if (filter.types !== undefined && filter.types.length > 0 && !filter.types.includes(event.type)) return false;
  if (filter.resourcePrefix !== undefined && !event.resource.startsWith(filter.resourcePrefix)) return false;
  if (filter.principal !== undefined && event.principal !== filter.principal) return false;
  if (filter.startTime !== undefined && event.time < filter.startTime) return false;
  if (filter.endTime !== undefined && event.time >= filter.endTime) return false;
  if (filter.jail === undefined && filter.address === undefined) return true;
  const subject = subjectOf(event);
  return (filter.jail === undefined || subject.jail === filter.jail) && (filter.address === undefined || subject.address === filter.address);
}
