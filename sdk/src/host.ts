import { HostServiceService, type CallerIdentity as WireCallerIdentity, type GetCallerIdentityRequest } from "./gen/portcullis/v1/host.js";
import type { CancellationToken } from "./base/cancellation.js";
import type { CallerIdentity } from "./api.js";
import type { Channel } from "./transport/channel.js";
import { callerIdentity } from "./transport/convert.js";

/** The host as a whole, and the caller's place in it: `client.host`. */
export class Host {
  readonly #channel: Channel;

  /** @internal */
  constructor(channel: Channel) {
    this.#channel = channel;
  }

  /** Who the server takes the caller to be: certificate name, role, and the address the connection comes from. */
  async caller(token?: CancellationToken): Promise<CallerIdentity> {
    return callerIdentity(await this.#channel.unary<GetCallerIdentityRequest, WireCallerIdentity>(HostServiceService, "getCallerIdentity", {}, token, true));
  }
}
