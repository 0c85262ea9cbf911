import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { PeerCertificate, TLSSocket, SecureContextOptions } from "node:tls";
import { createRequire } from "node:module";
import { join } from "node:path";
import express, { type NextFunction, type Request, type Response } from "express";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { parse as parseYaml } from "yaml";
import ipaddr from "ipaddr.js";
import { generatedMessage } from "./generated-messages.js";
import type { Logger } from "../logger.js";
import { ServerError, toServerError } from "../errors.js";
import type { Invoker } from "../api/invoker.js";
import type { Operation, StreamOperation } from "../api/operation.js";
import type { Principal } from "../auth/principal.js";
import { principalOf } from "../auth/peer-identity.js";
import { certificateRefusal, logCertificateRefusal } from "../auth/client-certificate.js";
import { listenAt } from "../listen-address.js";
import type { CrlWatcher } from "../auth/crl-watcher.js";
import type { ContractService } from "../api/contract.js";
import { contract, openApiPath, type HttpRoute } from "./http-rules.js";
import { compileRoute, invalidRequest, pathFields, queryFields, type CompiledRoute } from "./rest-routes.js";
import { problemOf } from "./problem.js";
import { answerClientErrors } from "./client-errors.js";
import { crossSiteRefusal } from "./cross-site-guard.js";
import { repositoryPath } from "../code-files.js";
import { CONSOLE_PATH, defaultConsoleDir, serveConsole } from "./console-files.js";
import { hasWideIntegers, unsafeInteger } from "../api/safe-integers.js";

/** What the express application needs: the operations, identity (CRL), health probes and the log. */
export interface RestAppDeps {
  readonly crl: CrlWatcher;
  readonly invoker: Invoker;
  readonly services: readonly ContractService[];
  readonly readiness: () => Promise<{ ready: boolean; checks: Record<string, string> }>;
  /** Prometheus exposition (GET /metrics, any role). */
  readonly metrics: () => Promise<{ contentType: string; body: string }>;
  readonly log: Logger;
  /** The built console served at /console/ (default: the repository's console/dist). */
  readonly consoleDir?: string | undefined;
}

/** The application, plus where to listen and the server's TLS material. */
export interface RestServerDeps extends RestAppDeps {
  readonly address: string;
  readonly tls: SecureContextOptions;
}

export interface RunningRestServer {
  /** host:port actually bound. */
  readonly address: string;
  /** New TLS material (a CRL update): for new connections. */
  updateTls(tls: SecureContextOptions): void;
  close(): Promise<void>;
}

/** JSON bodies up to this size; the batch methods below take up to BATCH_BODY. */
const BODY_LIMIT = "1mb";
const BATCH_BODY = "256mb";
const BATCH_METHODS: ReadonlySet<string> = new Set(["BatchAddEntries", "BatchDeleteEntries", "ImportIpsets", "ApplyRuleset", "BatchBanIp"]);
/** A comment line on idle event streams, so that proxies and clients see the connection alive. */
const SSE_KEEPALIVE_MS = 15_000;
const REQUEST_TIMEOUT_MS = 300_000;

/** The OpenAPI document the gateway is checked against: next to the sources and the bundle alike. */
function specFile(): string {
  const found = repositoryPath("openapi/portcullis.v1.yaml");
  if (!existsSync(found)) throw new Error("openapi/portcullis.v1.yaml not found; regenerate (npm run generate)");
  return found;
}

/**
 * The REST gateway listening: createRestApp's application over HTTPS, asking every client for a certificate but
 * leaving the verdict to the application (so that a refusal is problem JSON naming the cause, not a dropped
 * connection). A refused certificate is logged once per connection, as on the gRPC port.
 */
