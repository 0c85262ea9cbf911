import { BouncerServiceService, type CreateBouncerRequest, type CreateBouncerResponse, type DeleteBouncerRequest, type ListBouncersRequest, type ListBouncersResponse } from "./gen/portcullis/v1/bouncer.js";
import type { CancellationToken } from "./base/cancellation.js";
import type { BouncerInfo, BouncerKey } from "./api.js";
import type { Channel } from "./transport/channel.js";
import { bouncerInfo } from "./transport/convert.js";

/** The API keys of CrowdSec bouncers that read the server's bans from its bouncer listener: `client.bouncers`. */
export class Bouncers {
  readonly #channel: Channel;

  /** @internal */
  constructor(channel: Channel) {
    this.#channel = channel;
  }

  /** Registers a bouncer and resolves to its API key, which is shown only here. Fails with AlreadyExists when the name is taken. */
  async create(bouncer: string, token?: CancellationToken): Promise<BouncerKey> {
    const reply = await this.#channel.unary<CreateBouncerRequest, CreateBouncerResponse>(BouncerServiceService, "createBouncer", { bouncerId: bouncer }, token);
    return Object.freeze({ bouncer: bouncerInfo(reply.bouncer!), apiKey: reply.apiKey });
  }

  /** Every bouncer with its last pull (all pages). */
  async list(token?: CancellationToken): Promise<readonly BouncerInfo[]> {
    const all: BouncerInfo[] = [];
    const pages = this.#channel.pages<ListBouncersRequest, ListBouncersResponse>(BouncerServiceService, "listBouncers", (pageToken) => ({ pageSize: 1000, pageToken }), token);
    for await (const page of pages) all.push(...page.bouncers.map(bouncerInfo));
    return Object.freeze(all);
  }

  /** Deletes a bouncer: its key stops working at once. */
  async delete(bouncer: string, token?: CancellationToken): Promise<void> {
    await this.#channel.unary<DeleteBouncerRequest, unknown>(BouncerServiceService, "deleteBouncer", { name: `bouncers/${bouncer}` }, token);
  }
}
