import { ServerError } from "../errors.js";

/** viewer reads and watches; operator also changes entries and bans; admin also changes sets, rules and settings. */
export const ROLE_ORDER = ["viewer", "operator", "admin"] as const;
export type Role = (typeof ROLE_ORDER)[number];

export function isRole(value: unknown): value is Role {
  return typeof value === "string" && (ROLE_ORDER as readonly string[]).includes(value);
}

/** Throws PERMISSION_DENIED naming the role needed, unless `has` is at least `needs`. */
export function requireRole(has: Role, needs: Role, method: string, principal: string): void {
  if (ROLE_ORDER.indexOf(has) >= ROLE_ORDER.indexOf(needs)) return;
  throw new ServerError("ROLE_REQUIRED", `${method} needs the ${needs} role; certificate "${principal}" has role ${has}`, { needs, has, method });
}
