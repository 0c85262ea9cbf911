import { status as Status } from "@grpc/grpc-js";
import type { Logger } from "../logger.js";
import { requireRole } from "../auth/roles.js";
import { toServerError } from "../errors.js";
import type { AuditStore } from "../store/audit-store.js";
import type { Operation, Principal } from "./operation.js";

/**
 * Runs operations for every transport: permission first (before existence, so a viewer learns nothing about what
 * exists), then the handler; writes are audited whether allowed, refused or failed; one log line per call.
 */
export class Invoker {
  readonly #audit: AuditStore;
  readonly #log: Logger;

  constructor(audit: AuditStore, log: Logger) {
    this.#audit = audit;
    this.#log = log;
  }

  async invoke<Request, Response>(method: string, op: Operation<Request, Response>, principal: Principal, request: Request, transport: string): Promise<Response> {
    const started = performance.now();
    let code = "OK";
    let detail: string | undefined;
    try {
      requireRole(principal.role, op.role, method, principal.name);
      return await op.handle(request, principal);
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
    }
  }
}
