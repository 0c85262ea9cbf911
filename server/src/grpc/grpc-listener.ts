import { createServer as createHttp2Server } from "node:http2";
import { createServer as createTlsServer, type SecureContextOptions, type TLSSocket } from "node:tls";
import { ServerCredentials, type Server } from "@grpc/grpc-js";
import type { Logger } from "../logger.js";
import type { ServerError } from "../errors.js";
import { certificateRefusal, logCertificateRefusal } from "../auth/client-certificate.js";
import { listenAt } from "../listen-address.js";
import { toGrpcError } from "./grpc-errors.js";
import type { PeerConnections } from "./peer-connections.js";

export interface GrpcListenerDeps {
  readonly address: string;
  readonly tls: SecureContextOptions;
  readonly log: Logger;
  /** A call answered with a refusal (for the audit log). */
  readonly refused: (method: string, error: ServerError) => void;
  /** Where the certificate and caller address of each accepted connection are kept for its calls. */
  readonly peers: PeerConnections;
}

export interface GrpcListener {
  /** host:port actually bound. */
  readonly address: string;
  /** New TLS material (a CRL update, a rotated certificate): for new connections. */
  updateTls(tls: SecureContextOptions): void;
  /** Stops accepting connections and drops refused ones; grpc-js's own shutdown ends the served ones. */
  close(): void;
}

/** A refused connection is dropped after this long without traffic. */
const REFUSED_IDLE_MS = 10_000;

/**
 * The gRPC port, with TLS terminated here rather than in grpc-js: Node verifies a presented client certificate only
 * after the handshake and can then only drop the connection, without a TLS alert, so a client with another CA's
 * certificate saw nothing but UNAVAILABLE "failed to connect to all addresses". Here the handshake asks for a
 * certificate without rejecting; a connection whose certificate verified goes to grpc-js (a connection injector), and
 * any other has each of its calls answered UNAUTHENTICATED with the reason and what it presented (certificateRefusal),
 * before any service — health and reflection included — sees it. Each refused connection is logged once.
 */
export async function listenGrpc(server: Server, deps: GrpcListenerDeps): Promise<GrpcListener> {
  const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
  const refusedSockets = new Set<TLSSocket>();
  const tlsServer = createTlsServer({ ...deps.tls, requestCert: true, rejectUnauthorized: false, minVersion: "TLSv1.2", ALPNProtocols: ["h2"] });
  tlsServer.on("tlsClientError", (error, socket) => deps.log.debug({ err: error, remote: socket.remoteAddress }, "gRPC TLS handshake failed"));
  tlsServer.on("secureConnection", (socket: TLSSocket) => {
    // The HTTP/2 session handles the socket's errors once it has one; until then they must not go unhandled.
    socket.on("error", (error) => deps.log.debug({ err: error, remote: socket.remoteAddress }, "gRPC connection failed"));
    const refusal = certificateRefusal(socket);
    if (refusal === undefined) {
      deps.peers.add(socket);
      injector.injectConnection(socket);
      return;
    }
    logCertificateRefusal(deps.log, "grpc", socket, refusal);
    refusedSockets.add(socket);
    socket.once("close", () => refusedSockets.delete(socket));
    socket.setTimeout(REFUSED_IDLE_MS, () => socket.destroy());
    answerRefused(socket, refusal, deps.refused);
  });
  const address = await listenAt(tlsServer, deps.address);
  return {
    address,
    updateTls: (tls) => tlsServer.setSecureContext({ ...tls }),
    close: () => {
      tlsServer.close();
      for (const socket of refusedSockets) socket.destroy();
    },
  };
}

/** Every call of a refused connection gets a trailers-only answer: the refusal as a gRPC status with its ErrorInfo. */
function answerRefused(socket: TLSSocket, refusal: ServerError, refused: GrpcListenerDeps["refused"]): void {
  const { metadata } = toGrpcError(refusal);
  const answers = createHttp2Server();
  answers.on("stream", (stream, headers) => {
    refused(String(headers[":path"] ?? "").slice(1, 200), refusal);
    stream.respond({
      ":status": 200,
      "content-type": "application/grpc",
      "grpc-status": String(refusal.code),
      // The gRPC spec's percent-encoding of grpc-message, as grpc-js writes and reads it.
      "grpc-message": encodeURI(refusal.message),
      ...metadata?.toHttp2Headers(),
    }, { endStream: true });
  });
  answers.emit("connection", socket);
}
