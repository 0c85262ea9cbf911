import { randomBytes } from "node:crypto";
import { ServerError } from "../errors.js";
import type { ClusterConfig } from "../config.js";
import type { EventLog } from "../events/event-log.js";
import type { HostEvent } from "../events/event-model.js";
import type { FleetStore } from "../store/fleet-store.js";
import type { FleetOperation } from "./fleet-model.js";
import type { FleetPublisher } from "./fleet-publisher.js";
import type { FleetNodes } from "./fleet-nodes.js";

/** Who made a change, as the other hosts' events and audit records will name them. */
export interface Caller {
  readonly principal: string;
  readonly role: string;
  /** The RPC, e.g. `portcullis.v1.JailService/BanIp`. */
  readonly method: string;
}

/** A set entry to share: its timeout in seconds (0: permanent). */
export interface SharedEntry {
  readonly element: string;
  readonly timeout: number;
}

/**
 * What the jail and ipset domains ask of fleet mode: whether a change goes to the fleet, and sharing it once it was
 * made here. A server without a `cluster` section has `localOnly`, which shares nothing and refuses requests that ask
 * for fleet scope.
 */
export interface FleetSharing {
  /** The fleet view, when this host is in a fleet. */
  readonly nodes: FleetNodes | undefined;
  /** Whether a change to this jail or set goes to the fleet: asked for, or shared by config. */
  scope(kind: "jail" | "set", target: string, requested: boolean | undefined): boolean;
  /** Event attributes that mark a change as shared (empty when it is not). */
  attributes(kind: "jail" | "set", target: string, requested: boolean | undefined): Record<string, string>;
  /** Shares bans made here in these jails, each ending after its jail's bantime in seconds (≤ 0: never). */
  shareBans(jails: ReadonlyArray<{ readonly jail: string; readonly banTime: number }>, addresses: readonly string[], caller: Caller): Promise<void>;
  /** Shares unbans made here in these jails. */
  shareUnbans(jails: readonly string[], addresses: readonly string[], caller: Caller): Promise<void>;
  /** Shares entries added to or removed from a set here (each with its timeout as an absolute expiry). */
  shareSetChange(op: "ban" | "unban", set: string, entries: readonly SharedEntry[], caller: Caller): Promise<void>;
}

export const localOnly: FleetSharing = {
  nodes: undefined,
  scope(_kind, _target, requested) {
    if (requested === true) throw notConfigured();
    return false;
  },
  attributes: () => ({}),
  shareBans: async () => undefined,
  shareUnbans: async () => undefined,
  shareSetChange: async () => undefined,
};

export function notConfigured(): ServerError {
  return new ServerError("FLEET_NOT_CONFIGURED", "this server is not in a fleet: add a `cluster` section (NATS servers, node name) to its configuration", { field: "fleet" });
}

/**
 * Fleet mode's entry point for the rest of the server: changes made here that go to the fleet are queued in the
 * outbox (in SQLite, so a change made while NATS is unreachable is published when it is back) and the publisher is
 * woken. Shared jails share fail2ban's own detections too (heard from the event log).
 */
export class Fleet implements FleetSharing {
  readonly #config: ClusterConfig;
  readonly #store: FleetStore;
  readonly #publisher: FleetPublisher;
  readonly nodes: FleetNodes;
  readonly #jailsShared: ReadonlySet<string>;
  readonly #setsShared: ReadonlySet<string>;
  #unsubscribe: (() => void) | undefined;

  constructor(deps: { config: ClusterConfig; store: FleetStore; publisher: FleetPublisher; nodes: FleetNodes }) {
    this.#config = deps.config;
    this.#store = deps.store;
    this.#publisher = deps.publisher;
    this.nodes = deps.nodes;
    this.#jailsShared = new Set(deps.config.share.jails);
    this.#setsShared = new Set(deps.config.share.sets);
  }

  /** Hears fail2ban's bans in shared jails (the API's are shared by the calls themselves). */
  start(events: EventLog): void {
    this.#unsubscribe = events.subscribe((event) => this.#onEvent(event));
  }

  scope(kind: "jail" | "set", target: string, requested: boolean | undefined): boolean {
    return requested === true || (kind === "jail" ? this.#jailsShared : this.#setsShared).has(target);
  }

  attributes(kind: "jail" | "set", target: string, requested: boolean | undefined): Record<string, string> {
    return this.scope(kind, target, requested) ? { scope: "fleet", origin_node: this.#config.node } : {};
  }

  async shareBans(jails: ReadonlyArray<{ readonly jail: string; readonly banTime: number }>, addresses: readonly string[], caller: Caller): Promise<void> {
    const now = Date.now();
    const operations: FleetOperation[] = [];
    for (const { jail, banTime } of jails) {
      const expiresAt = banTime > 0 ? now + banTime * 1000 : undefined;
      for (const address of addresses) operations.push(this.#operation("ban", "jail", jail, address, expiresAt, caller, now));
    }
    this.#queue(operations);
  }

  async shareUnbans(jails: readonly string[], addresses: readonly string[], caller: Caller): Promise<void> {
    const now = Date.now();
    this.#queue(jails.flatMap((jail) => addresses.map((address) => this.#operation("unban", "jail", jail, address, undefined, caller, now))));
  }

  async shareSetChange(op: "ban" | "unban", set: string, entries: readonly SharedEntry[], caller: Caller): Promise<void> {
    const now = Date.now();
    this.#queue(entries.map((entry) => {
      const seconds = op === "ban" ? entry.timeout : 0;
      return this.#operation(op, "set", set, entry.element, seconds > 0 ? now + seconds * 1000 : undefined, caller, now);
    }));
  }

  #onEvent(event: HostEvent): void {
    if (event.origin !== "fail2ban" || event.type !== "BAN") return;
    const { jail, address, bantime } = event.attributes;
    if (jail === undefined || address === undefined || !this.#jailsShared.has(jail)) return;
    const seconds = Number(bantime);
    const expiresAt = Number.isFinite(seconds) && seconds > 0 ? event.time + seconds * 1000 : undefined;
    this.#queue([this.#operation("ban", "jail", jail, address, expiresAt, { principal: "fail2ban", role: "", method: "fail2ban" }, event.time)]);
  }

  #operation(op: "ban" | "unban", kind: "jail" | "set", target: string, address: string, expiresAt: number | undefined, caller: Caller, now: number): FleetOperation {
    return {
      id: uuidV7(now),
      op,
      kind,
      target,
      address,
      ...(expiresAt === undefined ? {} : { expiresAt }),
      node: this.#config.node,
      principal: caller.principal,
      role: caller.role,
      method: caller.method,
      time: now,
    };
  }

  #queue(operations: readonly FleetOperation[]): void {
    if (operations.length === 0) return;
    this.#store.enqueue(operations);
    this.#publisher.kick();
  }

  close(): void {
    this.#unsubscribe?.();
  }
}

/**
 * A UUID version 7 (RFC 9562): the time in ms first, then random bits. Every host keeps each operation it sees by id;
 * ids in time order land at the end of that table's index instead of at random pages of it (random v4 ids made
 * recording a received ban the costliest step of applying it).
 */
export function uuidV7(now = Date.now()): string {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = 0x70 | (bytes[6]! & 0x0f);
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
