import { ServerError } from "../../errors.js";
import type { PickleValue } from "./pickle-codec.js";

/** What `status <jail> short` reports (the ban list comes with its times from `get <jail> banip --with-time`). */
export interface JailStatus {
  readonly currentlyFailed: number;
  readonly totalFailed: number;
  readonly files: string[];
  readonly currentlyBanned: number;
  readonly totalBanned: number;
}

/** One ban of `get <jail> banip --with-time`. */
export interface BanWithTime {
  readonly address: string;
  /** ms since the epoch. */
  readonly bannedAt: number;
  /** Seconds; -1 for ever. */
  readonly duration: number;
}

/** `status` → the jail names (fail2ban sends them as one comma-separated string). */
export function parseJailList(reply: PickleValue): string[] {
  const list = field(pairs(reply, "status"), "Jail list", "status");
  if (typeof list !== "string") throw unexpected("status");
  return list.split(",").map((name) => name.trim()).filter((name) => name !== "");
}

/**
 * `get <jail> banip --with-time` → bans, soonest to end first. fail2ban prints each as
 * `ADDRESS \tYYYY-MM-DD HH:MM:SS + SECONDS = YYYY-MM-DD HH:MM:SS` in its local time, the host's (as is this process's).
 */
export function parseBansWithTime(reply: PickleValue): BanWithTime[] {
  return strings(reply).map((line) => {
    const match = /^(\S+)\s+(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) \+ (-?\d+) = /.exec(line);
    if (match === null) throw unexpected("get <jail> banip --with-time");
    const [, address = "", year, month, day, hour, minute, second, duration] = match;
    return { address, bannedAt: new Date(Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second)).getTime(), duration: Number(duration) };
  });
}

/** `status <jail> [short]` → counters and files. */
export function parseJailStatus(reply: PickleValue): JailStatus {
  const top = pairs(reply, "status <jail>");
  const filter = pairs(field(top, "Filter", "status <jail>"), "status <jail>");
  const actions = pairs(field(top, "Actions", "status <jail>"), "status <jail>");
  return {
    currentlyFailed: number(field(filter, "Currently failed", "status <jail>")),
    totalFailed: number(field(filter, "Total failed", "status <jail>")),
    files: strings(field(filter, "File list", "status <jail>")),
    currentlyBanned: number(field(actions, "Currently banned", "status <jail>")),
    totalBanned: number(field(actions, "Total banned", "status <jail>")),
  };
}

/** The ban list of a basic `status <jail>` (the short flavour has none). */
export function parseBannedList(reply: PickleValue): string[] {
  const actions = pairs(field(pairs(reply, "status <jail>"), "Actions", "status <jail>"), "status <jail>");
  return strings(field(actions, "Banned IP list", "status <jail>"));
}

/** A reply that must be a number (maxretry, findtime, bantime, ban/unban counts). */
export function number(value: PickleValue): number {
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  throw unexpected("a number");
}

/** A reply that must be a list of strings (ignoreip, actions, logpath). */
export function strings(value: PickleValue): string[] {
  if (!Array.isArray(value)) throw unexpected("a list");
  return value.map((item) => String(item));
}

function pairs(value: PickleValue, what: string): Array<[string, PickleValue]> {
  if (!Array.isArray(value) || !value.every((pair) => Array.isArray(pair) && pair.length === 2 && typeof pair[0] === "string")) throw unexpected(what);
  return value as Array<[string, PickleValue]>;
}

function field(entries: Array<[string, PickleValue]>, name: string, what: string): PickleValue {
  const found = entries.find(([key]) => key === name);
  if (found === undefined) throw unexpected(`${what} (no "${name}")`);
  return found[1];
}

function unexpected(what: string): ServerError {
  return new ServerError("FAIL2BAN_BAD_REPLY", `fail2ban answered in an unexpected shape for ${what}; see the server log`);
}

/** A jail's bantime.increment options, as `get <jail> bantime.<option>` reads them. */
export interface BanTimeIncrement {
  readonly enabled: boolean;
  /** 0 when unset. */
  readonly factor: number;
  /** Seconds; 0 when unset. */
  readonly maxTime: number;
  /** Seconds; 0 when unset. */
  readonly randomTime: number;
  readonly multipliers: number[];
  readonly overallJails: boolean;
  /** "" when unset. */
  readonly formula: string;
}

/** The options of bantime.increment that `get <jail> bantime.<option>` reads, in the order parseBanTimeIncrement takes them. */
export const INCREMENT_OPTIONS = ["increment", "factor", "maxtime", "rndtime", "multipliers", "overalljails", "formula"] as const;

/**
 * The replies to `get <jail> bantime.<option>` for INCREMENT_OPTIONS. fail2ban keeps what it was given: a bool from
 * its configuration, text from `fail2ban-client set` (which it tests for truth as Python does, so "false" counts).
 */
export function parseBanTimeIncrement(replies: readonly PickleValue[]): BanTimeIncrement {
  const [increment, factor, maxTime, randomTime, multipliers, overallJails, formula] = replies;
  const text = (value: PickleValue | undefined): string => (value === null || value === undefined ? "" : String(value));
  const seconds = (value: PickleValue | undefined): number => (typeof value === "number" || typeof value === "bigint" ? Number(value) : Number(text(value)) || 0);
  const truthy = (value: PickleValue | undefined): boolean => (typeof value === "boolean" ? value : text(value) !== "");
  return {
    enabled: truthy(increment),
    factor: Number(text(factor)) || 0,
    maxTime: seconds(maxTime),
    randomTime: seconds(randomTime),
    multipliers: text(multipliers).split(/\s+/).filter((word) => word !== "").map(Number),
    overallJails: truthy(overallJails),
    formula: text(formula),
  };
}
