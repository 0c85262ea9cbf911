import { status as Status } from "@grpc/grpc-js";
import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import { overlaps, parseNetworkCanonical, type ParsedNetwork } from "../addresses.js";
import type { EventLog } from "../events/event-log.js";
import type { EventInput } from "../events/event-model.js";
import type { AuditStore } from "../store/audit-store.js";
import type { FleetStore, FleetOutcome } from "../store/fleet-store.js";
import type { IpsetService } from "../ipsets/ipset-service.js";
import type { JailService } from "../jails/jail-service.js";
import type { Allowlist } from "../jails/allowlist.js";
import { resourceOf, type FleetOperation } from "./fleet-model.js";

/**
 * Errors that mean "not now": fail2ban or the kernel away, shutting down (retried for as long as it takes), or an
 * unexpected failure (retried a few times: see FleetConsumer). The message is redelivered later.
 */
const TRANSIENT = new Set<Status>([Status.UNAVAILABLE, Status.INTERNAL, Status.DEADLINE_EXCEEDED, Status.CANCELLED]);

export function isTransient(error: unknown): boolean {
  return !(error instanceof ServerError) || TRANSIENT.has(error.code);
}

/** Whether waiting can fix it (as opposed to a bug or a tool refusing something, which a few retries rule out). */
export function isUnavailable(error: unknown): boolean {
  return error instanceof ServerError && error.code !== Status.INTERNAL && TRANSIENT.has(error.code);
}

/**
 * Applies operations other hosts shared, through the same domain paths as a local call: jail bans through the
 * JailService (this host's allowlist and the jail's ignoreip refuse what they protect), set entries through the
 * IpsetService (the allowlist checked first, as no jail path does it for sets). Nothing this host's management
 * addresses need is ever blocked (anti-lockout). Every outcome is recorded by id (a redelivery changes nothing), as an
 * event naming the origin host and principal, and in the audit log; a refusal is a FLEET_BAN_REFUSED event.
 */
export class FleetApplier {
  readonly #jails: JailService;
  readonly #ipsets: IpsetService;
  readonly #allowlist: Allowlist;
  readonly #management: readonly ParsedNetwork[];
  readonly #store: FleetStore;
  readonly #events: EventLog;
  readonly #audit: AuditStore;
  readonly #log: Logger;
  /** Outcomes of the run being applied, written together by #flush. */
  readonly #outcomes: Array<() => void> = [];

  constructor(deps: { jails: JailService; ipsets: IpsetService; allowlist: Allowlist; managementAddresses: readonly string[]; store: FleetStore; events: EventLog; audit: AuditStore; log: Logger }) {
    this.#jails = deps.jails;
    this.#ipsets = deps.ipsets;
    this.#allowlist = deps.allowlist;
    this.#management = deps.managementAddresses.map((network) => parseNetworkCanonical(network));
    this.#store = deps.store;
    this.#events = deps.events;
    this.#audit = deps.audit;
    this.#log = deps.log;
  }

  /**
   * Applies operations in order, run by run (consecutive operations of one kind on one target, made by one call at one
   * host, go as one batch). Throws on a transient failure, leaving the rest unrecorded for the redelivery.
   */
  async apply(operations: readonly FleetOperation[]): Promise<void> {
    const seen = this.#store.seenOf(operations.map((operation) => operation.id));
    const fresh = operations.filter((operation) => !seen.has(operation.id));
    for (let i = 0; i < fresh.length; ) {
      const first = fresh[i]!;
      let j = i;
      while (j < fresh.length && sameRun(first, fresh[j]!)) j++;
      try {
        await this.#applyRun(fresh.slice(i, j));
      } finally {
        this.#flush();
      }
      i = j;
    }
  }

