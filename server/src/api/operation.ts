import type { Role } from "../auth/roles.js";

/** Who is calling: from the client certificate (CN = name, O = role). */
export interface Principal {
  readonly name: string;
  readonly role: Role;
  /** The caller's IP address as the server sees the connection (for the anti-lockout check). */
  readonly address?: string;
}

/**
 * One RPC, independent of transport: the role it needs, which resource it touches (for the audit log), and the
 * handler from request message to response message. gRPC and REST adapters both run operations through `invoke`.
 */
export interface Operation<Request, Response> {
  readonly role: Role;
  readonly resource: (request: Request) => string;
  readonly handle: (request: Request, principal: Principal) => Promise<Response>;
}

/** Builds an operation with its types inferred from the handler. */
export function operation<Request, Response>(
  role: Role,
  resource: (request: Request) => string,
  handle: (request: Request, principal: Principal) => Promise<Response>,
): Operation<Request, Response> {
  return { role, resource, handle };
}
