import { status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import { Status } from "./gen/google/rpc/status.js";
import { ErrorInfo } from "./gen/google/rpc/error_details.js";

/** What went wrong, in words (the gRPC status codes). */
export type ErrorCode =
  | "Cancelled"
  | "Unknown"
  | "InvalidArgument"
  | "DeadlineExceeded"
  | "NotFound"
  | "AlreadyExists"
  | "PermissionDenied"
  | "ResourceExhausted"
  | "FailedPrecondition"
  | "Aborted"
  | "OutOfRange"
  | "Unimplemented"
  | "Internal"
  | "Unavailable"
  | "DataLoss"
  | "Unauthenticated";

const CODES: Readonly<Record<number, ErrorCode>> = {
  [GrpcStatus.CANCELLED]: "Cancelled",
  [GrpcStatus.UNKNOWN]: "Unknown",
  [GrpcStatus.INVALID_ARGUMENT]: "InvalidArgument",
  [GrpcStatus.DEADLINE_EXCEEDED]: "DeadlineExceeded",
  [GrpcStatus.NOT_FOUND]: "NotFound",
  [GrpcStatus.ALREADY_EXISTS]: "AlreadyExists",
  [GrpcStatus.PERMISSION_DENIED]: "PermissionDenied",
  [GrpcStatus.RESOURCE_EXHAUSTED]: "ResourceExhausted",
  [GrpcStatus.FAILED_PRECONDITION]: "FailedPrecondition",
  [GrpcStatus.ABORTED]: "Aborted",
  [GrpcStatus.OUT_OF_RANGE]: "OutOfRange",
  [GrpcStatus.UNIMPLEMENTED]: "Unimplemented",
  [GrpcStatus.INTERNAL]: "Internal",
  [GrpcStatus.UNAVAILABLE]: "Unavailable",
  [GrpcStatus.DATA_LOSS]: "DataLoss",
  [GrpcStatus.UNAUTHENTICATED]: "Unauthenticated",
};

/**
 * The one error the SDK throws for a refused or failed call: the server's message (which says what to change), a
 * {@link ErrorCode}, and the server's stable `reason` (e.g. `IPSET_IN_USE`) with its metadata (e.g. the field at fault).
 */
export class PortcullisError extends Error {
  /** What went wrong, in words. */
  readonly code: ErrorCode;
  /** The server's stable machine-readable reason, e.g. `JAIL_NOT_FOUND`; "" when the server sent none. */
  readonly reason: string;
  /** Details the server attached, e.g. `{ field: "address" }`. */
  readonly metadata: Readonly<Record<string, string>>;

  /**
   * @param code - what went wrong.
   * @param message - what the server said.
   * @param reason - the server's stable reason.
   * @param metadata - details the server attached.
   */
  constructor(code: ErrorCode, message: string, reason = "", metadata: Readonly<Record<string, string>> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PortcullisError";
    this.code = code;
    this.reason = reason;
    this.metadata = Object.freeze({ ...metadata });
  }

  /** A grpc-js call error as a PortcullisError: code, message, and the reason from its google.rpc.ErrorInfo. */
  static fromServiceError(error: Partial<ServiceError>): PortcullisError {
    const code = CODES[error.code ?? GrpcStatus.UNKNOWN] ?? "Unknown";
    let reason = "";
    let metadata: Record<string, string> = {};
    const details = error.metadata?.get("grpc-status-details-bin")[0];
    if (details instanceof Buffer) {
      try {
        for (const any of Status.decode(details).details) {
          if (any.typeUrl !== "type.googleapis.com/google.rpc.ErrorInfo") continue;
          const info = ErrorInfo.decode(any.value);
          reason = info.reason;
          metadata = info.metadata;
        }
      } catch {
        // details we cannot read: the code and message still say what happened
      }
    }
    return new PortcullisError(code, error.details || error.message || code, reason, metadata, { cause: error });
  }
}
