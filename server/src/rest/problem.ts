import { status as Status } from "@grpc/grpc-js";
import { httpStatusOf, type ServerError } from "../errors.js";

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

/**
 * `status` is the gRPC code's HTTP status (grpc-gateway's table), unless the refusal happened at the HTTP level, before
 * a route was chosen (e.g. 431 for headers too large), where the HTTP status is the one HTTP defines for it.
 */
export function problemOf(error: ServerError, status: number = httpStatusOf[error.code] ?? 500): Problem {
  const code = Status[error.code] ?? "UNKNOWN";
  return {
    type: `urn:portcullis:error:${error.reason.toLowerCase().replaceAll("_", "-")}`,
    title: code.toLowerCase().replaceAll("_", " "),
    status,
    code,
    reason: error.reason,
    detail: error.message,
    metadata: error.metadata,
  };
}
