import type { IncomingHttpHeaders } from "node:http";
import { ServerError } from "../errors.js";

/**
 * A browser presents the user's client certificate to the gateway whatever page makes the request, so a page on
 * another site could make changes with the user's role (cross-site request forgery). State-changing requests are
 * therefore taken only when nothing says they come from another site: `Sec-Fetch-Site` (sent by current browsers)
 * must be same-origin or none, and `Origin` (sent by browsers on every cross-site and every non-GET request) must be
 * this gateway's own. Clients that are not browsers (curl, scripts, the SDK) send neither and are not affected.
 * Bodies of the types an HTML form can send are refused too: the API takes JSON only, so a form post is never a
 * request, even from a browser too old to send either header.
 */

/** Methods that only read: a page may cause them (links, images), and the same-origin policy hides the answer. */
const READ_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS"]);
/** The content types an HTML form can post (the only ones a cross-site fetch may send without asking first). */
const FORM_TYPES: ReadonlySet<string> = new Set(["application/x-www-form-urlencoded", "multipart/form-data", "text/plain"]);
const SAME_SITE_FETCHES: ReadonlySet<string> = new Set(["same-origin", "none"]);
const FROM_CONSOLE = "make the change from the console this server serves (/console/), or from a client that is not a browser (curl, the SDK, the CLI)";

/** Why this request must not run, or undefined when it may. */
export function crossSiteRefusal(request: { readonly method?: string | undefined; readonly headers: IncomingHttpHeaders }): ServerError | undefined {
  if (READ_METHODS.has(request.method ?? "GET")) return undefined;
  const { headers } = request;
  const fetchSite = headers["sec-fetch-site"];
  if (fetchSite !== undefined && !SAME_SITE_FETCHES.has(fetchSite)) {
    return new ServerError("CROSS_SITE_REQUEST", `the browser says this request came from another site's page (Sec-Fetch-Site: ${fetchSite.slice(0, 40)}), so it was refused; ${FROM_CONSOLE}`, { field: "Sec-Fetch-Site", value: fetchSite.slice(0, 200) });
  }
  const origin = headers.origin;
  if (origin !== undefined) {
    const own = ownOrigin(headers.host);
    if (origin !== own) {
      return new ServerError("CROSS_SITE_REQUEST", `the request comes from the page of ${origin.slice(0, 200)}, not from this server's own pages (${own ?? "unknown: the Host header is missing or not host:port"}), so it was refused; ${FROM_CONSOLE}`, { field: "Origin", value: origin.slice(0, 200) });
    }
  }
  const type = headers["content-type"]?.split(";")[0]?.trim().toLowerCase();
  if (type !== undefined && FORM_TYPES.has(type)) {
    return new ServerError("INVALID_REQUEST", `the API takes JSON bodies only: send Content-Type: application/json (${type} is refused, as a web form could send it)`, { field: "Content-Type", value: type });
  }
  return undefined;
}

/** The origin a browser sends for pages of this gateway (https and the Host it asked for), as browsers spell it. */
function ownOrigin(host: string | undefined): string | undefined {
  if (host === undefined) return undefined;
  try {
    const url = new URL(`https://${host}`);
    // A Host that is more than host[:port] (a path, credentials) is no origin at all.
    const spelled = host.toLowerCase();
    return url.host === spelled || `${url.host}:443` === spelled ? url.origin : undefined;
  } catch {
    return undefined;
  }
}
