import type { EventType } from "./client";

/**
 * A short label for each event type. A Record over the contract's union: a type added to the proto fails to compile
 * here until it has a label, and the live stream listens for every key (the server names each SSE event by its type).
 */
export const EVENT_LABELS: Readonly<Record<EventType, string>> = {
  EVENT_TYPE_UNSPECIFIED: "Unspecified",
  EVENT_TYPE_IPSET_CREATED: "Set created",
  EVENT_TYPE_IPSET_DELETED: "Set deleted",
  EVENT_TYPE_IPSET_FLUSHED: "Set flushed",
  EVENT_TYPE_IPSET_RENAMED: "Set renamed",
  EVENT_TYPE_IPSETS_SWAPPED: "Sets swapped",
  EVENT_TYPE_IPSET_ADOPTED: "Set adopted",
  EVENT_TYPE_ENTRY_ADDED: "Entry added",
  EVENT_TYPE_ENTRY_DELETED: "Entry deleted",
  EVENT_TYPE_ENTRIES_ADDED: "Entries added",
  EVENT_TYPE_ENTRIES_DELETED: "Entries deleted",
  EVENT_TYPE_RULE_CREATED: "Rule created",
  EVENT_TYPE_RULE_REPLACED: "Rule replaced",
  EVENT_TYPE_RULE_DELETED: "Rule deleted",
  EVENT_TYPE_CHAIN_CREATED: "Chain created",
  EVENT_TYPE_CHAIN_DELETED: "Chain deleted",
  EVENT_TYPE_POLICY_SET: "Policy set",
  EVENT_TYPE_RULESET_APPLIED: "Ruleset applied",
  EVENT_TYPE_RULESET_CONFIRMED: "Ruleset confirmed",
  EVENT_TYPE_RULESET_ROLLED_BACK: "Ruleset rolled back",
  EVENT_TYPE_PANIC_ENABLED: "Panic mode on",
  EVENT_TYPE_PANIC_DISABLED: "Panic mode off",
  EVENT_TYPE_STATE_REPAIRED: "State repaired",
  EVENT_TYPE_BAN: "Ban",
  EVENT_TYPE_UNBAN: "Unban",
  EVENT_TYPE_JAIL_UPDATED: "Jail updated",
  EVENT_TYPE_JAIL_STOPPED: "Jail stopped",
  EVENT_TYPE_JAIL_STARTED: "Jail started",
  EVENT_TYPE_JAILS_RELOADED: "Jails reloaded",
  EVENT_TYPE_ALLOWLIST_ENTRY_ADDED: "Allowlisted",
  EVENT_TYPE_ALLOWLIST_ENTRY_REMOVED: "Allowlist entry removed",
  EVENT_TYPE_FAIL2BAN_DOWN: "fail2ban down",
  EVENT_TYPE_FAIL2BAN_UP: "fail2ban up",
  EVENT_TYPE_FLEET_BAN_REFUSED: "Fleet ban refused",
  EVENT_TYPE_STATE_REFUSED: "State refused",
  EVENT_TYPE_IPSET_GROWN: "Set grown",
  EVENT_TYPE_FEED_CREATED: "Feed created",
  EVENT_TYPE_FEED_UPDATED: "Feed updated",
  EVENT_TYPE_FEED_DELETED: "Feed deleted",
  EVENT_TYPE_FEED_REFRESHED: "Feed refreshed",
  EVENT_TYPE_FEED_FAILED: "Feed failed",
  EVENT_TYPE_BOUNCER_CREATED: "Bouncer created",
  EVENT_TYPE_BOUNCER_DELETED: "Bouncer deleted",
};

export const EVENT_TYPES = Object.keys(EVENT_LABELS).filter((type) => type !== "EVENT_TYPE_UNSPECIFIED") as EventType[];

export function labelOf(type: EventType | undefined): string {
  return type === undefined ? "" : EVENT_LABELS[type] ?? type;
}
