import { status as Status } from "@grpc/grpc-js";
import type { Logger } from "../logger.js";
import { requireRole } from "../auth/roles.js";
import { toServerError, type ServerError } from "../errors.js";
import type { EventLog } from "../events/event-log.js";
import type { AuditRecord, AuditStore } from "../store/audit-store.js";
import type { CallObserver } from "../metrics/metrics.js";
import type { EventInput } from "../events/event-model.js";
import type { ApiCall } from "../events/api-call.js";
import type { Operation, StreamOperation } from "./operation.js";
import type { Principal } from "../auth/principal.js";

/** Runs synchronous store writes and resolves once they are committed (GroupCommit: shared by calls ending together). */
export type CommitWrites = (work: () => void) => Promise<void>;

/**
 * Runs operations for every transport: permission first (before existence, so a viewer learns nothing about what
 * exists), then the handler; the events the domain recorded for a successful change are written (see ApiCall); writes
 * are audited whether allowed, refused or failed; one log line per call.
 */
export class Invoker {
  readonly #audit: AuditStore;
  readonly #events: EventLog;
  readonly #log: Logger;
  readonly #observer: CallObserver | undefined;
  readonly #commit: CommitWrites;

  constructor(audit: AuditStore, events: EventLog, log: Logger, observer?: CallObserver, commit: CommitWrites = async (work) => work()) {
    this.#audit = audit;
    this.#events = events;
    this.#log = log;
    this.#commit = commit;
    this.#observer = observer;
  }

  async invoke<Request, Response>(method: string, op: Operation<Request, Response>, principal: Principal, request: Request, transport: string): Promise<Response> {
    const events: EventInput[] = [];
    const call: ApiCall = {
      principal: principal.name,
      role: principal.role,
      method,
      ...(principal.address === undefined ? {} : { address: principal.address }),
      record: (event) => void events.push(event),
    };
    return this.#run(method, op, principal, request, transport, () => op.handle(request, call), () => events);
  }

  async invokeStream<Request, Item>(method: string, op: StreamOperation<Request, Item>, principal: Principal, request: Request, transport: string, write: (item: Item) => Promise<void>, signal: AbortSignal): Promise<void> {
    await this.#run(method, op, principal, request, transport, () => op.stream(request, principal, write, signal));
  }

  /**
   * A call refused before it reached an operation (revoked certificate on an open connection, no role, a cross-site
   * request from a browser): audited like any refused write, under the certificate's name when it has one, and its
   * role when the caller was identified. (Handshakes that fail — no certificate, another CA — never become calls.)
   */
  refused(method: string, error: ServerError, transport: string, caller?: Principal): void {
    const principal = caller?.name ?? error.metadata.principal ?? "unauthenticated";
    this.#audit.append({ time: Date.now(), principal, role: caller?.role ?? "", method, resource: "", code: Status[error.code], detail: error.reason });
    this.#log.warn({ transport, method, principal, reason: error.reason }, "call refused");
  }

  /**
   * The call's events (on success) and audit record are written together, committed with those of the calls that
   * end at the same time, before the answer goes out.
   */
  async #run<Request, T>(method: string, op: { role: Principal["role"]; resource: (request: Request) => string }, principal: Principal, request: Request, transport: string, work: () => Promise<T>, recorded?: () => readonly EventInput[]): Promise<T> {
    const started = performance.now();
    let code = "OK";
    let detail: string | undefined;
    try {
      requireRole(principal.role, op.role, method, principal.name);
      const result = await work();
      const events = recorded?.() ?? [];
      const audited = this.#audited(op, principal, request, method, code);
      if (events.length > 0 || audited !== undefined) {
        await this.#commit(() => {
          for (const event of events) this.#events.append(event, principal.name, "api");
          if (audited !== undefined) this.#audit.append(audited);
        });
      }
      return result;
    } catch (error) {
      const serverError = toServerError(error);
      code = Status[serverError.code];
      detail = serverError.reason;
      if (serverError.reason === "INTERNAL") this.#log.error({ err: error, method }, "unexpected error");
      const audited = this.#audited(op, principal, request, method, code, detail);
      if (audited !== undefined) this.#audit.append(audited);
      throw serverError;
    } finally {
      const ms = Math.round((performance.now() - started) * 1000) / 1000;
      this.#log.info({ transport, method, principal: principal.name, role: principal.role, code, ms }, "rpc");
      this.#observer?.callFinished(method, transport, code, ms / 1000);
    }
  }

  /** The audit record of a call to a write (undefined for reads). */
  #audited<Request>(op: { role: Principal["role"]; resource: (request: Request) => string }, principal: Principal, request: Request, method: string, code: string, detail?: string): AuditRecord | undefined {
    if (op.role === "viewer") return undefined;
    let resource = "";
    try {
      resource = op.resource(request).slice(0, 500);
    } catch {
      // a request too malformed to name its resource is still audited
    }
    return { time: Date.now(), principal: principal.name, role: principal.role, method, resource, code, ...(detail === undefined ? {} : { detail }) };
  }
}
