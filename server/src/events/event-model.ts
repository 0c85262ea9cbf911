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

export interface EventFilter {
  readonly types?: readonly EventType[];
  readonly resourcePrefix?: string;
}

export function matchesFilter(event: HostEvent, filter: EventFilter): boolean {
  return (filter.types === undefined || filter.types.length === 0 || filter.types.includes(event.type)) &&
    (filter.resourcePrefix === undefined || event.resource.startsWith(filter.resourcePrefix));
}
