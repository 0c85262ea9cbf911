import type { IncomingMessage } from "node:http";
import { createGunzip, createInflate } from "node:zlib";
import { pipeline, type Readable } from "node:stream";
import type { SourceValidators } from "./feed-model.js";
import { httpGet, limitedText, readSignal, tooLarge, unavailable, type FeedSource, type ReadOptions, type SourceRead } from "./feed-source.js";

const MAX_REDIRECTS = 5;

/**
 * A list served over HTTP(S), asked for conditionally (If-None-Match, If-Modified-Since): a 304 costs one round trip
 * and nothing more. Redirects are followed (never from https to http); gzip and deflate bodies are decompressed, and
 * max_bytes counts the decompressed bytes.
 */
export class HttpSource implements FeedSource {
  readonly #url: URL;
  readonly #ca: string | undefined;

  constructor(url: URL, ca?: string) {
    this.#url = url;
    this.#ca = ca;
  }

  async read(validators: SourceValidators, options: ReadOptions): Promise<SourceRead> {
    const { signal, failure } = readSignal(options);
    let response: IncomingMessage;
    try {
      response = await this.#get(this.#url, validators, signal, 0);
    } catch (error) {
      throw failure(error);
    }
    const status = response.statusCode ?? 0;
    if (status === 304) {
      response.resume();
      // A 304 may carry a new ETag for the same list; the old one stays good otherwise.
      return { kind: "unchanged", validators: { ...validators, ...validatorsOf(response) } };
    }
    if (status !== 200) {
      response.resume();
      throw unavailable(`the source answered HTTP ${status} (200 or 304 expected)`, status >= 500 || status === 429, { status: String(status) });
    }
    const length = Number(response.headers["content-length"]);
    const encoding = String(response.headers["content-encoding"] ?? "identity").toLowerCase();
    if (!["identity", "gzip", "x-gzip", "deflate"].includes(encoding)) {
      response.destroy();
      throw unavailable(`the source sent the list encoded as "${encoding.slice(0, 40)}", which was not asked for (gzip and deflate were)`, false);
    }
    if (encoding === "identity" && Number.isFinite(length) && length > options.maxBytes) {
      response.destroy();
      throw tooLarge(options.maxBytes);
    }
    return { kind: "list", text: limitedText(() => decoded(response, encoding), options.maxBytes, failure), validators: validatorsOf(response) };
  }

  #get(url: URL, validators: SourceValidators, signal: AbortSignal, redirects: number): Promise<IncomingMessage> {
    const headers: Record<string, string> = { "user-agent": "portcullis-feed", "accept-encoding": "gzip, deflate" };
    if (validators.etag !== undefined) headers["if-none-match"] = validators.etag;
    if (validators.lastModified !== undefined) headers["if-modified-since"] = validators.lastModified;
    return httpGet(url, headers, signal, this.#ca === undefined ? {} : { ca: this.#ca }).then((response) => {
      const status = response.statusCode ?? 0;
      const location = response.headers.location;
      if (![301, 302, 303, 307, 308].includes(status) || location === undefined) return response;
      response.resume();
      if (redirects >= MAX_REDIRECTS) throw unavailable(`the source redirected more than ${MAX_REDIRECTS} times`, false);
      const next = new URL(location, url);
      if (next.protocol !== "https:" && (url.protocol === "https:" || next.protocol !== "http:")) {
        throw unavailable(`the source redirected to a ${next.protocol} URL; only https (or http from http) is followed`, false);
      }
      return this.#get(next, validators, signal, redirects + 1);
    });
  }
}

function validatorsOf(response: IncomingMessage): SourceValidators {
  const etag = response.headers.etag;
  const lastModified = response.headers["last-modified"];
  return { ...(etag === undefined ? {} : { etag }), ...(lastModified === undefined ? {} : { lastModified }) };
}

/** The body decompressed; a failure on the way (a reset, a corrupt stream) ends the iteration with the error. */
function decoded(response: IncomingMessage, encoding: string): Readable {
  const decompress = encoding === "gzip" || encoding === "x-gzip" ? createGunzip() : encoding === "deflate" ? createInflate() : undefined;
  if (decompress === undefined) return response;
  return pipeline(response, decompress, () => undefined);
}

