import type { Server } from "node:net";
import type { AddressInfo } from "node:net";

/** Listens on "host:port" (an IPv6 host in brackets); resolves to "host:port" with the port bound (0 resolved). */
export async function listenAt(server: Server, address: string): Promise<string> {
  const separator = address.lastIndexOf(":");
  const host = address.slice(0, separator);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(address.slice(separator + 1)), host.replace(/^\[|\]$/g, ""), () => {
      server.off("error", reject);
      resolve();
    });
  });
  return `${host}:${(server.address() as AddressInfo).port}`;
}
