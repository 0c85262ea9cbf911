import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Readable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import { ServerError } from "../errors.js";
import type { SourceValidators } from "./feed-model.js";

/**
 * What reading a source gave. A source answers with the whole list (which replaces the sets' contents) or says that
 * it did not change since the validators it was given. A stream of changes (CrowdSec's decisions) is not a list: it
 * is read by CrowdsecSource and applied by CrowdsecFollower.
 */
export type SourceRead =
  | { readonly kind: "unchanged"; readonly validators: SourceValidators }
  | {
    readonly kind: "list";
    /** The list's text in pieces as it arrives; iterating it throws FEED_UNAVAILABLE or FEED_TOO_LARGE. */
    readonly text: AsyncIterable<string>;
    /** What to send next time to learn whether it changed. */
    readonly validators: SourceValidators;
  };

/** How one read may go. */
export interface ReadOptions {
  /** The whole read, to the list's last byte. */
  readonly timeoutMs: number;
  readonly maxBytes: number;
  /** The refresh was given up (the feed deleted, the server stopping). */
  readonly signal: AbortSignal;
}

/** Where a feed's list comes from. */
export interface FeedSource {
  /** Reads the list, unless the source says it has not changed since `validators` (empty: read it anyway). */
  read(validators: SourceValidators, options: ReadOptions): Promise<SourceRead>;
}

/** FEED_UNAVAILABLE; `retry` says whether trying again soon may help (a timeout, a 503) or not (a 404, no file). */
export function unavailable(message: string, retry: boolean, metadata: Record<string, string> = {}): ServerError {
  return new ServerError("FEED_UNAVAILABLE", message, { ...metadata, retry: String(retry) });
}

export function tooLarge(maxBytes: number): ServerError {
  return new ServerError("FEED_TOO_LARGE", `the list is larger than the feed's max_bytes (${maxBytes} bytes); raise max_bytes if the list really is that large`, { max_bytes: String(maxBytes) });
}

/** Whether a failed read is worth another attempt soon. */
export function isTransient(error: unknown): boolean {
  return error instanceof ServerError && error.reason === "FEED_UNAVAILABLE" && error.metadata.retry === "true";
}

/**
 * The refresh's signal and the read's own deadline in one, and which of them ended the read: the message of a read cut
 * short says so.
 */
export function readSignal(options: ReadOptions): { signal: AbortSignal; failure: (error: unknown) => ServerError } {
  const deadline = AbortSignal.timeout(options.timeoutMs);
  const signal = AbortSignal.any([options.signal, deadline]);
  return {
    signal,
    failure: (error) => {
      if (error instanceof ServerError) return error;
      if (options.signal.aborted) return unavailable("the refresh was given up (the feed was deleted or the server is stopping)", false);
      if (deadline.aborted) return unavailable(`the source did not send the whole list within the feed's timeout of ${options.timeoutMs / 1000} s`, true);
      return unavailable(`reading the source failed: ${describe(error)}`, true);
    },
  };
}

/** A network or file system error in words a client can act on (the code, never raw text from the other side). */
function describe(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  switch (code) {
    case "ECONNREFUSED": return "the connection was refused (is the server up, and the port right?)";
    case "ECONNRESET": return "the connection was reset";
    case "ENOTFOUND":
    case "EAI_AGAIN": return "the host name does not resolve";
    case "EHOSTUNREACH":
    case "ENETUNREACH": return "the host is unreachable";
    case "ETIMEDOUT": return "the connection timed out";
    case "Z_DATA_ERROR":
    case "Z_BUF_ERROR": return "the compressed body is corrupt";
    case undefined: return error instanceof Error && /certificate|self.signed|issuer/i.test(error.message) ? "the server's certificate is not trusted (set the feed's ca?)" : "the connection failed";
    default: return typeof code === "string" && /^(ERR_TLS|CERT_|UNABLE_TO|DEPTH_ZERO|SELF_SIGNED|ERR_SSL)/.test(code) ? `the server's certificate is not trusted (${code}); set the feed's ca to the CA that signs it` : `error ${String(code)}`;
  }
}

/**
 * A list's bytes as UTF-8 text, counted against max_bytes as they arrive (a file may grow after it was looked at, a
 * body may be longer than it said); the stream is opened when iteration starts and let go when it stops.
 */
export async function* limitedText(open: () => Readable, maxBytes: number, failure: (error: unknown) => Error): AsyncGenerator<string> {
  const decoder = new StringDecoder("utf8");
  const stream = open();
  let bytes = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > maxBytes) throw tooLarge(maxBytes);
      yield decoder.write(chunk);
    }
  } catch (error) {
    throw failure(error);
  } finally {
    stream.destroy();
  }
  const rest = decoder.end();
  if (rest !== "") yield rest;
}

/**
 * One GET, answered with the response's head. A connection of its own each time (no keep-alive agent): reads are a
 * second to hours apart, and a kept socket would meet a server that closed it or restarted meanwhile. `tls` applies to
 * https URLs only.
 */
export function httpGet(url: URL, headers: Record<string, string>, signal: AbortSignal, tls: { ca?: string; cert?: string; key?: string } = {}): Promise<IncomingMessage> {
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise<IncomingMessage>((resolve, reject) => {
    const req = send(url, { headers, signal, agent: false, ...(url.protocol === "https:" ? tls : {}) }, resolve);
    req.on("error", reject);
    req.end();
  });
}
