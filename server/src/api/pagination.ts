import { ServerError } from "../errors.js";

/**
 * Opaque page tokens (AIP-158): the last key of the previous page plus the list they belong to, so a token cannot
 * be replayed against another list.
 */
export function encodePageToken(scope: string, after: string): string {
  return Buffer.from(JSON.stringify({ s: scope, a: after })).toString("base64url");
}

export function decodePageToken(token: string, scope: string): string {
  if (token === "") return "";
  try {
    const decoded = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { s?: unknown; a?: unknown };
    if (decoded.s === scope && typeof decoded.a === "string") return decoded.a;
  } catch {
    // fall through to the error below
  }
  throw new ServerError("INVALID_PAGE_TOKEN", "page_token is not a token returned by this list; omit it to start from the first page", { field: "page_token" });
}

/** page_size (or another count, named by `field`): 0 means the default; negative or too large is refused. */
export function pageSize(requested: number, defaultSize: number, maxSize: number, field = "page_size"): number {
  if (requested === 0) return defaultSize;
  if (!Number.isInteger(requested) || requested < 0 || requested > maxSize) {
    throw new ServerError("INVALID_PAGE_SIZE", `${field} must be from 1 to ${maxSize} (0 for the default of ${defaultSize})`, { field, value: String(requested) });
  }
  return requested;
}
