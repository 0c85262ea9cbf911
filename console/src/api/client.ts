import createClient from "openapi-fetch";
import type { components, paths } from "../../../server/src/rest/gen/openapi";

/** The REST gateway, typed from the contract's OpenAPI projection; same origin, so the client certificate goes along. */
export const api = createClient<paths>({ baseUrl: location.origin });

type Schemas = components["schemas"];
export type Jail = Schemas["portcullis.v1.Jail"];
export type JailBan = Schemas["portcullis.v1.JailBan"];
export type BanTimeIncrement = Schemas["portcullis.v1.BanTimeIncrement"];
export type Fail2banStatus = Schemas["portcullis.v1.Fail2banStatus"];
export type AllowlistEntry = Schemas["portcullis.v1.AllowlistEntry"];
export type Ipset = Schemas["portcullis.v1.Ipset"];
export type IpsetType = Schemas["portcullis.v1.IpsetType"];
export type Entry = Schemas["portcullis.v1.Entry"];
export type Chain = Schemas["portcullis.v1.Chain"];
export type Rule = Schemas["portcullis.v1.Rule"];
export type TargetKind = Schemas["portcullis.v1.TargetKind"];
export type RulesetDiff = Schemas["portcullis.v1.RulesetDiff"];
export type Node = Schemas["portcullis.v1.Node"];
export type Event = Schemas["portcullis.v1.Event"];
export type EventType = Schemas["portcullis.v1.EventType"];
export type AuditRecord = Schemas["portcullis.v1.AuditRecord"];
export type ActivityWindow = Schemas["portcullis.v1.ActivityWindow"];
export type BanTimeline = Schemas["portcullis.v1.BanTimeline"];
export type Offender = Schemas["portcullis.v1.Offender"];
export type InspectAddressResponse = Schemas["portcullis.v1.InspectAddressResponse"];
export type RuleMatchKind = Schemas["portcullis.v1.RuleMatchKind"];
export type SearchBansResponse = Schemas["portcullis.v1.SearchBansResponse"];

/** An RFC 9457 problem the server answered, or a failure to reach it. */
export class ProblemError extends Error {
  readonly status: number;
  readonly reason: string;

  constructor(status: number, reason: string, detail: string) {
    super(detail);
    this.name = "ProblemError";
    this.status = status;
    this.reason = reason;
  }
}

interface ProblemBody {
  readonly detail?: unknown;
  readonly reason?: unknown;
}

/**
 * The data of an openapi-fetch answer, or a ProblemError carrying the problem JSON's detail (what the user should
 * read: it says what to change).
 */
export async function unwrap<T>(pending: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let answer: { data?: T; error?: unknown; response: Response };
  try {
    answer = await pending;
  } catch (error) {
    throw new ProblemError(0, "UNREACHABLE", `the server did not answer (${error instanceof Error ? error.message : String(error)})`);
  }
  const { data, error, response } = answer;
  if (response.ok) return data as T;
  const problem = (typeof error === "object" && error !== null ? error : {}) as ProblemBody;
  const detail = typeof problem.detail === "string" ? problem.detail : `${response.status} ${response.statusText}`;
  throw new ProblemError(response.status, typeof problem.reason === "string" ? problem.reason : "", detail);
}

/** What to show for any thrown value. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** int64 fields arrive as numbers or decimal strings (proto3 JSON); all of ours are below 2^53. */
export function toNumber(value: number | string | undefined): number {
  return value === undefined ? 0 : Number(value);
}

/** A resource's id under its collection: `jails/sshd` → `sshd` (an id may itself hold a slash: only the prefix goes). */
export function idOf(name: string | undefined, collection: string): string {
  if (name === undefined) return "";
  return name.startsWith(`${collection}/`) ? name.slice(collection.length + 1) : name;
}