export async function startRestServer(deps: RestServerDeps): Promise<RunningRestServer> {
  const app = createRestApp(deps);
  const server: Server = createServer({ ...deps.tls, requestCert: true, rejectUnauthorized: false, minVersion: "TLSv1.2" }, app);
  answerClientErrors(server);
  server.on("secureConnection", (socket: TLSSocket) => {
    const refusal = certificateRefusal(socket);
    if (refusal !== undefined) logCertificateRefusal(deps.log, "rest", socket, refusal);
  });
  const address = await listenAt(server, deps.address);
  return {
    address,
    updateTls: (tls) => server.setSecureContext({ ...tls }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * The REST gateway's application: every RPC at its `google.api.http` route (the same routes
 * openapi/portcullis.v1.yaml describes), with the same client certificates and roles as gRPC. Requests are checked
 * against the spec's schemas (unknown fields refused) before the same operations as gRPC run them through the invoker;
 * errors are RFC 9457 problem JSON. WatchEvents is a Server-Sent Events stream that resumes from `Last-Event-ID`.
 * It must be served over HTTPS that requests a client certificate, as startRestServer does.
 */
export function createRestApp(deps: RestAppDeps): express.Express {
  const specPath = specFile();
  const specText = readFileSync(specPath, "utf8");
  const spec = parseYaml(specText) as { paths: Record<string, Record<string, { requestBody?: object; parameters?: Array<{ name: string; in: string }> }>> };
  const ajv = new Ajv2020({ strict: false, allErrors: false, coerceTypes: false });
  addFormats.default(ajv);
  // int64 is a decimal string in proto3 JSON (or a number, which formats do not check); other text would become NaN.
  ajv.addFormat("int32", true).addFormat("int64", /^-?\d{1,19}$/);
  ajv.addSchema(spec, "openapi");

  const operations = operationsByMethod(deps.services);
  const routes = contract().routes.map((route) => {
    const operation = spec.paths[openApiPath(route)]?.[route.verb];
    if (operation === undefined) throw new Error(`${route.method} is not in ${specPath}; regenerate (npm run generate)`);
    // The body's schema, or one made of the query parameters' schemas (unknown parameters refused like fields).
    const at = `openapi#/paths/${pointer(openApiPath(route))}/${route.verb}`;
    const validate: ValidateFunction = operation.requestBody !== undefined
      ? ajv.compile({ $ref: `${at}/requestBody/content/application~1json/schema` })
      : ajv.compile({
          type: "object",
          additionalProperties: false,
          properties: Object.fromEntries((operation.parameters ?? []).flatMap((parameter, index) => (parameter.in === "query" ? [[parameter.name, { $ref: `${at}/parameters/${index}/schema` }]] : []))),
        });
    const op = operations.get(`${route.service}/${route.method}`);
    if (op === undefined) throw new Error(`no operation for ${route.service}/${route.method}`);
    return { compiled: compileRoute(route), validate, op, limit: BATCH_METHODS.has(route.method) ? BATCH_BODY : BODY_LIMIT, wideIntegers: hasWideIntegers(route.request) };
  });

  const app = express();
  app.disable("x-powered-by");
  app.set("query parser", "simple");
  app.use((_req, res, next) => {
    res.setTimeout(REQUEST_TIMEOUT_MS);
    next();
  });
  // Identity first, for every path: a client certificate from our CA, not revoked, naming a role.
  app.use((req: Request, res: Response, next: NextFunction) => {
    try {
      res.locals.principal = authenticate(req, deps.crl);
      next();
    } catch (error) {
      const serverError = toServerError(error);
      deps.invoker.refused(`${req.method} ${req.path}`.slice(0, 200), serverError, "rest");
      sendProblem(res, serverError);
    }
  });
  // Then, before any route or body is looked at: a browser's request from another site's page changes nothing.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const refusal = crossSiteRefusal(req);
    if (refusal === undefined) return next();
    if (refusal.reason === "CROSS_SITE_REQUEST") deps.invoker.refused(`${req.method} ${req.path}`.slice(0, 200), refusal, "rest", res.locals.principal as Principal);
    sendProblem(res, refusal);
  });
  app.get("/healthz", (_req, res) => void res.type("text/plain").send("ok\n"));
  app.get("/readyz", (_req, res, next) => {
    deps.readiness().then((readiness) => res.status(readiness.ready ? 200 : 503).json(readiness), next);
  });
  app.get("/metrics", (_req, res, next) => {
    deps.metrics().then(({ contentType, body }) => void res.type(contentType).send(body), next);
  });
  app.get("/openapi.yaml", (_req, res) => void res.type("application/yaml").send(specText));
  const redoc = createRequire(import.meta.url).resolve("redoc/bundles/redoc.standalone.js");
  app.get("/docs/redoc.standalone.js", (_req, res) => void res.type("application/javascript").sendFile(redoc));
  app.get("/docs", (_req, res) =>
    void res.type("text/html").send('<!doctype html><html><head><meta charset="utf-8"><title>Portcullis API</title></head><body><redoc spec-url="/openapi.yaml"></redoc><script src="/docs/redoc.standalone.js"></script></body></html>'));

  const consoleDir = deps.consoleDir ?? defaultConsoleDir();
  if (!existsSync(join(consoleDir, "index.html"))) deps.log.warn({ consoleDir }, "the console is not built (npm run build): /console/ answers CONSOLE_NOT_BUILT");
  app.get("/", (_req, res) => void res.redirect(302, CONSOLE_PATH));
  app.use(CONSOLE_PATH.slice(0, -1), serveConsole(consoleDir, sendProblem));

  app.use((req: Request, res: Response, next: NextFunction) => {
    const found = match(routes, req);
    if (found === undefined) return next();
    const { entry, fields } = found;
    const route = entry.compiled.route;
    const run = (): void => {
      handle(entry, fields, req, res, deps).catch(next);
    };
    if (route.body !== "*") return run();
    if (req.headers["content-length"] === "0" || (req.headers["content-length"] === undefined && req.headers["transfer-encoding"] === undefined)) {
      req.body = {};
      return run();
    }
    if (!req.is("application/json")) return sendProblem(res, new ServerError("INVALID_REQUEST", "the body must be JSON (Content-Type: application/json)", { field: "body" }));
    express.json({ limit: entry.limit, strict: true })(req, res, (error?: unknown) => (error === undefined ? run() : next(bodyError(error))));
  });
  app.use((req: Request, res: Response) => {
    const verbs = [...new Set(routes.filter((entry) => entry.compiled.pattern.test(req.path)).map((entry) => entry.compiled.route.verb.toUpperCase()))];
    const hint = verbs.length === 0 ? "see /openapi.yaml or /docs" : `this path takes ${verbs.join(", ")}`;
    sendProblem(res, new ServerError("ROUTE_NOT_FOUND", `no ${req.method.slice(0, 20)} ${req.path.slice(0, 200)}; ${hint}`, {}));
  });
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const serverError = toServerError(error);
    if (serverError.reason === "INTERNAL") deps.log.error({ err: error }, "REST request failed");
    sendProblem(res, serverError);
  });
  return app;
}

