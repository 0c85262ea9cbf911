import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import { createHash } from "node:crypto";

/**
 * A blocklist served over HTTP (or HTTPS with a given certificate) on loopback, as a feed source in tests: its text can
 * be changed, it answers conditional requests (ETag, Last-Modified) with 304, counts what it was asked, and can be
 * made to fail.
 */
export class FeedServer {
  readonly #server: Server;
  #text = "";
  #etag = "";
  #lastModified = "";
  /** Every request, with whether it was conditional and the status answered. */
  readonly requests: Array<{ conditional: boolean; status: number }> = [];
  /** Answer every request with this status (and no list) while set. */
  failWith: number | undefined;
  /** Answer this many requests with 503 first. */
  failNext = 0;
  /** Send the headers and the first bytes of the list, then nothing more (a source that stalls). */
  stall = false;
  /** Leave out validators (a server that answers 200 every time). */
  validators = true;

  readonly #scheme: string;

  private constructor(server: Server, scheme: string) {
    this.#server = server;
    this.#scheme = scheme;
  }

  /** `tls`: serve HTTPS with this certificate and key (the URL then names `localhost`). */
  static async start(text = "", tls?: { cert: Buffer; key: Buffer }): Promise<FeedServer> {
    const server = tls === undefined ? createServer() : createTlsServer(tls);
    const feed = new FeedServer(server, tls === undefined ? "http" : "https");
    feed.setText(text);
    server.on("request", (req: IncomingMessage, res: ServerResponse) => feed.#answer(req, res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return feed;
  }

  get url(): string {
    const address = this.#server.address() as { port: number };
    return `${this.#scheme}://${this.#scheme === "https" ? "localhost" : "127.0.0.1"}:${address.port}/list.txt`;
  }

  /** Serves new text; its ETag and Last-Modified change with it. */
  setText(text: string): void {
    this.#text = text;
    this.#etag = `"${createHash("sha256").update(text).digest("hex").slice(0, 16)}"`;
    this.#lastModified = new Date(Math.floor(Date.now() / 1000) * 1000 + this.requests.length * 1000).toUTCString();
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }

  #answer(req: IncomingMessage, res: ServerResponse): void {
    const conditional = req.headers["if-none-match"] !== undefined || req.headers["if-modified-since"] !== undefined;
    const failing = this.failNext > 0;
    if (failing) this.failNext--;
    const status = failing ? 503 : this.failWith ?? (this.validators && req.headers["if-none-match"] === this.#etag ? 304 : 200);
    this.requests.push({ conditional, status });
    if (status !== 200) {
      res.writeHead(status).end();
      return;
    }
    res.writeHead(200, { "content-type": "text/plain", ...(this.validators ? { etag: this.#etag, "last-modified": this.#lastModified } : {}) });
    if (this.stall) res.write(this.#text.slice(0, 10));
    else res.end(this.#text);
  }
}
