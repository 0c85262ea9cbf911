import type { Role } from "../auth/roles.js";
import type { EventInput } from "./event-model.js";

/**
 * A change asked for through the API, as the domain sees it: who asks (the events and the fleet's records name them,
 * the anti-lockout check protects their address) and where the change's events go. The domain service that makes a
 * change records its events here, in order; the Invoker writes them under the caller's name with origin "api", in
 * one commit with the call's audit record, once the call succeeded and before the answer goes out. A call that fails
 * records none.
 */
export interface ApiCall {
  /** The caller's name (the client certificate's CN). */
  readonly principal: string;
  readonly role: Role;
  /** The RPC, e.g. `portcullis.v1.JailService/BanIp`. */
  readonly method: string;
  /** The caller's IP address as the server sees the connection. */
  readonly address?: string;
  record(event: EventInput): void;
}
