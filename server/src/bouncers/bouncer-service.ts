import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { covers, parseNetworkCanonical, type Network } from "../addresses.js";
import { ServerError } from "../errors.js";
import { KeyedLock } from "../keyed-lock.js";
import { bouncerName, validateBouncerName } from "../names.js";
import { MAX_TIMEOUT_SECONDS } from "../ipsets/ipset-model.js";
import type { ApiCall } from "../events/api-call.js";
import type { BouncerStore } from "../store/bouncer-store.js";
import type { ActiveDecisions } from "./active-decisions.js";
import type { Decision, SentDecision } from "./decision-model.js";

export interface BouncerView {
  readonly name: string;
  readonly createdAt: number;
  readonly lastPullAt?: number;
  readonly version?: string;
}

/** The filters a bouncer may put on its stream, as CrowdSec's LAPI reads them (each list empty: no filter). */
export interface StreamFilter {
  readonly scopes: readonly string[];
  readonly origins: readonly string[];
  readonly scenariosContaining: readonly string[];
  readonly scenariosNotContaining: readonly string[];
}

/** What GET /v1/decisions asks about: an address, a network, or a scope and value. */
export interface DecisionQuery {
  readonly ip?: string;
  readonly range?: string;
  readonly scope?: string;
  readonly value?: string;
  readonly type?: string;
}

/** One answer of the stream: decisions to enforce (new, or with a new end) and decisions to lift. */
export interface DecisionDelta {
  readonly new: readonly SentDecision[];
  readonly deleted: readonly SentDecision[];
}

/**
 * A ban without an end goes to bouncers with this duration, and again when half of it has passed: ipset's longest
 * timeout (2147483 s, almost 25 days), which the firewall bouncer gives its set entries.
 */
export const PERMANENT_HORIZON_MS = MAX_TIMEOUT_SECONDS * 1000;
/** How long GET /v1/decisions answers from the decisions it read last, and how often a bouncer's pull time is written. */
const QUERY_REUSE_MS = 1_000;
const PULL_WRITE_MS = 1_000;
/** Ends read from a set's timeouts move by up to a second between reads: not a change worth sending. */
const END_TOLERANCE_MS = 2_000;

/**
 * CrowdSec bouncers: their API keys (only a SHA-256 kept, compared in constant time) and the decisions each one reads.
 * What a bouncer was sent is kept per bouncer in SQLite, and each poll answers the difference between that and the
 * active decisions now: a restart of Portcullis or of the bouncer between two polls loses nothing and repeats nothing,
 * and a ban that ended or was lifted while nobody looked is a deletion at the next poll.
 */
export class BouncerService {
  readonly #store: BouncerStore;
  readonly #decisions: ActiveDecisions;
  #keys: Array<{ name: string; hash: Buffer }>;
  /** A bouncer's polls are answered one after the other. */
  readonly #polls = new KeyedLock();
  /** Per bouncer, the last pull written: a live bouncer asks per request of its web server, the store hears of it once a second. */
  readonly #pulls = new Map<string, { at: number; version: string }>();
  /** The decisions the last query read (each with its network), for a second: a live bouncer asks per request of its web server. */
  #recent: { at: number; decisions: Promise<Array<{ decision: Decision; network?: Network }>> } | undefined;

  constructor(deps: { store: BouncerStore; decisions: ActiveDecisions }) {
    this.#store = deps.store;
    this.#decisions = deps.decisions;
    this.#keys = this.#loadKeys();
  }

