import type { PeerCertificate, TLSSocket } from "node:tls";
import ipaddr from "ipaddr.js";
import { splitHostPort } from "../listen-address.js";

/** What a call needs of its connection: the verified client certificate and the caller's address. */
export interface PeerConnection {
  readonly certificate: PeerCertificate;
  readonly address?: string;
}

/**
 * Each open gRPC connection's verified client certificate and caller address, by grpc-js's peer string
 * (`address:port`). Read once per connection: grpc-js's getAuthContext turns the certificate into a JS object on every
 * call (≈ 0.1 ms), and a connection carries many calls. Revocation is still checked on every call (principalOf).
 */
export class PeerConnections {
  readonly #byPeer = new Map<string, PeerConnection>();

  add(socket: TLSSocket): void {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const connection: PeerConnection = { certificate: socket.getPeerCertificate(), ...callerAddress(peer) };
    this.#byPeer.set(peer, connection);
    socket.once("close", () => {
      if (this.#byPeer.get(peer) === connection) this.#byPeer.delete(peer);
    });
  }

  of(peer: string): PeerConnection | undefined {
    return this.#byPeer.get(peer);
  }
}

/** "203.0.113.5:41234" or "::1:41234" (grpc-js's form) → the caller's address, IPv4-mapped IPv6 unwrapped. */
export function callerAddress(peer: string): { address?: string } {
  const { host } = splitHostPort(peer);
  return ipaddr.isValid(host) ? { address: ipaddr.process(host).toString() } : {};
}
