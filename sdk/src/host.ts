import { HostServiceService, RuleMatchKind, type CallerIdentity as WireCallerIdentity, type GetCallerIdentityRequest, type GetJailActivityRequest, type GetJailActivityResponse, type GetOverviewRequest, type HostOverview as WireOverview, type InspectAddressRequest, type InspectAddressResponse } from "./transport/wire.js";
import type { CancellationToken } from "./base/cancellation.js";
import type { ActivityWindow, AddressReport, CallerIdentity, HostOverview, JailActivity } from "./api.js";
import type { Channel } from "./transport/channel.js";
import { allowlistEntry, callerIdentity, hostEvent, hostOverview, ipsetEntry, jailActivity, jailName, wireWindow } from "./transport/convert.js";
import { firewallRule } from "./firewall.js";

const MATCHES: Readonly<Partial<Record<RuleMatchKind, string>>> = {
  [RuleMatchKind.RULE_MATCH_KIND_SOURCE]: "source",
  [RuleMatchKind.RULE_MATCH_KIND_DESTINATION]: "destination",
  [RuleMatchKind.RULE_MATCH_KIND_SET]: "set",
};

/** The host as a whole, and the caller's place in it: `client.host`. */
export class Host {
  readonly #channel: Channel;

  /** @internal */
  constructor(channel: Channel) {
    this.#channel = channel;
  }

  /** Who the server takes the caller to be: certificate name, role, and the address the connection comes from. */
  async caller(token?: CancellationToken): Promise<CallerIdentity> {
    return callerIdentity(await this.#channel.unary<GetCallerIdentityRequest, WireCallerIdentity>(HostServiceService, "getCallerIdentity", {}, token, true));
  }

  /** The host at a glance: bans, jails, sets, rules, fail2ban and the fleet. */
  async overview(token?: CancellationToken): Promise<HostOverview> {
    return hostOverview(await this.#channel.unary<GetOverviewRequest, WireOverview>(HostServiceService, "getOverview", {}, token, true));
  }

  /** Each jail's bans and unbans over a window (default "day"), with fail2ban's failure and ban counters. */
  async jailActivity(window?: ActivityWindow, token?: CancellationToken): Promise<readonly JailActivity[]> {
    const reply = await this.#channel.unary<GetJailActivityRequest, GetJailActivityResponse>(HostServiceService, "getJailActivity", { window: wireWindow(window) }, token, true);
    return Object.freeze(reply.jails.map(jailActivity));
  }

  /**
   * Everything about one address now: the jails that ban it, the managed sets and rules that hold or match it, the
   * allowlist and ignoreip entries that protect it, and its newest events (at most `eventLimit`, default 50).
   */
  async inspect(address: string, options: { readonly eventLimit?: number } = {}, token?: CancellationToken): Promise<AddressReport> {
    const reply = await this.#channel.unary<InspectAddressRequest, InspectAddressResponse>(HostServiceService, "inspectAddress", { address, eventLimit: options.eventLimit ?? 0 }, token, true);
    return Object.freeze({
      address: reply.address,
      jailBans: Object.freeze(reply.jailBans.map((ban) => Object.freeze({ jail: jailName(ban.jail), banTime: ban.banTime ?? new Date(0), forever: ban.forever, ...(ban.expireTime === undefined ? {} : { expireTime: ban.expireTime }) }))),
      entries: Object.freeze(reply.entries.map((entry) => Object.freeze({ set: entry.name.split("/")[1] ?? "", entry: ipsetEntry(entry) }))),
      rules: Object.freeze(reply.rules.flatMap((found) => {
        if (found.rule === undefined) return [];
        const [, family, , table] = found.rule.name.split("/");
        return [Object.freeze({ family: family === "ipv6" ? "ipv6" as const : "ipv4" as const, table: table ?? "filter", rule: firewallRule(found.rule), matches: Object.freeze(found.matches.flatMap((match) => MATCHES[match] ?? [])) })];
      })),
      allowlist: Object.freeze(reply.allowlistEntries.map(allowlistEntry)),
      ignoreIp: Object.freeze(reply.ignoreIpEntries.map((entry) => Object.freeze({ jail: jailName(entry.jail), entry: entry.entry }))),
      events: Object.freeze(reply.events.map(hostEvent)),
    });
  }
}