type Entry = {
  compiled: CompiledRoute;
  validate: ValidateFunction;
  op: Operation<unknown, unknown> | StreamOperation<unknown, unknown>;
  limit: string;
  /** Whether the request has 64-bit integer fields, which are checked for exactness (see unsafeInteger). */
  wideIntegers: boolean;
};

function match(routes: readonly Entry[], req: Request): { entry: Entry; fields: Record<string, string> } | undefined {
  const verb = req.method.toLowerCase();
  for (const entry of routes) {
    if (entry.compiled.route.verb !== verb) continue;
    const found = entry.compiled.pattern.exec(req.path);
    if (found !== null) return { entry, fields: pathFields(entry.compiled, found) };
  }
  return undefined;
}

/** Checks the request against the spec, converts it to the request message, runs the operation, answers. */
async function handle(entry: Entry, fields: Record<string, string>, req: Request, res: Response, deps: RestAppDeps): Promise<void> {
  const { validate, op } = entry;
  const route = entry.compiled.route;
  const input = route.body === "*" ? req.body : queryFields(route.request.fields, req.query as Record<string, unknown>);
  if (typeof input !== "object" || input === null || Array.isArray(input)) throw invalidRequest("body", "must be a JSON object");
  if (!validate(input)) {
    const [first] = validate.errors ?? [];
    const where = route.body === "*" ? `body${first?.instancePath.replaceAll("/", ".") ?? ""}` : `query${first?.instancePath.replaceAll("/", ".") ?? ""}`;
    const extra = first?.keyword === "additionalProperties" ? ` (${String((first.params as { additionalProperty?: string }).additionalProperty)})` : "";
    throw invalidRequest(where, `${first?.message ?? "invalid"}${extra}`);
  }
  if (entry.wideIntegers) {
    const refusal = unsafeInteger(route.request, input, (field) => field.jsonName, route.body === "*" ? "body" : "query");
    if (refusal !== undefined) throw refusal;
  }
  const json: Record<string, unknown> = { ...(input as Record<string, unknown>) };
  for (const [field, value] of Object.entries(fields)) {
    const jsonName = route.request.fields.find((candidate) => candidate.name === field)?.jsonName ?? field;
    json[jsonName] = value;
  }
  const principal = res.locals.principal as Principal;
  const request = generatedMessage(route.request.typeName).fromJSON(json);
  const method = `${route.service}/${route.method}`;
  const toJson = generatedMessage(route.response.typeName).toJSON;
  if (op.kind === "stream") {
    if (route.download) await streamDownload(method, op, principal, request, route, res, deps);
    else await streamEvents(method, op, principal, request as Record<string, unknown>, req, res, deps, toJson);
    return;
  }
  const response = await deps.invoker.invoke(method, op, principal, request, "rest");
  res.status(200).json(toJson(response));
}

