import { fromBinary, toJson, type DescMessage } from "@bufbuild/protobuf";
import { ServerError } from "../errors.js";
import type { Operation, StreamOperation } from "../api/operation.js";
import { unsafeInteger } from "../api/safe-integers.js";
import { contractRegistry } from "../api/contract.js";

/** A request whose bytes did not decode, in place of its message: the refusal the call answers with. */
export class UndecodableRequest {
  constructor(readonly error: ServerError) {}
}

interface Deserializing {
  readonly path: string;
  readonly requestDeserialize: (bytes: Buffer) => unknown;
}

/**
 * The service definition with request deserializers that never throw: grpc-js answers a throwing one with INTERNAL
 * "Error deserializing request", a server fault, though the bytes are the caller's. An undecodable request becomes an
 * UndecodableRequest, which the adapter answers with its error (see refusing) after authentication and the role check.
 */
export function withUndecodableRequests<D extends Record<string, Deserializing>>(definition: D): D {
  const wrapped: Record<string, Deserializing> = {};
  for (const [key, method] of Object.entries(definition)) {
    const decode = method.requestDeserialize;
    wrapped[key] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return decode(bytes);
        } catch (error) {
          return new UndecodableRequest(refusalOf(method.path, bytes, error));
        }
      },
    };
  }
  return wrapped as D;
}

/**
 * Why the bytes did not decode, in the caller's terms: not a protobuf message of the request type at all
 * (MALFORMED_REQUEST), or a 64-bit integer the server does not hold exactly (INTEGER_OUT_OF_RANGE, naming the field).
 * Decoded again with the reflective decoder, which reads 64-bit integers as bigint; this runs on refusals only.
 */
function refusalOf(path: string, bytes: Buffer, error: unknown): ServerError {
  const input = requestType(path);
  let json: unknown;
  try {
    json = toJson(input, fromBinary(input, bytes));
  } catch (reflective) {
    return malformed(input, reflective);
  }
  return unsafeInteger(input, json, (field) => field.name) ?? malformed(input, error);
}

function malformed(input: DescMessage, error: unknown): ServerError {
  const why = error instanceof Error ? error.message.slice(0, 200) : "unreadable";
  return new ServerError("MALFORMED_REQUEST", `the request is not a valid ${input.typeName} message in protobuf encoding (${why})`, { type: input.typeName });
}

let inputs: Map<string, DescMessage> | undefined;

/** "/portcullis.v1.IpsetService/GetIpset" → the descriptor of its request message. */
function requestType(path: string): DescMessage {
  inputs ??= new Map([...contractRegistry()].flatMap((desc) => (desc.kind === "service" ? desc.methods.map((method) => [`/${desc.typeName}/${method.name}`, method.input] as const) : [])));
  const input = inputs.get(path);
  if (input === undefined) throw new Error(`${path} is not in the contract's descriptor set; regenerate (npm run generate)`);
  return input;
}

/** The operation, answering with the request's refusal in place of its work (audited and logged like any call). */
export function refusing<O extends Operation<unknown, unknown> | StreamOperation<unknown, unknown>>(op: O, error: ServerError): O {
  const resource = (): string => "";
  return op.kind === "stream" ? { ...op, resource, stream: () => Promise.reject(error) } : { ...op, resource, handle: () => Promise.reject(error), event: undefined };
}
