import { status as Status } from "@grpc/grpc-js";
import type { Logger } from "../logger.js";
import { requireRole } from "../auth/roles.js";
import { toServerError, type ServerError } from "../errors.js";
import type { EventLog } from "../events/event-log.js";
import type { AuditStore } from "../store/audit-store.js";
import type { CallObserver } from "../metrics/metrics.js";
import type { Operation, Principal, StreamOperation } from "./operation.js";

/**
 * Runs operations for every transport: permission first (before existence, so a viewer learns nothing about what
 * exists), then the handler; a successful change records its event; writes are audited whether allowed, refused or
 * failed; one log line per call.
 */
export class Invoker {
  readonly #audit: AuditStore;
  readonly #events: EventLog;
  readonly #log: Logger;
  readonly #observer: CallObserver | undefined;

  constructor(audit: AuditStore, events: EventLog, log: Logger, observer?: CallObserver) {
    this.#audit = audit;
    this.#events = events;
    this.#log = log;
    this.#observer = observer;
  }

  async invoke<Request, Response>(method: string, op: Operation<Request, Response>, principal: Principal, request: Request, transport: string): Promise<Response> {
    return this.#run(method, op, principal, request, transport, async () => {
      const response = await op.handle(request, principal);
      const events = op.event?.(request, response);
      for (const event of events === undefined ? [] : Array.isArray(events) ? events : [events]) this.#events.append(event, principal.name, "api");
      return response;
    });
  }

  async invokeStream<Request, Item>(method: string, op: StreamOperation<Request, Item>, principal: Principal, request: Request, transport: string, write: (item: Item) => Promise<void>, signal: AbortSignal): Promise<void> {
    await this.#run(method, op, principal, request, transport, () => op.stream(request, principal, write, signal));
  }

  /**
   * A call refused before it reached an operation (revoked certificate on an open connection, no role): audited
   * like any refused write, under the certificate's name when it has one. (Handshakes that fail — no certificate,
   * another CA — never become calls.)
   */
  refused(method: string, error: ServerError, transport: string): void {
    const principal = error.metadata.principal ?? "unauthenticated";
    this.#audit.append({ time: Date.now(), principal, role: "", method, resource: "", code: Status[error.code], detail: error.reason });
    this.#log.warn({ transport, method, principal, reason: error.reason }, "call refused");
  }

  async #run<Request, T>(method: string, op: { role: Principal["role"]; resource: (request: Request) => string }, principal: Principal, request: Request, transport: string, work: () => Promise<T>): Promise<T> {
    const started = performance.now();
    let code = "OK";
    let detail: string | undefined;
    try {
      requireRole(principal.role, op.role, method, principal.name);
      return await work();
    } catch (error) {
      const serverError = toServerError(error);
      code = Status[serverError.code];
      detail = serverError.reason;
      if (serverError.reason === "INTERNAL") this.#log.error({ err: error, method }, "unexpected error");
      throw serverError;
    } finally {
      const ms = Math.round((performance.now() - started) * 1000) / 1000;
      if (op.role !== "viewer") {
        let resource = "";
        try {
          resource = op.resource(request).slice(0, 500);
        } catch {
          // a request too malformed to name its resource is still audited
        }
        this.#audit.append({ time: Date.now(), principal: principal.name, role: principal.role, method, resource, code, ...(detail === undefined ? {} : { detail }) });
      }
      this.#log.info({ transport, method, principal: principal.name, role: principal.role, code, ms }, "rpc");
      this.#observer?.callFinished(method, transport, code, ms / 1000);
    }
  }
}
