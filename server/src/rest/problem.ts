import { status as Status } from "@grpc/grpc-js";
import type { ServerError } from "../errors.js";

/** grpc-gateway's mapping of gRPC codes to HTTP statuses (the design's table). */
const HTTP_STATUS: Readonly<Record<number, number>> = {
  [Status.OK]: 200,
  [Status.CANCELLED]: 499,
  [Status.UNKNOWN]: 500,
  [Status.INVALID_ARGUMENT]: 400,
  [Status.DEADLINE_EXCEEDED]: 504,
  [Status.NOT_FOUND]: 404,
  [Status.ALREADY_EXISTS]: 409,
  [Status.PERMISSION_DENIED]: 403,
  [Status.RESOURCE_EXHAUSTED]: 429,
  [Status.FAILED_PRECONDITION]: 400,
  [Status.ABORTED]: 409,
  [Status.OUT_OF_RANGE]: 400,
  [Status.UNIMPLEMENTED]: 501,
  [Status.INTERNAL]: 500,
  [Status.UNAVAILABLE]: 503,
  [Status.DATA_LOSS]: 500,
  [Status.UNAUTHENTICATED]: 401,
};

/** An error as RFC 9457 problem details, with the gRPC status name and the stable reason. */
export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly code: string;
  readonly reason: string;
  readonly detail: string;
  readonly metadata: Readonly<Record<string, string>>;
}

export function problemOf(error: ServerError): Problem {
  const code = Status[error.code] ?? "UNKNOWN";
  return {
    type: `urn:portcullis:error:${error.reason.toLowerCase().replaceAll("_", "-")}`,
    title: code.toLowerCase().replaceAll("_", " "),
    status: HTTP_STATUS[error.code] ?? 500,
    code,
    reason: error.reason,
    detail: error.message,
    metadata: error.metadata,
  };
}
