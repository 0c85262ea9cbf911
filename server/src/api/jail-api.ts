import { JailView as WireJailView, type AllowlistEntry, type Jail, type JailServiceServer, type JailServiceService, type UpdateJailRequest } from "@portcullis/sdk/gen/portcullis/v1/jail.js";
import { ServerError } from "../errors.js";
import { ALL_JAILS, type JailService, type JailUpdate, type JailView } from "../jails/jail-service.js";
import type { AllowlistService } from "../jails/allowlist-service.js";
import type { AllowlistRow } from "../store/allowlist-store.js";
import { canonicalNetwork, formatAddress, parseAddressStrict } from "../addresses.js";
import { operation, type OperationsOf } from "./operation.js";
import type { EventInput } from "../events/event-model.js";
import { callerOf, type FleetSharing } from "../fleet/fleet.js";

export type JailOperations = OperationsOf<typeof JailServiceService, JailServiceServer>;

const PREFIX = "jails/";

/** The JailService contract mapped onto the jail domain; bans and unbans are events. */
export function jailOperations(jails: JailService, allowlist: AllowlistService, fleet: FleetSharing): JailOperations {
  // BatchBanIp's answer is a count; its events name each new ban, handed from the handler to the event builder.
  const freshBans = new WeakMap<object, { jail: string; fresh: string[] }>();
  return {
    listJails: operation("viewer", () => "jails", async () => ({ jails: (await jails.list()).map(toJail) })),

    getJail: operation("viewer", (request) => request.name, async (request) => toJail(await jails.get(parseJailName(request.name, "name"), request.view === WireJailView.JAIL_VIEW_FULL))),

    banIp: operation("operator", (request) => request.jail, async (request, principal) => {
      const jail = parseJailName(request.jail, "jail", true);
      const shared = fleet.scope("jail", jail, request.fleet);
      const banned = await jails.ban(jail, request.address);
      if (shared) await fleet.shareJailChange("ban", banned, [canonicalAddress(request.address)], callerOf(principal, "portcullis.v1.JailService/BanIp"));
      return { jails: banned.map((name) => PREFIX + name) };
    }, (request, response) => response.jails.map((jail) => banEvent("BAN", jail, canonicalAddress(request.address), fleet.attributes("jail", jail.slice(PREFIX.length), request.fleet)))),

    batchBanIp: operation("operator", (request) => request.jail, async (request, principal) => {
      const jail = parseJailName(request.jail, "jail");
      const shared = fleet.scope("jail", jail, request.fleet);
      const caller = callerOf(principal, "portcullis.v1.JailService/BatchBanIp");
      // Shared chunk by chunk as this host bans them: the other hosts start at once instead of after the whole batch,
      // and what was banned here before a failure is shared too. Every address goes, not only those new here: another
      // host may not have it yet.
      const fresh = await jails.batchBan(jail, request.addresses, shared ? (banned) => fleet.shareJailChange("ban", [jail], banned, caller) : undefined);
      freshBans.set(request, { jail, fresh });
      return { banned: fresh.length };
    }, (request) => {
      const done = freshBans.get(request);
      const shared = done === undefined ? {} : fleet.attributes("jail", done.jail, request.fleet);
      return (done?.fresh ?? []).map((address) => ({ type: "BAN" as const, resource: `${PREFIX}${done!.jail}/bans/${address}`, attributes: { jail: done!.jail, address, ...shared } }));
    }),

    unbanIp: operation("operator", (request) => request.jail, async (request, principal) => {
      const jail = parseJailName(request.jail, "jail", true);
      const shared = fleet.scope("jail", jail, request.fleet);
      // A fleet unban goes out even when this host had no such ban: other hosts may have it.
      let unbanned: string[] = [];
      try {
        unbanned = await jails.unban(jail, request.address);
      } catch (error) {
        if (!(shared && error instanceof ServerError && error.reason === "BAN_NOT_FOUND")) throw error;
      }
      if (shared) await fleet.shareJailChange("unban", jail === ALL_JAILS ? unbanned : [jail], [canonicalAddress(request.address)], callerOf(principal, "portcullis.v1.JailService/UnbanIp"));
      return { jails: unbanned.map((name) => PREFIX + name) };
    }, (request, response) => response.jails.map((jail) => banEvent("UNBAN", jail, canonicalAddress(request.address), fleet.attributes("jail", jail.slice(PREFIX.length), request.fleet)))),

    unbanAll: operation("operator", () => "jails/-", async () => ({
      bans: (await jails.unbanAll()).map(({ jail, address }) => `${PREFIX}${jail}/bans/${address}`),
    }), (_request, response) => response.bans.map((ban) => {
      const [, jail = "", , address = ""] = ban.split("/");
      return { type: "UNBAN" as const, resource: ban, attributes: { jail, address } };
    })),

    reportFailure: operation("operator", (request) => request.jail, async (request) => {
      await jails.reportFailure(parseJailName(request.jail, "jail"), request.address, request.message);
      return {};
    }),

    addIgnoreIp: operation("operator", (request) => request.jail, async (request) => toJail(await jails.addIgnoreIp(parseJailName(request.jail, "jail"), request.entry))),

    removeIgnoreIp: operation("operator", (request) => request.jail, async (request) => toJail(await jails.removeIgnoreIp(parseJailName(request.jail, "jail"), request.entry))),

    getFail2BanStatus: operation("viewer", () => "fail2ban", async () => jails.status()),

    stopJail: operation("admin", (request) => request.name, async (request) => {
      await jails.stop(parseJailName(request.name, "name"));
      return {};
    }, (request) => ({ type: "JAIL_STOPPED", resource: request.name })),

    startJail: operation("admin", (request) => request.name, async (request) => toJail(await jails.start(parseJailName(request.name, "name"))),
      (request) => ({ type: "JAIL_STARTED", resource: request.name })),

    reloadJails: operation("admin", (request) => request.name, async (request) => ({
      jails: (await jails.reload(parseJailName(request.name, "name", true))).map((jail) => `${PREFIX}${jail}`),
    }), (request, response) => ({ type: "JAILS_RELOADED", resource: request.name, attributes: { jails: response.jails.join(",") } })),

    listAllowlist: operation("viewer", () => "allowlist", async () => ({ entries: allowlist.list().map(toAllowlistEntry) })),

    addAllowlistEntry: operation("operator", () => "allowlist", async (request, principal) => {
      const { entry, lifted } = await allowlist.add(request.network, request.comment, request.timeout, principal.name);
      return { entry: toAllowlistEntry(entry), liftedBans: lifted.map(({ jail, address }) => `${PREFIX}${jail}/bans/${address}`) };
    }, (_request, response) => [
      {
        type: "ALLOWLIST_ENTRY_ADDED" as const,
        resource: "allowlist",
        attributes: {
          network: response.entry!.network,
          comment: response.entry!.comment,
          ...(response.entry!.expireTime === undefined ? {} : { expire_time: response.entry!.expireTime.toISOString() }),
        },
      },
      ...response.liftedBans.map((ban) => {
        const [, jail = "", , address = ""] = ban.split("/");
        return { type: "UNBAN" as const, resource: ban, attributes: { jail, address } };
      }),
    ]),

    removeAllowlistEntry: operation("operator", () => "allowlist", async (request) => {
      await allowlist.remove(request.network);
      return {};
    }, (request) => ({ type: "ALLOWLIST_ENTRY_REMOVED", resource: "allowlist", attributes: { network: canonicalNetwork(request.network, "network"), reason: "removed" } })),

    updateJail: operation("admin", (request) => request.name, async (request) => toJail(await jails.update(parseJailName(request.name, "name"), updateOf(request))), (request) => ({
      type: "JAIL_UPDATED",
      resource: request.name,
      attributes: updateAttributes(request),
    })),
  };
}


