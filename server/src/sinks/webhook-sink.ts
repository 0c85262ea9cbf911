import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { HostEvent } from "../events/event-model.js";
import { eventJson, type EventSink } from "./sink.js";

export interface WebhookOptions {
  readonly url: string;
  /** Signs each body: `X-Portcullis-Signature: sha256=<hex HMAC-SHA256 of the body>`. */
  readonly secret?: string;
  readonly timeoutMs: number;
  /** For an https URL signed by a private CA. */
  readonly ca?: string;
}

/**
 * Events POSTed as `{"events":[…]}` (oldest first); delivered when the receiver answers 2xx, else retried by the
 * runner. `X-Portcullis-Delivery` names the sequences it carries, so a receiver can drop a batch it already took (a
 * retry after a reply lost on the way).
 */
export class WebhookSink implements EventSink {
  readonly #options: WebhookOptions;
  readonly #url: URL;
  readonly #ca: Buffer | undefined;

  constructor(options: WebhookOptions) {
    this.#options = options;
    this.#url = new URL(options.url);
    this.#ca = options.ca === undefined ? undefined : readFileSync(options.ca);
  }

  deliver(events: readonly HostEvent[]): Promise<void> {
    const body = `{"events":[${events.map(eventJson).join(",")}]}`;
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(body)),
      "user-agent": "portcullis-webhook",
      "x-portcullis-delivery": `${events[0]!.sequence}-${events[events.length - 1]!.sequence}`,
    };
    if (this.#options.secret !== undefined) headers["x-portcullis-signature"] = `sha256=${createHmac("sha256", this.#options.secret).update(body).digest("hex")}`;
    const send = this.#url.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(this.#url, { method: "POST", headers, timeout: this.#options.timeoutMs, ...(this.#ca === undefined ? {} : { ca: this.#ca }) }, (res) => {
        res.resume();
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve();
          else reject(new Error(`webhook answered ${status}`));
        });
      });
      req.on("timeout", () => req.destroy(new Error(`webhook did not answer within ${this.#options.timeoutMs} ms`)));
      req.on("error", reject);
      req.end(body);
    });
  }

  async close(): Promise<void> {}
}
