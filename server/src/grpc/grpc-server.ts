import type { SecureContextOptions } from "node:tls";
import { Server, type ServiceError, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { loadFileDescriptorSetFromBuffer, loadSync } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation, protoPath as healthProtoPath } from "grpc-health-check";
import type { Logger } from "../logger.js";
import { toServerError } from "../errors.js";
import type { Invoker } from "../api/invoker.js";
import type { Operation, StreamOperation } from "../api/operation.js";
import type { Principal } from "../auth/principal.js";
import { principalOf } from "../auth/peer-identity.js";
import { contractDescriptorSet, type ContractService } from "../api/contract.js";
import type { CrlWatcher } from "../auth/crl-watcher.js";
import { toGrpcError } from "./grpc-errors.js";
import { listenGrpc } from "./grpc-listener.js";
import { callerAddress, PeerConnections } from "./peer-connections.js";
import { refusing, UndecodableRequest, withUndecodableRequests } from "./request-decoding.js";

export interface GrpcServerDeps {
  readonly address: string;
  /** The server's certificate, key, CA and CRL: clients must present a certificate from this CA. */
  readonly tls: SecureContextOptions;
  readonly crl: CrlWatcher;
  readonly invoker: Invoker;
  readonly services: readonly ContractService[];
  readonly log: Logger;
}

export interface RunningGrpcServer {
  /** host:port actually bound (resolves port 0). */
  readonly address: string;
  readonly health: HealthImplementation;
  /** New TLS material (a CRL update, a rotated certificate): for new connections. */
  updateTls(tls: SecureContextOptions): void;
  close(graceMs: number): Promise<void>;
}

/** Batches of a million entries are ~20 MB on the wire; the default 4 MB limit would refuse them. */
const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

/** The gRPC adapter: every RPC of every service runs through the invoker; plus health and reflection. */
export async function startGrpcServer(deps: GrpcServerDeps): Promise<RunningGrpcServer> {
  const server = new Server({
    "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
    "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
    "grpc.keepalive_permit_without_calls": 1,
    // No channelz service is served; its per-call bookkeeping (timestamps, counters per session) is work for no reader.
    "grpc.enable_channelz": 0,
  });
  const peers = new PeerConnections();
  for (const service of deps.services) server.addService(withUndecodableRequests(service.definition), adapt(service, deps, peers));

  const health = new HealthImplementation({ "": "SERVING", ...Object.fromEntries(deps.services.map((service) => [service.name, "SERVING" as const])) });
  health.addToServer(server);
  new ReflectionService({ ...contractDefinition(), ...loadSync(healthProtoPath) }).addToServer(server);

  const listener = await listenGrpc(server, { address: deps.address, tls: deps.tls, log: deps.log, refused: (method, error) => deps.invoker.refused(method, error, "grpc"), peers });
  return {
    address: listener.address,
    health,
    updateTls: (tls) => listener.updateTls(tls),
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        listener.close();
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}

/** Binds each method of a generated service definition to its operation (unary or server-streaming). */
function adapt(service: ContractService, deps: GrpcServerDeps, peers: PeerConnections): UntypedServiceImplementation {
  const implementation: UntypedServiceImplementation = {};
  for (const [key, definition] of Object.entries(service.definition)) {
    const method = definition.path.slice(1);
    const found = service.operations[key] as Operation<unknown, unknown> | StreamOperation<unknown, unknown> | undefined;
    if (found === undefined) throw new Error(`no operation for ${method}`);
    if (found.kind === "stream") {
      implementation[key] = (call: ServerWritableStream<unknown, unknown>) => {
        const principal = authenticate(call, method, deps, peers);
        if (principal === undefined) return;
        const aborted = new AbortController();
        call.on("cancelled", () => aborted.abort());
        call.on("close", () => aborted.abort());
        // Writes wait for the transport to drain, so a slow subscriber holds back its own stream only.
        const write = (item: unknown): Promise<void> =>
          new Promise((resolve) => (call.write(item) ? resolve() : call.once("drain", () => resolve())));
        const request: unknown = call.request;
        const op = request instanceof UndecodableRequest ? refusing(found, request.error) : found;
        deps.invoker.invokeStream(method, op, principal, request, "grpc", write, aborted.signal).then(
          () => call.end(),
          (error: unknown) => (aborted.signal.aborted ? call.end() : failStream(call, toGrpcError(toServerError(error)))),
        );
      };
      continue;
    }
    implementation[key] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      const principal = authenticate(call, method, deps, peers, callback);
      if (principal === undefined) return;
      // An undecodable request is answered by its refusal, after the same authentication and role check as any call.
      const request: unknown = call.request;
      const op = request instanceof UndecodableRequest ? refusing(found, request.error) : found;
      deps.invoker.invoke(method, op, principal, request, "grpc").then(
        (response) => callback(null, response),
        (error: unknown) => callback(toGrpcError(toServerError(error))),
      );
    };
  }
  return implementation;
}

/** The caller from its certificate and connection, or undefined after refusing the call. */
function authenticate(call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>, method: string, deps: GrpcServerDeps, peers: PeerConnections, callback?: sendUnaryData<unknown>): Principal | undefined {
  try {
    const peer = call.getPeer();
    const connection = peers.of(peer);
    if (connection === undefined) return { ...principalOf(call.getAuthContext().sslPeerCertificate, deps.crl), ...callerAddress(peer) };
    const principal = principalOf(connection.certificate, deps.crl);
    return connection.address === undefined ? principal : { ...principal, address: connection.address };
  } catch (error) {
    const serverError = toServerError(error);
    const refusal = toGrpcError(serverError);
    deps.invoker.refused(method, serverError, "grpc");
    if (callback !== undefined) callback(refusal);
    else failStream(call as ServerWritableStream<unknown, unknown>, refusal);
    return undefined;
  }
}

/**
 * Ends a server stream with an error status. grpc-js's stream turns an 'error' event into its status and ends;
 * destroy(error) would not: a destroyed stream never runs the final step that sends the status, so the caller would
 * wait until its deadline.
 */
function failStream(call: ServerWritableStream<unknown, unknown>, error: Partial<ServiceError>): void {
  call.emit("error", error);
}

/** The contract's descriptors, for reflection clients such as grpcurl. */
function contractDefinition(): ReturnType<typeof loadFileDescriptorSetFromBuffer> {
  return loadFileDescriptorSetFromBuffer(contractDescriptorSet(), { keepCase: true });
}
