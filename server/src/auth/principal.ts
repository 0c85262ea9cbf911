import type { Role } from "./roles.js";

/** Who is calling: from the client certificate (CN = name, O = role). */
export interface Principal {
  readonly name: string;
  readonly role: Role;
  /** The caller's IP address as the server sees the connection (for the anti-lockout check). */
  readonly address?: string;
}