  list(): BouncerView[] {
    return this.#store.all().map((row) => ({
      name: row.name,
      createdAt: row.createdAt,
      ...(row.lastPullAt === undefined ? {} : { lastPullAt: row.lastPullAt }),
      ...(row.version === undefined ? {} : { version: row.version }),
    }));
  }

  /** Registers a bouncer; its key (64 hex digits) is in the answer and nowhere else. */
  create(name: string, call: ApiCall): { view: BouncerView; key: string } {
    validateBouncerName(name);
    if (this.#keys.some((known) => known.name === name)) {
      throw new ServerError("BOUNCER_ALREADY_EXISTS", `a bouncer named "${name}" exists already; delete it first to issue a new key, or choose another name`, { bouncer: name });
    }
    const key = randomBytes(32).toString("hex");
    const createdAt = Date.now();
    this.#store.create(name, hashOf(key), createdAt);
    this.#keys = this.#loadKeys();
    call.record({ type: "BOUNCER_CREATED", resource: bouncerName(name) });
    return { view: { name, createdAt }, key };
  }

  delete(name: string, call: ApiCall): void {
    validateBouncerName(name, "name");
    if (!this.#store.delete(name)) throw new ServerError("BOUNCER_NOT_FOUND", `no bouncer named "${name}"; list them with ListBouncers`, { bouncer: name });
    this.#keys = this.#loadKeys();
    this.#pulls.delete(name);
    call.record({ type: "BOUNCER_DELETED", resource: bouncerName(name) });
  }

  /** The bouncer whose key this is, if any. Every known hash is compared, in constant time each. */
  authenticate(key: string): string | undefined {
    const hash = hashOf(key);
    let found: string | undefined;
    for (const known of this.#keys) if (timingSafeEqual(known.hash, hash)) found = known.name;
    return found;
  }

  /**
   * The stream: with `startup`, every active decision as new (and what the bouncer was sent before that is no longer
   * active as deleted); otherwise what changed since its previous answer.
   */
  stream(bouncer: string, startup: boolean, filter: StreamFilter, version: string): Promise<DecisionDelta> {
    return this.#polls.with([bouncer], async () => {
      const at = Date.now();
      const current = longestPerValue((await this.#decisions.current(at)).filter((decision) => passes(decision, filter))).map((decision) => withEnd(decision, at));
      const sent = new Map(this.#store.sent(bouncer).map((decision) => [decision.id, decision]));
      const now = new Map(current.map((decision) => [decision.id, decision]));
      const added = startup ? current : current.filter((decision) => needsSending(sent.get(decision.id), decision, at));
      const gone = [...sent.values()].filter((decision) => !now.has(decision.id));
      // A value still under another decision (a jail's ban ended, the published set still has it) is not lifted:
      // the other decision goes as new, and a bouncer, which keys by value, keeps it enforced.
      const values = new Set(current.map(valueKey));
      const deleted = gone.filter((decision) => !values.has(valueKey(decision)));
      this.#store.recordSent(bouncer, added, gone);
      this.#notePull(bouncer, at, version);
      return { new: added, deleted };
    });
  }

  /** The active decisions that apply to an address, a network or a scope and value (what a live bouncer asks). */
  async query(bouncer: string, query: DecisionQuery, version: string): Promise<SentDecision[]> {
    const target = query.ip ?? query.range;
    let network: Network | undefined;
    if (target !== undefined) {
      const parsed = parseNetworkCanonical(target);
      if ("problem" in parsed) throw new ServerError("INVALID_ELEMENT", `${query.ip === undefined ? "range" : "ip"} "${target.slice(0, 100)}": ${parsed.problem}`, { field: query.ip === undefined ? "range" : "ip" });
      network = parsed;
    }
    const at = Date.now();
    if (this.#recent === undefined || at - this.#recent.at >= QUERY_REUSE_MS) this.#recent = { at, decisions: this.#decisions.current(at).then(withNetworks) };
    const recent = this.#recent;
    // A failed read is not reused.
    recent.decisions.catch(() => {
      if (this.#recent === recent) this.#recent = undefined;
    });
    const read = recent.decisions;
    const decisions = (await read).filter(({ decision, network: own }) => {
      if (decision.until !== undefined && decision.until <= at) return false;
      if (query.type !== undefined && query.type !== "ban") return false;
      if (query.scope !== undefined && query.scope.toLowerCase() !== decision.scope.toLowerCase()) return false;
      if (query.value !== undefined && query.value !== decision.value) return false;
      return network === undefined || (own !== undefined && covers(own, network));
    }).map(({ decision }) => withEnd(decision, at));
    this.#notePull(bouncer, at, version);
    return decisions;
  }

  #notePull(bouncer: string, at: number, version: string): void {
    const last = this.#pulls.get(bouncer);
    if (last !== undefined && last.version === version && at - last.at < PULL_WRITE_MS) return;
    this.#pulls.set(bouncer, { at, version });
    this.#store.notePull(bouncer, at, version);
  }

  #loadKeys(): Array<{ name: string; hash: Buffer }> {
    return this.#store.all().map((row) => ({ name: row.name, hash: row.keyHash }));
  }
}

function hashOf(key: string): Buffer {
  return createHash("sha256").update(key, "utf8").digest();
}

/** Decisions with the network each one's value is, parsed once per read rather than once per query. */
function withNetworks(decisions: readonly Decision[]): Array<{ decision: Decision; network?: Network }> {
  return decisions.map((decision) => {
    const network = parseNetworkCanonical(decision.value);
    return "problem" in network ? { decision } : { decision, network };
  });
}

function valueKey(decision: Decision): string {
  return `${decision.scope} ${decision.value}`;
}

/**
 * One decision per value, the one that ends last (as CrowdSec's LAPI sends them): a bouncer keys its bans by value, so
 * two decisions of one address would have the first one's deletion lift the ban the second still asks for.
 */
function longestPerValue(decisions: readonly Decision[]): Decision[] {
  const kept = new Map<string, Decision>();
  for (const decision of decisions) {
    const other = kept.get(valueKey(decision));
    if (other === undefined || (other.until !== undefined && (decision.until === undefined || decision.until > other.until))) kept.set(valueKey(decision), decision);
  }
  return [...kept.values()];
}

function withEnd(decision: Decision, now: number): SentDecision {
  return { ...decision, until: decision.until ?? now + PERMANENT_HORIZON_MS };
}

/** Whether a decision goes (again) to a bouncer that holds `sent`: new to it, its end moved, or half its horizon passed. */
function needsSending(sent: SentDecision | undefined, decision: SentDecision, now: number): boolean {
  if (sent === undefined) return true;
  if (decision.until - now >= PERMANENT_HORIZON_MS - END_TOLERANCE_MS) return sent.until - now < PERMANENT_HORIZON_MS / 2;
  return Math.abs(sent.until - decision.until) > END_TOLERANCE_MS;
}

function passes(decision: Decision, filter: StreamFilter): boolean {
  const lower = (values: readonly string[]) => values.map((value) => value.toLowerCase());
  if (filter.scopes.length > 0 && !lower(filter.scopes).includes(decision.scope.toLowerCase())) return false;
  if (filter.origins.length > 0 && !filter.origins.includes(decision.origin)) return false;
  if (filter.scenariosContaining.length > 0 && !filter.scenariosContaining.some((word) => decision.scenario.includes(word))) return false;
  return !filter.scenariosNotContaining.some((word) => decision.scenario.includes(word));
}
