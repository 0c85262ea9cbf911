import { Client, Metadata, type ChannelCredentials, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import { EventServiceService } from "../../server/src/gen/portcullis/v1/events.js";
import { JailServiceService } from "../../server/src/gen/portcullis/v1/jail.js";
import { IpsetServiceService } from "../../server/src/gen/portcullis/v1/ipset.js";
import { FirewallServiceService } from "../../server/src/gen/portcullis/v1/firewall.js";
import { FleetServiceService } from "../../server/src/gen/portcullis/v1/fleet.js";
import { HostServiceService } from "../../server/src/gen/portcullis/v1/host.js";
import { FeedServiceService } from "../../server/src/gen/portcullis/v1/feed.js";
import { Status } from "../../server/src/gen/google/rpc/status.js";
import { ErrorInfo } from "../../server/src/gen/google/rpc/error_details.js";

interface UnaryDefinition {
  readonly path: string;
  readonly requestSerialize: (value: never) => Buffer;
  readonly responseSerialize: (value: never) => Buffer;
  readonly responseDeserialize: (value: Buffer) => unknown;
}
type RequestOf<S, K extends keyof S> = S[K] extends { requestSerialize: (value: infer Q) => Buffer } ? Q : never;
type ResponseOf<S, K extends keyof S> = S[K] extends { responseDeserialize: (value: Buffer) => infer R } ? R : never;

const OPTIONS = { "grpc.ssl_target_name_override": "localhost", "grpc-node.flow_control_window": 16 * 1024 * 1024, "grpc.max_send_message_length": 256 * 1024 * 1024, "grpc.max_receive_message_length": 256 * 1024 * 1024 };

/** Any generated service, called with promises and typed from its definition, for tests. */
export class TestClient<S extends Record<string, UnaryDefinition>> {
  readonly raw: Client;
  readonly #service: S;

  /** `ownConnection`: a connection of its own (grpc-js otherwise shares one between clients of the same server). */
  constructor(service: S, address: string, credentials: ChannelCredentials, ownConnection = false) {
    this.#service = service;
    this.raw = new Client(address, credentials, ownConnection ? { ...OPTIONS, "grpc.use_local_subchannel_pool": 1 } : OPTIONS);
  }

  call<K extends keyof S & string>(method: K, request: RequestOf<S, K>): Promise<ResponseOf<S, K>> {
    const definition = this.#service[method]!;
    return new Promise((resolve, reject) => {
      this.raw.makeUnaryRequest(definition.path, definition.requestSerialize as (value: RequestOf<S, K>) => Buffer, definition.responseDeserialize as (value: Buffer) => ResponseOf<S, K>, request, new Metadata(), { deadline: Date.now() + 120_000 }, (error, response) =>
        error ? reject(error) : resolve(response!),
      );
    });
  }

  /** A server-streaming call: every item goes to onItem; the returned call can be cancelled. */
  stream<K extends keyof S & string>(method: K, request: RequestOf<S, K>, onItem: (item: ResponseOf<S, K>) => void, onEnd?: (error?: ServiceError) => void): ClientReadableStream<ResponseOf<S, K>> {
    const definition = this.#service[method]!;
    const call = this.raw.makeServerStreamRequest(definition.path, definition.requestSerialize as (value: RequestOf<S, K>) => Buffer, definition.responseDeserialize as (value: Buffer) => ResponseOf<S, K>, request, new Metadata(), {});
    call.on("data", onItem);
    call.on("error", (error: ServiceError) => onEnd?.(error));
    call.on("end", () => onEnd?.());
    return call;
  }

  close(): void {
    this.raw.close();
  }
}

/** EventService test client. */
export class EventTestClient extends TestClient<typeof EventServiceService> {
  constructor(address: string, credentials: ChannelCredentials) {
    super(EventServiceService, address, credentials);
  }
}

/** JailService test client. */
export class JailTestClient extends TestClient<typeof JailServiceService> {
  constructor(address: string, credentials: ChannelCredentials) {
    super(JailServiceService, address, credentials);
  }
}

/** IpsetService test client. */
export class IpsetTestClient extends TestClient<typeof IpsetServiceService> {
  constructor(address: string, credentials: ChannelCredentials, ownConnection = false) {
    super(IpsetServiceService, address, credentials, ownConnection);
  }
}

/** FirewallService test client. */
export class FirewallTestClient extends TestClient<typeof FirewallServiceService> {
  constructor(address: string, credentials: ChannelCredentials) {
    super(FirewallServiceService, address, credentials);
  }
}

/** FleetService test client. */
export class FleetTestClient extends TestClient<typeof FleetServiceService> {
  constructor(address: string, credentials: ChannelCredentials) {
    super(FleetServiceService, address, credentials);
  }
}

/** HostService test client. */
export class HostTestClient extends TestClient<typeof HostServiceService> {
  constructor(address: string, credentials: ChannelCredentials) {
    super(HostServiceService, address, credentials);
  }
}

/** FeedService test client. */
export class FeedTestClient extends TestClient<typeof FeedServiceService> {
  constructor(address: string, credentials: ChannelCredentials) {
    super(FeedServiceService, address, credentials);
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
