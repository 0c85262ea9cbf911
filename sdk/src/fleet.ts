import { FleetServiceService, type ListNodesRequest, type ListNodesResponse, type SearchBansRequest, type SearchBansResponse } from "./transport/wire.js";
import type { CancellationToken } from "./base/cancellation.js";
import type { BanSearch, FleetNode } from "./api.js";
import type { Channel } from "./transport/channel.js";
import { fleetNode, hostBan } from "./transport/convert.js";

/** The fleet the server belongs to (its `cluster` section): `client.fleet`. Outside a fleet every call fails with FailedPrecondition. */
export class Fleet {
  readonly #channel: Channel;

  /** @internal */
  constructor(channel: Channel) {
    this.#channel = channel;
  }

  /** Every host with a heartbeat, by name: version, lag behind the stream of shared bans, bans applied and refused. */
  async nodes(token?: CancellationToken): Promise<readonly FleetNode[]> {
    const reply = await this.#channel.unary<ListNodesRequest, ListNodesResponse>(FleetServiceService, "listNodes", {}, token, true);
    return Object.freeze(reply.nodes.map(fleetNode));
  }

  /** Which hosts block an address, and since when; waits up to `timeoutMs` (default 2000) for their answers. */
  async searchBans(address: string, options: { readonly timeoutMs?: number } = {}, token?: CancellationToken): Promise<BanSearch> {
    const reply = await this.#channel.unary<SearchBansRequest, SearchBansResponse>(FleetServiceService, "searchBans", { address, timeoutMs: options.timeoutMs ?? 0 }, token, true);
    const node = (name: string): string => name.replace(/^nodes\//, "");
    return Object.freeze({
      bans: Object.freeze(reply.bans.map(hostBan)),
      answered: Object.freeze(reply.answeredNodes.map(node)),
      unanswered: Object.freeze(reply.unansweredNodes.map(node)),
    });
  }
}