/** Server-Sent Events: `id` is the event's sequence, so a reconnect with Last-Event-ID resumes after it. */
async function streamEvents(method: string, op: StreamOperation<unknown, unknown>, principal: Principal, request: Record<string, unknown>, req: Request, res: Response, deps: RestAppDeps, toJson: (message: unknown) => unknown): Promise<void> {
  const lastEventId = req.headers["last-event-id"];
  if (typeof lastEventId === "string" && lastEventId !== "") {
    if (!/^\d{1,15}$/.test(lastEventId)) throw new ServerError("INVALID_REQUEST", "Last-Event-ID must be an event sequence number", { field: "Last-Event-ID" });
    request.afterSequence = Number(lastEventId);
  }
  const aborted = new AbortController();
  res.on("close", () => aborted.abort());
  let started = false;
  const begin = (): void => {
    if (started) return;
    started = true;
    res.status(200).set({ "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no" });
    res.flushHeaders();
  };
  const keepalive = setInterval(() => {
    begin();
    res.write(": keepalive\n\n");
  }, SSE_KEEPALIVE_MS);
  const write = (item: unknown): Promise<void> => {
    begin();
    const event = toJson(item) as { sequence?: unknown; type?: unknown };
    const text = `id: ${String(event.sequence ?? "")}\nevent: ${String(event.type ?? "event")}\ndata: ${JSON.stringify(event)}\n\n`;
    return new Promise((resolve) => (res.write(text) ? resolve() : res.once("drain", () => resolve())));
  };
  try {
    // Headers go out at once: a subscriber with nothing to replay still sees the stream open.
    await Promise.resolve().then(begin);
    await deps.invoker.invokeStream(method, op, principal, request, "rest", write, aborted.signal);
  } catch (error) {
    if (!started) throw error;
    if (!aborted.signal.aborted) res.write(`event: error\ndata: ${JSON.stringify(problemOf(toServerError(error)))}\n\n`);
  } finally {
    clearInterval(keepalive);
    if (!res.writableEnded) res.end();
  }
}

