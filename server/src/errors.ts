import { status as Status } from "@grpc/grpc-js";

/**
 * The error catalogue: every failure a client can see has a stable reason (UPPER_SNAKE), and the reason decides the
 * gRPC code. Messages are written per occurrence and say what to change; raw tool stderr never goes into them.
 */
export const reasons = {
  // INVALID_ARGUMENT: the request itself is wrong; retrying it unchanged will fail again.
  INVALID_RESOURCE_NAME: Status.INVALID_ARGUMENT,
  INVALID_IPSET_NAME: Status.INVALID_ARGUMENT,
  INVALID_IPSET_TYPE: Status.INVALID_ARGUMENT,
  INVALID_IPSET_OPTION: Status.INVALID_ARGUMENT,
  INVALID_ELEMENT: Status.INVALID_ARGUMENT,
  FAMILY_MISMATCH: Status.INVALID_ARGUMENT,
  INVALID_TIMEOUT: Status.INVALID_ARGUMENT,
  INVALID_COMMENT: Status.INVALID_ARGUMENT,
  INVALID_BAN_DURATION: Status.INVALID_ARGUMENT,
  INVALID_SETTING: Status.INVALID_ARGUMENT,
  NOTHING_TO_UPDATE: Status.INVALID_ARGUMENT,
  INVALID_PAGE_TOKEN: Status.INVALID_ARGUMENT,
  INVALID_PAGE_SIZE: Status.INVALID_ARGUMENT,
  INVALID_IMPORT: Status.INVALID_ARGUMENT,
  BATCH_TOO_LARGE: Status.INVALID_ARGUMENT,
  REQUEST_ID_REUSED: Status.INVALID_ARGUMENT,
  INVALID_CHAIN_NAME: Status.INVALID_ARGUMENT,
  INVALID_RULE: Status.INVALID_ARGUMENT,
  UNKNOWN_REFERENCE: Status.INVALID_ARGUMENT,
  INVALID_FILTER: Status.INVALID_ARGUMENT,
  INVALID_ORDER_BY: Status.INVALID_ARGUMENT,
  INVALID_POLICY: Status.INVALID_ARGUMENT,
  INVALID_SCOPE: Status.INVALID_ARGUMENT,
  INVALID_POSITION: Status.INVALID_ARGUMENT,
  UNKNOWN_SERVICE: Status.INVALID_ARGUMENT,
  RULESET_REJECTED: Status.INVALID_ARGUMENT,
  INVALID_FEED_NAME: Status.INVALID_ARGUMENT,
  // A feed's source is not an http(s) or file URL it can read (or carries credentials), or its CA is not PEM.
  INVALID_FEED_SOURCE: Status.INVALID_ARGUMENT,
  INVALID_BOUNCER_NAME: Status.INVALID_ARGUMENT,
  // NOT_FOUND / ALREADY_EXISTS
  IPSET_NOT_FOUND: Status.NOT_FOUND,
  ENTRY_NOT_FOUND: Status.NOT_FOUND,
  IPSET_ALREADY_EXISTS: Status.ALREADY_EXISTS,
  CHAIN_NOT_FOUND: Status.NOT_FOUND,
  RULE_NOT_FOUND: Status.NOT_FOUND,
  BAN_NOT_FOUND: Status.NOT_FOUND,
  CHAIN_ALREADY_EXISTS: Status.ALREADY_EXISTS,
  FEED_NOT_FOUND: Status.NOT_FOUND,
  FEED_ALREADY_EXISTS: Status.ALREADY_EXISTS,
  BOUNCER_NOT_FOUND: Status.NOT_FOUND,
  BOUNCER_ALREADY_EXISTS: Status.ALREADY_EXISTS,
  // fail2ban answered UnknownJailException / DuplicateJailException.
  JAIL_NOT_FOUND: Status.NOT_FOUND,
  JAIL_ALREADY_EXISTS: Status.ALREADY_EXISTS,
  JAIL_RUNNING: Status.FAILED_PRECONDITION,
  FAIL2BAN_NO_DATABASE: Status.FAILED_PRECONDITION,
  // FAILED_PRECONDITION: the request is fine but the system is not in a state that allows it.
  IPSET_IN_USE: Status.FAILED_PRECONDITION,
  IPSET_NOT_MANAGED: Status.FAILED_PRECONDITION,
  IPSET_ALREADY_MANAGED: Status.FAILED_PRECONDITION,
  IPSET_INCOMPATIBLE: Status.FAILED_PRECONDITION,
  TIMEOUT_NOT_SUPPORTED: Status.FAILED_PRECONDITION,
  COMMENT_NOT_SUPPORTED: Status.FAILED_PRECONDITION,
  TABLE_READ_ONLY: Status.FAILED_PRECONDITION,
  CHAIN_IN_USE: Status.FAILED_PRECONDITION,
  CHAIN_NOT_EMPTY: Status.FAILED_PRECONDITION,
  CHAIN_BUILTIN: Status.FAILED_PRECONDITION,
  LOCKOUT: Status.FAILED_PRECONDITION,
  ADDRESS_IGNORED: Status.FAILED_PRECONDITION,
  ADDRESS_ALLOWLISTED: Status.FAILED_PRECONDITION,
  // A ban's duration is longer than the jail's bantime: fail2ban would lift it first.
  BAN_DURATION_EXCEEDS_BANTIME: Status.FAILED_PRECONDITION,
  INVALID_ACTION_REQUEST: Status.INVALID_ARGUMENT,
  // REST: a request the OpenAPI schema refuses, a body too large, a path no route has.
  INVALID_REQUEST: Status.INVALID_ARGUMENT,
  REQUEST_TOO_LARGE: Status.INVALID_ARGUMENT,
  ROUTE_NOT_FOUND: Status.NOT_FOUND,
  // REST: /console/ asked for, but the console's files (console/dist, or console.dir) are not there.
  CONSOLE_NOT_BUILT: Status.NOT_FOUND,
  // The request's bytes (gRPC) or text (REST path, header) cannot be decoded at all: not a protobuf message of the
  // method's request type, a path parameter that is not percent-encoded UTF-8, a header too large to read.
  MALFORMED_REQUEST: Status.INVALID_ARGUMENT,
  // A 64-bit integer field outside what the server handles exactly (0 to 2^53 − 1 unsigned, ±(2^53 − 1) signed).
  INTEGER_OUT_OF_RANGE: Status.INVALID_ARGUMENT,
  ACTION_TIMEOUT: Status.UNAVAILABLE,
  NO_PENDING_ROLLBACK: Status.FAILED_PRECONDITION,
  PANIC_MODE: Status.FAILED_PRECONDITION,
  // An ApplyRuleset would remove or change chains or rules another tool made (Docker, fail2ban, Kubernetes).
  FOREIGN_RULES: Status.FAILED_PRECONDITION,
  // A request asked for fleet scope (or a FleetService RPC was called) on a server without a `cluster` section.
  FLEET_NOT_CONFIGURED: Status.FAILED_PRECONDITION,
  // A shared ban would block one of this host's firewall.managementAddresses (anti-lockout).
  ADDRESS_MANAGEMENT: Status.FAILED_PRECONDITION,
  // fail2ban-server refused a command with an exception (an address that is not banned, an action the jail lacks, …).
  FAIL2BAN_REJECTED: Status.FAILED_PRECONDITION,
  // A change to a set a feed fills: its entries follow the feed's list.
  IPSET_OWNED_BY_FEED: Status.FAILED_PRECONDITION,
  // A feed's list was refused and its sets left as they were: larger than max_bytes, not in the feed's format (most
  // lines are not addresses), or smaller than the sets by more than max_shrink (an outage page, an empty file).
  FEED_TOO_LARGE: Status.FAILED_PRECONDITION,
  FEED_INVALID: Status.FAILED_PRECONDITION,
  FEED_SHRANK: Status.FAILED_PRECONDITION,
  // A CrowdSec Local API refused a crowdsec feed's API key or client certificate (401/403); sets unchanged.
  FEED_UNAUTHORIZED: Status.FAILED_PRECONDITION,
  // RESOURCE_EXHAUSTED
  IPSET_FULL: Status.RESOURCE_EXHAUSTED,
  // UNAUTHENTICATED / PERMISSION_DENIED
  CERTIFICATE_REQUIRED: Status.UNAUTHENTICATED,
  CERTIFICATE_REVOKED: Status.UNAUTHENTICATED,
  // A client certificate that fails verification: another CA's, expired, not yet valid, a bad signature.
  CERTIFICATE_INVALID: Status.UNAUTHENTICATED,
  ROLE_REQUIRED: Status.PERMISSION_DENIED,
  // REST: a state-changing request a browser sent from another site's page (Origin or Sec-Fetch-Site say so), which
  // would otherwise act with the certificate the browser presents for the user.
  CROSS_SITE_REQUEST: Status.PERMISSION_DENIED,
  SUBSCRIBER_TOO_SLOW: Status.RESOURCE_EXHAUSTED,
  // UNAVAILABLE: retry later.
  KERNEL_UNAVAILABLE: Status.UNAVAILABLE,
  SHUTTING_DOWN: Status.UNAVAILABLE,
  // fail2ban-server's socket is missing or refuses connections, the server went away mid-command, or it did not answer.
  FAIL2BAN_UNAVAILABLE: Status.UNAVAILABLE,
  // NATS is not reachable now (fleet views; shared bans wait in the outbox instead).
  FLEET_UNAVAILABLE: Status.UNAVAILABLE,
  // A feed's source could not be read: unreachable, too slow, an HTTP status other than 200 or 304, a missing file.
  FEED_UNAVAILABLE: Status.UNAVAILABLE,
  // INTERNAL: a bug or an unexpected tool failure; details are in the server log.
  KERNEL_COMMAND_FAILED: Status.INTERNAL,
  CONFIG_WRITE_FAILED: Status.INTERNAL,
  // iptables-save printed text that is structurally broken (rule outside a table, undeclared chain, open quote);
  // matches we do not know never cause it, they only make a rule unmodeled.
  INVALID_DUMP: Status.INTERNAL,
  // fail2ban-server's reply was not a pickle we accept (disallowed global, corrupt, too large) or not a (code, value).
  FAIL2BAN_BAD_REPLY: Status.INTERNAL,
  INTERNAL: Status.INTERNAL,
} as const satisfies Record<string, Status>;

