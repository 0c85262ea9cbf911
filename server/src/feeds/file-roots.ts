import { resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { ServerError } from "../errors.js";
import type { FeedDefinition } from "./feed-model.js";

/**
 * Refuses a feed that would read a file outside the configured folders (`feeds.fileRoots`): a file:// source or a
 * crowdsec feed's api_key_file. Checked when a feed is made or changed, and again before each read (the folders may
 * have been narrowed since).
 */
export function checkFileRoots(definition: Pick<FeedDefinition, "source" | "apiKeyFile">, roots: readonly string[], prefix = "feed."): void {
  const url = new URL(definition.source);
  if (url.protocol === "file:") checkPath(fileURLToPath(url), roots, `${prefix}source`, "INVALID_FEED_SOURCE");
  if (definition.apiKeyFile !== undefined) checkPath(definition.apiKeyFile, roots, `${prefix}api_key_file`, "INVALID_SETTING");
}

function checkPath(path: string, roots: readonly string[], field: string, reason: "INVALID_FEED_SOURCE" | "INVALID_SETTING"): void {
  // resolve() takes out `..` and `.`: what is compared is the path the file is opened by.
  const resolved = resolve(path);
  if (roots.some((root) => resolved.startsWith(resolve(root) + sep))) return;
  const allowed = roots.length === 0 ? "no folder (feeds.fileRoots is empty)" : roots.join(", ");
  throw new ServerError(reason, `${field} ${path.slice(0, 200)} is outside the folders feeds may read (${allowed}); put the file there, or add its folder to feeds.fileRoots in the server's config`, { field, value: path.slice(0, 200) });
}