/** The address as every host writes it (the call validated it already). */
/** A BAN or UNBAN event of `jails/{jail}`; the address in the canonical form (2001:DB8::0001 → 2001:db8::1). */
function banEvent(type: "BAN" | "UNBAN", jail: string, address: string, shared: Record<string, string>): EventInput {
  return { type, resource: `${jail}/bans/${address}`, attributes: { jail: jail.slice(PREFIX.length), address, ...shared } };
}

function canonicalAddress(address: string): string {
  const parsed = parseAddressStrict(address);
  return "problem" in parsed ? address : formatAddress(parsed);
}

/** `jails/{jail}` → the jail; `jails/-` (every jail) only where allowed. */
function parseJailName(name: string, field: string, allowAll = false): string {
  const jail = name.startsWith(PREFIX) ? name.slice(PREFIX.length) : "";
  if (jail === "" || jail.includes("/") || (jail === ALL_JAILS && !allowAll)) {
    throw new ServerError("INVALID_RESOURCE_NAME", `${field} must look like "jails/{jail}"${allowAll ? ' (or "jails/-" for every jail)' : ""}, got "${name.slice(0, 100)}"`, { field, value: name.slice(0, 100) });
  }
  return jail;
}

/** The settings an UpdateJail request gives. */
function updateOf(request: UpdateJailRequest): JailUpdate {
  const increment = request.banTimeIncrement;
  return {
    ...(request.maxRetry === undefined ? {} : { maxRetry: request.maxRetry }),
    ...(request.findTime === undefined ? {} : { findTime: request.findTime }),
    ...(request.banTime === undefined ? {} : { banTime: request.banTime }),
    ...(increment === undefined
      ? {}
      : { increment: { enabled: increment.enabled, factor: increment.factor, maxTime: increment.maxTime, randomTime: increment.randomTime, multipliers: increment.multipliers, overallJails: increment.overallJails } }),
  };
}

/** The JAIL_UPDATED event's attributes: each setting given, by its field name. */
function updateAttributes(request: UpdateJailRequest): Record<string, string> {
  const attributes: Record<string, string> = {};
  if (request.maxRetry !== undefined) attributes.max_retry = String(request.maxRetry);
  if (request.findTime !== undefined) attributes.find_time = String(request.findTime);
  if (request.banTime !== undefined) attributes.ban_time = String(request.banTime);
  const increment = request.banTimeIncrement;
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

export function toAllowlistEntry(row: AllowlistRow): AllowlistEntry {
  return {
    network: row.network,
    comment: row.comment,
    createTime: new Date(row.createdAt),
    expireTime: row.expiresAt === undefined ? undefined : new Date(row.expiresAt),
    createdBy: row.createdBy,
  };
}

function toJail(view: JailView): Jail {
  return {
    name: PREFIX + view.name,
    currentlyFailed: view.currentlyFailed,
    totalFailed: view.totalFailed,
    files: view.files,
    currentlyBanned: view.currentlyBanned,
    totalBanned: view.totalBanned,
    banned: view.banned,
    maxRetry: view.maxRetry,
    findTime: view.findTime,
    banTime: view.banTime,
    ignoreIp: view.ignoreIp,
    actions: view.actions,
    banTimeIncrement: { ...view.increment },
    bans: view.bans.map((ban) => {
      const forever = ban.duration < 0;
      const expiresAt = ban.bannedAt + ban.duration * 1000;
      return {
        address: ban.address,
        banTime: new Date(ban.bannedAt),
        duration: ban.duration,
        expireTime: forever ? undefined : new Date(expiresAt),
        remaining: forever ? -1 : Math.max(0, Math.round((expiresAt - Date.now()) / 1000)),
      };
    }),
  };
}
