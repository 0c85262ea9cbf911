import { readFile } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { ServerError } from "../errors.js";
import type { FeedDefinition } from "./feed-model.js";
import { httpGet, limitedText, readSignal, unavailable, type ReadOptions } from "./feed-source.js";
import { checkFileRoots } from "./file-roots.js";

/** One decision as the Local API's stream gives it. */
export interface Decision {
  readonly id: number;
  /** `ban`, `captcha`… */
  readonly type: string;
  /** `Ip`, `Range`, `Country`… */
  readonly scope: string;
  readonly value: string;
  /** What is left of it, in ms (negative in `deleted`). */
  readonly durationMs: number;
}

/** One read of the decision stream: decisions new and deleted since the last read (all active ones at startup). */
export interface DecisionDelta {
  readonly added: readonly Decision[];
  readonly deleted: readonly Decision[];
}

/**
 * A CrowdSec Local API's decision stream, read as a bouncer reads it: `GET /v1/decisions/stream?startup=true` for
 * every active decision, then `GET /v1/decisions/stream` for what changed since this bouncer's last read (the Local
 * API keeps that point per API key). Authenticated by `X-Api-Key` or a TLS client certificate.
 */
export class CrowdsecSource {
  readonly #definition: FeedDefinition;
  readonly #fileRoots: readonly string[];
  /** The key read from api_key_file, read again at each startup read (so a rotated key is taken up). */
  #fileKey: string | undefined;

  constructor(definition: FeedDefinition, fileRoots: readonly string[]) {
    this.#definition = definition;
    this.#fileRoots = fileRoots;
  }

  async read(startup: boolean, options: ReadOptions): Promise<DecisionDelta> {
    const { signal, failure } = readSignal(options);
    const url = new URL("v1/decisions/stream", this.#definition.source.endsWith("/") ? this.#definition.source : `${this.#definition.source}/`);
    if (startup) url.searchParams.set("startup", "true");
    const headers: Record<string, string> = { "user-agent": "portcullis-feed", accept: "application/json" };
    const key = await this.#apiKey(startup);
    if (key !== undefined) headers["x-api-key"] = key;
    let body: string;
    try {
      const response = await this.#get(url, headers, signal);
      const status = response.statusCode ?? 0;
      if (status === 401 || status === 403) {
        response.resume();
        throw new ServerError("FEED_UNAUTHORIZED", `the CrowdSec Local API refused the feed's credentials (HTTP ${status}); give the key \`cscli bouncers add <name>\` printed (api_key), or a client certificate it trusts`, { status: String(status) });
      }
      if (status !== 200) {
        response.resume();
        throw unavailable(`the CrowdSec Local API answered HTTP ${status} (200 expected)`, true, { status: String(status) });
      }
      body = "";
      for await (const piece of limitedText(() => response, options.maxBytes, failure)) body += piece;
    } catch (error) {
      throw failure(error);
    }
    return parseStream(body);
  }

  async #apiKey(startup: boolean): Promise<string | undefined> {
    const { apiKey, apiKeyFile } = this.#definition;
    if (apiKey !== undefined || apiKeyFile === undefined) return apiKey;
    if (this.#fileKey !== undefined && !startup) return this.#fileKey;
    checkFileRoots(this.#definition, this.#fileRoots);
    let key: string;
    try {
      key = (await readFile(apiKeyFile, "utf8")).trim();
    } catch (error) {
      throw unavailable(`the feed's api_key_file ${apiKeyFile} cannot be read (${(error as { code?: string }).code ?? "error"})`, false);
    }
    if (!/^[\x21-\x7e]{1,256}$/.test(key)) throw new ServerError("FEED_UNAUTHORIZED", `the feed's api_key_file ${apiKeyFile} does not hold an API key (one line of printable characters)`, { api_key_file: apiKeyFile });
    this.#fileKey = key;
    return key;
  }

  #get(url: URL, headers: Record<string, string>, signal: AbortSignal): Promise<IncomingMessage> {
    const d = this.#definition;
    return httpGet(url, headers, signal, { ...(d.ca === undefined ? {} : { ca: d.ca }), ...(d.clientCertificate === undefined || d.clientKey === undefined ? {} : { cert: d.clientCertificate, key: d.clientKey }) });
  }
}

/** The stream's JSON: `{"new": [...] | null, "deleted": [...] | null}`; a decision without its fields is refused. */
export function parseStream(body: string): DecisionDelta {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new ServerError("FEED_INVALID", "the CrowdSec Local API's answer is not JSON; is the source the Local API's base URL?", { format: "crowdsec" });
  }
  if (typeof parsed !== "object" || parsed === null) throw new ServerError("FEED_INVALID", "the CrowdSec Local API's answer is not a decision stream ({\"new\": […], \"deleted\": […]})", { format: "crowdsec" });
  const record = parsed as Record<string, unknown>;
  return { added: decisions(record.new), deleted: decisions(record.deleted) };
}

function decisions(value: unknown): Decision[] {
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value)) throw new ServerError("FEED_INVALID", "the CrowdSec Local API's decision list is not an array", { format: "crowdsec" });
  return value.map((item: unknown) => {
    const d = (typeof item === "object" && item !== null ? item : {}) as Record<string, unknown>;
    if (typeof d.value !== "string" || typeof d.scope !== "string" || typeof d.type !== "string" || typeof d.duration !== "string") {
      throw new ServerError("FEED_INVALID", "a decision of the CrowdSec Local API lacks its value, scope, type or duration", { format: "crowdsec" });
    }
    return { id: typeof d.id === "number" ? d.id : 0, type: d.type, scope: d.scope, value: d.value, durationMs: parseGoDuration(d.duration) };
  });
}

const UNIT_MS: Readonly<Record<string, number>> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, "μs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration (`3h59m58.5s`, `-18.2ms`, `0s`) in ms; FEED_INVALID when it is not one. */
export function parseGoDuration(text: string): number {
  const match = /^([-+]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/.exec(text);
  if (match === null && text !== "0") throw new ServerError("FEED_INVALID", `a decision's duration "${text.slice(0, 40)}" is not a duration (like 3h59m58.5s)`, { format: "crowdsec" });
  let total = 0;
  for (const part of text.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) total += Number(part[1]) * UNIT_MS[part[2]!]!;
  return text.startsWith("-") ? -total : total;
}
