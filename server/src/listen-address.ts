import type { Server } from "node:net";
import type { AddressInfo } from "node:net";
import ipaddr from "ipaddr.js";

/** "host:port", "[v6]:port" or grpc-js's peer form "v6:port" → host (without brackets) and port. */
export function splitHostPort(address: string): { host: string; port: number } {
  const separator = address.lastIndexOf(":");
  return { host: address.slice(0, separator).replace(/^\[|\]$/g, ""), port: Number(address.slice(separator + 1)) };
}

/** Listens on "host:port" (an IPv6 host in brackets); resolves to "host:port" with the port bound (0 resolved). */
export async function listenAt(server: Server, address: string): Promise<string> {
  const { host, port } = splitHostPort(address);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return `${address.slice(0, address.lastIndexOf(":"))}:${(server.address() as AddressInfo).port}`;
}

/** host:port → what the anti-lockout check compares: the port, and the address unless it is a wildcard. */
export function apiEndpoint(address: string): { port: number; address: string | undefined } {
  const { host, port } = splitHostPort(address);
  const wildcard = host === "0.0.0.0" || host === "::" || !ipaddr.isValid(host);
  return { port, address: wildcard ? undefined : ipaddr.process(host).toString() };
}