export type Reason = keyof typeof reasons;

/** The error domain sent in google.rpc.ErrorInfo. */
export const ERROR_DOMAIN = "portcullis.dev";

/** The one server error type: a reason from the catalogue, a message that says what to change, and metadata. */
export class ServerError extends Error {
  readonly reason: Reason;
  readonly code: Status;
  readonly metadata: Readonly<Record<string, string>>;

  constructor(reason: Reason, message: string, metadata: Record<string, string> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ServerError";
    this.reason = reason;
    this.code = reasons[reason];
    this.metadata = Object.freeze({ ...metadata });
  }
}

/** Wraps anything thrown into a ServerError; unknown errors become INTERNAL with a generic message. */
export function toServerError(error: unknown): ServerError {
  if (error instanceof ServerError) return error;
  return new ServerError("INTERNAL", "internal error; see the server log", {}, { cause: error });
}

/**
 * The same error placed under an item of a list, e.g. a rule's `rule.source` becomes `rules[3].source`, so that a
 * refusal of one item in a batch names which one.
 */
export function underField(error: unknown, prefix: string): unknown {
  if (!(error instanceof ServerError)) return error;
  const field = error.metadata.field?.replace(/^rule\.?/, "");
  return new ServerError(error.reason, `${prefix}: ${error.message.replace(/^rule\./, "")}`, { ...error.metadata, field: field ? `${prefix}.${field}` : prefix });
}

/** Runs work, placing any error it throws under `prefix` (see underField). */
export function withField<T>(work: () => T, prefix: string): T {
  try {
    return work();
  } catch (error) {
    throw underField(error, prefix);
  }
}

/** grpc-gateway's status → HTTP table (used by the REST gateway and in problem JSON). */
export const httpStatusOf: Readonly<Record<Status, number>> = {
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
