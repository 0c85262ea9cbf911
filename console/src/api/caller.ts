import { api, unwrap } from "./client";

/** Who the server sees: the client certificate's name and role, and the address the request came from. */
export interface Caller {
  readonly principal: string;
  readonly role: string;
  readonly address: string;
}

export async function fetchCaller(): Promise<Caller> {
  const caller = await unwrap(api.GET("/v1/caller"));
  return { principal: caller.principal ?? "", role: caller.role ?? "", address: caller.address ?? "" };
}
