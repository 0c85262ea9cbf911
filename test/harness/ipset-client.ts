import { Metadata, type ChannelCredentials, type ServiceError } from "@grpc/grpc-js";
import { IpsetServiceClient, IpsetServiceService, type IpsetServiceClient as Client } from "@portcullis/sdk/gen/portcullis/v1/ipset.js";
import { Status } from "@portcullis/sdk/gen/google/rpc/status.js";
import { ErrorInfo } from "@portcullis/sdk/gen/google/rpc/error_details.js";

type Service = typeof IpsetServiceService;
type RequestOf<K extends keyof Service> = Parameters<Service[K]["requestSerialize"]>[0];
type ResponseOf<K extends keyof Service> = ReturnType<Service[K]["responseDeserialize"]>;

/** The generated IpsetService client with promise-returning calls, for tests. */
export class IpsetTestClient {
  readonly raw: Client;

  constructor(address: string, credentials: ChannelCredentials) {
    this.raw = new IpsetServiceClient(address, credentials, { "grpc.ssl_target_name_override": "localhost", "grpc.max_send_message_length": 256 * 1024 * 1024, "grpc.max_receive_message_length": 256 * 1024 * 1024 });
  }

  call<K extends keyof Service>(method: K, request: RequestOf<K>): Promise<ResponseOf<K>> {
    return new Promise((resolve, reject) => {
      const fn = this.raw[method] as unknown as (request: unknown, metadata: Metadata, options: object, callback: (error: ServiceError | null, response: unknown) => void) => void;
      fn.call(this.raw, request, new Metadata(), { deadline: Date.now() + 120_000 }, (error, response) => (error ? reject(error) : resolve(response as ResponseOf<K>)));
    });
  }

  close(): void {
    this.raw.close();
  }
}

/** The google.rpc.ErrorInfo reason carried by a gRPC error's details, if any. */
export function reasonOf(error: unknown): string | undefined {
  const details = (error as ServiceError).metadata?.get("grpc-status-details-bin")[0];
  if (!(details instanceof Buffer)) return undefined;
  const status = Status.decode(details);
  const info = status.details.find((any) => any.typeUrl.endsWith("google.rpc.ErrorInfo"));
  return info === undefined ? undefined : ErrorInfo.decode(info.value).reason;
}

/** Asserts a promise rejects with the given gRPC code and reason; returns the error. */
export async function rejectsWith(promise: Promise<unknown>, code: number, reason?: string): Promise<ServiceError> {
  try {
    await promise;
  } catch (error) {
    const serviceError = error as ServiceError;
    if (serviceError.code !== code) throw new Error(`expected gRPC code ${code}, got ${serviceError.code}: ${serviceError.message}`);
    if (reason !== undefined && reasonOf(error) !== reason) throw new Error(`expected reason ${reason}, got ${reasonOf(error)}: ${serviceError.message}`);
    return serviceError;
  }
  throw new Error(`expected gRPC code ${code}${reason === undefined ? "" : ` (${reason})`}, but the call succeeded`);
}
