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

export function problemOf(error: ServerError): Problem {
  const code = Status[error.code] ?? "UNKNOWN";
  return {
    type: `urn:portcullis:error:${error.reason.toLowerCase().replaceAll("_", "-")}`,
    title: code.toLowerCase().replaceAll("_", " "),
    status: httpStatusOf[error.code] ?? 500,
    code,
    reason: error.reason,
    detail: error.message,
    metadata: error.metadata,
  };
}