/** File extensions of the media types downloads have. */
const EXTENSIONS: Readonly<Record<string, string>> = { "text/csv": "csv", "application/x-ndjson": "jsonl" };

/**
 * A stream of file pieces (content type and bytes, as google.api.HttpBody) as one download: the first piece's type is
 * the answer's, and the file is named after the method's collection (`/v1/events:export` → events.csv). An error
 * before the first piece is problem JSON; after it the connection is cut, so that a partial file never looks whole.
 */
async function streamDownload(method: string, op: StreamOperation<unknown, unknown>, principal: Principal, request: unknown, route: HttpRoute, res: Response, deps: RestAppDeps): Promise<void> {
  const aborted = new AbortController();
  res.on("close", () => aborted.abort());
  const write = (item: unknown): Promise<void> => {
    const piece = item as { contentType: string; data: Uint8Array };
    if (!res.headersSent) {
      const type = piece.contentType.split(";")[0]!.trim();
      const name = route.template.slice(route.template.lastIndexOf("/") + 1).split(":")[0]!;
      res.status(200).set({ "Content-Type": piece.contentType, "Content-Disposition": `attachment; filename="${name}.${EXTENSIONS[type] ?? "bin"}"`, "Cache-Control": "no-store" });
    }
    // A client that goes away mid-file never drains: its close ends the wait too (and aborts the export).
    return new Promise((resolve) => {
      if (res.write(piece.data)) return resolve();
      const done = (): void => {
        res.off("drain", done);
        res.off("close", done);
        resolve();
      };
      res.once("drain", done);
      res.once("close", done);
    });
  };
  try {
    await deps.invoker.invokeStream(method, op, principal, request, "rest", write, aborted.signal);
  } catch (error) {
    if (!res.headersSent) throw error;
    res.destroy();
    return;
  }
  res.end();
}

/**
 * The verified certificate of each connection, read once: turning it into a JS object costs ≈ 0.1 ms, and a keep-alive
 * connection carries many requests. Revocation is still checked on every request (principalOf).
 */
const peerCertificates = new WeakMap<TLSSocket, PeerCertificate>();

function authenticate(req: Request, crl: CrlWatcher): Principal {
  const socket = req.socket as TLSSocket;
  const refusal = certificateRefusal(socket);
  if (refusal !== undefined) throw refusal;
  let certificate = peerCertificates.get(socket);
  if (certificate === undefined) peerCertificates.set(socket, (certificate = socket.getPeerCertificate()));
  const remote = socket.remoteAddress;
  return { ...principalOf(certificate, crl), ...(remote !== undefined && ipaddr.isValid(remote) ? { address: ipaddr.process(remote).toString() } : {}) };
}

function sendProblem(res: Response, error: ServerError): void {
  const problem = problemOf(error);
  if (res.headersSent) {
    res.end();
    return;
  }
  res.status(problem.status).type("application/problem+json").send(JSON.stringify(problem));
}

/** express.json's errors (too large, not JSON) as our errors. */
function bodyError(error: unknown): ServerError {
  const { type, message } = error as { type?: string; message?: string };
  if (type === "entity.too.large") return new ServerError("REQUEST_TOO_LARGE", `the body is larger than this method takes (${message ?? ""})`, { field: "body" });
  return new ServerError("INVALID_REQUEST", `the body is not valid JSON: ${message ?? ""}`.slice(0, 300), { field: "body" });
}

/** service/Method → the operation, from the services' generated definitions. */
function operationsByMethod(services: readonly ContractService[]): Map<string, Entry["op"]> {
  const operations = new Map<string, Entry["op"]>();
  for (const service of services) {
    for (const [key, definition] of Object.entries(service.definition)) {
      const op = service.operations[key] as Entry["op"] | undefined;
      if (op !== undefined) operations.set(definition.path.slice(1), op);
    }
  }
  return operations;
}

/** A JSON pointer token for a path key. */
function pointer(key: string): string {
  return key.replaceAll("~", "~0").replaceAll("/", "~1");
}
