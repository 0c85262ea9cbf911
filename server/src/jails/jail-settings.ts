import { ServerError } from "../errors.js";
import type { Fail2banClient } from "../drivers/fail2ban-client.js";
import { INCREMENT_OPTIONS, number, parseBanTimeIncrement, strings, type BanTimeIncrement } from "../drivers/parse/fail2ban-replies.js";
import type { JailTuning } from "./jail-drop-in.js";
import { TEN_YEARS_SECONDS } from "./jail-checks.js";

/** A jail's settings (what `fail2ban-client get <jail> …` reads). */
export interface JailSettings {
  readonly maxRetry: number;
  readonly findTime: number;
  readonly banTime: number;
  readonly ignoreIp: string[];
  readonly actions: string[];
  readonly increment: BanTimeIncrement;
}

/** What UpdateJail changes: the settings given; `increment`, when given, replaces the whole bantime.increment set. */
export interface JailUpdate {
  readonly maxRetry?: number;
  readonly findTime?: number;
  readonly banTime?: number;
  readonly increment?: Omit<BanTimeIncrement, "formula">;
}

const SETTINGS_TTL_MS = 5000;

/**
 * Jails' settings, read with five round trips to a server that answers one request at a time, so they are kept for
 * SETTINGS_TTL_MS: a jail's status stays one round trip. Changes made here drop the cached copy at once (`forget`);
 * changes made behind Portcullis's back (fail2ban-client, a reload) show within the TTL.
 */
export class JailSettingsCache {
  readonly #fail2ban: Fail2banClient;
  readonly #cache = new Map<string, { settings: JailSettings; at: number }>();
  /** Bumped whenever a jail's settings change here: a read that was under way meanwhile must not be cached. */
  #epoch = 0;

  constructor(fail2ban: Fail2banClient) {
    this.#fail2ban = fail2ban;
  }

