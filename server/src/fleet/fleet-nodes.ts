import type { Msg } from "@nats-io/transport-node";
import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import { formatAddress, parseAddressStrict } from "../addresses.js";
import type { FleetStore } from "../store/fleet-store.js";
import type { JailBanStore } from "../store/jail-ban-store.js";
import { delayUntil } from "../timer-delay.js";
import { resourceOf } from "./fleet-model.js";
import type { JetStreamLink } from "./jetstream-link.js";

/** A host of the fleet as its heartbeat describes it. */
export interface NodeView {
  readonly name: string;
  readonly version: string;
  readonly heartbeatAt: number;
  readonly startedAt: number;
  readonly lag: number;
  readonly bansApplied: number;
  readonly bansRefused: number;
  readonly online: boolean;
}

/** A ban of an address on one host. */
export interface HostBan {
  readonly node: string;
  readonly resource: string;
  readonly since: number;
  readonly expiresAt?: number;
  readonly originNode?: string;
}

const MAX_SEARCH_MS = 10_000;

/**
 * Who is in the fleet and what each host blocks: every node puts a heartbeat (version, how far behind the stream it
 * is, what it applied) into a KV bucket, and answers ban searches about its own state on a request subject, so that
 * "which hosts block 192.0.2.100" is asked of the hosts themselves, not of a central copy.
 */
export class FleetNodes {
  readonly #link: JetStreamLink;
  readonly #node: string;
  readonly #version: string;
  readonly #intervalMs: number;
  readonly #store: FleetStore;
  readonly #jailBans: JailBanStore;
  readonly #log: Logger;
  readonly #startedAt = Date.now();
  #timer: NodeJS.Timeout | undefined;
  #beating = false;

  constructor(deps: { link: JetStreamLink; node: string; version: string; heartbeatSeconds: number; store: FleetStore; jailBans: JailBanStore; log: Logger }) {
    this.#link = deps.link;
    this.#node = deps.node;
    this.#version = deps.version;
    this.#intervalMs = deps.heartbeatSeconds * 1000;
    this.#store = deps.store;
    this.#jailBans = deps.jailBans;
    this.#log = deps.log;
  }

  start(): void {
    this.#link.serve(this.#link.subjects.search, (msg) => this.#answer(msg));
    this.#link.onLinked(() => void this.beat());
    this.#timer = setInterval(() => void this.beat(), this.#intervalMs);
    this.#timer.unref();
  }

