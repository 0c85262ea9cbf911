import { parseNetworkCanonical } from "../addresses.js";
import { ServerError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { EntryPage } from "../ipsets/ipset-entries.js";
import type { JailBanStore } from "../store/jail-ban-store.js";
import { decisionId, type Decision, type DecisionOrigin } from "./decision-model.js";

/** Entries read per page of a published set. */
const PAGE = 10_000;

/** What the decisions are read from: the jails' recorded bans and bantimes, and the entries of sets. */
export interface DecisionSources {
  readonly jailBans: Pick<JailBanStore, "all">;
  /** A jail's bantime in seconds (-1: for ever). */
  banTime(jail: string): Promise<number>;
  listEntries(set: string, after: string, limit: number): Promise<EntryPage>;
}

/**
 * Portcullis's active bans as CrowdSec decisions: every jail's bans (each ends at its start plus the jail's bantime)
 * and every entry of the published sets (its timeout; none: until removed). Elements that are not an address or a
 * network (hash:ip,port and the like) have no CrowdSec scope and are left out.
 */
export class ActiveDecisions {
  readonly #sources: DecisionSources;
  readonly #sets: readonly string[];
  readonly #log: Logger;
  /** The last bantime read of each jail: used while fail2ban does not answer, so that its bans are not withdrawn. */
  readonly #banTimes = new Map<string, number>();
  readonly #missingSets = new Set<string>();

  constructor(sources: DecisionSources, publishedSets: readonly string[], log: Logger) {
    this.#sources = sources;
    this.#sets = publishedSets;
    this.#log = log;
  }

  async current(now = Date.now()): Promise<Decision[]> {
    const decisions = new Map<number, Decision>();
    const add = (decision: Decision | undefined): void => {
      if (decision !== undefined && (decision.until === undefined || decision.until > now)) decisions.set(decision.id, decision);
    };
    for (const ban of this.#sources.jailBans.all()) {
      // A ban given a duration (BanIp) ends then; any other at its start plus the jail's bantime.
      const banTime = ban.expiresAt === undefined ? await this.#banTime(ban.jail) : 0;
      add(toDecision("fail2ban", ban.jail, ban.address, ban.expiresAt ?? (banTime < 0 ? undefined : ban.since + banTime * 1000)));
    }
    for (const set of this.#sets) {
      for await (const entry of this.#entries(set)) add(toDecision("lists", set, entry.element, entry.timeout === undefined ? undefined : now + entry.timeout * 1000));
    }
    return [...decisions.values()];
  }

  async #banTime(jail: string): Promise<number> {
    try {
      const banTime = await this.#sources.banTime(jail);
      this.#banTimes.set(jail, banTime);
      return banTime;
    } catch (error) {
      const known = this.#banTimes.get(jail);
      this.#log.debug({ err: error, jail }, "a jail's bantime could not be read for the bouncers; its bans are published without an end");
      return known ?? -1;
    }
  }

  async *#entries(set: string): AsyncIterableIterator<{ element: string; timeout?: number }> {
    let after = "";
    for (;;) {
      let page: EntryPage;
      try {
        page = await this.#sources.listEntries(set, after, PAGE);
      } catch (error) {
        if (!(error instanceof ServerError && error.reason === "IPSET_NOT_FOUND")) throw error;
        if (!this.#missingSets.has(set)) this.#log.warn({ set }, "a set the bouncer config publishes does not exist; it is published once it does");
        this.#missingSets.add(set);
        return;
      }
      this.#missingSets.delete(set);
      yield* page.entries;
      if (page.nextAfter === undefined) return;
      after = page.nextAfter;
    }
  }
}

/** An address is an "Ip" decision, a network a "Range" one (a /32 or /128 is its address); anything else none. */
export function toDecision(origin: DecisionOrigin, scenario: string, element: string, until: number | undefined): Decision | undefined {
  const parsed = parseNetworkCanonical(element);
  if ("problem" in parsed) return undefined;
  const scope = parsed.network.includes("/") ? "Range" : "Ip";
  return { id: decisionId(origin, scenario, scope, parsed.network), origin, scenario, scope, value: parsed.network, until };
}
