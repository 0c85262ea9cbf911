// The CrowdSec bouncer listener: its own HTTPS port (the server's certificate, no client certificate asked) that
// answers only a bouncer's two GETs, to holders of a bouncer API key — so that a stock bouncer, configured with the
// server's CA and a key, enforces Portcullis's bans. Nothing else of the API is reachable here.
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "../logger.js";
import { listenAt } from "../listen-address.js";
import { ServerError } from "../errors.js";
import type { BouncerService, DecisionQuery, StreamFilter } from "../bouncers/bouncer-service.js";
import { toLapiDecision } from "./lapi-decisions.js";

export interface RunningBouncerListener {
  readonly address: string;
  updateTls(tls: { cert: string; key: string }): void;
  close(): Promise<void>;
}

/** Longer request lines and headers than any bouncer sends are refused before they are read whole. */
const MAX_URL = 2048;
const MAX_HEADER_BYTES = 8192;
const MAX_USER_AGENT = 128;

const STREAM = "/v1/decisions/stream";
const QUERY = "/v1/decisions";

export async function startBouncerListener(options: {
  address: string;
  tls: { cert: string; key: string };
  bouncers: BouncerService;
  log: Logger;
}): Promise<RunningBouncerListener> {
  const { bouncers, log } = options;
  const server: Server = createServer({
    cert: options.tls.cert,
    key: options.tls.key,
    maxHeaderSize: MAX_HEADER_BYTES,
    requestTimeout: 30_000,
    headersTimeout: 10_000,
  }, (request, response) => {
    handle(request, response).catch((error: unknown) => {
      log.error({ err: error, path: pathOf(request) }, "a bouncer request failed");
      if (!response.headersSent) answer(response, 500, { message: "internal error" });
    });
  });
  server.keepAliveTimeout = 65_000;

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = request.url ?? "";
    if (url.length > MAX_URL) return answer(response, 414, { message: "request line too long" });
    let parsed: URL;
    try {
      parsed = new URL(url, "https://bouncer.invalid");
    } catch {
      return answer(response, 400, { message: "the request line is not a path" });
    }
    if (parsed.pathname !== STREAM && parsed.pathname !== QUERY) return answer(response, 404, { message: "not found: this port serves only GET /v1/decisions/stream and GET /v1/decisions" });
    if (request.method !== "GET") return answer(response, 405, { message: "only GET is allowed here" }, { allow: "GET" });
    // A GET carries no body: one announced is refused unread.
    if (request.headers["content-length"] !== undefined && request.headers["content-length"] !== "0" || request.headers["transfer-encoding"] !== undefined) {
      return answer(response, 413, { message: "a request body is not allowed here" });
    }
    const key = request.headers["x-api-key"];
    const bouncer = typeof key === "string" && key !== "" ? bouncers.authenticate(key) : undefined;
    if (bouncer === undefined) {
      log.info({ address: request.socket.remoteAddress, path: parsed.pathname }, "a bouncer request with no valid API key refused");
      return answer(response, 403, { message: "access forbidden" });
    }
    const version = userAgentOf(request);
    const now = Date.now();
    if (parsed.pathname === STREAM) {
      const delta = await bouncers.stream(bouncer, parsed.searchParams.get("startup") === "true", filterOf(parsed.searchParams), version);
      return answer(response, 200, {
        new: delta.new.map((decision) => toLapiDecision(decision, now)),
        deleted: delta.deleted.map((decision) => toLapiDecision(decision, now, true)),
      });
    }
    let decisions;
    try {
      decisions = await bouncers.query(bouncer, queryOf(parsed.searchParams), version);
    } catch (error) {
      if (error instanceof ServerError && error.reason === "INVALID_ELEMENT") return answer(response, 400, { message: error.message });
      throw error;
    }
    // CrowdSec's LAPI answers `null` when no decision applies.
    return answer(response, 200, decisions.length === 0 ? null : decisions.map((decision) => toLapiDecision(decision, now)));
  }

  const address = await listenAt(server, options.address);
  log.info({ address }, "bouncer API listening");
  return {
    address,
    updateTls: (tls) => server.setSecureContext({ cert: tls.cert, key: tls.key }),
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

function answer(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text), ...headers }).end(text);
}

function pathOf(request: IncomingMessage): string {
  return (request.url ?? "").split("?")[0]!.slice(0, 100);
}

/** The bouncer's User-Agent (its name and version), printable and short, as `bouncers list` shows it. */
function userAgentOf(request: IncomingMessage): string {
  return (request.headers["user-agent"] ?? "").replace(/[^ -~]/g, "").slice(0, MAX_USER_AGENT);
}

function list(params: URLSearchParams, name: string): string[] {
  return params.getAll(name).flatMap((value) => value.split(",")).map((value) => value.trim()).filter((value) => value !== "");
}

function filterOf(params: URLSearchParams): StreamFilter {
  return {
    scopes: list(params, "scopes"),
    origins: list(params, "origins"),
    scenariosContaining: list(params, "scenarios_containing"),
    scenariosNotContaining: list(params, "scenarios_not_containing"),
  };
}

function queryOf(params: URLSearchParams): DecisionQuery {
  const value = (name: string) => params.get(name) ?? undefined;
  return {
    ...(value("ip") === undefined ? {} : { ip: value("ip")! }),
    ...(value("range") === undefined ? {} : { range: value("range")! }),
    ...(value("scope") === undefined ? {} : { scope: value("scope")! }),
    ...(value("value") === undefined ? {} : { value: value("value")! }),
    ...(value("type") === undefined ? {} : { type: value("type")! }),
  };
}
