import type { handleServerStreamingCall, handleUnaryCall } from "@grpc/grpc-js";
import type { Role } from "../auth/roles.js";
import type { Principal } from "../auth/principal.js";
import type { ApiCall } from "../events/api-call.js";

/**
 * One unary RPC, independent of transport: the role it needs, which resource it touches (for the audit log), and the
 * handler from request message to response message, which hands `call` to the domain (who asks, and where the
 * change's events go). gRPC and REST adapters both run operations through the Invoker.
 */
export interface Operation<Request, Response> {
  readonly kind: "unary";
  readonly role: Role;
  readonly resource: (request: Request) => string;
  readonly handle: (request: Request, call: ApiCall) => Promise<Response>;
}

/** A server-streaming RPC: items are written until the stream ends or the caller goes away (signal). */
export interface StreamOperation<Request, Item> {
  readonly kind: "stream";
  readonly role: Role;
  readonly resource: (request: Request) => string;
  readonly stream: (request: Request, principal: Principal, write: (item: Item) => Promise<void>, signal: AbortSignal) => Promise<void>;
}

/** Builds a unary operation with its types inferred from the handler. */
export function operation<Request, Response>(
  role: Role,
  resource: (request: Request) => string,
  handle: (request: Request, call: ApiCall) => Promise<Response>,
): Operation<Request, Response> {
  return { kind: "unary", role, resource, handle };
}

/** Builds a server-streaming operation. */
export function streamOperation<Request, Item>(
  role: Role,
  resource: (request: Request) => string,
  stream: (request: Request, principal: Principal, write: (item: Item) => Promise<void>, signal: AbortSignal) => Promise<void>,
): StreamOperation<Request, Item> {
  return { kind: "stream", role, resource, stream };
}

/**
 * The operations behind every method of a generated service, typed from its generated server interface: a handler
 * that drifts from the contract fails to compile.
 */
export type OperationsOf<Definition, Server> = {
  [K in keyof Definition]: K extends keyof Server
    ? Server[K] extends handleServerStreamingCall<infer Q, infer I>
      ? StreamOperation<Q, I>
      : Server[K] extends handleUnaryCall<infer Q, infer R> ? Operation<Q, R> : never
    : never;
};
