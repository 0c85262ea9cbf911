import type { PeerCertificate, TLSSocket } from "node:tls";

/**
 * The verified client certificate of each open gRPC connection, by grpc-js's peer string (`address:port`). Read once
 * per connection: grpc-js's getAuthContext turns it into a JS object on every call (≈ 0.1 ms), and a connection
 * carries many calls. Revocation is still checked on every call (principalOf).
 */
export class PeerCertificates {
  readonly #byPeer = new Map<string, PeerCertificate>();

  add(socket: TLSSocket): void {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const certificate = socket.getPeerCertificate();
    this.#byPeer.set(peer, certificate);
    socket.once("close", () => {
      if (this.#byPeer.get(peer) === certificate) this.#byPeer.delete(peer);
    });
  }

  of(peer: string): PeerCertificate | undefined {
    return this.#byPeer.get(peer);
  }
}