  async read(name: string): Promise<JailSettings> {
    const cached = this.#cache.get(name);
    if (cached !== undefined && Date.now() - cached.at < SETTINGS_TTL_MS) return cached.settings;
    const epoch = this.#epoch;
    const get = (key: string) => this.#fail2ban.send(["get", name, key]);
    const settings: JailSettings = {
      maxRetry: number(await get("maxretry")),
      findTime: number(await get("findtime")),
      banTime: number(await get("bantime")),
      ignoreIp: strings(await get("ignoreip")),
      actions: strings(await get("actions")),
      increment: parseBanTimeIncrement(await sequence(INCREMENT_OPTIONS.map((option) => () => get(`bantime.${option}`)))),
    };
    // A read that started before a change (an ignoreip added meanwhile) would put the old settings back for the TTL.
    if (this.#epoch === epoch) this.#cache.set(name, { settings, at: Date.now() });
    return settings;
  }

  /** Drops one jail's cached settings (or every jail's) after a change made here. */
  forget(jail?: string): void {
    this.#epoch++;
    if (jail === undefined) this.#cache.clear();
    else this.#cache.delete(jail);
  }
}

/** Runs the calls one after the other (fail2ban answers one request at a time anyway). */
async function sequence<T>(calls: ReadonlyArray<() => Promise<T>>): Promise<T[]> {
  const results: T[] = [];
  for (const call of calls) results.push(await call());
  return results;
}

// ---- the limits of what UpdateJail may set, and the text fail2ban and the drop-in (jail-drop-in.ts) take -------------

const LIMITS = {
  maxRetry: { field: "max_retry", min: 1, max: 1000 },
  findTime: { field: "find_time", min: 1, max: 31_536_000 },
  banTime: { field: "ban_time", min: 1, max: TEN_YEARS_SECONDS, forever: -1 },
  maxTime: { field: "ban_time_increment.max_time", min: 1, max: TEN_YEARS_SECONDS },
  randomTime: { field: "ban_time_increment.random_time", min: 1, max: 86_400 },
  multiplier: { field: "ban_time_increment.multipliers", min: 1, max: 100_000 },
} as const;
const MAX_MULTIPLIERS = 20;

/** A whole number in range (or the "for ever" value) as text; 0 means unset where `unset` allows it. */
function checked(value: number, limit: { field: string; min: number; max: number; forever?: number }, unset = false): string | null {
  if (unset && value === 0) return null;
  if (!Number.isInteger(value) || ((value < limit.min || value > limit.max) && value !== limit.forever)) {
    throw new ServerError("INVALID_SETTING", `${limit.field} must be a whole number from ${limit.min} to ${limit.max}${limit.forever === undefined ? "" : ` (or ${limit.forever} for ever)`}${unset ? " (or 0 for unset)" : ""}, got ${value}`, { field: limit.field, value: String(value) });
  }
  return String(value);
}

/**
 * The given settings as the option values fail2ban takes, each checked. bantime.factor is evaluated by fail2ban as
 * Python, so only a plain decimal number in range ever goes there.
 */
export function tuningOf(update: JailUpdate): JailTuning {
  const tuning: JailTuning = {};
  if (update.maxRetry !== undefined) tuning.maxretry = checked(update.maxRetry, LIMITS.maxRetry);
  if (update.findTime !== undefined) tuning.findtime = checked(update.findTime, LIMITS.findTime);
  if (update.banTime !== undefined) tuning.bantime = checked(update.banTime, LIMITS.banTime);
  const increment = update.increment;
  if (increment !== undefined) {
    const { factor, multipliers } = increment;
    if (!Number.isFinite(factor) || (factor !== 0 && (factor < 0.001 || factor > 1000))) {
      throw new ServerError("INVALID_SETTING", `ban_time_increment.factor must be from 0.001 to 1000 (or 0 for unset), got ${factor}`, { field: "ban_time_increment.factor", value: String(factor) });
    }
    if (multipliers.length > MAX_MULTIPLIERS) {
      throw new ServerError("INVALID_SETTING", `ban_time_increment.multipliers takes at most ${MAX_MULTIPLIERS} values, got ${multipliers.length}`, { field: "ban_time_increment.multipliers" });
    }
    tuning["bantime.increment"] = increment.enabled ? "true" : "false";
    tuning["bantime.factor"] = factor === 0 ? null : String(Number(factor.toFixed(3)));
    tuning["bantime.maxtime"] = checked(increment.maxTime, LIMITS.maxTime, true);
    tuning["bantime.rndtime"] = checked(increment.randomTime, LIMITS.randomTime, true);
    tuning["bantime.multipliers"] = multipliers.length === 0 ? null : multipliers.map((value) => checked(value, LIMITS.multiplier)).join(" ");
    // fail2ban tests the text it is given for truth ("false" would count): off is the option removed.
    tuning["bantime.overalljails"] = increment.overallJails ? "true" : null;
  }
  return tuning;
}

/** The JAIL_UPDATED event's attributes: each setting given, by its field name in the API. */
export function updateAttributes(update: JailUpdate): Record<string, string> {
  const attributes: Record<string, string> = {};
  if (update.maxRetry !== undefined) attributes.max_retry = String(update.maxRetry);
  if (update.findTime !== undefined) attributes.find_time = String(update.findTime);
  if (update.banTime !== undefined) attributes.ban_time = String(update.banTime);
  const increment = update.increment;
  if (increment !== undefined) {
    attributes["ban_time_increment.enabled"] = String(increment.enabled);
    if (increment.factor !== 0) attributes["ban_time_increment.factor"] = String(increment.factor);
    if (increment.maxTime !== 0) attributes["ban_time_increment.max_time"] = String(increment.maxTime);
    if (increment.randomTime !== 0) attributes["ban_time_increment.random_time"] = String(increment.randomTime);
    if (increment.multipliers.length > 0) attributes["ban_time_increment.multipliers"] = increment.multipliers.join(" ");
    if (increment.overallJails) attributes["ban_time_increment.overall_jails"] = "true";
  }
  return attributes;
}

/** The options a drop-in keeps: those set to a value (null means removed). */
export function withoutNulls(tuning: JailTuning): JailTuning {
  return Object.fromEntries(Object.entries(tuning).filter(([, value]) => value !== null));
}
