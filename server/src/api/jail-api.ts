import { JailView as WireJailView, type AllowlistEntry, type Jail, type JailServiceServer, type JailServiceService, type UpdateJailRequest } from "../gen/portcullis/v1/jail.js";
import { ServerError } from "../errors.js";
import { ALL_JAILS, type BanOptions, type JailService, type JailUpdate, type JailView } from "../jails/jail-service.js";
import type { AllowlistService } from "../jails/allowlist-service.js";
import type { AllowlistRow } from "../store/allowlist-store.js";
import { banName, jailName } from "../names.js";
import { operation, type OperationsOf } from "./operation.js";

export type JailOperations = OperationsOf<typeof JailServiceService, JailServiceServer>;

const PREFIX = "jails/";

/** The JailService contract mapped onto the jail domain. */
export function jailOperations(jails: JailService, allowlist: AllowlistService): JailOperations {
  return {
    listJails: operation("viewer", () => "jails", async () => ({ jails: (await jails.list()).map(toJail) })),

    getJail: operation("viewer", (request) => request.name, async (request) => toJail(await jails.get(parseJailName(request.name, "name"), request.view === WireJailView.JAIL_VIEW_FULL))),

    banIp: operation("operator", (request) => request.jail, async (request, call) => ({
      jails: (await jails.ban(parseJailName(request.jail, "jail", true), request.address, call, banOptionsOf(request))).map(jailName),
    })),

    batchBanIp: operation("operator", (request) => request.jail, async (request, call) => ({
      banned: (await jails.batchBan(parseJailName(request.jail, "jail"), request.addresses, call, banOptionsOf(request))).length,
    })),

    unbanIp: operation("operator", (request) => request.jail, async (request, call) => ({
      jails: (await jails.unban(parseJailName(request.jail, "jail", true), request.address, call, request.fleet)).map(jailName),
    })),

    unbanAll: operation("operator", () => "jails/-", async (_request, call) => ({
      bans: (await jails.unbanAll(call)).map(({ jail, address }) => banName(jail, address)),
    })),

    reportFailure: operation("operator", (request) => request.jail, async (request) => {
      await jails.reportFailure(parseJailName(request.jail, "jail"), request.address, request.message);
      return {};
    }),

    addIgnoreIp: operation("operator", (request) => request.jail, async (request) => toJail(await jails.addIgnoreIp(parseJailName(request.jail, "jail"), request.entry))),

    removeIgnoreIp: operation("operator", (request) => request.jail, async (request) => toJail(await jails.removeIgnoreIp(parseJailName(request.jail, "jail"), request.entry))),

    getFail2BanStatus: operation("viewer", () => "fail2ban", async () => jails.status()),

    stopJail: operation("admin", (request) => request.name, async (request, call) => {
      await jails.stop(parseJailName(request.name, "name"), call);
      return {};
    }),

    startJail: operation("admin", (request) => request.name, async (request, call) => toJail(await jails.start(parseJailName(request.name, "name"), call))),

    reloadJails: operation("admin", (request) => request.name, async (request, call) => ({
      jails: (await jails.reload(parseJailName(request.name, "name", true), call)).map(jailName),
    })),

    listAllowlist: operation("viewer", () => "allowlist", async () => ({ entries: allowlist.list().map(toAllowlistEntry) })),

    addAllowlistEntry: operation("operator", () => "allowlist", async (request, call) => {
      const { entry, lifted } = await allowlist.add(request.network, request.comment, request.timeout, call);
      return { entry: toAllowlistEntry(entry), liftedBans: lifted.map(({ jail, address }) => banName(jail, address)) };
    }),

    removeAllowlistEntry: operation("operator", () => "allowlist", async (request, call) => {
      await allowlist.remove(request.network, call);
      return {};
    }),

    updateJail: operation("admin", (request) => request.name, async (request, call) => toJail(await jails.update(parseJailName(request.name, "name"), updateOf(request), call))),
  };
}

/** `jails/{jail}` → the jail; `jails/-` (every jail) only where allowed. */
function parseJailName(name: string, field: string, allowAll = false): string {
  const jail = name.startsWith(PREFIX) ? name.slice(PREFIX.length) : "";
  if (jail === "" || jail.includes("/") || (jail === ALL_JAILS && !allowAll)) {
    throw new ServerError("INVALID_RESOURCE_NAME", `${field} must look like "jails/{jail}"${allowAll ? ' (or "jails/-" for every jail)' : ""}, got "${name.slice(0, 100)}"`, { field, value: name.slice(0, 100) });
  }
  return jail;
}

/** The fleet scope, duration and reason a BanIp or BatchBanIp request gives. */
function banOptionsOf(request: { fleet?: boolean | undefined; duration?: number | undefined; reason?: string | undefined }): BanOptions {
  return {
    ...(request.fleet === undefined ? {} : { fleet: request.fleet }),
    ...(request.duration === undefined ? {} : { duration: request.duration }),
    ...(request.reason === undefined || request.reason === "" ? {} : { reason: request.reason }),
  };
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
    name: jailName(view.name),
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