  /** Puts this node's heartbeat into the bucket (skipped while NATS is away). */
  async beat(): Promise<void> {
    const linked = this.#link.linked;
    if (linked === undefined || this.#beating) return;
    this.#beating = true;
    try {
      const info = await linked.consumer.info(true);
      const heartbeat = {
        version: this.#version,
        heartbeatAt: Date.now(),
        startedAt: this.#startedAt,
        lag: info.num_pending + info.num_ack_pending,
        bansApplied: this.#store.count("applied"),
        bansRefused: this.#store.count("refused"),
      };
      await linked.kv.put(this.#node, JSON.stringify(heartbeat));
    } catch (error) {
      this.#log.warn({ err: error }, "fleet: heartbeat failed");
    } finally {
      this.#beating = false;
    }
  }

  /** Every host with a heartbeat in the bucket, by name. */
  async list(): Promise<NodeView[]> {
    const { jsm, kv, kvStream, kvPrefix } = this.#link.require();
    // The bucket's stream names its subjects (one per key) in one answer. kv.keys() reads them through a consumer that
    // stops at the message whose pending count is 0, which it can miss when a heartbeat replaces an entry mid-listing:
    // then it never ends (a ListNodes hung about once in 2,000 calls with 1 s heartbeats).
    const info = await jsm.streams.info(kvStream, { subjects_filter: `${kvPrefix}>` });
    const names = Object.keys(info.state.subjects ?? {}).map((subject) => subject.slice(kvPrefix.length));
    const now = Date.now();
    const nodes: NodeView[] = [];
    for (const name of names.sort()) {
      const entry = await kv.get(name);
      if (entry === null || entry.operation !== "PUT") continue;
      const beat = entry.json<Omit<NodeView, "name" | "online">>();
      nodes.push({ name, ...beat, online: now - beat.heartbeatAt <= 3 * this.#intervalMs });
    }
    return nodes;
  }

  /** Asks every online host which of its bans block the address; waits at most `timeoutMs` for their answers. */
  async search(rawAddress: string, timeoutMs: number): Promise<{ bans: HostBan[]; answered: string[]; unanswered: string[] }> {
    const parsed = parseAddressStrict(rawAddress);
    if ("problem" in parsed) throw new ServerError("INVALID_ELEMENT", `address "${rawAddress.slice(0, 100)}": ${parsed.problem}`, { field: "address", value: rawAddress.slice(0, 100) });
    const address = formatAddress(parsed);
    if (timeoutMs > MAX_SEARCH_MS) throw new ServerError("INVALID_TIMEOUT", `timeout_ms must be at most ${MAX_SEARCH_MS}`, { field: "timeout_ms", value: String(timeoutMs) });
    const wait = timeoutMs || 2_000;
    const deadline = Date.now() + wait;
    // Every step is bounded by the deadline: an operator's question must not hang on a slow bucket read or reply stream.
    const { nc } = this.#link.require();
    // Who should answer is read beside the question, not before it: a slow bucket read must not eat the deadline.
    let online: string[] | undefined;
    const listing = this.list().then((nodes) => void (online = nodes.filter((node) => node.online).map((node) => node.name)), () => undefined);
    const bans: HostBan[] = [];
    const answered = new Set<string>();
    // Until every online host answered or the deadline: counting replies would stop early on a duplicate (a core NATS
    // message can arrive twice while routes re-form after a server restart), so each host's first answer counts.
    const replies = (await nc.requestMany(this.#link.subjects.search, address, { strategy: "timer", maxWait: Math.max(1, deadline - Date.now()) }))[Symbol.asyncIterator]();
    try {
      for (;;) {
        const next = await beforeDeadline(replies.next(), deadline);
        if (next === undefined || next.done === true) break;
        try {
          const answer = next.value.json<{ node: string; bans: HostBan[] }>();
          if (answered.has(answer.node)) continue;
          answered.add(answer.node);
          for (const ban of answer.bans) if (!bans.some((other) => other.node === ban.node && other.resource === ban.resource)) bans.push(ban);
        } catch {
          // a malformed answer counts as none
        }
        if (online !== undefined && online.every((name) => answered.has(name))) break;
      }
    } finally {
      void replies.return?.();
    }
    await beforeDeadline(listing, deadline);
    return { bans, answered: [...answered].sort(), unanswered: (online ?? []).filter((name) => !answered.has(name)) };
  }

  /** This host's bans of the address: its jails' (with the shared ban's origin and expiry) and shared set entries. */
  #answer(msg: Msg): void {
    const parsed = parseAddressStrict(msg.string());
    if ("problem" in parsed) return;
    const address = formatAddress(parsed);
    const shared = this.#store.activeFor(address);
    const bans: HostBan[] = this.#jailBans.banning(address).map(({ jail, since }) => {
      const fleet = shared.find((ban) => ban.kind === "jail" && ban.target === jail);
      return {
        node: this.#node,
        resource: resourceOf({ kind: "jail", target: jail, address }),
        since,
        ...(fleet?.expiresAt === undefined ? {} : { expiresAt: fleet.expiresAt }),
        ...(fleet === undefined ? {} : { originNode: fleet.originNode }),
      };
    });
    for (const ban of shared.filter((candidate) => candidate.kind === "set")) {
      bans.push({ node: this.#node, resource: resourceOf(ban), since: ban.appliedAt, ...(ban.expiresAt === undefined ? {} : { expiresAt: ban.expiresAt }), originNode: ban.originNode });
    }
    msg.respond(JSON.stringify({ node: this.#node, bans }));
  }

  close(): void {
    clearInterval(this.#timer);
  }
}

/** The promise's value, or undefined once the deadline (ms since the epoch) has passed. */
async function beforeDeadline<T>(promise: Promise<T>, deadline: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), delayUntil(deadline))))]);
  } finally {
    clearTimeout(timer);
  }
}
