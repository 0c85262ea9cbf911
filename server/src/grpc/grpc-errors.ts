import { Metadata, type ServiceError } from "@grpc/grpc-js";
import { Any } from "@portcullis/sdk/gen/google/protobuf/any.js";
import { ErrorInfo } from "@portcullis/sdk/gen/google/rpc/error_details.js";
import { Status } from "@portcullis/sdk/gen/google/rpc/status.js";
import { ERROR_DOMAIN, type ServerError } from "../errors.js";

/**
 * A ServerError as a gRPC status: the code and message, plus `grpc-status-details-bin` carrying a google.rpc.Status
 * with an ErrorInfo (reason, domain, metadata) — what Google's and grpc-gateway's clients know how to read.
 */
export function toGrpcError(error: ServerError): Partial<ServiceError> {
  const info = ErrorInfo.encode({ reason: error.reason, domain: ERROR_DOMAIN, metadata: { ...error.metadata } }).finish();
  const details = Status.encode({
    code: error.code,
    message: error.message,
    details: [Any.fromPartial({ typeUrl: "type.googleapis.com/google.rpc.ErrorInfo", value: Buffer.from(info) })],
  }).finish();
  const metadata = new Metadata();
  metadata.set("grpc-status-details-bin", Buffer.from(details));
  return { code: error.code, details: error.message, metadata };
}
