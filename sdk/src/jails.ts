import { JailServiceService, JailView, type AddAllowlistEntryRequest, type AddAllowlistEntryResponse, type BatchBanIpRequest, type BatchBanIpResponse, type ListAllowlistRequest, type ListAllowlistResponse, type RemoveAllowlistEntryRequest, type ReportFailureRequest, type BanIpRequest, type BanIpResponse, type GetJailRequest, type Jail, type ListJailsRequest, type ListJailsResponse, type UnbanIpRequest, type UnbanIpResponse } from "./transport/wire.js";
import { Disposable } from "./base/disposable.js";
import type { Event } from "./base/event.js";
import type { CancellationToken } from "./base/cancellation.js";
import type { AllowlistEntry, BanEvent, BanOptions, BanTerms, HostEvent, JailStatus } from "./api.js";
import type { Channel } from "./transport/channel.js";
import { allowlistEntry, banTerms, fleetScope, jailStatus } from "./transport/convert.js";

/** The host's fail2ban jails: `client.jails`. */
export class Jails {
  readonly #channel: Channel;
  readonly #events: Event<HostEvent>;

  /** @internal */
  constructor(channel: Channel, events: Event<HostEvent>) {
    this.#channel = channel;
    this.#events = events;
  }

  /** Every jail with its counters, banned addresses and settings. */
  async list(token?: CancellationToken): Promise<readonly JailStatus[]> {
    const reply = await this.#channel.unary<ListJailsRequest, ListJailsResponse>(JailServiceService, "listJails", {}, token, true);
    return Object.freeze(reply.jails.map(jailStatus));
  }

  /** What `fail2ban-client status <jail>` shows, plus the jail's settings. */
  async status(jail: string, token?: CancellationToken): Promise<JailStatus> {
    return jailStatus(await this.#channel.unary<GetJailRequest, Jail>(JailServiceService, "getJail", { name: `jails/${jail}`, view: JailView.JAIL_VIEW_BASIC }, token, true));
  }

  /**
   * Bans an address in a jail (or in every jail when `jail` is "-"); resolves once the ban is in force. Returns the
   * jails it is banned in. With `duration`, the server lifts the ban when it ends (also across its restarts).
   */
  async ban(jail: string, address: string, options: BanTerms = {}, token?: CancellationToken): Promise<readonly string[]> {
    const reply = await this.#channel.unary<BanIpRequest, BanIpResponse>(JailServiceService, "banIp", { jail: `jails/${jail}`, address, ...banTerms(options) }, token);
    return Object.freeze(reply.jails.map((name) => name.replace(/^jails\//, "")));
  }

  /** Lifts a ban in a jail (or in every jail with "-"). Returns the jails it was banned in. */
  async unban(jail: string, address: string, options: BanOptions = {}, token?: CancellationToken): Promise<readonly string[]> {
    const reply = await this.#channel.unary<UnbanIpRequest, UnbanIpResponse>(JailServiceService, "unbanIp", { jail: `jails/${jail}`, address, ...fleetScope(options) }, token);
    return Object.freeze(reply.jails.map((name) => name.replace(/^jails\//, "")));
  }

  /**
   * Bans many addresses in one jail (checked whole first: one invalid or protected address bans none); resolves once
   * they are in force. Returns how many were not banned before.
   */
  async banMany(jail: string, addresses: readonly string[], options: BanTerms = {}, token?: CancellationToken): Promise<number> {
    return (await this.#channel.unary<BatchBanIpRequest, BatchBanIpResponse>(JailServiceService, "batchBanIp", { jail: `jails/${jail}`, addresses: [...addresses], ...banTerms(options) }, token)).banned;
  }

  /** Reports a failed login an application saw; enough of them within the jail's findtime ban the address. */
  async reportFailure(jail: string, address: string, message = "", token?: CancellationToken): Promise<void> {
    await this.#channel.unary<ReportFailureRequest, unknown>(JailServiceService, "reportFailure", { jail: `jails/${jail}`, address, message }, token);
  }

  /** The host allowlist: addresses and networks no jail bans. */
  readonly allowlist = {
    /** Every entry. */
    list: async (token?: CancellationToken): Promise<readonly AllowlistEntry[]> =>
      Object.freeze((await this.#channel.unary<ListAllowlistRequest, ListAllowlistResponse>(JailServiceService, "listAllowlist", {}, token, true)).entries.map(allowlistEntry)),
    /**
     * Adds (or renews) an entry, optionally for `timeout` seconds; the jail bans it covers are lifted. Returns the
     * entry and the lifted bans as `{ jail, address }`.
     */
    add: async (network: string, options: { comment?: string; timeout?: number } = {}, token?: CancellationToken): Promise<{ entry: AllowlistEntry; lifted: ReadonlyArray<{ jail: string; address: string }> }> => {
      const reply = await this.#channel.unary<AddAllowlistEntryRequest, AddAllowlistEntryResponse>(JailServiceService, "addAllowlistEntry", { network, comment: options.comment ?? "", timeout: options.timeout ?? 0 }, token);
      const lifted = reply.liftedBans.map((ban) => {
        const [, jail = "", , address = ""] = ban.split("/");
        return Object.freeze({ jail, address });
      });
      return Object.freeze({ entry: allowlistEntry(reply.entry!), lifted: Object.freeze(lifted) });
    },
    /** Removes an entry. */
    remove: async (network: string, token?: CancellationToken): Promise<void> => {
      await this.#channel.unary<RemoveAllowlistEntryRequest, unknown>(JailServiceService, "removeAllowlistEntry", { network }, token);
    },
  };

  /** Fires for every ban in any jail, whoever made it (fail2ban, the API), from the moment of subscribing. */
  readonly onDidBan: Event<BanEvent> = (listener, thisArgs, disposables) => this.#onType("BAN", listener, thisArgs, disposables);

  /** Fires for every lifted ban in any jail (expiry, the API). */
  readonly onDidUnban: Event<BanEvent> = (listener, thisArgs, disposables) => this.#onType("UNBAN", listener, thisArgs, disposables);

  #onType(type: string, listener: (event: BanEvent) => unknown, thisArgs: unknown, disposables: Disposable[] | undefined): Disposable {
    return this.#events((event) => {
      if (event.type !== type || event.attributes.jail === undefined || event.attributes.address === undefined) return;
      listener.call(thisArgs, Object.freeze({ jail: event.attributes.jail, address: event.attributes.address, event }));
    }, undefined, disposables);
  }
}