  /** Writes the outcomes of a run (records, events, audit) in one transaction, once its kernel changes are made. */
  #flush(): void {
    const outcomes = this.#outcomes.splice(0);
    if (outcomes.length > 0) this.#store.transaction(() => outcomes.forEach((write) => write()));
  }

  /** Whether this host has seen an operation (made it here, applied or refused it). */
  seen(id: string): boolean {
    return this.#store.seen(id);
  }

  /** Lifts the shared jail bans whose absolute expiry has come (set entries expire in the kernel by themselves). */
  async expire(now = Date.now()): Promise<number> {
    let lifted = 0;
    for (const ban of this.#store.due(now)) {
      if (ban.kind === "jail" && !this.#store.heldLonger(ban, now)) {
        try {
          if ((await this.#jails.unbanHere(ban.target, ban.address)).length > 0) {
            this.#events.append({ type: "UNBAN", resource: resourceOf(ban), attributes: { jail: ban.target, address: ban.address, fleet_id: ban.id, origin_node: ban.originNode, reason: "expired" } }, "system", "fleet");
            lifted++;
          }
        } catch (error) {
          if (isTransient(error)) throw error;
          // Not banned any more (the jail's own bantime ended first, or someone unbanned it): nothing to lift.
        }
      }
      this.#store.lifted(ban.id);
    }
    return lifted;
  }

  async #applyRun(run: readonly FleetOperation[]): Promise<void> {
    const first = run[0]!;
    const now = Date.now();
    const pending: FleetOperation[] = [];
    for (const operation of run) {
      if (operation.op === "ban" && operation.expiresAt !== undefined && operation.expiresAt <= now) {
        this.#done(operation, "expired");
        continue;
      }
      const protector = operation.op === "ban" ? this.#protector(operation.address) : undefined;
      if (protector !== undefined) this.#refuse(operation, protector);
      else pending.push(operation);
    }
    if (pending.length === 0) return;
    if (first.kind === "jail") await (first.op === "ban" ? this.#banInJail(pending) : this.#unbanInJail(pending));
    else await (first.op === "ban" ? this.#addToSet(pending) : this.#removeFromSet(pending));
  }

  /** Jail bans: BatchBanIp's path for many (one refused address is set aside and the rest tried again), BanIp's for one. */
  async #banInJail(operations: FleetOperation[]): Promise<void> {
    const jail = operations[0]!.target;
    let remaining = operations;
    while (remaining.length > 0) {
      try {
        const fresh = new Set(remaining.length === 1 ? await this.#singleBan(jail, remaining[0]!.address) : await this.#jails.batchBanHere(jail, remaining.map((operation) => operation.address)));
        // Each ban is an event (a SIEM follows addresses); a batch is one audit record, as BatchBanIp is at the origin.
        const batch = remaining.length > 1;
        for (const operation of remaining) {
          const changed = fresh.has(operation.address);
          this.#done(operation, changed ? "applied" : "unchanged", changed ? { type: "BAN", resource: resourceOf(operation), attributes: { jail, address: operation.address } } : undefined, !batch);
        }
        const first = remaining[0]!;
        if (batch) this.#outcomes.push(() => this.#audited(first, "OK", undefined, `jails/${jail}`));
        return;
      } catch (error) {
        if (isTransient(error)) throw error;
        const refused = remaining.find((operation) => operation.address === (error as ServerError).metadata.address);
        for (const operation of refused === undefined ? remaining : [refused]) this.#refuse(operation, error as ServerError);
        remaining = refused === undefined ? [] : remaining.filter((operation) => operation !== refused);
      }
    }
  }

  /** BanIp's path; the address counts as news unless the jail had it already. */
  async #singleBan(jail: string, address: string): Promise<string[]> {
    const before = this.#jails.recordedBans(jail).has(address);
    await this.#jails.banHere(jail, address);
    return before ? [] : [address];
  }

  async #unbanInJail(operations: FleetOperation[]): Promise<void> {
    for (const operation of operations) {
      try {
        await this.#jails.unbanHere(operation.target, operation.address);
        this.#done(operation, "applied", { type: "UNBAN", resource: resourceOf(operation), attributes: { jail: operation.target, address: operation.address } });
      } catch (error) {
        if (isTransient(error)) throw error;
        if (error instanceof ServerError && error.reason === "BAN_NOT_FOUND") this.#done(operation, "unchanged");
        else this.#refuse(operation, error as ServerError);
      }
    }
  }

  /** Set entries with the time left until the shared expiry (permanent when the set has no timeouts). */
  async #addToSet(operations: FleetOperation[]): Promise<void> {
    const set = operations[0]!.target;
    try {
      const definition = await this.#ipsets.definition(set);
      const now = Date.now();
      const entries = operations.map((operation) => ({
        element: operation.address,
        ...(definition.timeout === undefined ? {} : { timeout: operation.expiresAt === undefined ? 0 : Math.max(1, Math.ceil((operation.expiresAt - now) / 1000)) }),
      }));
      if (entries.length === 1) {
        await this.#ipsets.addEntryHere(set, entries[0]!);
        this.#done(operations[0]!, "applied", { type: "ENTRY_ADDED", resource: resourceOf(operations[0]!), attributes: { element: operations[0]!.address, timeout: String(entries[0]!.timeout ?? 0) } });
        return;
      }
      await this.#ipsets.batchAddHere(set, { entries });
      // As BatchAddEntries at the origin: one event and one audit record for the batch (its operations are each recorded).
      const first = operations[0]!;
      this.#outcomes.push(() => {
        for (const operation of operations) this.#store.record(operation, "applied");
        this.#events.append({ type: "ENTRIES_ADDED", resource: `ipsets/${set}`, attributes: { count: String(operations.length), ...provenance(first), fleet_id: `${first.id}+${operations.length - 1}` } }, first.principal, "fleet");
        this.#audited(first, "OK", undefined, `ipsets/${set}`);
      });
    } catch (error) {
      if (isTransient(error)) throw error;
      for (const operation of operations) this.#refuse(operation, error as ServerError);
    }
  }

  async #removeFromSet(operations: FleetOperation[]): Promise<void> {
    for (const operation of operations) {
      try {
        await this.#ipsets.removeElement(operation.target, operation.address);
        this.#done(operation, "applied", { type: "ENTRY_DELETED", resource: resourceOf(operation), attributes: { element: operation.address } });
      } catch (error) {
        if (isTransient(error)) throw error;
        this.#refuse(operation, error as ServerError);
      }
    }
  }

  /** What protects the address or network here: an allowlist entry or a management address it overlaps. */
  #protector(element: string): ServerError | undefined {
    const parsed = parseNetworkCanonical(element);
    if ("problem" in parsed) return new ServerError("INVALID_ELEMENT", `"${element.slice(0, 60)}" is not an address or network: ${parsed.problem}`, { address: element.slice(0, 60) });
    const allowed = this.#allowlist.covering(element) ?? this.#allowlist.list().find((row) => overlaps(parsed, parseNetworkCanonical(row.network)));
    if (allowed !== undefined) return new ServerError("ADDRESS_ALLOWLISTED", `${element} is protected by the host allowlist entry ${allowed.network}`, { entry: allowed.network, address: element });
    const managed = this.#management.find((network) => overlaps(parsed, network));
    if (managed !== undefined && !("problem" in managed)) {
      return new ServerError("ADDRESS_MANAGEMENT", `${element} covers the management address ${managed.network}, which must keep reaching this host`, { entry: managed.network, address: element });
    }
    return undefined;
  }

  #done(operation: FleetOperation, outcome: FleetOutcome, event?: EventInput, audited = true): void {
    this.#outcomes.push(() => {
      this.#store.record(operation, outcome);
      if (event !== undefined) this.#events.append({ ...event, attributes: { ...event.attributes, ...provenance(operation) } }, operation.principal, "fleet");
      if (audited) this.#audited(operation, "OK");
    });
  }

  #refuse(operation: FleetOperation, error: ServerError): void {
    this.#log.warn({ id: operation.id, originNode: operation.node, resource: resourceOf(operation), reason: error.reason }, "shared ban refused");
    this.#outcomes.push(() => {
      this.#store.record(operation, "refused");
      const target: Record<string, string> = { [operation.kind]: operation.target };
      this.#events.append({
        type: "FLEET_BAN_REFUSED",
        resource: resourceOf(operation),
        attributes: { ...target, address: operation.address, op: operation.op, reason: error.reason, detail: error.message, ...provenance(operation) },
      }, operation.principal, "fleet");
      this.#audited(operation, Status[error.code], error.reason);
    });
  }

  #audited(operation: FleetOperation, code: string, detail?: string, resource = resourceOf(operation)): void {
    this.#audit.append({
      time: Date.now(),
      principal: operation.principal,
      role: operation.role,
      method: operation.method,
      resource,
      code,
      ...(detail === undefined ? {} : { detail }),
      originNode: operation.node,
    });
  }
}

/** The attributes every fleet event carries: which shared operation, from where, until when. */
function provenance(operation: FleetOperation): Record<string, string> {
  return {
    fleet_id: operation.id,
    origin_node: operation.node,
    ...(operation.expiresAt === undefined ? {} : { expire_time: new Date(operation.expiresAt).toISOString() }),
  };
}

/** Whether two operations go in one batch: same change to the same jail or set, by the same call at the same host. */
function sameRun(a: FleetOperation, b: FleetOperation): boolean {
  return a.op === b.op && a.kind === b.kind && a.target === b.target && a.node === b.node && a.principal === b.principal && a.method === b.method;
}

