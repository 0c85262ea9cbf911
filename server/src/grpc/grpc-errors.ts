import { Metadata, type ServiceError } from "@grpc/grpc-js";
import { Any } from "../gen/google/protobuf/any.js";
import { ErrorInfo } from "../gen/google/rpc/error_details.js";
import { Status } from "../gen/google/rpc/status.js";
import { ERROR_DOMAIN, type ServerError } from "../errors.js";

/**
 * The status travels in HTTP/2 trailers, which clients bound (grpc-js: 8 KiB, `grpc.max_metadata_size`; over it the
 * connection is dropped, with every call on it): a message or metadata value that echoes a long input is clipped. The
 * message goes twice, percent-encoded (up to 3 characters a byte) and in the base64 details.
 */
const MAX_MESSAGE_BYTES = 600;
const MAX_METADATA_BYTES = 200;

/**
 * A ServerError as a gRPC status: the code and message, plus `grpc-status-details-bin` carrying a google.rpc.Status
 * with an ErrorInfo (reason, domain, metadata) — what Google's and grpc-gateway's clients know how to read.
 */
export function toGrpcError(error: ServerError): Partial<ServiceError> {
  const message = clip(error.message, MAX_MESSAGE_BYTES);
  const metadata = Object.fromEntries(Object.entries(error.metadata).map(([key, value]) => [key, clip(value, MAX_METADATA_BYTES)]));
  const info = ErrorInfo.encode({ reason: error.reason, domain: ERROR_DOMAIN, metadata }).finish();
  const details = Status.encode({
    code: error.code,
    message,
    details: [Any.fromPartial({ typeUrl: "type.googleapis.com/google.rpc.ErrorInfo", value: Buffer.from(info) })],
  }).finish();
  const trailers = new Metadata();
  trailers.set("grpc-status-details-bin", Buffer.from(details));
  return { code: error.code, details: message, metadata: trailers };
}

/**
 * The text cut to at most `maxBytes` of UTF-8 with an ellipsis, by whole code points, and a lone surrogate (half of a
 * character some earlier slice() cut) replaced by U+FFFD: grpc-js encodeURI()s the message, which throws on one.
 */
function clip(raw: string, maxBytes: number): string {
  const text = raw.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
  if (Buffer.byteLength(text) <= maxBytes) return text;
  let kept = "";
  let bytes = 3; // the ellipsis
  for (const char of text) {
    bytes += Buffer.byteLength(char);
    if (bytes > maxBytes) break;
    kept += char;
  }
  return `${kept}…`;
}
