import { ActivityWindow } from "../gen/portcullis/v1/events.js";
import { RuleMatchKind, type HostServiceServer, type HostServiceService } from "../gen/portcullis/v1/host.js";
import type { HostView, RuleMatch } from "../host/host-view.js";
import { operation, type OperationsOf } from "./operation.js";
import { pageSize } from "./pagination.js";
import { toEvent, windowOf } from "./event-api.js";
import { toRule } from "./firewall-api.js";
import { toEntry } from "./ipset-api.js";
import { toAllowlistEntry } from "./jail-api.js";

export type HostOperations = OperationsOf<typeof HostServiceService, HostServiceServer>;

const JAIL_PREFIX = "jails/";
const MATCH_KINDS: Readonly<Record<RuleMatch, RuleMatchKind>> = {
  source: RuleMatchKind.RULE_MATCH_KIND_SOURCE,
  destination: RuleMatchKind.RULE_MATCH_KIND_DESTINATION,
  set: RuleMatchKind.RULE_MATCH_KIND_SET,
};

/** The HostService contract: the caller as the transport authenticated it, and the host view's summaries. */
export function hostOperations(host: HostView): HostOperations {
  return {
    getCallerIdentity: operation("viewer", () => "caller", async (_request, call) => ({
      principal: call.principal,
      role: call.role,
      address: call.address ?? "",
    })),

    getOverview: operation("viewer", () => "overview", async () => {
      const overview = await host.overview();
      return {
        activeBans: overview.activeBans,
        bansLastDay: overview.bansLastDay,
        jailCount: overview.jailCount,
        fail2banUp: overview.fail2banUp,
        ipsetCount: overview.ipsetCount,
        managedIpsetCount: overview.managedIpsetCount,
        entryCount: overview.entryCount,
        managedRuleCount: overview.managedRuleCount,
        fleet: overview.fleet,
        fleetNodeCount: overview.fleetNodes,
        fleetNodesOnline: overview.fleetNodesOnline,
      };
    }),

    getJailActivity: operation("viewer", () => "jails", async (request) => {
      const jails = await host.jailActivity(windowOf(request.window));
      return {
        window: request.window === ActivityWindow.ACTIVITY_WINDOW_UNSPECIFIED ? ActivityWindow.ACTIVITY_WINDOW_DAY : request.window,
        jails: jails.map((jail) => ({ ...jail, jail: JAIL_PREFIX + jail.jail })),
      };
    }),

    inspectAddress: operation("viewer", (request) => request.address, async (request) => {
      const report = await host.inspect(request.address, pageSize(request.eventLimit, 50, 1000, "event_limit"));
      return {
        address: report.address,
        jailBans: report.jailBans.map((ban) => ({
          jail: JAIL_PREFIX + ban.jail,
          banTime: new Date(ban.since),
          expireTime: ban.expiresAt === undefined ? undefined : new Date(ban.expiresAt),
          forever: ban.forever,
        })),
        entries: report.entries.map((found) => toEntry(found.ipset, found.entry)),
        rules: report.rules.map((found) => ({ rule: toRule({ family: found.family, table: found.table }, found.rule), matches: found.matches.map((match) => MATCH_KINDS[match]) })),
        allowlistEntries: report.allowlist.map(toAllowlistEntry),
        ignoreIpEntries: report.ignoreIp.map((entry) => ({ jail: JAIL_PREFIX + entry.jail, entry: entry.entry })),
        events: report.events.map(toEvent),
      };
    }),
  };
}
