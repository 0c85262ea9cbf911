import { ProblemError } from "./client";

/** Who the server sees: the client certificate's name and role, and the address the request came from. */
export interface Caller {
  readonly principal: string;
  readonly role: string;
  readonly address: string;
}

export async function fetchCaller(): Promise<Caller> {
  const response = await fetch("/v1/caller");
  const body = (await response.json().catch(() => ({}))) as Partial<Caller> & { detail?: string };
  if (!response.ok) throw new ProblemError(response.status, "", body.detail ?? `${response.status} ${response.statusText}`);
  return { principal: body.principal ?? "", role: body.role ?? "", address: body.address ?? "" };
}
