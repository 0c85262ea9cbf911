import { status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import { Status, ErrorInfo } from "./transport/wire.js";

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

/**
 * Why the server refused or failed a call, stable across versions; docs/errors.md says when each is given.
 * {@link PortcullisError.reason} stays a string: a newer server may send a reason this list does not have yet.
 */
export type ErrorReason =
  | "INVALID_RESOURCE_NAME"
  | "INVALID_IPSET_NAME"
  | "INVALID_IPSET_TYPE"
  | "INVALID_IPSET_OPTION"
  | "INVALID_ELEMENT"
  | "FAMILY_MISMATCH"
  | "INVALID_TIMEOUT"
  | "INVALID_COMMENT"
  | "INVALID_BAN_DURATION"
  | "INVALID_SETTING"
  | "NOTHING_TO_UPDATE"
  | "INVALID_PAGE_TOKEN"
  | "INVALID_PAGE_SIZE"
  | "INVALID_IMPORT"
  | "BATCH_TOO_LARGE"
  | "REQUEST_ID_REUSED"
  | "INVALID_CHAIN_NAME"
  | "INVALID_RULE"
  | "UNKNOWN_REFERENCE"
  | "INVALID_FILTER"
  | "INVALID_ORDER_BY"
  | "INVALID_POLICY"
  | "INVALID_SCOPE"
  | "INVALID_POSITION"
  | "UNKNOWN_SERVICE"
  | "RULESET_REJECTED"
  | "IPSET_NOT_FOUND"
  | "ENTRY_NOT_FOUND"
  | "IPSET_ALREADY_EXISTS"
  | "CHAIN_NOT_FOUND"
  | "RULE_NOT_FOUND"
  | "BAN_NOT_FOUND"
  | "CHAIN_ALREADY_EXISTS"
  | "JAIL_NOT_FOUND"
  | "JAIL_ALREADY_EXISTS"
  | "JAIL_RUNNING"
  | "FAIL2BAN_NO_DATABASE"
  | "IPSET_IN_USE"
  | "IPSET_NOT_MANAGED"
  | "IPSET_ALREADY_MANAGED"
  | "IPSET_INCOMPATIBLE"
  | "TIMEOUT_NOT_SUPPORTED"
  | "COMMENT_NOT_SUPPORTED"
  | "TABLE_READ_ONLY"
  | "CHAIN_IN_USE"
  | "CHAIN_NOT_EMPTY"
  | "CHAIN_BUILTIN"
  | "LOCKOUT"
  | "ADDRESS_IGNORED"
  | "ADDRESS_ALLOWLISTED"
  | "BAN_DURATION_EXCEEDS_BANTIME"
  | "INVALID_ACTION_REQUEST"
  | "INVALID_REQUEST"
  | "REQUEST_TOO_LARGE"
  | "ROUTE_NOT_FOUND"
  | "CONSOLE_NOT_BUILT"
  | "MALFORMED_REQUEST"
  | "INTEGER_OUT_OF_RANGE"
  | "ACTION_TIMEOUT"
  | "NO_PENDING_ROLLBACK"
  | "PANIC_MODE"
  | "FOREIGN_RULES"
  | "FLEET_NOT_CONFIGURED"
  | "ADDRESS_MANAGEMENT"
  | "FAIL2BAN_REJECTED"
  | "IPSET_FULL"
  | "INVALID_FEED_NAME"
  | "INVALID_FEED_SOURCE"
  | "FEED_NOT_FOUND"
  | "FEED_ALREADY_EXISTS"
  | "IPSET_OWNED_BY_FEED"
  | "FEED_TOO_LARGE"
  | "FEED_INVALID"
  | "FEED_SHRANK"
  | "FEED_UNAUTHORIZED"
  | "FEED_UNAVAILABLE"
  | "INVALID_BOUNCER_NAME"
  | "BOUNCER_NOT_FOUND"
  | "BOUNCER_ALREADY_EXISTS"
  | "CERTIFICATE_REQUIRED"
  | "CERTIFICATE_REVOKED"
  | "CERTIFICATE_INVALID"
  | "ROLE_REQUIRED"
  | "CROSS_SITE_REQUEST"
  | "SUBSCRIBER_TOO_SLOW"
  | "KERNEL_UNAVAILABLE"
  | "SHUTTING_DOWN"
  | "FAIL2BAN_UNAVAILABLE"
  | "FLEET_UNAVAILABLE"
  | "KERNEL_COMMAND_FAILED"
  | "CONFIG_WRITE_FAILED"
  | "INVALID_DUMP"
  | "FAIL2BAN_BAD_REPLY"
  | "INTERNAL";

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
  /**
   * The server's stable machine-readable reason, e.g. `JAIL_NOT_FOUND` (see {@link ErrorReason}); "" when the server
   * sent none.
   */
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
