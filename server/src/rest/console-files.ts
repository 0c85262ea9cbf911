import { stat } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import { ServerError } from "../errors.js";
import { repositoryPath } from "../code-files.js";

/** Where the REST gateway serves the console. */
export const CONSOLE_PATH = "/console/";

/**
 * Every console answer, files and refusals alike: scripts, styles and data only from this server (no inline script,
 * no other origin), never framed, no Referer with the page's address, no content-type guessing.
 */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
};
/**
 * A path that may name a file: its last segment ends in an extension-like suffix (`.js`, `.woff2`, but also a set
 * `blocklist.v4` or a jail `my.jail`), which starts with a letter (so an address `…/192.0.2.1` is not one).
 */
const FILE_NAME = /\.[A-Za-z][A-Za-z0-9]{0,9}$/;
/** A name with its content hash (esbuild's `[name]-[hash]`: app-3F2A9C1B.js) never changes content: cached for good. */
const HASHED_NAME = /-[A-Z0-9]{8,}\.[A-Za-z0-9]+$/;
const IMMUTABLE = "public, max-age=31536000, immutable";
/** Anything else is revalidated (ETag) on every use, so that a new build shows at once. */
const REVALIDATE = "no-cache";

/** The console built in the repository (`npm run build` writes console/dist), beside the sources and the bundle. */
export function defaultConsoleDir(): string {
  return repositoryPath("console/dist");
}

/**
 * GET and HEAD under /console/ (mounted there): the built console's files, and its index.html for the console's own
 * routes, so that a deep link or a reload works — every path that is not a file of the build, unless it looks like an
 * asset: a missing asset is a 404 problem, not a page (a script load answered with HTML fails obscurely). A path looks
 * like an asset when its last segment has a file extension and the request is not a page navigation (it does not ask
 * for text/html), or when it is under one of the build's folders (`assets/`). Only regular files under `dir` are
 * served — no directory listings, no dot files, no `..` or encoded separators in a file's path (a route may hold
 * them: an id with a slash); a path that is not percent-encoded UTF-8 is refused. The folder is looked at on each
 * request, so a console built while the server runs is served at once, and a missing one is explained.
 */
export function serveConsole(dir: string, refuse: (res: Response, error: ServerError) => void): RequestHandler {
  const root = resolve(dir);
  const index = join(root, "index.html");
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.method !== "GET" && req.method !== "HEAD") return next();
    res.set(SECURITY_HEADERS);
    // Relative asset paths in index.html need the trailing slash.
    const query = req.originalUrl.indexOf("?");
    const pathname = query === -1 ? req.originalUrl : req.originalUrl.slice(0, query);
    if (pathname === CONSOLE_PATH.slice(0, -1)) return res.redirect(301, `${CONSOLE_PATH}${query === -1 ? "" : req.originalUrl.slice(query)}`);
    const asset = FILE_NAME.test(req.path) && !navigates(req);
    let segments: string[] | undefined;
    try {
      segments = fileSegments(req.path);
    } catch (error) {
      // A path no file can have: a missing asset, or a route of the console (its page, never what the path reaches).
      if (asset || (error as ServerError).reason === "MALFORMED_REQUEST") return refuse(res, error as ServerError);
    }
    (segments === undefined ? Promise.resolve(undefined) : resolveFile(root, segments, asset)).then(
      (file) => serve(file ?? index, file === undefined || file === index, root, res),
    ).then(
      (error) => (error === undefined ? undefined : refuse(res, error)),
      next,
    );
  };
}

/**
 * The file of the build a path names, if it is one; else undefined (index.html answers), except for what looks like
 * an asset (`asset`, or under a folder of the build), which keeps its own path and so is answered 404.
 */
async function resolveFile(root: string, segments: readonly string[], asset: boolean): Promise<string | undefined> {
  if (segments.length === 0) return undefined;
  const file = join(root, ...segments);
  if (!file.startsWith(root + sep)) return file;
  if (await isFile(file)) return file;
  const inBuildFolder = segments.length > 1 && (await isDirectory(join(root, segments[0]!)));
  return asset || inBuildFolder ? file : undefined;
}

/** A browser's page navigation (a link, a reload, the address bar) asks for HTML; scripts, styles and images do not. */
function navigates(req: Request): boolean {
  return /(^|,)\s*text\/html\s*(;|,|$)/i.test(req.get("accept") ?? "");
}

/** The decoded path segments under /console/; any that could leave the folder or reach a hidden file is refused. */
function fileSegments(path: string): string[] {
  const segments = path.split("/").filter((segment) => segment !== "");
  return segments.map((raw) => {
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      throw new ServerError("MALFORMED_REQUEST", `the path segment "${raw.slice(0, 100)}" is not valid percent-encoding of UTF-8 text; write each byte outside [A-Za-z0-9-._~] as %XX of its UTF-8 encoding`, { field: "path" });
    }
    if (segment.startsWith(".") || /[/\\\0]/.test(segment)) throw notFound(path);
    return segment;
  });
}

/** Sends one regular file of the console, or says why not (undefined: sent, or the client went away). */
async function serve(file: string, isIndex: boolean, root: string, res: Response): Promise<ServerError | undefined> {
  if (!(await isFile(join(root, "index.html")))) {
    return new ServerError("CONSOLE_NOT_BUILT", `the console is not built: ${root} has no index.html; run \`npm run build\` in the Portcullis repository, or point console.dir (PORTCULLIS_CONSOLE_DIR) at a built console`, {});
  }
  if (!file.startsWith(root + sep) || !(await isFile(file))) return notFound(file.slice(root.length).replaceAll(sep, "/"));
  const cacheControl = isIndex || !HASHED_NAME.test(file) ? REVALIDATE : IMMUTABLE;
  return new Promise((resolvePromise, reject) => {
    res.sendFile(file, { dotfiles: "allow", cacheControl: false, headers: { "Cache-Control": cacheControl } }, (error?: Error & { code?: string }) => {
      // An aborted download is the client's business; anything else is a server fault.
      if (error === undefined || res.headersSent || error.code === "ECONNABORTED") resolvePromise(undefined);
      else reject(error);
    });
  });
}

function notFound(path: string): ServerError {
  return new ServerError("ROUTE_NOT_FOUND", `the console has no file ${CONSOLE_PATH.slice(0, -1)}${path.slice(0, 200)}; its pages are under ${CONSOLE_PATH}`, { field: "path" });
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
